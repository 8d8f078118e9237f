//! The `Store` conformance suite. Each check takes a fresh, empty store and panics with a
//! message naming the broken behaviour. [`store_conformance!`](crate::store_conformance)
//! runs them all.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use jitgate_core::audit::verify;
use jitgate_core::machine;
use jitgate_core::{
    AccessRequest, Basis, Commit, Decision, EntityRef, Error, Flow, Gate, GrantId, GrantState, ManualClock,
    PageRequest, RequestId, RequestOutcome, RequestState, Requirement, ReviewerStanding, Store, StoreError, Verdict,
    Write,
};

use crate::fixtures::{self, ask, lee, lin, read_customer, restart, sam, team};

fn t0() -> DateTime<Utc> {
    jitgate_core::Clock::now(&ManualClock::default())
}

fn flow() -> Flow {
    Flow::new(Duration::hours(1))
        .with_requirement(Requirement::new(team("sre-leads"), 1))
        .with_request_ttl(Duration::minutes(30))
}

fn lead_standing() -> ReviewerStanding {
    ReviewerStanding {
        eligible_for: vec![0],
        policy_ids: vec!["test".into()],
        self_approval: false,
    }
}

fn open(principal: &EntityRef, db: &str, now: DateTime<Utc>) -> (AccessRequest, Commit) {
    let mut a = ask(restart(db), 30);
    a.principal = principal.clone();
    machine::open(RequestId::new_random(), GrantId::new_random(), a, &flow(), None, now).expect("open")
}

async fn audit_all(store: &Arc<dyn Store>) -> Vec<jitgate_core::audit::AuditRecord> {
    store.audit_log(0, usize::MAX).await.expect("audit_log")
}

/// An update computed from a stale version is refused with `Conflict`; from the current one it applies.
pub async fn compare_and_swap_conflict(store: Arc<dyn Store>) {
    let (req, c) = open(&sam(), "a", t0());
    store.commit(c).await.expect("insert");
    let approve = machine::review(
        &req,
        &lee(),
        Verdict::Approve,
        None,
        &lead_standing(),
        GrantId::new_random(),
        t0(),
    )
    .expect("review");
    let cancel = machine::cancel(&req, &sam(), t0()).expect("cancel");
    store.commit(approve).await.expect("first writer wins");
    let err = store
        .commit(cancel)
        .await
        .expect_err("second writer on the same version must conflict");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 1,
                found: Some(2),
                ..
            }
        ),
        "got {err:?}"
    );
    let stored = store.request(req.id).await.unwrap().expect("stored");
    assert_eq!(stored.state, RequestState::Approved);
    assert_eq!(stored.version, 2);
}

/// A commit whose second part conflicts writes nothing: no request change, no grant, no audit, no event.
pub async fn commit_is_all_or_nothing(store: Arc<dyn Store>) {
    let (req, c) = open(&sam(), "a", t0());
    store.commit(c).await.expect("insert");
    let audit_before = audit_all(&store).await.len();
    let mut approve = machine::review(
        &req,
        &lee(),
        Verdict::Approve,
        None,
        &lead_standing(),
        GrantId::new_random(),
        t0(),
    )
    .unwrap();
    let granted = approve.grants[0].value().clone();
    let failed_events: Vec<_> = approve.events.iter().map(|e| e.id.clone()).collect();
    // A bogus update of a grant that does not exist makes the whole commit invalid.
    let mut ghost = granted.clone();
    ghost.id = GrantId::new_random();
    approve.grants.push(Write::Update {
        expected_version: 7,
        value: ghost,
    });
    assert!(matches!(store.commit(approve).await, Err(StoreError::Conflict { .. })));
    assert_eq!(
        store.request(req.id).await.unwrap().unwrap().state,
        RequestState::Pending
    );
    assert_eq!(store.request(req.id).await.unwrap().unwrap().version, 1);
    assert!(
        store.grant(granted.id).await.unwrap().is_none(),
        "grant written by a failed commit"
    );
    assert_eq!(
        audit_all(&store).await.len(),
        audit_before,
        "audit written by a failed commit"
    );
    let outbox = store.outbox_claim(t0(), usize::MAX).await.unwrap();
    assert!(
        outbox.iter().all(|e| !failed_events.contains(&e.event.id)),
        "event written by a failed commit"
    );
    assert_eq!(outbox.len(), 1, "only the first commit's event");
}

