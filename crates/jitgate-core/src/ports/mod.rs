//! The ports: what a deployment plugs into the engine. A store implements the small core
//! [`Store`](store::Store) and, optionally, the capabilities beside it.

pub(crate) mod audit_log;
pub(crate) mod clock;
pub(crate) mod due;
pub(crate) mod listings;
pub(crate) mod notify;
pub(crate) mod outbox;
pub(crate) mod policy;
pub(crate) mod store;
