//! `jitgate check` and `jitgate simulate` on a generated deployment: 50 policies (standing
//! permits, per-team `@jit` rules, forbids with open scopes and conditions), 10,000 entities
//! (users in 100 nested teams, services in environments), and a log of 1,000,000 actions over
//! 30 days. Runs the real binary. Run: `cargo bench -p jitgate-cli --bench simulate`
//! (`JITGATE_SIMULATE_ROWS` changes the log's length).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const TEAMS: usize = 100;
const USERS: usize = 9_000;
const SERVICES: usize = 800;
const ENVS: usize = 4;
const ACTIONS: [&str; 8] = [
    "read_logs",
    "restart",
    "deploy",
    "migrate",
    "read_data",
    "scale",
    "rollback",
    "debug",
];

fn schema() -> String {
    let mut s = String::from("entity Team in [Team];\nentity User in [Team] { contractor: Bool };\nentity Env;\nentity Service in [Env, Team];\n");
    for a in ACTIONS {
        let _ = writeln!(
            s,
            "action \"{a}\" appliesTo {{ principal: [User], resource: [Service], context: {{ \"ticket\"?: String }} }};"
        );
    }
    s
}

fn policies() -> String {
    let mut p = String::new();
    for i in 0..50 {
        let (team, action, env) = (i * 2 % TEAMS, ACTIONS[i % ACTIONS.len()], i % ENVS);
        let _ = match i % 5 {
            0 => writeln!(
                p,
                "@id(\"p{i}\")\npermit(principal in Team::\"t{team}\", action == Action::\"{action}\", resource in Env::\"e{env}\");"
            ),
            1 | 2 => writeln!(
                p,
                "@id(\"p{i}\")\n@jit(\"approval\")\n@reviewers(\"Team::\\\"t{}\\\"\")\n@max_duration(\"PT2H\")\npermit(principal in Team::\"t{team}\", action == Action::\"{action}\", resource in Env::\"e{env}\");",
                (team + 1) % TEAMS
            ),
            3 => writeln!(
                p,
                "@id(\"p{i}\")\n@jit(\"approval\")\n@auto_approve(\"true\")\n@max_duration(\"PT1H\")\npermit(principal in Team::\"t{team}\", action == Action::\"{action}\", resource);"
            ),
            _ => writeln!(
                p,
                "@id(\"p{i}\")\nforbid(principal, action == Action::\"{action}\", resource in Env::\"e{env}\") when {{ principal.contractor }};"
            ),
        };
    }
    p
}

fn entities() -> String {
    let mut e = Vec::new();
    for t in 0..TEAMS {
        let parent = if t >= 10 {
            format!(r#"{{"type":"Team","id":"t{}"}}"#, t % 10)
        } else {
            String::new()
        };
        e.push(format!(
            r#"{{"uid":{{"type":"Team","id":"t{t}"}},"attrs":{{}},"parents":[{parent}]}}"#
        ));
    }
    for u in 0..USERS {
        e.push(format!(
            r#"{{"uid":{{"type":"User","id":"u{u}"}},"attrs":{{"contractor":{}}},"parents":[{{"type":"Team","id":"t{}"}}]}}"#,
            u % 17 == 0,
            u % TEAMS
        ));
    }
    for v in 0..ENVS {
        e.push(format!(
            r#"{{"uid":{{"type":"Env","id":"e{v}"}},"attrs":{{}},"parents":[]}}"#
        ));
    }
    for s in 0..SERVICES {
        e.push(format!(
            r#"{{"uid":{{"type":"Service","id":"s{s}"}},"attrs":{{}},"parents":[{{"type":"Env","id":"e{}"}},{{"type":"Team","id":"t{}"}}]}}"#,
            s % ENVS,
            s % TEAMS
        ));
    }
    format!("[{}]", e.join(",\n"))
}

fn log(rows: usize) -> String {
    let mut out = String::with_capacity(rows * 140);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..rows {
        // xorshift: a fixed, repeatable log.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (mut u, mut a, mut s) = (
            (x % USERS as u64) as usize,
            ((x >> 20) % 8) as usize,
            ((x >> 32) % SERVICES as u64) as usize,
        );
        if x % 10 < 7 {
            // Seven rows in ten are what some policy is about: a member of its team, its
            // action, a service in its environment.
            let i = ((x >> 8) % 50) as usize;
            u = (i * 2 % TEAMS) + TEAMS * (u / TEAMS);
            a = i % ACTIONS.len();
            s = (i % ENVS) + ENVS * (s / ENVS);
        }
        let _ = writeln!(
            out,
            r#"{{"principal":"User::\"u{u}\"","action":"Action::\"{}\"","resource":"Service::\"s{s}\"","context":{{"ticket":"INC-{i}"}},"time":"2026-11-{:02}T09:00:00Z"}}"#,
            ACTIONS[a],
            1 + i % 30
        );
    }
    out
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rows: usize = std::env::var("JITGATE_SIMULATE_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("jitgate-simulate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("app.cedarschema"), schema()).unwrap();
    std::fs::write(dir.join("access.cedar"), policies()).unwrap();
    std::fs::write(dir.join("entities.json"), entities()).unwrap();
    let log_path = dir.join("actions.jsonl");
    std::fs::write(&log_path, log(rows)).unwrap();
    let bin = env!("CARGO_BIN_EXE_jitgate");
    let run = |args: &[&str]| {
        let started = Instant::now();
        let out = Command::new(bin).args(args).output().expect("jitgate runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (started.elapsed().as_secs_f64(), out.stdout)
    };
    let d = dir.to_str().unwrap();
    let checks: Vec<f64> = (0..3).map(|_| run(&["check", d]).0).collect();
    println!(
        "check: 50 policies, 10,000 entities: {:.3} s, {:.3} s, {:.3} s (whole process)",
        checks[0], checks[1], checks[2]
    );
    for round in 1..=2 {
        let (wall, stdout) = run(&["simulate", d, "--log", log_path.to_str().unwrap(), "--format", "json"]);
        let report: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
        let decide = report["decide_seconds"].as_f64().unwrap();
        println!(
            "simulate round {round}: {rows} rows decided in {decide:.2} s = {:.0} decisions/s; whole process (reading and parsing the log, the report) {wall:.2} s; totals {}",
            rows as f64 / decide,
            report["totals"]
        );
    }
    std::fs::remove_dir_all(Path::new(&dir)).ok();
}
