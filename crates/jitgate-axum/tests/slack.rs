//! Slack approvals against the real endpoint on loopback: payloads in Slack's documented
//! `block_actions` format, signed as Slack signs them, and a loopback server standing in for
//! the `response_url`, which receives the message updates.
#![cfg(feature = "slack")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use jitgate_axum::slack::{self, SlackInteractions, StaticSlackUsers};
use jitgate_core::{EventKind, Gate, MemoryNotifier, MemoryStore, RequestOutcome, RequestState};
use jitgate_testkit::fixtures::{self, ask, lee, lin, restart, sam, sec};
use jitgate_webhook::slack::{sign_request, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use serde_json::{json, Value};

const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";

struct Setup {
    gate: Gate,
    notifier: Arc<MemoryNotifier>,
    endpoint: String,
    /// Where the payloads' `response_url`s point.
    responses: String,
    received: Arc<Mutex<Vec<Value>>>,
    http: reqwest::Client,
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

impl Setup {
    async fn start() -> Self {
        let (gate, _clock, notifier) = fixtures::gate(Arc::new(MemoryStore::new()));
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        let responses = serve(axum::Router::new().route(
            "/actions/{n}",
            post(move |axum::Json(body): axum::Json<Value>| {
                let sink = sink.clone();
                async move { sink.lock().unwrap().push(body) }
            }),
        ))
        .await;
        let users = StaticSlackUsers::default()
            .with("U0LEE", lee())
            .with("U0LIN", lin())
            .with("U0SAM", sam())
            .with("U0SEC", sec());
        let interactions = SlackInteractions::new(SECRET.to_vec(), Arc::new(users))
            .response_url_prefix(format!("{responses}/actions/"));
        let base = serve(axum::Router::new().nest("/slack", slack::router(gate.clone(), interactions))).await;
        Self {
            gate,
            notifier,
            endpoint: format!("{base}/slack/interactions"),
            responses,
            received,
            http: reqwest::Client::new(),
        }
    }

    /// The Slack message jitgate sent for request `id`'s approval (with its buttons).
    async fn approval_message(&self, id: jitgate_core::RequestId) -> Value {
        self.gate.deliver_outbox().await.unwrap();
        let delivery = self
            .notifier
            .deliveries()
            .into_iter()
            .find(|d| d.event.request_id == id && matches!(d.event.kind, EventKind::ApprovalNeeded { .. }))
            .expect("an approval message");
        serde_json::to_value(jitgate_webhook::slack_message(&delivery)).unwrap()
    }

    /// A `block_actions` payload as Slack documents it: `user` clicked `action_id` on
    /// `message`.
    fn click(&self, user: &str, action_id: &str, value: &str, message: &Value) -> String {
        let payload = json!({
            "type": "block_actions",
            "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": "T0ACME" },
            "api_app_id": "A0JITGATE",
            "token": "legacy-verification-token-unused",
            "container": { "type": "message", "message_ts": "1700000000.000100", "channel_id": "C0APPROVALS", "is_ephemeral": false },
            "trigger_id": "123.456.abcdef",
            "team": { "id": "T0ACME", "domain": "acme" },
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": { "id": "C0APPROVALS", "name": "approvals" },
            "message": {
                "type": "message", "subtype": "bot_message", "bot_id": "B0JITGATE",
                "text": message["text"], "ts": "1700000000.000100", "blocks": message["blocks"],
            },
            "state": { "values": {} },
            "response_url": format!("{}/actions/{}", self.responses, user),
            "actions": [{
                "action_id": action_id, "block_id": "jitgate_review",
                "text": { "type": "plain_text", "text": "Approve", "emoji": false },
                "value": value, "style": "primary", "type": "button", "action_ts": "1700000001.000200",
            }],
        });
        serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
    }

    /// Posts `body` as Slack would, signed with `secret` at `ts`: `(status, JSON body)`.
    async fn post_signed(&self, body: &str, secret: &[u8], ts: i64) -> (u16, Value) {
        let resp = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, sign_request(secret, ts, body.as_bytes()))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// `user` clicks `action_id` (with `value`) on `message`; Slack gets its 200.
    async fn press(&self, user: &str, action_id: &str, value: &str, message: &Value) {
        let (status, body) = self.post(&self.click(user, action_id, value, message)).await;
        assert_eq!(status, 200, "{body}");
    }

    async fn post(&self, body: &str) -> (u16, Value) {
        self.post_signed(body, SECRET, self.gate.now().timestamp()).await
    }

    /// The next update posted to a `response_url` (waits up to 5 s).
    async fn next_update(&self) -> Value {
        for _ in 0..500 {
            if let Some(v) = {
                let mut got = self.received.lock().unwrap();
                (!got.is_empty()).then(|| got.remove(0))
            } {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no message update arrived");
    }

    /// Nothing more was posted to a `response_url` (after a short wait).
    async fn no_update(&self) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            self.received.lock().unwrap().is_empty(),
            "{:?}",
            self.received.lock().unwrap()
        );
    }
}

fn has_buttons(message: &Value) -> bool {
    message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["type"] == "actions")
}

fn all_text(message: &Value) -> String {
    message.to_string()
}

