//! One line for an error and every cause under it, for places that keep text (a denial's
//! reason, an outbox entry's last error) rather than the error itself.

use std::error::Error;
use std::fmt;

/// Displays `error`, then each of its `source()`s, joined by `": "`.
///
/// ```
/// use jitgate_core::{ErrorChain, StoreError};
/// let e = StoreError::Backend("connection reset".into());
/// assert_eq!(ErrorChain(&e).to_string(), "storage backend failed: connection reset");
/// ```
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}
