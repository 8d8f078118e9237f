//! The guard layer in front of a host's own routes, on a real HTTP server on loopback: what
//! passes, what is refused and how, that a use-limited grant is used once per request (also
//! under concurrency), that a failing store denies, and that it composes with other layers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Extension, Router};
use jitgate_axum::{router, ApiError, Authenticate, Authorized, Guard};
use jitgate_core::wire::InputError;
use jitgate_core::{async_trait, Action, Basis, EntityRef, Gate, MemoryStore, Store};
use jitgate_testkit::faulty::{Capabilities, FaultyStore};
use jitgate_testkit::fixtures;
use serde_json::{json, Value};

struct Header;

#[async_trait]
impl Authenticate for Header {
    async fn caller(&self, parts: &Parts) -> Option<EntityRef> {
        let user = parts.headers.get("x-user")?.to_str().ok()?;
        Some(EntityRef::new("User", user))
    }
}

/// The action of a host route: `/db/{name}/{verb}` is `db_<verb>` on `Database::"<name>"`,
/// `/customers/{id}` is `read_customer`, `/logs` is `read_logs`.
fn action_of(parts: &Parts) -> Result<Action, ApiError> {
    let segments: Vec<&str> = parts.uri.path().trim_start_matches('/').split('/').collect();
    let act = |verb: &str, ty: &str, id: &str| Action::new(EntityRef::new("Action", verb), EntityRef::new(ty, id));
    match segments.as_slice() {
        ["logs"] => Ok(act("read_logs", "Logs", "all")),
        ["customers", id] => Ok(act("read_customer", "Customer", id)),
        ["db", name, verb] => Ok(act(&format!("db_{verb}"), "Database", name)),
        _ => Err(ApiError::from_error(&InputError::new(
            "path",
            format!("`{}` names no guarded action", parts.uri.path()),
        ))),
    }
}

struct Host {
    base: String,
    http: reqwest::Client,
    /// How many times the protected handlers ran.
    ran: Arc<AtomicUsize>,
}

