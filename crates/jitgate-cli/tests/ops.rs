//! Operations by script against a PostgreSQL deployment named by its configuration file:
//! migrate (or print the SQL), list, approve (a self-approval refused and audited), list
//! grants, off-board, export and verify the audit trail.

use std::path::PathBuf;
use std::process::{Command, Output};

fn jitgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jitgate"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn url() -> String {
    std::env::var("JITGATE_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_by_script_are_checked_and_audited_like_the_api() {
    use sqlx::Connection;
    let mut admin = match sqlx::PgConnection::connect(&url()).await {
        Ok(c) => c,
        Err(e) if std::env::var_os("JITGATE_REQUIRE_POSTGRES").is_some() || std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL at {} is required here: {e}", url())
        }
        Err(e) => {
            eprintln!(
                "SKIPPED: no PostgreSQL at {} ({e}); set JITGATE_TEST_DATABASE_URL",
                url()
            );
            return;
        }
    };
    let schema = format!("jitgate_cli_{}", std::process::id());
    let policies = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies");
    let dir = std::env::temp_dir().join(&schema);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("jitgate.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nkind = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"\nmax_connections = 2\n\
             [policy]\nschema = \"{p}/app.cedarschema\"\npolicies = [\"{p}\"]\n[entities]\nfile = \"{p}/entities.json\"\n\
             [delivery]\nsecurity = ['Team::\"security\"']\n[[destinations]]\nname = \"log\"\n",
            url(),
            p = policies.display()
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();

    let printed = jitgate(&["migrate", "--config", c, "--print"]);
    let sql = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.status.success() && sql.contains("CREATE TABLE requests"),
        "{sql}"
    );
    let migrated = jitgate(&["migrate", "--config", c]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );

    // A request made through the library, as a service would.
    let (gate, _) = jitgate::config::Config::load(&config).unwrap().gate().await.unwrap();
    let sam = jitgate::EntityRef::new("User", "sam");
    let restart = jitgate::Action::new(
        jitgate::EntityRef::new("Action", "db_restart"),
        jitgate::EntityRef::new("Database", "orders-prod"),
    );
    let ask = jitgate::NewRequest::new(sam.clone(), restart, chrono::Duration::minutes(30)).with_justification("INC-9");
    let jitgate::RequestOutcome::Pending(request) = gate.request(ask).await.unwrap() else {
        panic!("pending")
    };
    let id = request.id.to_string();

    let all = json(&jitgate(&["requests", "--config", c, "--format", "json"]));
    assert_eq!(all[0]["id"], id.as_str());
    let lees = json(&jitgate(&[
        "requests",
        "--config",
        c,
        "--reviewer",
        r#"User::"lee""#,
        "--format",
        "json",
    ]));
    assert_eq!(lees.as_array().unwrap().len(), 1);
    let sams = json(&jitgate(&[
        "requests",
        "--config",
        c,
        "--reviewer",
        r#"User::"sam""#,
        "--format",
        "json",
    ]));
    assert!(sams.as_array().unwrap().is_empty(), "nobody reviews their own request");

    let own = jitgate(&["approve", &id, "--config", c, "--as", r#"User::"sam""#]);
    assert_eq!(own.status.code(), Some(1), "a self-approval is refused");
    assert!(String::from_utf8_lossy(&own.stderr).contains("refused"));
    let approved = json(&jitgate(&[
        "approve",
        &id,
        "--config",
        c,
        "--as",
        r#"User::"lee""#,
        "--format",
        "json",
    ]));
    assert_eq!(approved["request"]["state"], "approved");
    let grant = approved["grant"]["id"].as_str().unwrap().to_owned();

    let grants = json(&jitgate(&[
        "grants",
        "--config",
        c,
        "--principal",
        r#"User::"sam""#,
        "--format",
        "json",
    ]));
    assert_eq!(grants[0]["id"], grant.as_str());

    let off = jitgate(&[
        "offboard",
        r#"User::"sam""#,
        "--config",
        c,
        "--as",
        r#"User::"lee""#,
        "--reason",
        "left",
    ]);
    assert!(
        String::from_utf8_lossy(&off.stdout).contains("1 grant(s) revoked"),
        "{}",
        String::from_utf8_lossy(&off.stderr)
    );

    let export = dir.join("audit.jsonl");
    // Records are chained by the sealer shortly after their commit.
    let mut text = String::new();
    for _ in 0..100 {
        let out = jitgate(&["audit", "export", "--config", c, "--out", export.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        text = std::fs::read_to_string(&export).unwrap();
        if text.contains("grant_revoked") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        text.contains("\"refused\""),
        "the refused self-approval is in the trail"
    );
    assert!(text.contains("grant_revoked"), "{text}");
    let verified = jitgate(&["audit", "verify", export.to_str().unwrap()]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    drop(gate);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut admin)
    .await
    .ok();
    std::fs::remove_dir_all(&dir).ok();
}
