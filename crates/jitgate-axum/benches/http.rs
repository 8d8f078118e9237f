//! The HTTP surface's cost. Run: `cargo bench -p jitgate-axum --bench http`.
//!
//! - `guard/unguarded` and `guard/guarded`: one `GET /logs` through the router as a tower
//!   service (no network), without and with the [`Guard`] layer (a standing permission of the
//!   fixture policy: authenticate from a header, map the path, `authorize`, pass on). The
//!   difference is the guard's overhead; `guard/authorize_alone` is the `authorize` call inside it.
//! - `loopback/constant` and `loopback/authorize`: requests per second over loopback HTTP/1.1,
//!   8 connections each kept open, against an axum route answering a constant JSON body and
//!   against `POST /authorize` (a grant-backed allow, use recording on), side by side in one
//!   run. Client and server share the machine's cores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::Request;
use axum::routing::{get, post};
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jitgate_axum::{router, ApiError, Authenticate, Guard};
use jitgate_core::{async_trait, Action, EntityRef, MemoryStore, RequestOutcome};
use jitgate_testkit::fixtures::{self, ask, lee, restart};
use tower::ServiceExt;

struct Header;

#[async_trait]
impl Authenticate for Header {
    async fn caller(&self, parts: &Parts) -> Option<EntityRef> {
        let user = parts.headers.get("x-user")?.to_str().ok()?;
        Some(EntityRef::new("User", user))
    }
}

fn logs(_: &Parts) -> Result<Action, ApiError> {
    Ok(Action::new(
        EntityRef::new("Action", "read_logs"),
        EntityRef::new("Logs", "all"),
    ))
}

fn get_logs() -> Request<Body> {
    Request::get("/logs")
        .header("x-user", "sam")
        .body(Body::empty())
        .unwrap()
}

fn guard(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (gate, _clock, _) = fixtures::gate(Arc::new(MemoryStore::new()));
    let plain = Router::new().route("/logs", get(|| async { "ok" }));
    let guarded = plain.clone().layer(Guard::new(gate.clone(), Arc::new(Header), logs));
    let status = rt.block_on(guarded.clone().oneshot(get_logs())).unwrap().status();
    assert_eq!(status, 200, "the guard lets sam read logs");
    let mut group = c.benchmark_group("guard");
    group.bench_function("unguarded", |b| {
        b.to_async(&rt).iter(|| plain.clone().oneshot(get_logs()));
    });
    group.bench_function("guarded", |b| {
        b.to_async(&rt).iter(|| guarded.clone().oneshot(get_logs()));
    });
    // What the guard's overhead is made of: the `authorize` call it makes, alone.
    let (sam, action) = (EntityRef::new("User", "sam"), logs(&get_logs().into_parts().0).unwrap());
    group.bench_function("authorize_alone", |b| {
        b.to_async(&rt).iter(|| gate.authorize(&action, &sam));
    });
    group.finish();
}

/// Sends `n` requests over 8 kept-open connections (one client each), concurrently.
async fn load(clients: &[reqwest::Client], url: &str, body: &'static str, n: u64) -> Duration {
    let per = n.div_ceil(clients.len() as u64);
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, url) = (client.clone(), url.to_owned());
            tokio::spawn(async move {
                for _ in 0..per {
                    let r = client
                        .post(&url)
                        .header("x-user", "sam")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success());
                    r.bytes().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed() * u32::try_from(n).unwrap_or(u32::MAX) / u32::try_from(per * clients.len() as u64).unwrap_or(1)
}

const ACTION: &str = r#"{"action":{"type":"Action","id":"db_restart"},"resource":{"type":"Database","id":"orders"}}"#;

fn loopback(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (gate, _clock, _) = fixtures::gate(Arc::new(MemoryStore::new()));
    let url = rt.block_on(async {
        let RequestOutcome::Pending(r) = gate.request(ask(restart("orders"), 60)).await.unwrap() else {
            panic!("pending")
        };
        gate.approve(r.id, &lee(), None).await.unwrap();
        let app = Router::new()
            .route(
                "/const",
                post(|| async { axum::Json(serde_json::json!({ "outcome": "allow" })) }),
            )
            .nest("/jit", router(gate.clone(), Arc::new(Header)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    });
    let clients: Vec<reqwest::Client> = (0..8)
        .map(|_| reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap())
        .collect();
    let allowed = rt.block_on(async {
        let r = clients[0]
            .post(format!("{url}/jit/authorize"))
            .header("x-user", "sam")
            .body(ACTION)
            .send()
            .await
            .unwrap();
        r.json::<serde_json::Value>().await.unwrap()
    });
    assert_eq!(allowed["outcome"], "allow", "{allowed}");
    let mut group = c.benchmark_group("loopback");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(10));
    for (name, path, body) in [("constant", "/const", "{}"), ("authorize", "/jit/authorize", ACTION)] {
        let target = format!("{url}{path}");
        group.bench_function(name, |b| {
            b.iter_custom(|n| rt.block_on(load(&clients, &target, body, n)));
        });
    }
    group.finish();
}

criterion_group!(benches, guard, loopback);
criterion_main!(benches);
