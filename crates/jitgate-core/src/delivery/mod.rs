//! Delivery of events: who each event is for (routing) and the dispatcher that drains the
//! outbox with retries, backoff and dead letters.

pub(crate) mod destination;
pub(crate) mod dispatch;
pub(crate) mod routing;
