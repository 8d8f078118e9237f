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
    gate: jitgate_core::Gate,
    clock: Arc<jitgate_core::ManualClock>,
}

impl Client {
    async fn start() -> Self {
        let (gate, clock, _notifier) = fixtures::gate(Arc::new(MemoryStore::new()));
        let app = axum::Router::new().nest("/jit", router(gate.clone(), Arc::new(Header)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base: format!("http://{addr}/jit"),
            http: reqwest::Client::new(),
            gate,
            clock,
        }
    }

    /// `(status, content type, body)` of a POST (with `body`, when given) or a GET.
    async fn call(&self, user: Option<&str>, path: &str, body: Option<Value>) -> (u16, String, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = match &body {
            Some(b) => self.http.post(url).body(b.to_string()),
            None if path.ends_with("/cancel") || path.ends_with("/approve") || path.ends_with("/verify") => {
                self.http.post(url)
            }
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

/// The ids of a page's items, in order.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_lists_their_own_requests_by_state_and_time() {
    let c = Client::start().await;
    let mut made = Vec::new();
    for db in ["a", "b", "c"] {
        c.clock.advance(chrono::Duration::minutes(1));
        let mut ask = restart_orders();
        ask["resource"]["id"] = json!(db);
        ask["duration_seconds"] = json!(600);
        let (status, _, r) = c.call(Some("sam"), "/requests", Some(ask)).await;
        assert_eq!(status, 201, "{r}");
        made.push(r["request"].clone());
    }
    let id = |i: usize| made[i]["id"].as_str().unwrap().to_owned();
    let (status, _, denied) = c
        .call(Some("lee"), &format!("/requests/{}/deny", id(1)), Some(json!({})))
        .await;
    assert_eq!(status, 200, "{denied}");

    let (status, _, all) = c.call(Some("sam"), "/requests", None).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all), vec![id(2), id(1), id(0)], "newest first");
    assert_eq!(all["items"][1]["state"], "denied");

    let (_, _, first) = c.call(Some("sam"), "/requests?limit=2", None).await;
    let next = first["next"].as_str().expect("a second page").to_owned();
    let (_, _, second) = c
        .call(Some("sam"), &format!("/requests?limit=2&after={next}"), None)
        .await;
    assert_eq!([ids(&first), ids(&second)].concat(), vec![id(2), id(1), id(0)]);

    let (_, _, pending) = c.call(Some("sam"), "/requests?state=pending", None).await;
    assert_eq!(ids(&pending), vec![id(2), id(0)]);
    let (_, _, both) = c.call(Some("sam"), "/requests?state=denied,%20pending", None).await;
    assert_eq!(ids(&both).len(), 3);
    let since = made[1]["created_at"].as_str().unwrap();
    let until = made[2]["created_at"].as_str().unwrap();
    let (status, _, window) = c
        .call(
            Some("sam"),
            &format!("/requests?since={}&until={}", enc(since), enc(until)),
            None,
        )
        .await;
    assert_eq!((status, ids(&window)), (200, vec![id(1)]), "{window}");

    let (_, _, leas) = c.call(Some("lee"), "/requests", None).await;
    assert_eq!(leas["items"], json!([]), "lee made none: {leas}");
    let (status, _, p) = c.call(Some("lee"), &format!("/requests?after={next}"), None).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (400, Some("invalid_cursor")),
        "sam's cursor: {p}"
    );

    let (status, _, p) = c.call(Some("sam"), "/requests?state=open", None).await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_body")), "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("`open` is not a request state"),
        "{p}"
    );
    let (status, _, p) = c.call(Some("sam"), "/requests?since=yesterday", None).await;
    assert_eq!(status, 400, "{p}");
    assert!(p["detail"].as_str().unwrap().starts_with("query `since`"), "{p}");
    let (status, _, p) = c.call(Some("sam"), "/requests?mine=yes", None).await;
    assert_eq!(status, 400, "an unknown parameter: {p}");
}

