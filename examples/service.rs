//! A service operated out of the box: one config file, jitgate's runtime in the background,
//! metrics in Prometheus format at `/metrics`, and edited policy files picked up without a
//! restart.
//!
//! ```text
//! cargo run -p jitgate --example service                       # examples/service/jitgate.toml, metrics on 127.0.0.1:9464
//! cargo run -p jitgate --example service -- my.toml 0.0.0.0:9464
//! cargo run -p jitgate --example service -- --once             # start, decide, print the metrics, stop
//! ```
//!
//! Edit `examples/policies/access.cedar` while it runs: the log says `policy set reloaded`, and
//! `jitgate_policy_reloads_total{result="loaded"}` counts it (an invalid edit is refused, its
//! errors logged, and the old set stays).

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use jitgate::config::{Config, Running};
use jitgate::{Action, EntityRef};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// A started service: the deployment, and where its metrics are served.
pub struct Service {
    /// The gate, its live policy and its runtime.
    pub running: Running,
    /// The address `/metrics` answers on.
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
    let render = metrics.clone();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || std::future::ready(render.render())),
    );
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
