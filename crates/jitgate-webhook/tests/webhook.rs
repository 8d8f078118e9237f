//! The webhook notifier against a real HTTP server on loopback, driven through `Gate` and the
//! dispatcher.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::{Duration, Utc};
use jitgate_core::*;
use jitgate_testkit::fixtures::{self, ask, lee, restart, sam, team};
use jitgate_webhook::signature::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use jitgate_webhook::{verify, PayloadFormat, SignatureError, WebhookNotifier};
use tokio::net::TcpListener;

/// `verify` on what a receiver got: its headers (the id replaced by `id` when given), its body,
/// `now`, a five-minute tolerance.
fn verify_received(
    key: &[u8],
    headers: &HeaderMap,
    id: Option<&str>,
    body: &[u8],
    now: chrono::DateTime<Utc>,
) -> Result<(), SignatureError> {
    let h = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    verify(
        key,
        id.unwrap_or(&h(ID_HEADER)),
        &h(TIMESTAMP_HEADER),
        &h(SIGNATURE_HEADER),
        body,
        now,
        Duration::minutes(5),
    )
}

const SECRET: &[u8] = b"test-secret";

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    failures_left: Arc<AtomicU32>,
    always_fail: Arc<AtomicBool>,
    slow: Arc<AtomicBool>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if r.slow.load(Ordering::SeqCst) {
        tokio::time::sleep(StdDuration::from_secs(2)).await;
    }
    if r.always_fail.load(Ordering::SeqCst)
        || r.failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    r.got.lock().unwrap().push((headers, body));
    StatusCode::NO_CONTENT
}