/// Percent-encodes what an RFC 3339 instant holds that a query string cannot (`+`, `:`).
fn enc(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_pages_exports_and_verifies_the_trail_and_nobody_else_reads_it() {
    let c = Client::start().await;
    let mut ask = restart_orders();
    ask["duration_seconds"] = json!(600);
    let (_, _, made) = c.call(Some("sam"), "/requests", Some(ask)).await;
    let id = made["request"]["id"].as_str().unwrap().to_owned();
    let (status, _, _) = c.call(Some("lee"), &format!("/requests/{id}/approve"), None).await;
    assert_eq!(status, 200);

    for who in ["sam", "lee"] {
        for (path, body) in [
            ("/audit", None),
            ("/audit/export", None),
            ("/audit/verify", Some(json!({}))),
        ] {
            let (status, _, p) = c.call(Some(who), path, body).await;
            assert_eq!(
                (status, p["code"].as_str()),
                (403, Some("not_permitted_to_read_audit")),
                "{who} {path}: {p}"
            );
        }
    }

    // `sec` is in Team::"security", the fixture policy's auditors.
    let mut paged = Vec::new();
    let mut path = "/audit?limit=2".to_owned();
    loop {
        let (status, _, page) = c.call(Some("sec"), &path, None).await;
        assert_eq!(status, 200, "{page}");
        paged.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = format!("/audit?limit=2&after={next}"),
            None => break,
        }
    }
    assert!(paged.len() >= 4, "requested, reviewed, approved, granted: {paged:?}");
    let seqs: Vec<u64> = paged.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=paged.len() as u64).collect::<Vec<_>>(),
        "the whole chain, in order"
    );

    let resp = c
        .http
        .get(format!("{}/audit/export", c.base))
        .header("x-user", "sec")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], jitgate_axum::JSONL);
    let text = resp.text().await.unwrap();
    let head = jitgate_core::audit::verify_jsonl(text.as_bytes()).expect("the export verifies");
    assert_eq!(head.seq, paged.len() as u64);
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, paged, "the export and the pages hold the same records");

    let (status, _, v) = c.call(Some("sec"), "/audit/verify", None).await;
    assert_eq!((status, v["outcome"].as_str()), (200, Some("intact")), "{v}");
    assert_eq!(v["head"]["seq"], json!(paged.len()));

    let signer = jitgate_core::audit::CheckpointSigner::from_seed([7; 32]);
    let checkpoint = c.gate.checkpointer(signer.clone()).checkpoint_now().await.unwrap();
    let (status, _, v) = c
        .call(
            Some("sec"),
            "/audit/verify",
            Some(json!({ "checkpoint": checkpoint, "public_key": signer.public_key_hex() })),
        )
        .await;
    assert_eq!((status, v["outcome"].as_str()), (200, Some("intact")), "{v}");
    let other = jitgate_core::audit::CheckpointSigner::from_seed([8; 32]);
    let (status, _, p) = c
        .call(
            Some("sec"),
            "/audit/verify",
            Some(json!({ "checkpoint": checkpoint, "public_key": other.public_key_hex() })),
        )
        .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (400, Some("audit_checkpoint")),
        "a checkpoint another key signed: {p}"
    );
    let (status, _, p) = c
        .call(Some("sec"), "/audit/verify", Some(json!({ "checkpoint": checkpoint })))
        .await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_body")), "{p}");
    let (status, _, p) = c.call(Some("sec"), "/audit?after=first", None).await;
    assert_eq!((status, p["code"].as_str()), (400, Some("invalid_cursor")), "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reviewer_page_escapes_what_users_wrote_and_refuses_cross_site_posts() {
    let c = Client::start().await;
    let mut ask = restart_orders();
    ask["duration_seconds"] = json!(900);
    ask["justification"] = json!("<script>alert(1)</script>");
    let (_, _, made) = c.call(Some("sam"), "/requests", Some(ask)).await;
    let id = made["request"]["id"].as_str().unwrap().to_owned();

    let page = c
        .http
        .get(format!("{}/ui/", c.base))
        .header("x-user", "lee")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = page.text().await.unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains(&format!("action=\"requests/{id}/review\"")), "{html}");

    let post = |origin: Option<&'static str>, user: &'static str| {
        let mut req = c
            .http
            .post(format!("{}/ui/requests/{id}/review", c.base))
            .header("x-user", user)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("verdict=approve&comment=ok");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let refused = post(Some("https://evil.example"), "lee").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("another site"));
    let own = post(None, "sam").await.unwrap();
    assert_eq!(own.status(), 403, "the flow's own rule: no self-approval");
    assert!(own.text().await.unwrap().contains("could not be reviewed"));
    let (_, _, shown) = c.call(Some("sam"), &format!("/requests/{id}"), None).await;
    assert_eq!(shown["state"], "pending", "nothing was reviewed: {shown}");

    let same_host = c.base.trim_end_matches("/jit").to_owned();
    let done = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/ui/requests/{id}/review", c.base))
        .header("x-user", "lee")
        .header("origin", same_host.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("verdict=approve&comment=ok")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], format!("../../?done=approved&id={id}"));
    let (_, _, shown) = c.call(Some("sam"), &format!("/requests/{id}"), None).await;
    assert_eq!(shown["state"], "approved");
}

