//! The `AuditLog` group: the audit chain read back whole, continuous and never losing a record.

use super::*;

/// Concurrent commits produce one gap-free chain that verifies.
pub async fn audit_chain_stays_continuous_under_concurrency(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let (_, c) = open(&fixtures::user(&format!("u{i}")), "x", t0());
                store.commit(c).await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("commit");
    }
    let audit = audit_all(&store).await;
    assert_eq!(audit.len(), 32);
    let seqs: Vec<u64> = audit.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=32).collect::<Vec<_>>());
    verify(&audit).expect("audit chain verifies");
    assert_eq!(
        audit_log(&store)
            .records(30, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>(),
        vec![31, 32]
    );
}

/// Told that sinks hold a prefix, a store keeps the chain after the point it reports: the
/// first kept record links to the released head, and what is kept verifies from there
/// (a durable store releases nothing: genesis, the whole chain).
pub async fn released_records_leave_a_linked_chain(store: Arc<dyn Store>) {
    for i in 0..5 {
        let (_, c) = open(&fixtures::user(&format!("r{i}")), "x", t0());
        store.commit(c).await.expect("commit");
    }
    let log = audit_log(&store);
    assert_eq!(
        log.released().await.unwrap(),
        ChainHead::genesis(),
        "nothing released yet"
    );
    log.release(3).await.expect("release");
    let released = log.released().await.unwrap();
    assert!(released.seq <= 3, "released {} though told 3", released.seq);
    let kept = log.records(0, usize::MAX).await.unwrap();
    assert_eq!(kept.first().map(|r| r.seq), Some(released.seq + 1));
    assert_eq!(kept[0].prev_hash, released.hash);
    let mut v = jitgate_core::audit::Verifier::new();
    v.resume_after(&released).unwrap();
    kept.iter()
        .try_for_each(|r| v.push(r))
        .expect("the kept chain verifies");
    assert_eq!(v.finish().unwrap().seq, 5);
}

/// Closed requests, ended grants and their audit stay readable.
pub async fn nothing_is_deleted(store: Arc<dyn Store>) {
    let (gate, _, _) = fixtures::gate(store.clone());
    let RequestOutcome::Pending(r) = gate.request(ask(restart("a"), 30)).await.unwrap() else {
        panic!()
    };
    let grant = gate.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    gate.revoke(grant.id, &sam(), Some("done early")).await.unwrap();
    let RequestOutcome::Pending(d) = gate.request(ask(restart("b"), 30)).await.unwrap() else {
        panic!()
    };
    gate.deny(d.id, &lin(), Some("not now")).await.unwrap();
    assert_eq!(gate.read_request(r.id).await.unwrap().state, RequestState::Approved);
    assert_eq!(gate.read_grant(grant.id).await.unwrap().state, GrantState::Revoked);
    assert_eq!(gate.read_request(d.id).await.unwrap().state, RequestState::Denied);
    let audit = gate.request_audit(r.id, &PageRequest::first(100)).await.unwrap();
    assert!(audit
        .items
        .iter()
        .any(|a| a.entry.action == jitgate_core::audit::AuditAction::GrantRevoked));
    assert!(matches!(
        gate.read_request(RequestId::new_random()).await,
        Err(Error::RequestNotFound(_))
    ));
}
