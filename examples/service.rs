//! A complete service: one config file, jitgate's runtime in the background, the HTTP API
//! (`/jit/…`), the reviewer page (`/jit/ui/`), Slack approvals (`/slack/interactions`, when
//! `JITGATE_SLACK_SIGNING_SECRET` is set), one route of its own behind the guard layer
//! (`POST /databases/{name}/restart`), metrics in Prometheus format at `/metrics`, and edited
//! policy files picked up without a restart. The README's "A whole service" section `curl`s a
//! whole story against it.
//!
//! ```text
//! cargo run -p jitgate --features http --example service                      # examples/service/jitgate.toml on 127.0.0.1:9464
//! cargo run -p jitgate --features http --example service -- my.toml 0.0.0.0:8080
//! cargo run -p jitgate --features http,postgres --example service -- examples/service/jitgate-postgres.toml
//! cargo run -p jitgate --features http --example service -- --once            # start, run the story, print the metrics, stop
//! ```
//!
//! Who calls is read from the `x-user` header, or in a browser from the cookie `/login?user=lee`
//! sets: a stand-in for the authenticating proxy or session a real service has (`Authenticate`
//! is the one place to change). Slack users map to principals
//! from `JITGATE_SLACK_USERS` (`U024BE7LH=lee,U0G9QF9C6=sam`).
//!
//! Edit `examples/policies/access.cedar` while it runs: the log says `policy set reloaded`, and
//! `jitgate_policy_reloads_total{result="loaded"}` counts it (an invalid edit is refused, its
//! errors logged, and the old set stays).

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use axum::extract::Path as UrlPath;
use axum::http::request::Parts;
use axum::routing::post;
use axum::{Extension, Json};
use jitgate::config::{Config, Running};
use jitgate::http::slack::{SlackInteractions, StaticSlackUsers};
use jitgate::http::{ApiError, Authenticate, Authorized, Guard};
use jitgate::{async_trait, Action, EntityRef, Gate};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The caller named by the `x-user` header (for `curl`) or the `user` cookie that `/login` sets
/// (for a browser), as `User::"<name>"`. A stand-in: a real service reads its session or the
/// identity its proxy asserts here, and has no `/login` that believes anyone.
pub struct UserHeader;

#[async_trait]
impl Authenticate for UserHeader {
    async fn caller(&self, parts: &Parts) -> Option<EntityRef> {
        let header = parts.headers.get("x-user").and_then(|v| v.to_str().ok());
        let cookie = || {
            let cookies = parts.headers.get("cookie")?.to_str().ok()?;
            cookies.split(';').find_map(|c| c.trim().strip_prefix("user="))
        };
        let user = header.or_else(cookie)?;
        let valid = !user.is_empty() && user.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        valid.then(|| EntityRef::new("User", user))
    }
}

/// `GET /login?user=lee`: the demo's sign-in for a browser — sets the `user` cookie and opens
/// the reviewer page. Believes anyone: for trying the example, never for a service.
async fn login(
    axum::extract::Query(who): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let user = who.get("user").map(String::as_str).unwrap_or_default();
    if user.is_empty() || !user.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "login?user=<name>, e.g. login?user=lee",
        )
            .into_response();
    }
    (
        axum::http::StatusCode::SEE_OTHER,
        [
            (
                axum::http::header::SET_COOKIE,
                format!("user={user}; Path=/; HttpOnly; SameSite=Strict"),
            ),
            (axum::http::header::LOCATION, "/jit/ui/".to_owned()),
        ],
    )
        .into_response()
}

/// The service's own route: restarting a database, which the guard lets through only with a
/// standing permission or a grant (`db_restart` on `Database::"<name>"`).
async fn restart_database(
    UrlPath(name): UrlPath<String>,
    Extension(ok): Extension<Authorized>,
) -> Json<serde_json::Value> {
    tracing::info!(database = %name, by = %ok.caller, "restarting");
    Json(
        serde_json::json!({ "restarted": name, "by": ok.caller.to_string(), "decision": jitgate::wire::Decision::from(&ok.decision) }),
    )
}