/// Every JSON route of the router, as (method, path) in OpenAPI's template form.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/authorize"),
    ("post", "/explain"),
    ("post", "/requests"),
    ("get", "/requests"),
    ("get", "/requests/{id}"),
    ("post", "/requests/{id}/approve"),
    ("post", "/requests/{id}/deny"),
    ("post", "/requests/{id}/cancel"),
    ("get", "/queue"),
    ("get", "/grants"),
    ("post", "/grants/{id}/revoke"),
    ("post", "/grants/{id}/extend"),
    ("post", "/grants/{id}/acknowledge"),
    ("get", "/audit"),
    ("get", "/audit/export"),
    ("post", "/audit/verify"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_names_every_route_and_its_schemas_match_real_answers() {
    let c = Client::start().await;
    let (status, _, doc) = c.call(None, "/openapi.json", None).await;
    assert_eq!(status, 200, "served without authentication: {doc}");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    for (method, path) in ROUTES {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not in the document");
        assert!(
            op["responses"]["4XX"].is_object(),
            "{method} {path}: failures are problems"
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(documented, ROUTES.len(), "no operation the router lacks");

    // A real answer has every property its schema requires, and none it does not describe.
    let schemas = &doc["components"]["schemas"];
    let check = |name: &str, value: &Value| {
        let schema = &schemas[name];
        let properties = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: {schema}"));
        for required in schema["required"].as_array().into_iter().flatten() {
            assert!(
                value.get(required.as_str().unwrap()).is_some(),
                "{name}.{required} missing in {value}"
            );
        }
        for key in value.as_object().unwrap().keys() {
            assert!(
                properties.contains_key(key),
                "{name} does not describe `{key}` of {value}"
            );
        }
    };
    let mut ask = restart_orders();
    ask["duration_seconds"] = json!(600);
    ask["justification"] = json!("INC-1");
    let (_, _, made) = c.call(Some("sam"), "/requests", Some(ask)).await;
    let id = made["request"]["id"].as_str().unwrap().to_owned();
    let (_, _, request) = c.call(Some("sam"), &format!("/requests/{id}"), None).await;
    check("Request", &request);
    check("Flow", &request["flow"]);
    check("EntityRef", &request["principal"]);
    let (_, _, reviewed) = c.call(Some("lee"), &format!("/requests/{id}/approve"), None).await;
    check("ReviewOutcome", &reviewed);
    check("Grant", &reviewed["grant"]);
    check("Review", &reviewed["request"]["reviews"][0]);
    let (_, _, problem) = c.call(Some("lee"), &format!("/requests/{id}/approve"), None).await;
    check("Problem", &problem);
    let states = &schemas["RequestState"]["enum"];
    assert!(states.as_array().unwrap().contains(&json!("approved")), "{states}");
}
