//! The example service (`examples/service.rs`), driven as a new user would run it: it reads one
//! config file, serves its metrics in Prometheus format over HTTP, and picks up an edited
//! policy file without a restart.

#[path = "../../../examples/service.rs"]
#[allow(dead_code)]
mod service;

use std::path::PathBuf;
use std::time::Duration;

use jitgate::{Action, EntityRef};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET /metrics` over a plain TCP connection.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    response
}

fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_service_serves_metrics_and_reloads_an_edited_policy() {
    // The example's own config and policies, copied so the test can edit them.
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = std::env::temp_dir().join(format!("jitgate-service-{}", std::process::id()));
    std::fs::create_dir_all(root.join("service")).unwrap();
    std::fs::create_dir_all(root.join("policies")).unwrap();
    for name in ["access.cedar", "app.cedarschema", "entities.json"] {
        std::fs::copy(
            repo.join("examples/policies").join(name),
            root.join("policies").join(name),
        )
        .unwrap();
    }
    let config = std::fs::read_to_string(repo.join("examples/service/jitgate.toml")).unwrap();
    std::fs::write(
        root.join("service/jitgate.toml"),
        config.replace("reload_every = \"1s\"", "reload_every = \"20ms\""),
    )
    .unwrap();

    let svc = service::start(&root.join("service/jitgate.toml"), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the example service starts");
    let gate = svc.running.gate.clone();
    let sam = EntityRef::new("User", "sam");
    let logs = Action::new(
        EntityRef::new("Action", "read_logs"),
        EntityRef::new("Service", "orders"),
    );
    let restart = Action::new(
        EntityRef::new("Action", "db_restart"),
        EntityRef::new("Database", "orders-prod"),
    );
    assert!(gate.authorize(&logs, &sam).await.is_allowed());
    assert!(!gate.authorize(&restart, &sam).await.is_allowed());

    let metrics = scrape(svc.metrics_addr).await;
    assert_eq!(
        value(
            &metrics,
            "jitgate_decisions_total{outcome=\"allow\",reason=\"standing\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        value(
            &metrics,
            "jitgate_decisions_total{outcome=\"needs_approval\",reason=\"eligible\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(metrics.contains("jitgate_authorize_duration_seconds"), "{metrics}");

    // An edit (written whole, then renamed in, as a deploy would) is in force without a restart.
    let before = gate.policy_version();
    let edited = root.join("policies/freeze.tmp");
    std::fs::write(
        &edited,
        "@id(\"freeze\")\nforbid(principal, action == Action::\"read_logs\", resource);\n",
    )
    .unwrap();
    std::fs::rename(&edited, root.join("policies/freeze.cedar")).unwrap();
    let mut denied = false;
    for _ in 0..500 {
        if !gate.authorize(&logs, &sam).await.is_allowed() {
            denied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(denied, "the edited policy was not picked up within 5 s");
    assert_ne!(gate.policy_version(), before);
    let metrics = scrape(svc.metrics_addr).await;
    assert_eq!(
        value(&metrics, "jitgate_policy_reloads_total{result=\"loaded\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        value(
            &metrics,
            "jitgate_decisions_total{outcome=\"deny\",reason=\"forbidden\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    svc.stop().await;
    std::fs::remove_dir_all(&root).ok();
}
