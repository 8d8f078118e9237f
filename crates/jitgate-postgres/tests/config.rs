//! A deployment on PostgreSQL started from a configuration: `[store] kind = "postgres"`
//! migrates a fresh schema, starts the change feed only then, and serves the life cycle; its
//! gauges count from the database.

mod common;

use std::time::Duration;

use jitgate::config::Config;
use jitgate::{Action, EntityRef, NewRequest, RequestOutcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_deployment_starts_from_its_configuration() {
    // Skips (or, where PostgreSQL is required, fails) like every PostgreSQL test.
    let Some(probe) = common::store().await else { return };
    drop(probe);
    let schema = common::fresh_schema();
    let policies = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies");
    let toml = format!(
        "[store]\nkind = \"postgres\"\nurl = \"{url}\"\nschema = \"{schema}\"\nmax_connections = 4\n\
         [policy]\nschema = \"{dir}/app.cedarschema\"\npolicies = [\"{dir}\"]\n\
         [entities]\nfile = \"{dir}/entities.json\"\n\
         [delivery]\nsecurity = ['Team::\"security\"']\n\
         [[destinations]]\nname = \"log\"\n",
        url = common::url(),
        dir = policies.display()
    );
    let running = Config::from_toml(&toml)
        .unwrap()
        .start()
        .await
        .expect("the deployment starts");
    let gate = running.gate.clone();
    let (sam, lee) = (EntityRef::new("User", "sam"), EntityRef::new("User", "lee"));
    let restart = Action::new(
        EntityRef::new("Action", "db_restart"),
        EntityRef::new("Database", "orders-prod"),
    );
    let ask = NewRequest::new(sam.clone(), restart.clone(), chrono::Duration::minutes(30)).with_justification("INC-1");
    let RequestOutcome::Pending(request) = gate.request(ask).await.unwrap() else {
        panic!("the request waits for a lead")
    };
    let gauges = gate.record_gauges().await.unwrap().expect("PostgreSQL counts");
    assert_eq!(gauges.pending_requests, 1);
    gate.approve(request.id, &lee, None).await.unwrap();
    let mut allowed = false;
    for _ in 0..200 {
        allowed = gate.authorize(&restart, &sam).await.is_allowed();
        if allowed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(allowed, "the grant allows");
    let gauges = gate.record_gauges().await.unwrap().unwrap();
    assert_eq!((gauges.pending_requests, gauges.active_grants), (0, 1));
    let report = running.shutdown().await;
    assert!(report.aborted.is_empty(), "{report:?}");
    drop(gate);
    // The schema was the test's own.
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&common::url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await
    .ok();
}