/// A second pending request for the same principal and scope is refused; after the first
/// closes, a new one is accepted. Different scopes or principals do not collide.
pub async fn duplicate_pending_is_refused(store: Arc<dyn Store>) {
    let (first, c) = open(&sam(), "a", t0());
    store.commit(c).await.unwrap();
    let (_, same_id) = open(&lin(), "z", t0());
    let mut same_id = same_id;
    if let Some(Write::Insert(r)) = same_id.request.as_mut() {
        r.id = first.id;
    }
    assert!(
        matches!(store.commit(same_id).await, Err(StoreError::AlreadyExists { .. })),
        "an existing id must be refused"
    );
    let (_, dup) = open(&sam(), "a", t0());
    match store.commit(dup).await {
        Err(StoreError::DuplicatePending { existing, .. }) => assert_eq!(existing, first.id),
        other => panic!("expected DuplicatePending, got {other:?}"),
    }
    store.commit(open(&sam(), "b", t0()).1).await.expect("other scope");
    store.commit(open(&lee(), "a", t0()).1).await.expect("other principal");
    assert_eq!(
        store
            .pending_request(&sam(), &restart("a").scope)
            .await
            .unwrap()
            .map(|r| r.id),
        Some(first.id)
    );
    store
        .commit(machine::cancel(&first, &sam(), t0()).unwrap())
        .await
        .unwrap();
    assert!(store
        .pending_request(&sam(), &restart("a").scope)
        .await
        .unwrap()
        .is_none());
    store
        .commit(open(&sam(), "a", t0()).1)
        .await
        .expect("a new request once the first closed");
}

/// Many reviewers approving the same one-approval request at once produce exactly one grant.
pub async fn concurrent_approvers_yield_one_grant(store: Arc<dyn Store>) {
    let (gate, _, _) = fixtures::gate(store.clone());
    let RequestOutcome::Pending(req) = gate.request(ask(restart("orders-prod"), 30)).await.unwrap() else {
        panic!("expected a pending request")
    };
    let leads = ["lee", "lin", "ada"];
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let gate = gate.clone();
            let who = fixtures::user(leads[i % 3]);
            tokio::spawn(async move { gate.approve(req.id, &who, None).await })
        })
        .collect();
    let mut grants = HashSet::new();
    for t in tasks {
        if let Ok(Ok(outcome)) = t.await {
            grants.extend(outcome.grant.map(|g| g.id));
        }
    }
    assert_eq!(grants.len(), 1, "exactly one grant, got {grants:?}");
    let stored = store.request(req.id).await.unwrap().unwrap();
    assert_eq!(stored.state, RequestState::Approved);
    assert_eq!(stored.reviews.len(), 1, "only the winning review is recorded");
    let live = store.live_grants(&sam(), &restart("orders-prod").scope).await.unwrap();
    assert_eq!(live.len(), 1);
    verify(&audit_all(&store).await).expect("audit chain verifies");
}

/// `live_grants` returns exactly the principal's live grants for that scope, and no ended ones.
pub async fn grant_index_is_exact_and_drops_ended_grants(store: Arc<dyn Store>) {
    let (gate, clock, _) = fixtures::gate(store.clone());
    let mut ids = Vec::new();
    for db in ["a", "b"] {
        let RequestOutcome::Pending(r) = gate.request(ask(restart(db), 30)).await.unwrap() else {
            panic!()
        };
        ids.push(
            gate.approve(r.id, &lee(), None)
                .await
                .unwrap()
                .grant
                .expect("granted")
                .id,
        );
    }
    let a = store.live_grants(&sam(), &restart("a").scope).await.unwrap();
    assert_eq!(a.iter().map(|g| g.id).collect::<Vec<_>>(), vec![ids[0]]);
    assert!(
        store.live_grants(&lee(), &restart("a").scope).await.unwrap().is_empty(),
        "other principal"
    );
    assert!(
        store.live_grants(&sam(), &restart("c").scope).await.unwrap().is_empty(),
        "other scope"
    );
    gate.revoke(ids[0], &lee(), Some("done")).await.unwrap();
    assert!(
        store.live_grants(&sam(), &restart("a").scope).await.unwrap().is_empty(),
        "revoked grant still indexed"
    );
    clock.advance(Duration::hours(2));
    assert_eq!(
        store.live_grants(&sam(), &restart("b").scope).await.unwrap().len(),
        1,
        "unswept grant is still live"
    );
    assert_eq!(
        gate.authorize(&restart("b"), &sam()).await,
        gate.explain(&restart("b"), &sam()).await.decision
    );
    assert!(
        !gate.authorize(&restart("b"), &sam()).await.is_allowed(),
        "expired grant allowed before sweep"
    );
    gate.sweep().await.unwrap();
    assert!(
        store.live_grants(&sam(), &restart("b").scope).await.unwrap().is_empty(),
        "expired grant still indexed"
    );
}