impl Receiver {
    async fn start(&self, listener: TcpListener) -> tokio::task::JoinHandle<()> {
        let app = Router::new().route("/hook", post(receive)).with_state(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }

    fn types(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .map(|b| b["event"]["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

struct Setup {
    gate: Gate,
    clock: Arc<ManualClock>,
    receiver: Receiver,
    url: String,
    server: tokio::task::JoinHandle<()>,
}

async fn setup(format: PayloadFormat, max_attempts: u32, timeout: StdDuration) -> Setup {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiver = Receiver::default();
    let server = receiver.start(listener).await;
    let notifier = WebhookNotifier::builder(SECRET.to_vec())
        .url(&url)
        .format(format)
        .timeout(timeout)
        .build()
        .unwrap();
    let clock = Arc::new(ManualClock::default());
    let gate = Gate::builder()
        .policy(Arc::new(fixtures::policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .clock(clock.clone())
        .notifier(Arc::new(notifier))
        .dispatch_config(DispatchConfig::default().with_max_attempts(max_attempts))
        // The tests drive each delivery round (and count attempts).
        .background_delivery(false)
        .build()
        .unwrap();
    Setup {
        gate,
        clock,
        receiver,
        url,
        server,
    }
}

async fn pending(gate: &Gate) -> AccessRequest {
    match gate.request(ask(restart("orders-prod"), 30)).await.unwrap() {
        RequestOutcome::Pending(r) => r,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_signed_approval_needed_reaches_the_receiver_addressed_to_the_approvers() {
    let s = setup(PayloadFormat::Json, 8, StdDuration::from_secs(5)).await;
    pending(&s.gate).await;
    s.gate.deliver_outbox().await.unwrap();
    let got = s.receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    let h = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(verify_received(SECRET, headers, None, body, Utc::now()), Ok(()));
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json["event"]["type"], "approval_needed");
    assert_eq!(json["event"]["id"], h(ID_HEADER));
    assert_eq!(json["to"], serde_json::to_value(vec![team("sre-leads")]).unwrap());
    assert_eq!(json["except"], serde_json::to_value(vec![sam()]).unwrap());
    // A receiver rejects a tampered body, another secret, and a replay later on.
    let mut tampered = body.to_vec();
    tampered[10] ^= 1;
    assert_eq!(
        verify_received(SECRET, headers, None, &tampered, Utc::now()),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_received(b"other", headers, None, body, Utc::now()),
        Err(SignatureError::Mismatch)
    );
    // The id is signed: the same request under a new id does not verify.
    assert_eq!(
        verify_received(SECRET, headers, Some("evt_someone_else"), body, Utc::now()),
        Err(SignatureError::Mismatch)
    );
    let replay = verify_received(SECRET, headers, None, body, Utc::now() + Duration::minutes(10));
    assert!(matches!(replay, Err(SignatureError::Expired { .. })));
}

#[tokio::test]
async fn a_500_is_retried_after_the_backoff_with_the_same_event_id() {
    let s = setup(PayloadFormat::Json, 8, StdDuration::from_secs(5)).await;
    s.receiver.failures_left.store(1, Ordering::SeqCst);
    pending(&s.gate).await;
    assert_eq!(s.gate.deliver_outbox().await.unwrap(), 0);
    assert!(s.receiver.got.lock().unwrap().is_empty(), "the first attempt got a 500");
    s.clock.advance(Duration::seconds(2));
    assert_eq!(s.gate.deliver_outbox().await.unwrap(), 1);
    let got = s.receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.get("X-Jitgate-Attempt").unwrap(), "2");
}

#[tokio::test]
async fn the_dispatcher_gives_up_after_the_maximum_and_parks_the_event() {
    let s = setup(PayloadFormat::Json, 3, StdDuration::from_secs(5)).await;
    s.receiver.always_fail.store(true, Ordering::SeqCst);
    let req = pending(&s.gate).await;
    for _ in 0..5 {
        s.clock.advance(Duration::minutes(10));
        s.gate.deliver_outbox().await.unwrap();
    }
    let dead = s.gate.dead_letters(&PageRequest::first(10)).await.unwrap().items;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert!(
        dead[0].last_error.as_deref().unwrap().contains("500"),
        "{:?}",
        dead[0].last_error
    );
    let trail = s
        .gate
        .request_audit(req.id, &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(trail.last().unwrap().entry.action, audit::AuditAction::NotificationDead);
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_is_retried() {
    let s = setup(PayloadFormat::Json, 8, StdDuration::from_millis(200)).await;
    s.receiver.slow.store(true, Ordering::SeqCst);
    pending(&s.gate).await;
    assert_eq!(s.gate.deliver_outbox().await.unwrap(), 0, "timed out");
    s.receiver.slow.store(false, Ordering::SeqCst);
    s.clock.advance(Duration::seconds(2));
    assert_eq!(s.gate.deliver_outbox().await.unwrap(), 1);
}

#[tokio::test]
async fn a_rolled_back_transition_delivers_nothing() {
    let s = setup(PayloadFormat::Json, 8, StdDuration::from_secs(5)).await;
    let req = pending(&s.gate).await;
    // Two transitions computed from the same version: the second conflicts and rolls back.
    let standing = ReviewerStanding::new(vec![0], vec![]);
    let now = s.clock.now();
    let first = machine::review(
        &req,
        &lee(),
        Verdict::Approve,
        None,
        &standing,
        GrantId::new_random(),
        now,
    )
    .unwrap()
    .commit;
    let second = machine::cancel(&req, &sam(), now).unwrap().commit;
    s.gate.store().commit(first).await.unwrap();
    assert!(matches!(
        s.gate.store().commit(second).await,
        Err(StoreError::Conflict { .. })
    ));
    s.gate.deliver_outbox().await.unwrap();
    // Only the committed approval's events arrive; the rolled-back cancel's never do.
    assert_eq!(
        s.receiver.types(),
        vec!["approval_needed", "approved", "grant_active", "request_resolved"]
    );
}

#[tokio::test]
async fn slack_mode_posts_text_and_blocks_with_reason_flow_and_approvers() {
    let s = setup(PayloadFormat::Slack, 8, StdDuration::from_secs(5)).await;
    pending(&s.gate).await;
    s.gate.deliver_outbox().await.unwrap();
    let body = &s.receiver.bodies()[0];
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains(r#"User::"sam" asks to Action::"db_restart" on Database::"orders-prod""#),
        "{text}"
    );
    let section = body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(section.contains("*Reason:* INC-1: on call"), "{section}");
    assert!(
        section.contains("*Flow:* approval: 1 from Team::\"sre-leads\""),
        "{section}"
    );
    assert!(section.contains("*Who may approve:* Team::\"sre-leads\""), "{section}");
    assert!(body["blocks"].as_array().unwrap().len() >= 2);
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_the_approval_once_it_is_back() {
    let s = setup(PayloadFormat::Json, 8, StdDuration::from_secs(5)).await;
    let req = pending(&s.gate).await;
    s.gate.deliver_outbox().await.unwrap();
    // Stop the receiver; approve while it is down.
    s.server.abort();
    let _ = s.server.await;
    s.gate.approve(req.id, &lee(), Some("go")).await.unwrap();
    assert_eq!(s.gate.deliver_outbox().await.unwrap(), 0, "the receiver is down");
    assert_eq!(s.receiver.types(), vec!["approval_needed"]);
    // Start it again on the same address.
    let addr = s.url.trim_start_matches("http://").trim_end_matches("/hook").to_owned();
    let listener = TcpListener::bind(&addr).await.unwrap();
    let _server = s.receiver.start(listener).await;
    s.clock.advance(Duration::seconds(2));
    s.gate.deliver_outbox().await.unwrap();
    s.clock.advance(Duration::minutes(10));
    s.gate.deliver_outbox().await.unwrap();
    let types = s.receiver.types();
    assert_eq!(types.iter().filter(|t| *t == "approved").count(), 1, "{types:?}");
}

/// The webhook notifier through the notifier conformance group, against the loopback receiver.
mod conformance {
    use async_trait::async_trait;
    use jitgate_testkit::conformance::notifier::NotifierHarness;

    use super::*;

    struct Harness {
        notifier: Arc<WebhookNotifier>,
        receiver: Receiver,
        _server: tokio::task::JoinHandle<()>,
    }

    #[async_trait]
    impl NotifierHarness for Harness {
        fn notifier(&self) -> Arc<dyn Notifier> {
            self.notifier.clone()
        }

        async fn received(&self, n: usize, timeout: StdDuration) -> Vec<EventId> {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let ids: Vec<EventId> = self
                    .receiver
                    .got
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(h, _)| EventId(h[ID_HEADER].to_str().unwrap().to_owned()))
                    .collect();
                if ids.len() >= n || tokio::time::Instant::now() >= deadline {
                    return ids;
                }
                tokio::time::sleep(StdDuration::from_millis(5)).await;
            }
        }

        async fn fail(&self, failing: bool) -> bool {
            self.receiver.always_fail.store(failing, Ordering::SeqCst);
            true
        }
    }

    async fn harness() -> Option<Arc<dyn NotifierHarness>> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let receiver = Receiver::default();
        let server = receiver.start(listener).await;
        let notifier = WebhookNotifier::builder(SECRET.to_vec()).url(&url).build().unwrap();
        Some(Arc::new(Harness {
            notifier: Arc::new(notifier),
            receiver,
            _server: server,
        }))
    }

    jitgate_testkit::notifier_conformance!(harness);
}

#[test]
fn the_builder_reports_every_problem_at_once() {
    let err = WebhookNotifier::builder(Vec::new())
        .url("ftp://x")
        .url("mailto:y")
        .build()
        .unwrap_err();
    match &err {
        jitgate_webhook::WebhookError::Invalid { problems } => assert_eq!(problems.len(), 3, "{err}"),
        other => panic!("expected every problem, got {other}"),
    }
    let one = WebhookNotifier::builder(SECRET.to_vec()).build().unwrap_err();
    assert!(matches!(one, jitgate_webhook::WebhookError::NoUrl), "{one}");
    jitgate_testkit::assert_no_repeated_cause(&err);
}

#[test]
fn debug_output_never_shows_the_secret_or_the_url_path() {
    let url = "https://user:pw@hooks.example.test/services/T000/B000/XXXXSECRET?token=abc";
    let builder = WebhookNotifier::builder(b"s3cr3t-signing-key".to_vec()).url(url);
    let shown = format!("{builder:?}");
    let built = format!("{:?}", builder.build().unwrap());
    for s in [shown, built] {
        for secret in ["s3cr3t", "XXXXSECRET", "token=abc", "pw@", "115, 51"] {
            assert!(!s.contains(secret), "{secret} leaked in {s}");
        }
        assert!(s.contains("https://hooks.example.test"), "{s}");
    }
}

/// Sealed audit records stream to a SIEM's webhook: signed batches in chain order; a batch the
/// receiver refused is posted again at the next round, and the SIEM ends up with every record.
#[tokio::test]
async fn audit_records_stream_to_a_siem_webhook_at_least_once() {
    let s = setup(PayloadFormat::Json, 8, StdDuration::from_secs(5)).await;
    let siem = Receiver::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let siem_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let _siem_server = siem.start(listener).await;
    let sink = WebhookNotifier::builder(b"siem-secret".to_vec())
        .url(&siem_url)
        .build()
        .unwrap();
    let streamer = s.gate.audit_streamer().sink(Arc::new(sink));
    let r = pending(&s.gate).await;
    s.gate.approve(r.id, &lee(), None).await.unwrap();

    siem.failures_left.store(1, Ordering::SeqCst);
    let report = streamer.stream_once().await.unwrap();
    assert_eq!(report.failed.len(), 1, "the SIEM answered 500");
    assert!(report.failed[0].to_string().contains("500"), "{}", report.failed[0]);
    assert!(
        !report.failed[0].to_string().contains("/hook"),
        "URLs' paths stay out of errors"
    );
    let report = streamer.stream_once().await.unwrap();
    assert!(report.failed.is_empty());
    assert_eq!(report.position, 4);

    let got = siem.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    let h = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(h(ID_HEADER), "audit-1-4");
    verify_received(b"siem-secret", headers, None, body, Utc::now()).expect("signed with the SIEM's secret");
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json["type"], "audit_records");
    let seqs: Vec<u64> = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    let records: Vec<jitgate_core::audit::AuditRecord> = serde_json::from_value(json["records"].clone()).unwrap();
    jitgate_core::audit::verify(&records).expect("the batch is the chain itself");
}

/// A 3xx is a failed attempt: the notifier never follows it to a GET whose 200 would count as
/// delivered. While a secret is rotated, receivers holding either key verify.
#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_both_keys_verify_during_rotation() {
    let receiver = Receiver::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/hook", post(receive))
        .route(
            "/moved",
            post(|| async { (StatusCode::FOUND, [(axum::http::header::LOCATION, "/hook")]) }),
        )
        .with_state(receiver.clone());
    let _server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let delivery = |id: &str| {
        let e = EntityRef::new;
        let event: Event = serde_json::from_value(serde_json::json!({
            "id": id, "at": "2026-11-27T09:00:00Z",
            "principal": {"type": "User", "id": "sam"},
            "scope": {"action": {"type": "Action", "id": "a"}, "resource": {"type": "Db", "id": "d"}},
            "request_id": RequestId::new_random(), "grant_id": null, "type": "approved"
        }))
        .unwrap();
        Delivery::first(event, &Routing::default().with_security(e("Team", "security")))
    };
    let moved = WebhookNotifier::builder(SECRET.to_vec())
        .url(format!("{base}/moved"))
        .build()
        .unwrap();
    let err = moved.notify(&delivery("evt_1")).await.unwrap_err();
    assert!(err.to_string().contains("302"), "{err}");
    assert!(receiver.got.lock().unwrap().is_empty(), "the redirect was not followed");

    let rotating = WebhookNotifier::builder(b"new-key".to_vec())
        .also_sign_with(SECRET.to_vec())
        .url(format!("{base}/hook"))
        .build()
        .unwrap();
    rotating.notify(&delivery("evt_2")).await.unwrap();
    let (headers, body) = receiver.got.lock().unwrap()[0].clone();
    let h = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(h(SIGNATURE_HEADER).split(' ').count(), 2);
    for key in [&b"new-key"[..], SECRET] {
        verify_received(key, &headers, Some("evt_2"), &body, Utc::now()).expect("either key verifies");
    }
}

/// Two webhook destinations, one down: the healthy one gets each event exactly once, signed in
/// the Standard Webhooks form; the down one gets them all once it is back.
#[tokio::test]
async fn a_destination_that_is_down_never_causes_a_redelivery_to_a_healthy_one() {
    let start = |receiver: Receiver| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        receiver.start(listener).await;
        url
    };
    let (healthy, down) = (Receiver::default(), Receiver::default());
    down.always_fail.store(true, Ordering::SeqCst);
    let webhook = |url: String| Arc::new(WebhookNotifier::builder(SECRET.to_vec()).url(url).build().unwrap());
    let clock = Arc::new(ManualClock::default());
    let gate = Gate::builder()
        .policy(Arc::new(fixtures::policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .clock(clock.clone())
        .destination(Destination::new("team-channel", webhook(start(healthy.clone()).await)))
        .destination(Destination::new("siem", webhook(start(down.clone()).await)))
        .background_delivery(false)
        .build()
        .unwrap();
    let req = pending(&gate).await;
    gate.approve(req.id, &lee(), Some("go")).await.unwrap();
    for _ in 0..4 {
        gate.deliver_outbox().await.unwrap();
        clock.advance(Duration::minutes(10));
    }
    let kinds = ["approval_needed", "approved", "grant_active", "request_resolved"];
    assert_eq!(
        healthy.types(),
        kinds,
        "each event once, in spite of the failing destination"
    );
    for (headers, body) in healthy.got.lock().unwrap().iter() {
        verify_received(SECRET, headers, None, body, Utc::now()).expect("Standard Webhooks signature");
    }
    assert!(down.got.lock().unwrap().is_empty());

    down.always_fail.store(false, Ordering::SeqCst);
    clock.advance(Duration::hours(1));
    gate.deliver_outbox().await.unwrap();
    let mut got = down.types();
    got.sort();
    let mut want = kinds.to_vec();
    want.sort();
    assert_eq!(
        got, want,
        "the destination that was down gets every event once it is back"
    );
    assert_eq!(healthy.types().len(), 4, "and the healthy one nothing again");
}
