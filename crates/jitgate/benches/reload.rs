//! Hot policy reload under load: a 500-policy Cedar set is rebuilt and swapped in once a second
//! (alternating two versions) while `authorize` runs at 4,000 calls per second. Reports every
//! call's latency, the p50/p99/max of calls that overlapped a reload (from the start of the
//! build to 50 ms after the swap) beside those that did not, and any call that erred.
//! Run: `cargo bench -p jitgate --bench reload` (`JITGATE_BENCH_SECONDS`, default 10).

use std::sync::Arc;
use std::time::{Duration, Instant};

use jitgate::cedar::{entities_from_json, CedarPolicy, CedarPolicyBuilder, LiveCedar, StaticEntities};
use jitgate::{Action, Decision, DenyReason, EntityRef, Gate, MemoryStore, UseRecording};

const TEAMS: usize = 50;
const USERS: usize = 2_000;
const ACTIONS: usize = 8;
const ENVS: usize = 10;
const POLICIES: usize = 500;
const RATE: u64 = 4_000;

fn schema() -> String {
    let actions: Vec<String> = (0..ACTIONS)
        .map(|a| format!("action \"a{a}\" appliesTo {{ principal: [User], resource: [Service] }};"))
        .collect();
    format!(
        "entity Team;\nentity User in [Team];\nentity Env;\nentity Service in [Env];\n{}",
        actions.join("\n")
    )
}

/// 500 policies: per-team standing permits and `@jit` rules, and a few forbids; `edition`
/// changes one comment, so the two editions are two versions of the same rules.
fn policies(edition: u32) -> String {
    let mut text = format!("// edition {edition}\n");
    for i in 0..POLICIES {
        let (team, action, env) = (i % TEAMS, i % ACTIONS, i % ENVS);
        let rule = match i % 10 {
            0 => format!(
                "@id(\"p{i}\")\nforbid(principal in Team::\"t{team}\", action == Action::\"a{action}\", resource in Env::\"e{env}\") when {{ context has blocked }};\n"
            ),
            1..=4 => format!(
                "@id(\"p{i}\")\n@jit(\"approval\")\n@reviewers(\"Team::\\\"t{}\\\"\")\n@max_duration(\"PT1H\")\npermit(principal in Team::\"t{team}\", action == Action::\"a{action}\", resource in Env::\"e{env}\");\n",
                (team + 1) % TEAMS
            ),
            _ => format!(
                "@id(\"p{i}\")\npermit(principal in Team::\"t{team}\", action == Action::\"a{action}\", resource in Env::\"e{env}\");\n"
            ),
        };
        text.push_str(&rule);
    }
    text
}

fn entities() -> String {
    let mut e = Vec::new();
    for t in 0..TEAMS {
        e.push(format!(
            r#"{{"uid":{{"type":"Team","id":"t{t}"}},"attrs":{{}},"parents":[]}}"#
        ));
    }
    for u in 0..USERS {
        e.push(format!(
            r#"{{"uid":{{"type":"User","id":"u{u}"}},"attrs":{{}},"parents":[{{"type":"Team","id":"t{}"}}]}}"#,
            u % TEAMS
        ));
    }
    for v in 0..ENVS {
        e.push(format!(
            r#"{{"uid":{{"type":"Env","id":"e{v}"}},"attrs":{{}},"parents":[]}}"#
        ));
        e.push(format!(
            r#"{{"uid":{{"type":"Service","id":"s{v}"}},"attrs":{{}},"parents":[{{"type":"Env","id":"e{v}"}}]}}"#
        ));
    }
    format!("[{}]", e.join(","))
}

