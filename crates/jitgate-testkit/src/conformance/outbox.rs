//! The `Outbox` group: events kept until delivered, retried with waits, dead letters kept.

use super::*;

/// Events wait in the outbox, oldest first, until marked done; done events never come back.
pub async fn outbox_holds_events_until_done(store: Arc<dyn Store>) {
    let (r1, c1) = open(&sam(), "a", t0());
    let (r2, c2) = open(&sam(), "b", t0());
    store.commit(c1).await.unwrap();
    store.commit(c2).await.unwrap();
    let first = outbox(&store).claim(t0(), 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event.request_id, r1.id, "oldest first");
    outbox(&store).mark_done(&[first[0].seq]).await.unwrap();
    let second = outbox(&store).claim(t0(), 10).await.unwrap();
    assert_eq!(second.len(), 1, "the done event is gone, the other waits: {second:?}");
    assert_eq!(second[0].event.request_id, r2.id);
    assert!(second[0].seq > first[0].seq);
    outbox(&store).mark_done(&[second[0].seq]).await.unwrap();
    assert!(outbox(&store).claim(t0(), 10).await.unwrap().is_empty());
}

/// A failed delivery waits until its next attempt is due; a parked one is listed as dead,
/// never offered again, and recorded in the audit chain.
pub async fn outbox_retries_wait_and_dead_letters_are_kept(store: Arc<dyn Store>) {
    let (_, c) = open(&sam(), "a", t0());
    store.commit(c).await.unwrap();
    let first = outbox(&store).claim(t0(), 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 0);
    let seq = first[0].seq;
    outbox(&store)
        .retry(seq, 1, t0() + Duration::seconds(30), "receiver said 500")
        .await
        .unwrap();
    assert!(
        outbox(&store)
            .claim(t0() + Duration::seconds(29), 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let again = outbox(&store).claim(t0() + Duration::seconds(30), 10).await.unwrap();
    assert_eq!(again.len(), 1, "due again at its next attempt");
    assert_eq!(
        (again[0].attempts, again[0].last_error.as_deref()),
        (1, Some("receiver said 500"))
    );
    let e = &again[0].event;
    let audit = jitgate_core::audit::AuditEntry {
        at: t0(),
        actor: machine::system_actor(),
        action: jitgate_core::audit::AuditAction::NotificationDead,
        request_id: e.request_id,
        grant_id: e.grant_id,
        principal: e.principal.clone(),
        scope: e.scope.clone(),
        text: Some("gave up".into()),
        policy_ids: Vec::new(),
        binding: None,
        replica: None,
        policy_version: None,
    };
    let before = audit_all(&store).await.len();
    outbox(&store).park(seq, 2, "gave up", audit).await.unwrap();
    assert!(
        outbox(&store)
            .claim(t0() + Duration::days(1), 10)
            .await
            .unwrap()
            .is_empty(),
        "dead is never offered again"
    );
    let dead = outbox(&store).dead(&PageRequest::first(10)).await.unwrap();
    assert_eq!(dead.items.len(), 1);
    assert_eq!((dead.items[0].seq, dead.items[0].attempts), (seq, 2));
    let audit = audit_all(&store).await;
    assert_eq!(audit.len(), before + 1);
    assert_eq!(
        audit.last().unwrap().entry.action,
        jitgate_core::audit::AuditAction::NotificationDead
    );
    verify(&audit).expect("audit chain verifies");
}

/// An event routed to two destinations is two entries, each with its own destination,
/// attempts and backoff: retrying one never brings back the other, which was done.
pub async fn each_destination_has_its_own_entry(store: Arc<dyn Store>) {
    let (r, c) = open(&sam(), "a", t0());
    let routes = vec![vec!["slack".to_owned(), "siem".to_owned()]; c.events().len()];
    store.commit(c.routed(routes)).await.unwrap();
    let claimed = outbox(&store).claim(t0(), 10).await.unwrap();
    assert_eq!(claimed.len(), 2, "one entry per destination: {claimed:?}");
    let mut names: Vec<&str> = claimed.iter().map(|e| e.destination.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, vec!["siem", "slack"]);
    assert!(claimed.iter().all(|e| e.event.request_id == r.id));
    let slack = claimed.iter().find(|e| e.destination == "slack").expect("slack");
    let siem = claimed.iter().find(|e| e.destination == "siem").expect("siem");
    outbox(&store).mark_done(&[slack.seq]).await.unwrap();
    // A round's failures are recorded together (`retry_many`).
    outbox(&store)
        .retry_many(&[jitgate_core::Retry::new(
            siem.seq,
            1,
            t0() + Duration::seconds(10),
            "siem down".into(),
        )])
        .await
        .unwrap();
    let again = outbox(&store).claim(t0() + Duration::seconds(10), 10).await.unwrap();
    assert_eq!(
        again.len(),
        1,
        "only the failed destination's entry comes back: {again:?}"
    );
    assert_eq!(
        (
            again[0].destination.as_str(),
            again[0].attempts,
            again[0].last_error.as_deref()
        ),
        ("siem", 1, Some("siem down"))
    );

    // A commit the gate did not route keeps one entry for every notifier, as before.
    let (_, unrouted) = open(&sam(), "b", t0());
    store.commit(unrouted).await.unwrap();
    let plain = outbox(&store).claim(t0() + Duration::seconds(100), 10).await.unwrap();
    assert!(plain.iter().any(|e| e.destination.is_empty()), "{plain:?}");
}

/// The gauges (when the store counts them): pending requests, grants in force, and per
/// destination the entries waiting and dead.
pub async fn gauges_count_what_waits(store: Arc<dyn Store>) {
    let Some(empty) = store.gauges(t0()).await.unwrap() else {
        return; // The store does not count: nothing to check.
    };
    assert_eq!((empty.pending_requests, empty.active_grants), (0, 0));
    assert!(empty.outbox.iter().all(|o| o.pending == 0 && o.dead == 0), "{empty:?}");
    let (r, c) = open(&sam(), "a", t0());
    let routes = vec![vec!["slack".to_owned(), "siem".to_owned()]; c.events().len()];
    store.commit(c.routed(routes)).await.unwrap();
    let (_, c) = open(&lee(), "b", t0());
    store.commit(c).await.unwrap();
    let approved = machine::review(
        &r,
        &lin(),
        Verdict::Approve,
        None,
        &lead_standing(),
        GrantId::new_random(),
        t0(),
    )
    .unwrap();
    store.commit(approved.commit).await.unwrap();
    let g = store.gauges(t0()).await.unwrap().unwrap();
    assert_eq!((g.pending_requests, g.active_grants), (1, 1), "{g:?}");
    let waiting = outbox(&store).claim(t0(), 100).await.unwrap();
    for name in ["", "siem", "slack"] {
        let expected = waiting.iter().filter(|e| e.destination == name).count() as u64;
        let counted = g.outbox.iter().find(|o| o.destination == name).map_or(0, |o| o.pending);
        assert_eq!(counted, expected, "entries waiting for `{name}`: {g:?}");
    }
    // Past the grant's end it is no longer in force, whatever its stored state.
    let later = store.gauges(t0() + Duration::days(1)).await.unwrap().unwrap();
    assert_eq!(later.active_grants, 0);
}