fn restart_action(parts: &Parts) -> Result<Action, ApiError> {
    // `/databases/{name}/restart`: the router matched the shape, so the name is there.
    let name = parts.uri.path().split('/').nth(2).unwrap_or_default();
    Ok(Action::new(
        EntityRef::new("Action", "db_restart"),
        EntityRef::new("Database", name),
    ))
}

/// Slack approvals, when `JITGATE_SLACK_SIGNING_SECRET` is set: users from
/// `JITGATE_SLACK_USERS` (`U…=name,…`, each `User::"name"`).
fn slack(gate: &Gate) -> Option<axum::Router> {
    let secret = std::env::var("JITGATE_SLACK_SIGNING_SECRET").ok()?;
    let users = std::env::var("JITGATE_SLACK_USERS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .fold(StaticSlackUsers::default(), |users, (slack_id, name)| {
            users.with(slack_id.trim(), EntityRef::new("User", name.trim()))
        });
    let interactions = SlackInteractions::new(secret.into_bytes(), Arc::new(users));
    Some(jitgate::http::slack::router(gate.clone(), interactions))
}

/// The whole HTTP surface of the service.
pub fn app(gate: &Gate, metrics: PrometheusHandle) -> axum::Router {
    let auth: Arc<dyn Authenticate> = Arc::new(UserHeader);
    let guard = Guard::new(gate.clone(), auth.clone(), restart_action).request_at("/jit/requests");
    let mut app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || std::future::ready(metrics.render())),
        )
        .route("/databases/{name}/restart", post(restart_database).layer(guard))
        .route("/login", axum::routing::get(login))
        .nest("/jit", jitgate::http::router(gate.clone(), auth));
    if let Some(slack) = slack(gate) {
        app = app.nest("/slack", slack);
    }
    app
}

/// A started service: the deployment, and where it answers.
pub struct Service {
    /// The gate, its live policy and its runtime.
    pub running: Running,
    /// The address the service answers on (`/metrics`, `/jit/…`, its own routes).
    pub metrics_addr: SocketAddr,
    /// What `/metrics` renders.
    pub metrics: PrometheusHandle,
    server: tokio::task::JoinHandle<()>,
}

/// Installs the Prometheus recorder (before the gate is built, so the gate's handles record
/// into it), starts the deployment `config` describes, and serves `/metrics` on `metrics_addr`.
pub async fn start(config: &Path, metrics_addr: SocketAddr) -> Result<Service, Box<dyn std::error::Error>> {
    let metrics = PrometheusBuilder::new().install_recorder()?;
    let running = Config::load(config)?.start().await?;
    let app = app(&running.gate, metrics.clone());
    let listener = tokio::net::TcpListener::bind(metrics_addr).await?;
    let metrics_addr = listener.local_addr()?;
    let upkeep = metrics.clone();
    let server = tokio::spawn(async move {
        // The exporter keeps histogram samples until they are drained: drain them every 5 s,
        // scraped or not, so memory stays flat.
        let drain = async {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                upkeep.run_upkeep();
            }
        };
        tokio::select! {
            served = axum::serve(listener, app).into_future() => {
                if let Err(e) = served {
                    tracing::error!(error = %e, "the metrics endpoint stopped");
                }
            }
            () = drain => {}
        }
    });
    Ok(Service {
        running,
        metrics_addr,
        metrics,
        server,
    })
}

impl Service {
    /// Stops serving metrics and shuts the runtime down (flushing what must be flushed).
    pub async fn stop(self) {
        self.server.abort();
        let report = self.running.shutdown().await;
        tracing::info!(stopped = ?report.stopped, aborted = ?report.aborted, "stopped");
    }
}

