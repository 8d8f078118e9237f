//! The [`Listings`] capability: paginated listings for a platform team's API and UI.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::store::{Store, StoreError};
use crate::model::entity::EntityRef;
use crate::model::grant::Grant;
use crate::model::request::AccessRequest;

/// An opaque position in a paginated listing.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Debug)]
#[serde(transparent)]
pub struct Cursor(pub String);

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which page of a listing to read.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PageRequest {
    /// Start after this cursor (from the previous page's `next`); `None` for the first page.
    pub after: Option<Cursor>,
    /// At most this many items (at least 1).
    pub limit: usize,
}

impl PageRequest {
    /// The first page of at most `limit` items.
    pub fn first(limit: usize) -> Self {
        Self {
            after: None,
            limit: limit.max(1),
        }
    }

    /// The page after `cursor`.
    pub fn after(cursor: Cursor, limit: usize) -> Self {
        Self {
            after: Some(cursor),
            limit: limit.max(1),
        }
    }
}

/// A page of a listing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// The cursor of the next page, if there may be one.
    pub next: Option<Cursor>,
}

/// Paginated listings of requests and grants (a [`Store`] capability).
#[async_trait]
pub trait Listings: Store {
    /// All grants of `principal` whose stored state is scheduled or active, ordered by id.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn live_grants_of(&self, principal: &EntityRef, page: &PageRequest) -> Result<Page<Grant>, StoreError>;

    /// Pending requests, oldest first.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn pending_requests(&self, page: &PageRequest) -> Result<Page<AccessRequest>, StoreError>;

    /// Break-glass grants not yet acknowledged, ordered by id.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn unacknowledged_break_glass(&self, page: &PageRequest) -> Result<Page<Grant>, StoreError>;
}