/// Sweeps expire due requests and grants exactly once, even when several run at once.
pub async fn expiry_sweep_is_idempotent_and_safe_concurrently(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::default());
    let notifier = Arc::new(jitgate_core::MemoryNotifier::new());
    let gates: Vec<Gate> = (0..3)
        .map(|_| fixtures::gate_with(store.clone(), clock.clone(), notifier.clone()))
        .collect();
    let g = &gates[0];
    let mut pending = Vec::new();
    for i in 0..5 {
        let RequestOutcome::Pending(r) = g.request(ask(restart(&format!("p{i}")), 30)).await.unwrap() else {
            panic!()
        };
        pending.push(r.id);
    }
    let mut granted = Vec::new();
    for i in 0..5 {
        let RequestOutcome::Pending(r) = g.request(ask(restart(&format!("g{i}")), 10)).await.unwrap() else {
            panic!()
        };
        granted.push(g.approve(r.id, &lee(), None).await.unwrap().grant.unwrap().id);
    }
    // A scheduled grant that starts in 35 minutes.
    let later = ask(restart("later"), 30).starting_at(clock.now_plus(Duration::minutes(35)));
    let RequestOutcome::Pending(r) = g.request(later).await.unwrap() else {
        panic!()
    };
    let scheduled = g.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    assert_eq!(scheduled.state, GrantState::Scheduled);

    assert_eq!(
        g.sweep().await.unwrap(),
        jitgate_core::SweepReport::default(),
        "nothing is due yet"
    );
    clock.advance(Duration::minutes(36));
    let reports = futures_join(gates.iter().map(|g| g.sweep())).await;
    let total = reports.iter().fold((0, 0, 0), |acc, r| {
        let r = r.as_ref().expect("sweep");
        (
            acc.0 + r.requests_expired,
            acc.1 + r.grants_expired,
            acc.2 + r.grants_activated,
        )
    });
    assert_eq!(total, (5, 5, 1), "each due item moved exactly once across replicas");
    for id in &pending {
        assert_eq!(store.request(*id).await.unwrap().unwrap().state, RequestState::Expired);
    }
    for id in &granted {
        assert_eq!(store.grant(*id).await.unwrap().unwrap().state, GrantState::Expired);
    }
    assert_eq!(
        store.grant(scheduled.id).await.unwrap().unwrap().state,
        GrantState::Active
    );
    assert_eq!(
        g.sweep().await.unwrap(),
        jitgate_core::SweepReport::default(),
        "a second sweep does nothing"
    );
    let audit = audit_all(&store).await;
    let expiries = audit
        .iter()
        .filter(|r| r.entry.action == jitgate_core::audit::AuditAction::GrantExpired)
        .count();
    assert_eq!(expiries, 5, "one expiry record per grant");
    verify(&audit).expect("audit chain verifies");
}

trait NowPlus {
    fn now_plus(&self, d: Duration) -> DateTime<Utc>;
}
impl NowPlus for ManualClock {
    fn now_plus(&self, d: Duration) -> DateTime<Utc> {
        jitgate_core::Clock::now(self) + d
    }
}

async fn futures_join<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let fs: Vec<F> = fs.collect();
    let mut out = Vec::with_capacity(fs.len());
    // Drive them concurrently on this task: interleaving at every await point.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = fs.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}