fn recipe(edition: u32, entities: &Arc<StaticEntities>) -> CedarPolicyBuilder {
    CedarPolicy::builder()
        .schema("bench.cedarschema", &schema())
        .policies("bench.cedar", &policies(edition))
        .entities(entities.clone())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let seconds: u64 = std::env::var("JITGATE_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let entities = Arc::new(StaticEntities(entities_from_json(&entities()).expect("entities")));
        let started = Instant::now();
        let first = Arc::new(recipe(0, &entities).build().await.expect("the set loads"));
        let build_time = started.elapsed();
        let gate = Gate::builder()
            .policy(first.clone())
            .store(Arc::new(MemoryStore::new()))
            .use_recording(UseRecording::Off)
            .build()
            .expect("gate");
        let live = LiveCedar::new(gate.clone(), recipe(0, &entities), first);

        // The load: RATE calls a second, each timed; (start offset, latency, erred).
        let load = {
            let gate = gate.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(1));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let per_tick = RATE / 1_000;
                let mut calls = Vec::with_capacity((RATE * seconds) as usize);
                let t0 = Instant::now();
                let mut n = 0usize;
                while t0.elapsed() < Duration::from_secs(seconds) {
                    tick.tick().await;
                    for _ in 0..per_tick {
                        let user = EntityRef::new("User", format!("u{}", n % USERS));
                        let action = Action::new(
                            EntityRef::new("Action", format!("a{}", n % ACTIONS)),
                            EntityRef::new("Service", format!("s{}", (n / 7) % ENVS)),
                        );
                        n += 1;
                        let at = t0.elapsed();
                        let start = Instant::now();
                        let d = gate.authorize(&action, &user).await;
                        let took = start.elapsed();
                        let erred = matches!(
                            d,
                            Decision::Deny {
                                reason: DenyReason::PolicyError(_) | DenyReason::StoreError(_) | DenyReason::Timeout { .. },
                                ..
                            }
                        );
                        calls.push((at, took, erred));
                    }
                }
                (t0, calls)
            })
        };
        // The reloads: once a second, alternating editions; (build start, swap) offsets.
        let t0 = Instant::now();
        let mut reloads = Vec::new();
        for i in 1..seconds {
            tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + Duration::from_secs(i))).await;
            let begin = t0.elapsed();
            let version = live.load(recipe(i as u32 % 2, &entities)).await.expect("the set reloads");
            reloads.push((begin, t0.elapsed(), version));
        }
        let (load_t0, calls) = load.await.expect("load");
        // Align the two clocks (both started within a millisecond of each other).
        let skew = t0.saturating_duration_since(load_t0);
        let near_reload = |at: Duration| {
            reloads
                .iter()
                .any(|(b, s, _)| at + skew >= *b && at + skew <= *s + Duration::from_millis(50))
        };
        let (mut during, mut outside): (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
        for (at, took, _) in &calls {
            if near_reload(*at) {
                during.push(*took);
            } else {
                outside.push(*took);
            }
        }
        during.sort();
        outside.sort();
        let errors = calls.iter().filter(|c| c.2).count();
        let swaps: Vec<Duration> = reloads.iter().map(|(b, s, _)| *s - *b).collect();
        println!(
            "reload bench: {POLICIES} policies, {USERS} users, {RATE} calls/s for {seconds} s on 2 workers; build alone {:.1} ms",
            build_time.as_secs_f64() * 1e3
        );
        println!(
            "reloads: {} (build + swap {:.1}..{:.1} ms); calls: {} ({} erred); policy replacements {}",
            reloads.len(),
            swaps.iter().min().unwrap_or(&Duration::ZERO).as_secs_f64() * 1e3,
            swaps.iter().max().unwrap_or(&Duration::ZERO).as_secs_f64() * 1e3,
            calls.len(),
            errors,
            gate.policy_replacements()
        );
        for (name, set) in [("outside reloads", &outside), ("during reloads", &during)] {
            println!(
                "{name:>16}: {:>6} calls  p50 {:>7.1} µs  p99 {:>7.1} µs  max {:>8.1} µs",
                set.len(),
                percentile(set, 0.50).as_secs_f64() * 1e6,
                percentile(set, 0.99).as_secs_f64() * 1e6,
                set.last().copied().unwrap_or_default().as_secs_f64() * 1e6
            );
        }
        assert_eq!(errors, 0, "no call may err during a reload");
    });
}
