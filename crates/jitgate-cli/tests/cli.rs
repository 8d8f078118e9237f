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
    assert!(stdout.starts_with("ok: 11 policies"), "{stdout}");

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
    assert_eq!(report["policies"], 11);
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
    assert_eq!(answer["decision"], "needs_approval");
    assert_eq!(answer["flow"]["max_duration"], "1h");
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