async fn pending(gate: &Gate, action: jitgate_core::Action) -> jitgate_core::AccessRequest {
    match gate.request(ask(action, 30)).await.unwrap() {
        RequestOutcome::Pending(r) => r,
        other => panic!("pending: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_and_deny_buttons_review_as_the_slack_users_principal_and_update_the_message() {
    let s = Setup::start().await;
    let r = pending(&s.gate, restart("orders")).await;
    let message = s.approval_message(r.id).await;
    assert!(has_buttons(&message), "{message}");

    let click = s.click("U0LEE", "jitgate_approve", &r.id.to_string(), &message);
    let (status, _) = s.post(&click).await;
    assert_eq!(status, 200);
    let update = s.next_update().await;
    assert_eq!(update["replace_original"], true, "{update}");
    assert!(!has_buttons(&update), "decided: the buttons go: {update}");
    assert!(
        all_text(&update).contains("*Decided by:* User::\\\"lee\\\" (u0lee, Slack U0LEE) — approved"),
        "{update}"
    );
    assert!(
        all_text(&update).contains("approval needed"),
        "the original message stays: {update}"
    );
    let stored = s.gate.read_request(r.id).await.unwrap();
    assert_eq!(stored.state, RequestState::Approved);
    assert_eq!(stored.reviews[0].reviewer, lee(), "reviewed as lee's principal");

    // The same request again: a replay.
    let (status, p) = s.post(&click).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (409, Some("slack_request_replayed")),
        "{p}"
    );
    // Another reviewer clicks after it was decided: told privately.
    let late = s.click("U0LIN", "jitgate_approve", &r.id.to_string(), &message);
    assert_eq!(s.post(&late).await.0, 200);
    let told = s.next_update().await;
    assert_eq!(
        (told["response_type"].as_str(), told["replace_original"].as_bool()),
        (Some("ephemeral"), Some(false))
    );
    assert!(told["text"].as_str().unwrap().contains("was already decided"), "{told}");

    let d = pending(&s.gate, restart("billing")).await;
    let message = s.approval_message(d.id).await;
    s.press("U0LIN", "jitgate_deny", &d.id.to_string(), &message).await;
    let update = s.next_update().await;
    assert!(all_text(&update).contains("— denied"), "{update}");
    assert_eq!(s.gate.read_request(d.id).await.unwrap().state, RequestState::Denied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_still_applies_and_a_partial_approval_keeps_the_buttons() {
    let s = Setup::start().await;
    let r = pending(&s.gate, restart("orders")).await;
    let message = s.approval_message(r.id).await;
    // The requester approving their own request: refused by the flow, told privately.
    s.press("U0SAM", "jitgate_approve", &r.id.to_string(), &message).await;
    let told = s.next_update().await;
    assert!(
        told["text"].as_str().unwrap().starts_with("You cannot review"),
        "{told}"
    );
    // Someone who is no reviewer of it.
    s.press("U0SEC", "jitgate_approve", &r.id.to_string(), &message).await;
    let told = s.next_update().await;
    assert!(
        told["text"].as_str().unwrap().starts_with("You cannot review"),
        "{told}"
    );
    // A Slack user linked to nobody.
    s.press("U0STRANGER", "jitgate_approve", &r.id.to_string(), &message)
        .await;
    let told = s.next_update().await;
    assert!(told["text"].as_str().unwrap().contains("not linked"), "{told}");
    assert_eq!(
        s.gate.read_request(r.id).await.unwrap().state,
        RequestState::Pending,
        "nothing was reviewed"
    );

    // Two requirements (a lead and security): the first approval keeps the buttons.
    let m = pending(&s.gate, fixtures::migrate("orders")).await;
    let message = s.approval_message(m.id).await;
    s.press("U0LEE", "jitgate_approve", &m.id.to_string(), &message).await;
    let update = s.next_update().await;
    assert!(has_buttons(&update), "still pending: {update}");
    assert!(all_text(&update).contains("*Reviewed by:*"), "{update}");
    s.press("U0SEC", "jitgate_approve", &m.id.to_string(), &update).await;
    let update = s.next_update().await;
    assert!(!has_buttons(&update), "{update}");
    assert_eq!(s.gate.read_request(m.id).await.unwrap().state, RequestState::Approved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_malformed_requests_are_refused_and_change_nothing() {
    let s = Setup::start().await;
    let r = pending(&s.gate, restart("orders")).await;
    let message = s.approval_message(r.id).await;
    let click = s.click("U0LEE", "jitgate_approve", &r.id.to_string(), &message);
    let now = s.gate.now().timestamp();

    let (status, p) = s.post_signed(&click, b"not the secret", now).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (401, Some("slack_signature_invalid")),
        "{p}"
    );
    let (status, p) = s.post_signed(&click, SECRET, now - 6 * 60).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (401, Some("slack_request_expired")),
        "{p}"
    );
    let unsigned = s.http.post(&s.endpoint).body(click.clone()).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    // Signed over another body: the body was altered on the way.
    let resp = s
        .http
        .post(&s.endpoint)
        .header(TIMESTAMP_HEADER, now.to_string())
        .header(SIGNATURE_HEADER, sign_request(SECRET, now, b"payload=%7B%7D"))
        .body(click.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(s.gate.read_request(r.id).await.unwrap().state, RequestState::Pending);
    s.no_update().await;

    let (status, p) = s.post("payload=not-json").await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_body")), "{p}");
    let other = s.click("U0LEE", "someone_elses_button", "x", &message);
    assert_eq!(s.post(&other).await.0, 200, "another app's button: ignored");
    let (status, p) = s
        .post(&s.click("U0LEE", "jitgate_approve", "req_nonsense", &message))
        .await;
    assert_eq!(status, 400, "{p}");
    s.no_update().await;
    assert_eq!(s.gate.read_request(r.id).await.unwrap().state, RequestState::Pending);
}
