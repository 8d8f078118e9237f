//! The `jitgate` binary, driven as a CI job or a person would run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn examples() -> PathBuf {
    repo().join("examples/policies")
}

fn jitgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jitgate"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A copy of the example policies with `extra` files, removed on drop.
struct Copy(PathBuf);

impl Copy {
    fn with(tag: &str, extra: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("jitgate-cli-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(examples()).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
        for (name, body) in extra {
            std::fs::write(dir.join(name), body).unwrap();
        }
        Self(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

const BROKEN: &str = "permit(principal, action == Action::\"read_logs\", resource)\n  when { principal.nope };\n";

#[test]
fn check_passes_on_the_examples_and_fails_a_broken_copy_with_located_errors() {
    let ok = jitgate(&["check", examples().to_str().unwrap()]);
    let (stdout, stderr) = text(&ok);
    assert_eq!(ok.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with("ok: 12 policies"), "{stdout}");

    let broken = Copy::with("broken", &[("bad.cedar", BROKEN)]);
    let out = jitgate(&["check", broken.path()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad.cedar:2:10"), "{stderr}");
    assert!(stderr.contains("principal.nope"), "the source line is shown: {stderr}");
    assert!(stderr.contains("1 error in"), "{stderr}");

    let out = jitgate(&["check", broken.path(), "--format", "github"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    let line = stdout.lines().next().unwrap();
    assert!(line.starts_with("::error file="), "{line}");
    assert!(
        line.contains("bad.cedar,line=2,col=10,title=jitgate%3A%3Acedar%3A%3Avalidation::"),
        "{line}"
    );

    let out = jitgate(&["check", broken.path(), "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["errors"][0]["line"], 2);
    assert_eq!(report["errors"][0]["code"], "jitgate::cedar::validation");
}

#[test]
fn check_reads_the_files_a_configuration_names() {
    let config = repo().join("examples/service/jitgate.toml");
    let out = jitgate(&["check", "--config", config.to_str().unwrap(), "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["policies"], 12);
}

#[test]
fn test_runs_the_shipped_cases_and_reports_a_failing_one() {
    let out = jitgate(&["test", examples().to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.ends_with("7 passed, 0 failed\n"), "{stdout}");

    let wrong = r#"
[[case]]
name = "restarting prod needs two leads"
principal = 'User::"sam"'
action = 'Action::"db_restart"'
resource = 'Database::"orders-prod"'
expect = "needs_approval"
[case.flow]
approvals = ['2 of Team::"sre-leads"']
max_duration = "2h"

[[case]]
name = "eve may restart prod"
principal = 'User::"eve"'
action = 'Action::"db_restart"'
resource = 'Database::"orders-prod"'
expect = "allow"
"#;
    let copy = Copy::with("cases", &[("wrong.toml", wrong)]);
    let cases = Path::new(copy.path()).join("wrong.toml");
    let out = jitgate(&["test", copy.path(), "--cases", cases.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  restarting prod needs two leads"), "{stdout}");
    assert!(
        stdout.contains(r#"expected approvals [2 of Team::"sre-leads"], got [1 of Team::"sre-leads"]"#),
        "{stdout}"
    );
    assert!(stdout.contains("expected a grant of at most 2h, got 1h"), "{stdout}");
    assert!(stdout.contains("policies involved: prod-db-restart"), "{stdout}");
    assert!(stdout.contains("expected allow, got deny"), "{stdout}");
    assert!(stdout.ends_with("0 passed, 2 failed\n"), "{stdout}");

    let out = jitgate(&[
        "test",
        copy.path(),
        "--cases",
        cases.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], 2);
    assert_eq!(report["cases"][0]["actual"]["flow"]["requirements"][0]["approvals"], 1);
}

#[test]
fn explain_names_the_policies_the_flow_and_the_policy_set() {
    let dir = examples();
    let args = [
        "explain",
        dir.to_str().unwrap(),
        "--principal",
        r#"User::"sam""#,
        "--action",
        r#"Action::"db_restart""#,
        "--resource",
        r#"Database::"orders-prod""#,
    ];
    let out = jitgate(&args);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("policy: eligible through prod-db-restart"), "{stdout}");
    assert!(stdout.contains(r#"candidate reviewers: Team::"sre-leads""#), "{stdout}");
    assert!(stdout.contains("policy set: "), "{stdout}");

    let mut json_args = args.to_vec();
    json_args.extend(["--context", r#"{"ticket": "INC-1"}"#, "--format", "json"]);
    let out = jitgate(&json_args);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The wire form, as the HTTP API's `POST /explain` answers (docs/wire.md).
    assert_eq!(answer["decision"]["outcome"], "needs_approval", "{answer}");
    assert_eq!(answer["decision"]["flow"]["max_duration_seconds"], 3600);
    assert_eq!(answer["policy"], "eligible");
    assert_eq!(answer["metadata"]["prod-db-restart"]["owner"], "team-databases");
}

#[test]
fn what_cannot_run_exits_2_and_says_why() {
    let out = jitgate(&["check", std::env::temp_dir().to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cedarschema"), "{stderr}");

    let out = jitgate(&[
        "explain",
        examples().to_str().unwrap(),
        "--principal",
        "sam",
        "--action",
        r#"Action::"db_restart""#,
        "--resource",
        r#"Database::"orders-prod""#,
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("principal:"), "{stderr}");

    let help = jitgate(&["check", "--help"]);
    let (stdout, _) = text(&help);
    assert!(
        stdout.contains("Examples:") && stdout.contains("Exit codes:"),
        "{stdout}"
    );
}

/// A small log with known answers: 3 standing, 1 auto-approved, 3 needing a lead (2 on the
/// first day, 1 on the second), 2 denied.
fn log_rows() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    let mut rows = vec![
        (
            r#"User::"sam""#,
            r#"Action::"read_logs""#,
            r#"Service::"orders""#,
            "2026-11-02T09:00:00Z"
        );
        3
    ];
    rows.extend(
        [(
            r#"User::"sam""#,
            r#"Action::"db_restart""#,
            r#"Database::"orders-prod""#,
            "2026-11-02T10:00:00Z",
        ); 2],
    );
    rows.push((
        r#"User::"sam""#,
        r#"Action::"db_restart""#,
        r#"Database::"orders-prod""#,
        "2026-11-03T10:00:00Z",
    ));
    rows.push((
        r#"User::"sam""#,
        r#"Action::"db_restart""#,
        r#"Database::"orders-staging""#,
        "2026-11-03T11:00:00Z",
    ));
    rows.push((
        r#"User::"eve""#,
        r#"Action::"read_logs""#,
        r#"Service::"orders""#,
        "2026-11-03T12:00:00Z",
    ));
    rows.push((
        r#"User::"lee""#,
        r#"Action::"db_drop""#,
        r#"Database::"orders-prod""#,
        "2026-11-03T13:00:00Z",
    ));
    rows
}

#[test]
fn simulate_reports_the_answers_the_approval_load_and_what_a_change_would_do() {
    let jsonl: String = log_rows()
        .iter()
        .map(|(p, a, r, t)| {
            serde_json::json!({"principal": p, "action": a, "resource": r, "time": t}).to_string() + "\n"
        })
        .collect();
    // Columns in another order than the documented one: read by their names.
    let mut csv = String::from("time,resource,principal,action\n");
    for (p, a, r, t) in log_rows() {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        csv.push_str(&format!("{t},{},{},{}\n", q(r), q(p), q(a)));
    }
    let freeze =
        "@id(\"no-logs-for-sam\")\nforbid(principal == User::\"sam\", action == Action::\"read_logs\", resource);\n";
    let new = Copy::with("simulate-new", &[("freeze.cedar", freeze)]);
    let logs = Copy::with("simulate-logs", &[("actions.jsonl", &jsonl), ("actions.csv", &csv)]);
    let chart = Path::new(logs.path()).join("load.svg");
    for log in ["actions.jsonl", "actions.csv"] {
        let log = Path::new(logs.path()).join(log);
        let out = jitgate(&[
            "simulate",
            examples().to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--format",
            "json",
        ]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["rows"], 9);
        assert_eq!(
            report["totals"],
            serde_json::json!({"standing": 3, "auto_approved": 1, "needs_approval": 3, "denied": 2}),
            "{log:?}"
        );
        assert_eq!(report["approval_load"][r#"Team::"sre-leads""#]["2026-11-02"], 2);
        assert_eq!(report["approval_load"][r#"Team::"sre-leads""#]["2026-11-03"], 1);
        assert_eq!(report["by_team"][r#"Team::"sre""#]["standing"], 3);
        assert_eq!(report["by_team"]["(no group)"]["denied"], 1, "eve is in no group");
    }

    let log = Path::new(logs.path()).join("actions.jsonl");
    let out = jitgate(&[
        "simulate",
        new.path(),
        "--baseline",
        examples().to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--chart",
        chart.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("3 rows change answer against the baseline"), "{stdout}");
    assert!(
        stdout.contains(
            "line       1: User::\"sam\" Action::\"read_logs\" on Service::\"orders\": standing -> forbidden"
        ),
        "{stdout}"
    );
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("Team::&quot;sre-leads&quot;: 2 on 2026-11-02"),
        "{svg}"
    );
}

#[test]
fn audit_verify_finds_an_edit_and_a_cut_tail() {
    use jitgate::audit::CheckpointSigner;
    use jitgate_testkit::fixtures::{ask, gate, lee, restart};
    let dir = Copy::with("audit", &[]);
    let export = Path::new(dir.path()).join("audit.jsonl");
    let checkpoint = Path::new(dir.path()).join("checkpoint.json");
    let signer = CheckpointSigner::from_seed([5; 32]);
    let key = signer.public_key_hex();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (g, ..) = gate(std::sync::Arc::new(jitgate::MemoryStore::new()));
        for db in ["a", "b"] {
            let jitgate::RequestOutcome::Pending(r) = g.request(ask(restart(db), 30)).await.unwrap() else {
                panic!("pending")
            };
            g.approve(r.id, &lee(), Some("ok")).await.unwrap();
        }
        let mut out = Vec::new();
        g.export_audit(&mut out).await.unwrap();
        std::fs::write(&export, out).unwrap();
        let cp = g.checkpointer(signer).checkpoint_now().await.unwrap();
        std::fs::write(&checkpoint, serde_json::to_string(&cp).unwrap()).unwrap();
    });
    let args = |file: &Path| {
        vec![
            "audit".to_owned(),
            "verify".to_owned(),
            file.to_str().unwrap().to_owned(),
            "--checkpoint".to_owned(),
            checkpoint.to_str().unwrap().to_owned(),
            "--key".to_owned(),
            key.clone(),
        ]
    };
    let run = |a: Vec<String>| jitgate(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let ok = run(args(&export));
    let (stdout, stderr) = text(&ok);
    assert_eq!(ok.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("ok: 8 records, chain intact and reaching the checkpoint"),
        "{stdout}"
    );

    let lines: Vec<String> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let edited = Path::new(dir.path()).join("edited.jsonl");
    let mut changed = lines.clone();
    changed[1] = changed[1].replace("\"ok\"", "\"OK\"");
    assert_ne!(changed[1], lines[1], "the test edits a review's comment");
    std::fs::write(&edited, changed.join("\n") + "\n").unwrap();
    let out = run(args(&edited));
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("line 2"), "{stderr}");

    let cut = Path::new(dir.path()).join("cut.jsonl");
    std::fs::write(&cut, lines[..6].join("\n") + "\n").unwrap();
    let alone = jitgate(&["audit", "verify", cut.to_str().unwrap()]);
    assert_eq!(alone.status.code(), Some(0), "a cut tail verifies alone");
    let out = run(args(&cut));
    assert_eq!(out.status.code(), Some(1), "but not against the checkpoint");
}

#[test]
fn bad_logs_and_store_less_configurations_exit_2_naming_the_problem() {
    let logs = Copy::with(
        "bad-logs",
        &[
            ("bad.jsonl", "{\"principal\": \"User::\\\"sam\\\"\", \"action\": \"Action::\\\"read_logs\\\"\", \"resource\": \"Service::\\\"orders\\\"\"}\nnot json\n"),
            ("bad.csv", "principal,resource\n\"User::\"\"sam\"\"\",\"Service::\"\"orders\"\"\"\n"),
        ],
    );
    for (log, expected) in [
        ("bad.jsonl", "bad.jsonl:2:"),
        ("bad.csv", "the header has no `action` column"),
    ] {
        let path = Path::new(logs.path()).join(log);
        let out = jitgate(&[
            "simulate",
            examples().to_str().unwrap(),
            "--log",
            path.to_str().unwrap(),
        ]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
    // The example service's configuration keeps its store in memory: nothing to operate on.
    let config = repo().join("examples/service/jitgate.toml");
    let migrate = jitgate(&["migrate", "--config", config.to_str().unwrap()]);
    let (_, stderr) = text(&migrate);
    assert_eq!(migrate.status.code(), Some(2));
    assert!(stderr.contains("PostgreSQL store"), "{stderr}");
    let requests = jitgate(&["requests", "--config", config.to_str().unwrap()]);
    let (_, stderr) = text(&requests);
    assert_eq!(requests.status.code(), Some(2));
    assert!(stderr.contains("in memory"), "{stderr}");
}