/// One HTTP/1.0 call to the service as `user`: its status and JSON body (what `curl` does in
/// the README's story).
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    user: &str,
    body: Option<&serde_json::Value>,
) -> std::io::Result<(u16, serde_json::Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.map(ToString::to_string).unwrap_or_default();
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nx-user: {user}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    let mut response = String::new();
    conn.read_to_string(&mut response).await?;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let json = response
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

/// The raw answer (status line, headers, body) of a `GET` with an optional cookie.
async fn page(addr: SocketAddr, path: &str, cookie: Option<&str>) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    let cookie = cookie.map(|c| format!("cookie: {c}\r\n")).unwrap_or_default();
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n{cookie}\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    conn.read_to_string(&mut response).await?;
    Ok(response)
}

/// The README's story, in-process: sam is refused and told where to ask, asks, lee approves,
/// sam restarts.
async fn story(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let expect =
        |step: &str, got: u16, want: u16, body: &serde_json::Value| -> Result<(), Box<dyn std::error::Error>> {
            println!("{step}: {got}");
            if got == want {
                Ok(())
            } else {
                Err(format!("{step}: expected {want}, got {got}: {body}").into())
            }
        };
    let (status, refused) = call(addr, "POST", "/databases/orders-prod/restart", "sam", None).await?;
    expect("sam restarts orders-prod without a grant", status, 403, &refused)?;
    println!("  {} — ask at {}", refused["code"], refused["request_at"]);
    let mut ask = refused["request"].clone();
    ask["duration_seconds"] = serde_json::json!(900);
    ask["justification"] = serde_json::json!("INC-7: orders-prod is stuck");
    let (status, made) = call(addr, "POST", "/jit/requests", "sam", Some(&ask)).await?;
    expect("sam asks", status, 201, &made)?;
    let id = made["request"]["id"].as_str().unwrap_or_default().to_owned();
    println!(
        "  {id}, waiting for {}",
        made["request"]["flow"]["requirements"][0]["reviewers"]
    );
    let queue = page(addr, "/login?user=lee", None).await?;
    let cookie = queue
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .ok_or("the demo's /login set no cookie")?
        .to_owned();
    let shown = page(addr, "/jit/ui/", Some(&cookie)).await?;
    if !shown.contains(&format!("id=\"{id}\"")) {
        return Err(format!("lee's reviewer page does not show {id}: {shown}").into());
    }
    println!("lee's reviewer page (signed in with {cookie}) shows {id}");
    let (status, reviewed) = call(addr, "POST", &format!("/jit/requests/{id}/approve"), "lee", None).await?;
    expect("lee approves", status, 200, &reviewed)?;
    println!("  grant {}", reviewed["grant"]["id"]);
    let (status, done) = call(addr, "POST", "/databases/orders-prod/restart", "sam", None).await?;
    expect("sam restarts orders-prod", status, 200, &done)?;
    Ok(())
}

#[tokio::main]
#[allow(dead_code)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let once = args.iter().any(|a| a == "--once");
    args.retain(|a| a != "--once");
    let default_config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/service/jitgate.toml");
    let config = args.first().map(PathBuf::from).unwrap_or(default_config);
    let addr: SocketAddr = match args.get(1) {
        Some(a) => a.parse()?,
        None if once => "127.0.0.1:0".parse()?,
        None => "127.0.0.1:9464".parse()?,
    };
    let service = start(&config, addr).await?;
    println!(
        "jitgate service: config {}, policy set {}, metrics at http://{}/metrics",
        config.display(),
        service
            .running
            .gate
            .policy_version()
            .map(|v| v.to_string())
            .unwrap_or_default(),
        service.metrics_addr
    );
    let sam = EntityRef::new("User", "sam");
    let logs = Action::new(
        EntityRef::new("Action", "read_logs"),
        EntityRef::new("Service", "orders"),
    );
    println!(
        "sam reads the orders logs: {}",
        service.running.gate.authorize(&logs, &sam).await
    );
    if once {
        story(service.metrics_addr).await?;
        for line in service
            .metrics
            .render()
            .lines()
            .filter(|l| l.starts_with("jitgate_decisions_total"))
        {
            println!("{line}");
        }
    } else {
        println!("edit examples/policies/*.cedar to see it reloaded; Ctrl-C stops");
        tokio::signal::ctrl_c().await?;
    }
    service.stop().await;
    Ok(())
}
