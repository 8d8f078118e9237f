//! The [`Listings`] capability: paginated listings for a platform team's API and UI.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use super::store::{Store, StoreError};
use crate::model::entity::EntityRef;
use crate::model::grant::Grant;
use crate::model::request::{AccessRequest, RequestState};

/// An opaque position in a paginated listing: a store puts the key of the last item of a
/// page in it ([`Cursor::after`]) and reads it back ([`PageRequest::after_key`]). Clients
/// hand it back as they got it (a string, e.g. in a URL).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Debug)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    /// A cursor as a client hands it back.
    pub fn new(cursor: impl Into<String>) -> Self {
        Self(cursor.into())
    }

    /// The position after `key` (the last item's id, sequence number, ...).
    pub fn after(key: impl fmt::Display) -> Self {
        Self(key.to_string())
    }

    /// The cursor's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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

    /// The key the page starts after (`None` for the first page), as the store wrote it with
    /// [`Cursor::after`].
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] if the cursor does not hold such a key.
    pub fn after_key<K: FromStr>(&self) -> Result<Option<K>, StoreError> {
        self.after
            .as_ref()
            .map(|c| {
                c.0.parse::<K>()
                    .map_err(|_| StoreError::InvalidCursor { cursor: c.0.clone() })
            })
            .transpose()
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

impl<T> Page<T> {
    /// The one pagination rule of every store: from up to `limit + 1` items read in listing
    /// order, the first `limit` are the page, and an extra item only says that a next page
    /// exists, starting after the last item kept (`key` gives its key).
    pub fn from_overfetch<K: fmt::Display>(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> K) -> Self {
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more {
            items.last().map(|t| Cursor::after(key(t)))
        } else {
            None
        };
        Self { items, next }
    }

    /// The same page with every item mapped.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

/// Which of a principal's requests [`Listings::requests_of`] lists: by state and by when they
/// were made. The default lists every request.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct RequestFilter {
    /// Only requests in one of these states; empty: every state.
    pub states: Vec<RequestState>,
    /// Only requests made at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Only requests made before this time.
    pub created_before: Option<DateTime<Utc>>,
}

impl RequestFilter {
    /// Every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Only requests in one of `states` (none named: every state).
    pub fn in_states(mut self, states: impl IntoIterator<Item = RequestState>) -> Self {
        self.states = states.into_iter().collect();
        self.states.sort_by_key(|s| s.to_string());
        self.states.dedup();
        self
    }

    /// Only requests made at or after `from`.
    pub fn created_from(mut self, from: DateTime<Utc>) -> Self {
        self.created_from = Some(from);
        self
    }

    /// Only requests made before `before`.
    pub fn created_before(mut self, before: DateTime<Utc>) -> Self {
        self.created_before = Some(before);
        self
    }

    /// Whether `request` is listed (for stores that filter after reading).
    pub fn matches(&self, request: &AccessRequest) -> bool {
        (self.states.is_empty() || self.states.contains(&request.state))
            && self.created_from.is_none_or(|from| request.created_at >= from)
            && self.created_before.is_none_or(|before| request.created_at < before)
    }
}

/// Paginated listings of requests and grants (a [`Store`] capability).
#[async_trait]
pub trait Listings: Store {
    /// All grants of `principal` whose stored state is scheduled or active, ordered by id.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn live_grants_of(&self, principal: &EntityRef, page: &PageRequest) -> Result<Page<Grant>, StoreError>;

    /// The pending requests of `principal`, ordered by id (off-boarding closes them).
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn pending_requests_of(
        &self,
        principal: &EntityRef,
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, StoreError>;

    /// The requests `principal` made (in every state unless `filter` says otherwise), newest
    /// first: ordered by creation time, then id, both descending. The cursor is the last
    /// request's id.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] (also for the id of a request that is not `principal`'s)
    /// or a backend error.
    async fn requests_of(
        &self,
        principal: &EntityRef,
        filter: &RequestFilter,
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, StoreError>;

    /// Pending requests, oldest first.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn pending_requests(&self, page: &PageRequest) -> Result<Page<AccessRequest>, StoreError>;

    /// The pending requests whose flow has a requirement reviewed by one of `reviewers`,
    /// oldest first, with the cursors of [`pending_requests`](Self::pending_requests). The
    /// default reads every pending request and keeps these; a store with many pending requests
    /// overrides it with an index by reviewer group, so that a reviewer's queue costs the same
    /// however many unrelated requests wait.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn pending_requests_for(
        &self,
        reviewers: &[EntityRef],
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, StoreError> {
        let mut found = Vec::new();
        let mut read = page.clone();
        loop {
            let batch = self.pending_requests(&read).await?;
            found.extend(batch.items.into_iter().filter(|r| r.is_reviewed_by_any(reviewers)));
            match batch.next {
                Some(next) if found.len() <= page.limit => read.after = Some(next),
                _ => break,
            }
        }
        found.truncate(page.limit + 1);
        Ok(Page::from_overfetch(found, page.limit, |r| r.id))
    }

    /// Break-glass grants not yet acknowledged, ordered by id.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn unacknowledged_break_glass(&self, page: &PageRequest) -> Result<Page<Grant>, StoreError>;
}
