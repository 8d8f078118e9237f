//! The router on a real HTTP server on loopback, driven by an HTTP client: a whole story
//! (authorize → request → approve by another → authorize → revoke), who may read what, and each
//! failure as a problem document.

use std::sync::Arc;

use jitgate_axum::{router, Authenticate};
use jitgate_core::{async_trait, EntityRef, MemoryStore};
use jitgate_testkit::fixtures;
use serde_json::{json, Value};

/// The caller named by the `x-user` header (the host's proxy authenticated them).
struct Header;

#[async_trait]
impl Authenticate for Header {
    async fn caller(&self, parts: &axum::http::request::Parts) -> Option<EntityRef> {
        let user = parts.headers.get("x-user")?.to_str().ok()?;
        Some(EntityRef::new("User", user))
    }
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn start() -> Self {
        let (gate, _clock, _notifier) = fixtures::gate(Arc::new(MemoryStore::new()));
        let app = axum::Router::new().nest("/jit", router(gate, Arc::new(Header)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base: format!("http://{addr}/jit"),
            http: reqwest::Client::new(),
        }
    }

    /// `(status, content type, body)` of a POST (with `body`, when given) or a GET.
    async fn call(&self, user: Option<&str>, path: &str, body: Option<Value>) -> (u16, String, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = match &body {
            Some(b) => self.http.post(url).body(b.to_string()),
            None if path.ends_with("/cancel") || path.ends_with("/approve") => self.http.post(url),
            None => self.http.get(url),
        };
        if let Some(user) = user {
            req = req.header("x-user", user);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let kind = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        (status, kind, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

fn restart_orders() -> Value {
    json!({ "action": { "type": "Action", "id": "db_restart" }, "resource": { "type": "Database", "id": "orders" } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_story_over_http() {
    let c = Client::start().await;
    let (status, _, d) = c.call(Some("sam"), "/authorize", Some(restart_orders())).await;
    assert_eq!((status, d["outcome"].as_str()), (200, Some("needs_approval")), "{d}");
    assert_eq!(
        d["flow"]["requirements"][0]["reviewers"],
        json!({ "type": "Team", "id": "sre-leads" })
    );

    let mut ask = restart_orders();
    ask["duration_seconds"] = json!(900);
    ask["justification"] = json!("INC-9");
    ask["context"] = json!({ "ticket": "INC-9" });
    let (status, _, made) = c.call(Some("sam"), "/requests", Some(ask)).await;
    assert_eq!((status, made["outcome"].as_str()), (201, Some("pending")), "{made}");
    let id = made["request"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("req_"));

    // The requester and an eligible reviewer may read it; anyone else finds nothing.
    for (who, expected) in [("sam", 200), ("lee", 200), ("eve", 404)] {
        let (status, _, shown) = c.call(Some(who), &format!("/requests/{id}"), None).await;
        assert_eq!(status, expected, "{who}: {shown}");
    }

    let (status, kind, problem) = c
        .call(Some("sam"), &format!("/requests/{id}/approve"), Some(json!({})))
        .await;
    assert_eq!((status, kind.as_str()), (403, "application/problem+json"));
    assert_eq!(problem["code"], "self_approval");
    assert_eq!(problem["type"], "urn:jitgate:error:self_approval");

    let (status, _, reviewed) = c
        .call(
            Some("lee"),
            &format!("/requests/{id}/approve"),
            Some(json!({ "comment": "go" })),
        )
        .await;
    assert_eq!(status, 200, "{reviewed}");
    assert_eq!(reviewed["request"]["state"], "approved");
    let grant = reviewed["grant"]["id"].as_str().unwrap().to_owned();

    let (_, _, d) = c.call(Some("sam"), "/authorize", Some(restart_orders())).await;
    assert_eq!(
        (d["outcome"].as_str(), d["grant"].as_str()),
        (Some("allow"), Some(grant.as_str())),
        "{d}"
    );

    let (status, _, again) = c.call(Some("lee"), &format!("/requests/{id}/approve"), None).await;
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("request_closed")),
        "{again}"
    );

    let (status, _, revoked) = c
        .call(
            Some("lee"),
            &format!("/grants/{grant}/revoke"),
            Some(json!({ "comment": "done" })),
        )
        .await;
    assert_eq!((status, revoked["state"].as_str()), (200, Some("revoked")), "{revoked}");
    let (_, _, d) = c.call(Some("sam"), "/authorize", Some(restart_orders())).await;
    assert_eq!(d["outcome"], "needs_approval");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_is_a_problem_document() {
    let c = Client::start().await;
    let (status, kind, p) = c.call(None, "/authorize", Some(restart_orders())).await;
    assert_eq!(
        (status, kind.as_str(), p["code"].as_str()),
        (401, "application/problem+json", Some("unauthenticated"))
    );

    let mut with_principal = restart_orders();
    with_principal["duration_seconds"] = json!(60);
    with_principal["principal"] = json!({ "type": "User", "id": "lee" });
    let (status, _, p) = c.call(Some("sam"), "/requests", Some(with_principal)).await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_body")), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("principal"), "{p}");

    let mut bad_context = restart_orders();
    bad_context["context"] = json!({ "amount": 1.5 });
    let (status, _, p) = c.call(Some("sam"), "/authorize", Some(bad_context)).await;
    assert_eq!(status, 400, "{p}");
    assert!(p["detail"].as_str().unwrap().starts_with("context.amount:"), "{p}");

    let (status, _, p) = c.call(Some("sam"), "/requests/nonsense", None).await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_body")), "{p}");
    let (status, _, p) = c
        .call(
            Some("sam"),
            &format!("/requests/{}", jitgate_core::RequestId::new_random()),
            None,
        )
        .await;
    assert_eq!((status, p["code"].as_str()), (404, Some("request_not_found")), "{p}");

    let (status, _, p) = c
        .call(
            Some("sam"),
            "/requests",
            Some(json!({ "action": { "type": "Action", "id": "db_drop" }, "resource": { "type": "Database", "id": "orders" }, "duration_seconds": 60 })),
        )
        .await;
    assert_eq!((status, p["code"].as_str()), (403, Some("forbidden")), "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_pages_through_their_queue_and_a_holder_sees_their_grants() {
    let c = Client::start().await;
    let mut ids = Vec::new();
    for db in ["a", "b", "c"] {
        let mut ask = restart_orders();
        ask["resource"]["id"] = json!(db);
        ask["duration_seconds"] = json!(600);
        let (status, _, made) = c.call(Some("sam"), "/requests", Some(ask)).await;
        assert_eq!(status, 201, "{made}");
        ids.push(made["request"]["id"].as_str().unwrap().to_owned());
    }
    let (status, _, first) = c.call(Some("lee"), "/queue?limit=2", None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["items"].as_array().unwrap().len(), 2, "{first}");
    let next = first["next"].as_str().expect("a second page").to_owned();
    let (_, _, second) = c.call(Some("lee"), &format!("/queue?limit=2&after={next}"), None).await;
    let mut seen: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids, "every pending request, once");
    let (_, _, none) = c.call(Some("sam"), "/queue", None).await;
    assert_eq!(
        none["items"],
        json!([]),
        "the requester does not review their own: {none}"
    );

    let (status, _, _) = c
        .call(Some("lee"), &format!("/requests/{}/approve", ids[0]), None)
        .await;
    assert_eq!(status, 200);
    let (_, _, grants) = c.call(Some("sam"), "/grants", None).await;
    assert_eq!(grants["items"].as_array().unwrap().len(), 1, "{grants}");
    assert_eq!(grants["items"][0]["state"], "active");
    let (status, _, p) = c.call(Some("sam"), "/grants?limit=many", None).await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_body")), "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_is_acknowledged_and_a_grant_extended_over_http() {
    let c = Client::start().await;
    let mut urgent = restart_orders();
    urgent["duration_seconds"] = json!(600);
    urgent["break_glass"] = json!(true);
    urgent["justification"] = json!("outage");
    let (status, _, granted) = c.call(Some("sam"), "/requests", Some(urgent)).await;
    assert_eq!(
        (status, granted["outcome"].as_str()),
        (201, Some("granted")),
        "{granted}"
    );
    assert_eq!(granted["grant"]["break_glass"], true);
    let grant = granted["grant"]["id"].as_str().unwrap().to_owned();

    let (status, _, p) = c
        .call(Some("sam"), &format!("/grants/{grant}/acknowledge"), Some(json!({})))
        .await;
    assert_eq!(
        status, 403,
        "the holder does not acknowledge their own break-glass: {p}"
    );
    let (status, _, acked) = c
        .call(
            Some("lee"),
            &format!("/grants/{grant}/acknowledge"),
            Some(json!({ "comment": "seen" })),
        )
        .await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["acknowledged"]["by"], json!({ "type": "User", "id": "lee" }));

    let (status, _, p) = c
        .call(
            Some("sam"),
            &format!("/grants/{grant}/extend"),
            Some(json!({ "duration_seconds": -5 })),
        )
        .await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_body")), "{p}");
    let (status, _, extension) = c
        .call(
            Some("sam"),
            &format!("/grants/{grant}/extend"),
            Some(json!({ "duration_seconds": 600, "justification": "still on it" })),
        )
        .await;
    assert_eq!(
        (status, extension["outcome"].as_str()),
        (201, Some("pending")),
        "{extension}"
    );
    assert_eq!(extension["request"]["extends"], json!(grant));
    let (status, _, p) = c
        .call(
            Some("lee"),
            &format!("/grants/{grant}/extend"),
            Some(json!({ "duration_seconds": 600 })),
        )
        .await;
    assert_eq!((status, p["code"].as_str()), (403, Some("not_grant_holder")), "{p}");
}
