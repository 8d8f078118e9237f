//! A store that stops answering never hangs the gate: `authorize` denies with a timeout
//! reason, every other verb returns a typed timeout, on any runtime.

use std::time::Instant;

use super::*;
use jitgate_testkit::faulty::{Capabilities, FaultyStore};

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

/// A gate with both deadlines at [`DEADLINE`] over `store`, notifying `notifier`.
fn gate_over(store: Arc<dyn Store>, notifier: Arc<dyn Notifier>, verbs: StdDuration) -> Gate {
    Gate::builder()
        .policy(Arc::new(policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store)
        .notifier(notifier)
        .clock(Arc::new(ManualClock::default()))
        .authorize_deadline(DEADLINE)
        .verb_deadline(verbs)
        .build()
        .unwrap()
}

fn hanging_gate() -> (Gate, Arc<FaultyStore>) {
    let store = Arc::new(FaultyStore::new(Capabilities::All));
    (
        gate_over(store.clone(), Arc::new(MemoryNotifier::new()), DEADLINE),
        store,
    )
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

        store.hang("*");
        let started = Instant::now();
        assert_eq!(
            gate.authorize(&restart("other"), &sam()).await,
            Decision::Deny {
                reason: DenyReason::Timeout {
                    operation: "live_grants",
                    after: DEADLINE
                },
                policy_version: gate.policy_version()
            }
        );
        assert!(!gate.explain(&restart("other"), &sam()).await.decision.is_allowed());
        timed_out(
            gate.request(ask(restart("third"), 30)).await.unwrap_err(),
            "live_grants",
        );
        timed_out(gate.approve(req.id, &lee(), None).await.unwrap_err(), "read_request");
        timed_out(gate.cancel(req.id, &sam()).await.unwrap_err(), "read_request");
        timed_out(
            gate.revoke(grant.id, &sam(), None).await.unwrap_err(),
            "grant_and_request",
        );
        assert!(
            started.elapsed() < StdDuration::from_secs(5),
            "six calls against a hung store took {:?}",
            started.elapsed()
        );

        store.heal();
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
        store.hang("*");
        let e = gate.request(ask(restart("db"), 30)).await.unwrap_err();
        assert_eq!(e.to_string(), "the store's live_grants did not answer within 40ms");
        let Decision::Deny { reason, .. } = gate.authorize(&restart("db"), &sam()).await else {
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
        let store = Arc::new(FaultyStore::new(Capabilities::All));
        let gate = gate_over(
            store.clone(),
            Arc::new(MemoryNotifier::new()),
            StdDuration::from_secs(3_600),
        );
        let req = pending(&gate, ask(read_customer("c-1"), 30)).await;
        gate.approve(req.id, &lee(), None).await.unwrap();
        store.hang("commit");
        let started = Instant::now();
        assert_eq!(
            gate.authorize(&read_customer("c-1"), &sam()).await,
            Decision::Deny {
                reason: DenyReason::Timeout {
                    operation: "commit",
                    after: DEADLINE
                },
                policy_version: gate.policy_version()
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
        let gate = gate_over(store.clone(), Arc::new(NeverAnswers), DEADLINE);
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
