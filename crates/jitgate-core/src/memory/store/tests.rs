//! The kept audit chain's own bookkeeping, below what the store's traits show.

use chrono::{DateTime, Utc};

use super::Inner;
use crate::audit::{AuditAction, AuditEntry, ChainHead};
use crate::model::entity::{EntityRef, Scope};
use crate::model::ids::RequestId;

fn entry(request_id: RequestId) -> AuditEntry {
    AuditEntry {
        at: DateTime::<Utc>::UNIX_EPOCH,
        actor: EntityRef::new("User", "sam"),
        action: AuditAction::RequestCreated,
        request_id,
        grant_id: None,
        principal: EntityRef::new("User", "sam"),
        scope: Scope::new(
            EntityRef::new("Action", "db_restart"),
            EntityRef::new("Database", "orders"),
        ),
        text: None,
        policy_ids: vec![],
        binding: None,
        replica: None,
        policy_version: None,
    }
}

/// Kept records as a commit keeps them: in chain order, indexed by request.
fn keep(inner: &mut Inner, head: &mut ChainHead, request_id: RequestId) {
    let record = head.append(entry(request_id));
    inner.audit_by_request.entry(request_id).or_default().push(record.seq);
    inner.audit.push_back(record);
    inner.head = head.clone();
}

#[test]
fn released_records_give_back_their_memory_and_leave_the_rest_found_by_seq() {
    let mut inner = Inner::default();
    let mut head = ChainHead::genesis();
    let (old, new) = (RequestId::new_random(), RequestId::new_random());
    for _ in 0..10_000 {
        keep(&mut inner, &mut head, old);
    }
    for _ in 0..10 {
        keep(&mut inner, &mut head, new);
    }
    let grown = inner.audit.capacity();
    let last_old = inner.audit[9_999].clone();

    inner.release(10_000);

    assert_eq!(inner.audit.len(), 10);
    assert!(
        inner.audit.capacity() < grown && inner.audit.capacity() <= 4 * 10 + 1_024,
        "capacity {} after release, {grown} before",
        inner.audit.capacity()
    );
    assert_eq!((inner.released.seq, &inner.released.hash), (10_000, &last_old.hash));
    assert!(inner.audit_record(10_000).is_none(), "released");
    let first_kept = inner.audit_record(10_001).expect("kept");
    assert_eq!(
        (first_kept.seq, first_kept.prev_hash.as_str()),
        (10_001, last_old.hash.as_str())
    );
    assert_eq!(inner.audit_record(10_010).map(|r| r.seq), Some(10_010));
    assert!(inner.audit_record(10_011).is_none(), "not written yet");
    assert!(
        !inner.audit_by_request.contains_key(&old),
        "a request whose records all left is forgotten"
    );
    assert_eq!(inner.audit_by_request[&new].len(), 10);

    // A small chain is not shrunk again and again: only once the spare room is large.
    let before = inner.audit.capacity();
    inner.release(10_005);
    assert_eq!((inner.audit.len(), inner.audit.capacity()), (5, before));
}