/// `revoke_all` ends every live grant of the principal and leaves others' grants alone.
pub async fn revoke_all_ends_every_grant_of_a_principal(store: Arc<dyn Store>) {
    let (gate, _, _) = fixtures::gate(store.clone());
    for db in ["a", "b", "c"] {
        let RequestOutcome::Pending(r) = gate.request(ask(restart(db), 30)).await.unwrap() else {
            panic!()
        };
        gate.approve(r.id, &lee(), None).await.unwrap();
    }
    let mut other = ask(restart("a"), 30);
    other.principal = lin();
    let RequestOutcome::Pending(r) = gate.request(other).await.unwrap() else {
        panic!()
    };
    gate.approve(r.id, &lee(), None).await.unwrap();

    let revoked = gate.revoke_all(&sam(), &lee(), Some("off-boarding")).await.unwrap();
    assert_eq!(revoked.len(), 3);
    assert!(revoked.iter().all(|g| g.state == GrantState::Revoked));
    for db in ["a", "b", "c"] {
        assert!(
            !gate.authorize(&restart(db), &sam()).await.is_allowed(),
            "revoked grant still allows {db}"
        );
    }
    assert!(
        gate.authorize(&restart("a"), &lin()).await.is_allowed(),
        "someone else's grant was revoked"
    );
    let page = store.live_grants_of(&sam(), &PageRequest::first(10)).await.unwrap();
    assert!(page.items.is_empty());
    assert!(
        gate.revoke_all(&sam(), &lee(), None).await.unwrap().is_empty(),
        "idempotent"
    );
}

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
        store
            .audit_log(30, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>(),
        vec![31, 32]
    );
}

/// Every listing pages through all items exactly once; a foreign cursor is refused.
pub async fn listings_paginate(store: Arc<dyn Store>) {
    let (gate, clock, _) = fixtures::gate(store.clone());
    let mut requests = Vec::new();
    for i in 0..7 {
        let RequestOutcome::Pending(r) = gate.request(ask(restart(&format!("db{i}")), 30)).await.unwrap() else {
            panic!()
        };
        requests.push(r.id);
        clock.advance(Duration::seconds(1));
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let p = store.pending_requests(&page).await.unwrap();
        assert!(p.items.len() <= 3);
        seen.extend(p.items.iter().map(|r| r.id));
        match p.next {
            Some(c) => page = PageRequest::after(c, 3),
            None => break,
        }
    }
    assert_eq!(seen, requests, "pending requests, oldest first, each once");

    for id in &requests[..5] {
        gate.approve(*id, &lee(), None).await.unwrap();
    }
    let mut grants = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let p = store.live_grants_of(&sam(), &page).await.unwrap();
        grants.extend(p.items.iter().map(|g| g.id));
        match p.next {
            Some(c) => page = PageRequest::after(c, 2),
            None => break,
        }
    }
    assert_eq!(grants.len(), 5);
    assert_eq!(grants.iter().collect::<HashSet<_>>().len(), 5);
    let mut sorted = grants.clone();
    sorted.sort();
    assert_eq!(grants, sorted, "ordered by id");

    let audit = gate.request_audit(requests[0], &PageRequest::first(2)).await.unwrap();
    assert_eq!(audit.items.len(), 2);
    let rest = gate
        .request_audit(requests[0], &PageRequest::after(audit.next.clone().unwrap(), 100))
        .await
        .unwrap();
    assert!(rest.next.is_none());
    let all: Vec<_> = audit.items.iter().chain(rest.items.iter()).collect();
    assert!(all.iter().all(|r| r.entry.request_id == requests[0]));
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all.len(), 4, "created, review, approved, grant created");

    let bad = PageRequest::after(jitgate_core::Cursor("not-a-cursor".into()), 2);
    assert!(matches!(
        store.pending_requests(&bad).await,
        Err(StoreError::InvalidCursor { .. })
    ));
    assert!(matches!(
        store.live_grants_of(&sam(), &bad).await,
        Err(StoreError::InvalidCursor { .. })
    ));
}

/// Events wait in the outbox, oldest first, until marked done; done events never come back.
pub async fn outbox_holds_events_until_done(store: Arc<dyn Store>) {
    let (r1, c1) = open(&sam(), "a", t0());
    let (r2, c2) = open(&sam(), "b", t0());
    store.commit(c1).await.unwrap();
    store.commit(c2).await.unwrap();
    let first = store.outbox_claim(t0(), 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event.request_id, r1.id, "oldest first");
    store.outbox_done(&[first[0].seq]).await.unwrap();
    let second = store.outbox_claim(t0(), 10).await.unwrap();
    assert_eq!(second.len(), 1, "the done event is gone, the other waits: {second:?}");
    assert_eq!(second[0].event.request_id, r2.id);
    assert!(second[0].seq > first[0].seq);
    store.outbox_done(&[second[0].seq]).await.unwrap();
    assert!(store.outbox_claim(t0(), 10).await.unwrap().is_empty());
}

