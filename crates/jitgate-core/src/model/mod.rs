//! The domain: entities and actions, ids, requests, grants, flows and events. Plain data with
//! the rules that belong to one value (a window's bounds, a flow's combination).

pub(crate) mod entity;
pub(crate) mod event;
pub(crate) mod flow;
pub(crate) mod grant;
pub(crate) mod ids;
pub(crate) mod policy_version;
pub(crate) mod request;
pub(crate) mod serde_duration;