impl Host {
    async fn start(gate: Gate) -> Self {
        let ran = Arc::new(AtomicUsize::new(0));
        let auth: Arc<dyn Authenticate> = Arc::new(Header);
        let guard = Guard::new(gate.clone(), auth.clone(), action_of).request_at("/jit/requests");
        let count = ran.clone();
        let handler = move |Extension(ok): Extension<Authorized>| {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                let basis = match ok.decision {
                    jitgate_core::Decision::Allow {
                        basis: Basis::Grant(id),
                        ..
                    } => id.to_string(),
                    _ => "standing".to_owned(),
                };
                axum::Json(json!({ "caller": ok.caller.to_string(), "basis": basis }))
            }
        };
        let protected = Router::new()
            .route("/logs", get(handler.clone()))
            .route("/customers/{id}", get(handler.clone()))
            .route("/db/{name}/{verb}", post(handler))
            .route("/unmapped", get(|| async { "never" }))
            .layer(guard)
            // Another layer outside the guard: it sees the guard's answers too.
            .layer(axum::middleware::map_response(
                |mut r: axum::response::Response| async move {
                    r.headers_mut().insert("x-host", "yes".parse().unwrap());
                    r
                },
            ));
        let app = Router::new()
            .route("/health", get(|| async { "ok" }))
            .merge(protected)
            .nest("/jit", router(gate, auth));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            ran,
        }
    }

    async fn send(&self, user: Option<&str>, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "POST" => self.http.post(url),
            _ => self.http.get(url),
        };
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        if let Some(user) = user {
            req = req.header("x-user", user);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        if path != "/health" && !path.starts_with("/jit") {
            let outer = resp.headers().get("x-host").map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(
                outer.as_deref(),
                Some("yes"),
                "the outer layer saw the answer to {path}"
            );
        }
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_passes_refuses_and_points_to_where_to_ask() {
    let (gate, _clock, _) = fixtures::gate(Arc::new(MemoryStore::new()));
    let h = Host::start(gate).await;

    let (status, p) = h.send(None, "GET", "/logs", None).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("unauthenticated")), "{p}");
    assert_eq!(h.ran.load(Ordering::SeqCst), 0);

    let (status, ok) = h.send(Some("sam"), "GET", "/logs", None).await;
    assert_eq!(
        (status, ok["caller"].as_str(), ok["basis"].as_str()),
        (200, Some("User::\"sam\""), Some("standing")),
        "{ok}"
    );

    let (status, p) = h.send(Some("sam"), "POST", "/db/orders/restart", None).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("needs_approval")), "{p}");
    assert_eq!(p["decision"]["outcome"], "needs_approval");
    assert_eq!(
        p["decision"]["flow"]["requirements"][0]["reviewers"],
        json!({ "type": "Team", "id": "sre-leads" })
    );
    assert_eq!(p["request_at"], "/jit/requests");
    assert_eq!(p["request"]["resource"], json!({ "type": "Database", "id": "orders" }));
    assert_eq!(
        h.ran.load(Ordering::SeqCst),
        1,
        "the refused request never reached the handler"
    );

    // Ask where the answer says, with what it says, approve as another user, and pass.
    let mut ask = p["request"].clone();
    ask["duration_seconds"] = json!(600);
    let (status, made) = h
        .send(Some("sam"), "POST", p["request_at"].as_str().unwrap(), Some(&ask))
        .await;
    assert_eq!(status, 201, "{made}");
    let id = made["request"]["id"].as_str().unwrap();
    let (status, _) = h
        .send(Some("lee"), "POST", &format!("/jit/requests/{id}/approve"), None)
        .await;
    assert_eq!(status, 200);
    let (status, ok) = h.send(Some("sam"), "POST", "/db/orders/restart", None).await;
    assert_eq!(status, 200, "{ok}");
    assert!(ok["basis"].as_str().unwrap().starts_with("grant_"), "{ok}");

    let (status, p) = h.send(Some("sam"), "POST", "/db/orders/drop", None).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("forbidden")), "{p}");
    assert_eq!(p["decision"]["outcome"], "deny");
    assert!(p.get("request_at").is_none(), "nothing to ask for: {p}");
    let (status, p) = h.send(Some("nobody"), "GET", "/logs", None).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("not_eligible")), "{p}");
    let (status, p) = h.send(Some("sam"), "GET", "/unmapped", None).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (400, Some("invalid_body")),
        "the closure's own answer: {p}"
    );
    assert_eq!(h.ran.load(Ordering::SeqCst), 2);
    let (status, _) = h.send(None, "GET", "/health", None).await;
    assert_eq!(status, 200, "routes outside the guard are not guarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_use_limited_grant_is_used_once_per_request_even_concurrently() {
    let (gate, _clock, _) = fixtures::gate(Arc::new(MemoryStore::new()));
    let h = Host::start(gate).await;
    let ask = json!({
        "action": { "type": "Action", "id": "read_customer" },
        "resource": { "type": "Customer", "id": "c-42" },
        "duration_seconds": 600,
    });
    let (status, made) = h.send(Some("sam"), "POST", "/jit/requests", Some(&ask)).await;
    assert_eq!(status, 201, "{made}");
    let id = made["request"]["id"].as_str().unwrap();
    let (status, reviewed) = h
        .send(Some("lee"), "POST", &format!("/jit/requests/{id}/approve"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        reviewed["grant"]["max_uses"], 2,
        "the fixture's customer read: two uses"
    );

    let h = Arc::new(h);
    let calls = (0..8).map(|_| {
        let h = h.clone();
        tokio::spawn(async move { h.send(Some("sam"), "GET", "/customers/c-42", None).await.0 })
    });
    let mut statuses = Vec::new();
    for c in calls {
        statuses.push(c.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses,
        vec![200, 200, 403, 403, 403, 403, 403, 403],
        "two uses, eight requests"
    );
    assert_eq!(h.ran.load(Ordering::SeqCst), 2, "the handler ran once per use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_denies_as_unavailable() {
    let store = Arc::new(FaultyStore::new(Capabilities::All));
    let (gate, _clock, _) = fixtures::gate(store.clone() as Arc<dyn Store>);
    let h = Host::start(gate).await;
    store.fail("live_grants");
    let (status, p) = h.send(Some("sam"), "POST", "/db/orders/restart", None).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (503, Some("authorization_unavailable")),
        "{p}"
    );
    assert!(
        !p["detail"].as_str().unwrap().contains("connection"),
        "the cause stays in the log: {p}"
    );
    assert_eq!(h.ran.load(Ordering::SeqCst), 0);
    store.heal();
    let (status, _) = h.send(Some("sam"), "GET", "/logs", None).await;
    assert_eq!(status, 200);
}
