//! A store that stops answering never hangs the gate: `authorize` denies with a timeout
//! reason, every other verb returns a typed timeout, on any runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::*;

/// The in-memory store, until `hang` is set: then every call waits forever (with
/// `hang_commits`, only commits do).
#[derive(Default)]
struct Hanging {
    inner: MemoryStore,
    hang: AtomicBool,
    hang_commits: AtomicBool,
}

impl Hanging {
    async fn gate<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        call.await
    }
}

#[async_trait]
impl Store for Hanging {
    async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        if self.hang_commits.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.gate(self.inner.commit(c)).await
    }
    async fn read_request(&self, id: RequestId) -> Result<Option<AccessRequest>, StoreError> {
        self.gate(self.inner.read_request(id)).await
    }
    async fn read_grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        self.gate(self.inner.read_grant(id)).await
    }
    async fn live_grants(&self, p: &EntityRef, s: &Scope) -> Result<Vec<Grant>, StoreError> {
        self.gate(self.inner.live_grants(p, s)).await
    }
    async fn pending_request(&self, p: &EntityRef, s: &Scope) -> Result<Option<AccessRequest>, StoreError> {
        self.gate(self.inner.pending_request(p, s)).await
    }
    async fn principal_counts(
        &self,
        p: &EntityRef,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<PrincipalCounts, StoreError> {
        self.gate(self.inner.principal_counts(p, now)).await
    }
}

const DEADLINE: StdDuration = StdDuration::from_millis(40);

fn timed_out(e: Error, call: &str) {
    match e {
        Error::Store(StoreError::Timeout { operation, after }) => {
            assert_eq!(after, DEADLINE);
            assert_eq!(operation, call);
        }
        other => panic!("expected a timeout of {call}, got {other:?}"),
    }
}

fn hanging_gate() -> (Gate, Arc<Hanging>) {
    let store = Arc::new(Hanging::default());
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .store(store.clone())
        .clock(Arc::new(ManualClock::default()))
        .authorize_deadline(DEADLINE)
        .verb_deadline(DEADLINE)
        .build()
        .unwrap();
    (gate, store)
}

/// Runs on a runtime without a time driver (where `tokio::time::timeout` would panic).
#[test]
fn a_hanging_store_denies_authorize_and_fails_every_verb_with_a_timeout() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let (gate, store) = hanging_gate();
        let req = pending(&gate, ask(restart("db"), 30)).await;
        let other = pending(&gate, ask(restart("other"), 30)).await;
        let grant = gate.approve(other.id, &lee(), None).await.unwrap().grant.unwrap();
        assert!(gate.authorize(&restart("other"), &sam()).await.is_allowed());

        store.hang.store(true, Ordering::SeqCst);
        let started = Instant::now();
        assert_eq!(
            gate.authorize(&restart("other"), &sam()).await,
            Decision::Deny {
                reason: DenyReason::Timeout {
                    operation: "live_grants",
                    after: DEADLINE
                }
            }
        );
        assert!(!gate.explain(&restart("other"), &sam()).await.decision.is_allowed());
        timed_out(
            gate.request(ask(restart("third"), 30)).await.unwrap_err(),
            "live_grants",
        );
        timed_out(gate.approve(req.id, &lee(), None).await.unwrap_err(), "read_request");
        timed_out(gate.cancel(req.id, &sam()).await.unwrap_err(), "read_request");
        timed_out(gate.revoke(grant.id, &sam(), None).await.unwrap_err(), "read_grant");
        assert!(
            started.elapsed() < StdDuration::from_secs(5),
            "six calls against a hung store took {:?}",
            started.elapsed()
        );

        store.hang.store(false, Ordering::SeqCst);
        assert!(
            gate.authorize(&restart("other"), &sam()).await.is_allowed(),
            "it recovers"
        );
    });
}

/// The message says what hung and for how long.
#[test]
fn the_timeout_names_the_call_and_the_deadline() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let (gate, store) = hanging_gate();
        store.hang.store(true, Ordering::SeqCst);
        let e = gate.request(ask(restart("db"), 30)).await.unwrap_err();
        assert_eq!(e.to_string(), "the store's live_grants did not answer within 40ms");
        let Decision::Deny { reason } = gate.authorize(&restart("db"), &sam()).await else {
            panic!("a hung store must deny")
        };
        assert!(
            reason.to_string().contains("live_grants did not answer within 40ms"),
            "{reason}"
        );
    });
}

/// Using a use-limited grant is a commit on the hot path: it runs under the authorize
/// deadline, not the (much longer) verb deadline.
#[test]
fn consuming_a_grant_use_is_bounded_by_the_authorize_deadline() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let store = Arc::new(Hanging::default());
        let gate = Gate::builder()
            .policy(Arc::new(policy()))
            .store(store.clone())
            .clock(Arc::new(ManualClock::default()))
            .authorize_deadline(DEADLINE)
            .verb_deadline(StdDuration::from_secs(3_600))
            .build()
            .unwrap();
        let req = pending(&gate, ask(read_customer("c-1"), 30)).await;
        gate.approve(req.id, &lee(), None).await.unwrap();
        store.hang_commits.store(true, Ordering::SeqCst);
        let started = Instant::now();
        assert_eq!(
            gate.authorize(&read_customer("c-1"), &sam()).await,
            Decision::Deny {
                reason: DenyReason::Timeout {
                    operation: "commit",
                    after: DEADLINE
                }
            }
        );
        assert!(started.elapsed() < StdDuration::from_secs(60));
    });
}

/// A notifier that never answers.
struct NeverAnswers;

#[async_trait]
impl Notifier for NeverAnswers {
    async fn notify(&self, _: &Delivery) -> Result<(), NotifyError> {
        std::future::pending().await
    }
}

/// Inline delivery runs under the commit's deadline: a notifier that never answers holds up
/// no verb, and no `authorize` that uses up a grant (its `GrantExhausted` event); the events
/// stay in the outbox.
#[test]
fn a_notifier_that_never_answers_holds_up_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let gate = Gate::builder()
            .policy(Arc::new(policy()))
            .store(store.clone())
            .notifier(Arc::new(NeverAnswers))
            .clock(Arc::new(ManualClock::default()))
            .authorize_deadline(DEADLINE)
            .verb_deadline(DEADLINE)
            .build()
            .unwrap();
        let started = Instant::now();
        let req = pending(&gate, ask(read_customer("c-1"), 30)).await;
        let grant = gate.approve(req.id, &lee(), None).await.unwrap().grant.unwrap();
        assert!(gate.authorize(&read_customer("c-1"), &sam()).await.is_allowed());
        assert!(
            gate.authorize(&read_customer("c-1"), &sam()).await.is_allowed(),
            "the last use"
        );
        assert!(
            !gate.authorize(&read_customer("c-1"), &sam()).await.is_allowed(),
            "used up"
        );
        assert_eq!(
            store.read_grant(grant.id).await.unwrap().unwrap().state,
            GrantState::Exhausted
        );
        assert!(
            started.elapsed() < StdDuration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        let waiting = store
            .outbox()
            .unwrap()
            .claim(gate.now() + Duration::hours(1), 100)
            .await;
        assert!(
            !waiting.unwrap().is_empty(),
            "the undelivered events stay in the outbox"
        );
    });
}