/// A two-use grant allows exactly two `authorize` calls, however many race for it, and
/// only for the exact parameters it was requested with.
pub async fn use_limited_grant_allows_exactly_n_uses_concurrently(store: Arc<dyn Store>) {
    let (gate, _, _) = fixtures::gate(store.clone());
    let action = read_customer("c-42").with_attr("ticket", "SUP-9");
    let RequestOutcome::Pending(r) = gate.request(ask(action.clone(), 30)).await.unwrap() else {
        panic!()
    };
    let grant = gate.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    let other_params = read_customer("c-42").with_attr("ticket", "SUP-10");
    assert!(
        !gate.authorize(&other_params, &sam()).await.is_allowed(),
        "bound grant allowed other parameters"
    );
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let gate = gate.clone();
            let action = action.clone();
            tokio::spawn(async move { gate.authorize(&action, &sam()).await })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap()
            == (Decision::Allow {
                basis: Basis::Grant(grant.id),
            })
        {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 2, "exactly two uses");
    let g = store.grant(grant.id).await.unwrap().unwrap();
    assert_eq!(g.state, GrantState::Exhausted);
    assert_eq!(g.uses.map(|u| u.used), Some(2));
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
    assert_eq!(gate.get_request(r.id).await.unwrap().state, RequestState::Approved);
    assert_eq!(gate.get_grant(grant.id).await.unwrap().state, GrantState::Revoked);
    assert_eq!(gate.get_request(d.id).await.unwrap().state, RequestState::Denied);
    let audit = gate.request_audit(r.id, &PageRequest::first(100)).await.unwrap();
    assert!(audit
        .items
        .iter()
        .any(|a| a.entry.action == jitgate_core::audit::AuditAction::GrantRevoked));
    assert!(matches!(
        gate.get_request(RequestId::new_random()).await,
        Err(Error::RequestNotFound(_))
    ));
}

/// A failed delivery waits until its next attempt is due; a parked one is listed as dead,
/// never offered again, and recorded in the audit chain.
pub async fn outbox_retries_wait_and_dead_letters_are_kept(store: Arc<dyn Store>) {
    let (_, c) = open(&sam(), "a", t0());
    store.commit(c).await.unwrap();
    let first = store.outbox_claim(t0(), 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 0);
    let seq = first[0].seq;
    store
        .outbox_retry(seq, 1, t0() + Duration::seconds(30), "receiver said 500")
        .await
        .unwrap();
    assert!(
        store
            .outbox_claim(t0() + Duration::seconds(29), 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let again = store.outbox_claim(t0() + Duration::seconds(30), 10).await.unwrap();
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
    };
    let before = audit_all(&store).await.len();
    store.outbox_park(seq, 2, "gave up", audit).await.unwrap();
    assert!(
        store
            .outbox_claim(t0() + Duration::days(1), 10)
            .await
            .unwrap()
            .is_empty(),
        "dead is never offered again"
    );
    let dead = store.outbox_dead(&PageRequest::first(10)).await.unwrap();
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

/// Grants due for an expiry reminder are listed until reminded, once.
pub async fn expiry_reminders_are_due_once(store: Arc<dyn Store>) {
    let (gate, clock, _) = fixtures::gate(store.clone());
    let RequestOutcome::Pending(r) = gate.request(ask(restart("a"), 30)).await.unwrap() else {
        panic!()
    };
    let grant = gate.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    let now = jitgate_core::Clock::now(&*clock);
    assert!(
        store
            .due_reminders(now + Duration::minutes(10), 10)
            .await
            .unwrap()
            .is_empty(),
        "ends in 30 min"
    );
    let due = store.due_reminders(now + Duration::minutes(30), 10).await.unwrap();
    assert_eq!(due.iter().map(|g| g.id).collect::<Vec<_>>(), vec![grant.id]);
    store.commit(machine::remind(&due[0], now).unwrap()).await.unwrap();
    assert!(
        store
            .due_reminders(now + Duration::minutes(30), 10)
            .await
            .unwrap()
            .is_empty(),
        "reminded once"
    );
}
