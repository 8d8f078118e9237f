//! `Gate::authorize` on a realistic policy set, beside bare Cedar's `is_authorized` on the same
//! policies and entities, in the same run. Run: `cargo bench -p jitgate --bench realistic`
//! (`JITGATE_USERS=10000` or `100000` for one directory size, both by default;
//! `JITGATE_GRANTS=1000` for one store size, 1k and 1M by default; `JITGATE_REFRESHES=0` to
//! skip timing the first call after a refresh — on an idle thread, and on a thread that keeps
//! serving while another refreshes —, 15 times each by default).
//!
//! The set (generated here, written in the style of a platform team, not shaped for jitgate):
//! 51 service policies — 4 open-scope forbids (a blocked network read from `context.source_ip`,
//! contractors on prod read from `principal.contractor`, no drops on prod, exec only on call),
//! a `@jit` restart rule and a standing read rule per team (20 teams), a `@jit` migration rule
//! per department reading `context.ticket`, a standing on-call rule and a `@jit` staging exec
//! rule — and 3 review/revoke policies. Users sit in nested teams (org → 5 departments → 20
//! teams; one in ten on call, one in ten a contractor); 8 actions, each with a context of
//! `ticket` and `source_ip` (an `ipaddr`). Every call carries its own ticket.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use cedar_policy::{Authorizer, Context, Entities, Entity, EntityUid, PolicySet, Request, RestrictedExpression};
use chrono::Duration;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use jitgate::cedar::{CedarPolicy, StaticEntities};
use jitgate::{
    Action, AttrValue, AuditStreamer, Decision, EntityRef, Flow, Gate, GrantId, ManualClock, MemoryStore, NewRequest,
    RequestId, Store, UseRecording,
};
// Filling the store with grants past the rules needs the state machine (feature `testing`).
use jitgate::audit::{AuditRecord, RecordSink, SinkError};
use jitgate_core::machine;

const SCHEMA: &str = r#"
entity Team in [Team];
entity User in [Team] = { "contractor": Bool };
entity Env;
entity Service in [Env, Team];
entity Database in [Env, Team];
type Call = { "ticket"?: String, "source_ip": ipaddr };
action "read_logs", "deploy", "restart", "exec" appliesTo { principal: [User], resource: [Service], context: Call };
action "db_read", "db_restart", "db_migrate", "db_drop" appliesTo { principal: [User], resource: [Database], context: Call };
"#;

const TEAMS: usize = 20;
const DEPTS: usize = 5;

fn uid(t: &str, id: &str) -> EntityUid {
    EntityUid::from_str(&format!("{t}::\"{id}\"")).unwrap()
}

fn team(name: &str, parents: &[&str]) -> Entity {
    Entity::new_no_attrs(uid("Team", name), parents.iter().map(|p| uid("Team", p)).collect())
}

fn entities(users: usize) -> Vec<Entity> {
    let mut v = vec![team("org", &[]), team("oncall", &[]), team("leads", &[])];
    v.push(Entity::new_no_attrs(uid("Env", "prod"), HashSet::new()));
    v.push(Entity::new_no_attrs(uid("Env", "staging"), HashSet::new()));
    for d in 0..DEPTS {
        v.push(team(&format!("dept{d}"), &["org"]));
        v.push(team(&format!("leads-dept{d}"), &["leads"]));
        v.push(user(&format!("lead{d}"), &[&format!("leads-dept{d}")], false));
    }
    for t in 0..TEAMS {
        v.push(team(&format!("team{t}"), &[&format!("dept{}", t % DEPTS)]));
        for k in 0..4 {
            let env = if k % 2 == 0 { "prod" } else { "staging" };
            let parents = HashSet::from([uid("Team", &format!("team{t}")), uid("Env", env)]);
            v.push(Entity::new_no_attrs(
                uid("Service", &format!("svc{t}-{k}")),
                parents.clone(),
            ));
            v.push(Entity::new_no_attrs(uid("Database", &format!("db{t}-{k}")), parents));
        }
    }
    for i in 0..users {
        let home = format!("team{}", i % TEAMS);
        let groups: Vec<&str> = if i % 10 == 0 {
            vec![&home, "oncall"]
        } else {
            vec![&home]
        };
        v.push(user(&format!("u{i}"), &groups, i % 10 == 9));
    }
    v
}

fn user(id: &str, groups: &[&str], contractor: bool) -> Entity {
    Entity::new(
        uid("User", id),
        [("contractor".to_owned(), RestrictedExpression::new_bool(contractor))].into(),
        groups.iter().map(|g| uid("Team", g)).collect(),
    )
    .unwrap()
}

fn policies() -> String {
    let mut s = String::from(
        r#"
@id("blocked-net")
forbid(principal, action, resource) when { context.source_ip.isInRange(ip("203.0.113.0/24")) };
@id("no-contractor-prod")
forbid(principal, action, resource in Env::"prod") when { principal.contractor };
@id("no-drop-prod")
forbid(principal, action == Action::"db_drop", resource in Env::"prod");
@id("exec-on-call-only")
forbid(principal, action == Action::"exec", resource) unless { principal in Team::"oncall" };
@id("on-call-restart")
permit(principal in Team::"oncall", action == Action::"restart", resource);
@id("exec-staging") @jit("approval") @reviewers("Team::\"leads\"") @max_duration("PT15M")
permit(principal, action == Action::"exec", resource in Env::"staging");
@id("leads-review")
permit(principal in Team::"leads", action == Jit::Action::"review", resource) when { resource.requester != principal };
@id("leads-revoke")
permit(principal in Team::"leads", action == Jit::Action::"revoke", resource);
@id("no-contractor-review")
forbid(principal, action == Jit::Action::"review", resource) when { principal.contractor };
"#,
    );
    for t in 0..TEAMS {
        let d = t % DEPTS;
        s += &format!(
            "@id(\"restart-team{t}\") @jit(\"approval\") @reviewers(\"Team::\\\"leads-dept{d}\\\"\") @max_duration(\"PT1H\")\n\
             permit(principal in Team::\"team{t}\", action == Action::\"db_restart\", resource in Team::\"team{t}\");\n\
             @id(\"read-team{t}\")\n\
             permit(principal in Team::\"team{t}\", action in [Action::\"read_logs\", Action::\"db_read\"], resource in Team::\"team{t}\");\n"
        );
    }
    for d in 0..DEPTS {
        s += &format!(
            "@id(\"migrate-dept{d}\") @jit(\"approval\") @reviewers(\"Team::\\\"leads-dept{d}\\\"\") @max_duration(\"PT2H\")\n\
             permit(principal in Team::\"dept{d}\", action == Action::\"db_migrate\", resource in Team::\"dept{d}\")\n\
             when {{ context has ticket && context.ticket like \"CHG-*\" }};\n"
        );
    }
    s
}

/// A SIEM that takes every record (what it does with them is not measured here).
struct Siem;

#[async_trait::async_trait]
impl RecordSink for Siem {
    fn name(&self) -> &str {
        "siem"
    }
    async fn publish(&self, records: &[AuditRecord]) -> Result<(), SinkError> {
        std::hint::black_box(records);
        Ok(())
    }
}

/// Fills the store to `n` grants (held by principals outside the directory, on many scopes),
/// streaming the audit chain to the SIEM every 10,000 grants (the store lets go of what it took).
async fn grow(store: &MemoryStore, streamer: &AuditStreamer, n: usize, now: chrono::DateTime<chrono::Utc>) {
    let flow = Arc::new(Flow::new(Duration::hours(8)).with_auto_approve(true));
    for i in store.grant_count()..n {
        let action = Action::new(
            EntityRef::new("Action", "db_restart"),
            EntityRef::new("Database", format!("db{}-{}", i % TEAMS, i % 4)),
        );
        let ask = NewRequest::new(EntityRef::new("User", format!("filler{i}")), action, Duration::hours(4));
        let commit = machine::open(RequestId::new_random(), GrantId::new_random(), ask, &flow, None, now)
            .unwrap()
            .commit;
        // Routed as a gate without destinations routes them: no outbox rows.
        let events = commit.events().len();
        let commit = commit.routed(vec![Vec::new(); events]);
        store.commit(commit).await.unwrap();
        if i % 10_000 == 9_999 {
            streamer.stream_once().await.unwrap();
        }
    }
    streamer.stream_once().await.unwrap();
}

/// The resident set size of this process, in bytes (Linux; 0 elsewhere).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// One call per decision kind: (name, principal, action, resource).
const KINDS: &[(&str, &str, &str, &str)] = &[
    ("standing", "u1", "read_logs", "svc1-0"),
    ("eligible", "u1", "db_restart", "db1-0"),
    ("forbidden", "u9", "db_restart", "db9-0"),
    ("not_eligible", "u1", "db_restart", "db2-0"),
    ("grant", "u11", "db_restart", "db11-0"),
];

fn resource_type(action: &str) -> &'static str {
    if action.starts_with("db_") {
        "Database"
    } else {
        "Service"
    }
}

/// `n` calls of one kind, each with its own ticket.
fn calls(action: &str, resource: &str, n: usize) -> Vec<Action> {
    (0..n)
        .map(|i| {
            Action::new(
                EntityRef::new("Action", action),
                EntityRef::new(resource_type(action), resource),
            )
            .with_attr("ticket", format!("INC-{i}"))
            .with_attr("source_ip", AttrValue::Ip("10.1.2.3".into()))
        })
        .collect()
}

/// Runs `background` on another thread while calling `call` on this one; then times the first
/// call started after `background` returned, and the one after it.
fn serve_while(call: &mut dyn FnMut(), background: impl FnOnce() + Send) -> [StdDuration; 2] {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            background();
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        while !done.load(std::sync::atomic::Ordering::Acquire) {
            call();
        }
    });
    [(); 2].map(|()| {
        let t = Instant::now();
        call();
        t.elapsed()
    })
}

fn median(mut v: Vec<StdDuration>) -> StdDuration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sizes: Vec<usize> = match std::env::var("JITGATE_USERS") {
        Ok(n) => vec![n.parse().expect("JITGATE_USERS is a number")],
        Err(_) => vec![10_000, 100_000],
    };
    let mut group = c.benchmark_group("realistic");
    for users in sizes {
        // Loading, beside bare Cedar's entity store (the slices are what jitgate adds).
        let before = rss();
        let started = Instant::now();
        let bare_entities_list = entities(users);
        let bare_entities = Entities::from_entities(bare_entities_list, Some(&SCHEMA.parse().unwrap())).unwrap();
        let bare_load = started.elapsed();
        let bare_rss = rss().saturating_sub(before);
        let load = |cache: usize| {
            rt.block_on(
                CedarPolicy::builder()
                    .schema("realistic.cedarschema", SCHEMA)
                    .policies("realistic.cedar", &policies())
                    .principal_type("User")
                    .entities(Arc::new(StaticEntities(entities(users))))
                    .decision_cache(cache)
                    .build(),
            )
            .expect("the realistic set loads")
        };
        let before = rss();
        let started = Instant::now();
        let policy = Arc::new(load(0));
        let jitgate_load = started.elapsed();
        let jitgate_rss = rss().saturating_sub(before);
        let cached_policy = Arc::new(load(100_000));
        let bare_set = PolicySet::from_policies(
            policy
                .policies()
                .filter(|p| !p.to_string().contains("Jit::Action"))
                .cloned(),
        )
        .unwrap();
        assert_eq!(bare_set.policies().count(), 51);
        let slices = policy.slice_stats();
        // The slices alone, built again beside the snapshot: what they add to memory.
        let schema: cedar_policy::Schema = SCHEMA.parse().unwrap();
        let before = rss();
        let started = Instant::now();
        let index = jitgate::cedar::slice::SliceIndex::new(
            &bare_set,
            &bare_entities,
            &schema.principals().cloned().collect(),
            schema.actions(),
        );
        let slice_time = started.elapsed();
        let slice_rss = rss().saturating_sub(before);
        eprintln!(
            "realistic/{users}: load jitgate {jitgate_load:.2?} (RSS +{} MiB) vs bare entities {bare_load:.2?} (RSS +{} MiB); slices: {} keys, {} distinct, built in {slice_time:.2?}, RSS +{} KiB",
            jitgate_rss >> 20,
            bare_rss >> 20,
            slices.keys,
            slices.distinct,
            slice_rss >> 10
        );
        drop(index);

        let clock = Arc::new(ManualClock::default());
        let store = Arc::new(MemoryStore::new().releasing_streamed_audit());
        let gate_on = |p: Arc<CedarPolicy>| {
            Gate::builder()
                .policy(p)
                .store(store.clone())
                .clock(clock.clone())
                .use_recording(UseRecording::Off)
                .build()
                .unwrap()
        };
        let (gate, cached) = (gate_on(Arc::clone(&policy)), gate_on(Arc::clone(&cached_policy)));
        let streamer = gate.audit_streamer().sink(Arc::new(Siem));
        // u11's grant, through the real flow.
        rt.block_on(async {
            let ask = NewRequest::new(
                EntityRef::new("User", "u11"),
                calls("db_restart", "db11-0", 1).remove(0),
                Duration::hours(1),
            );
            let jitgate::RequestOutcome::Pending(r) = gate.request(ask).await.unwrap() else {
                panic!("u11 asks")
            };
            let lead = EntityRef::new("User", format!("lead{}", 11 % DEPTS));
            gate.approve(r.id, &lead, None).await.unwrap().grant.expect("granted");
        });
        let authorizer = Authorizer::new();
        for &(kind, who, action, resource) in KINDS {
            let principal = EntityRef::new("User", who);
            let many = calls(action, resource, 4_096);
            let bare_request = Request::new(
                uid("User", who),
                uid("Action", action),
                uid(resource_type(action), resource),
                Context::from_pairs([
                    ("ticket".to_owned(), RestrictedExpression::new_string("INC-0".into())),
                    ("source_ip".to_owned(), RestrictedExpression::new_ip("10.1.2.3")),
                ])
                .unwrap(),
                None,
            )
            .unwrap();
            let expected = rt.block_on(gate.authorize(&many[0], &principal));
            assert_eq!(rt.block_on(cached.authorize(&many[1], &principal)), expected);
            let bare = authorizer
                .is_authorized(&bare_request, &bare_set, &bare_entities)
                .decision();
            let allows = matches!(expected, Decision::Allow { .. } | Decision::NeedsApproval { .. });
            assert_eq!(allows, bare == cedar_policy::Decision::Allow, "{kind}: {expected:?}");
            group.bench_function(BenchmarkId::new(format!("{users}/bare_is_authorized"), kind), |b| {
                b.iter(|| authorizer.is_authorized(&bare_request, &bare_set, &bare_entities))
            });
            let mut i = 0;
            group.bench_function(BenchmarkId::new(format!("{users}/gate_authorize"), kind), |b| {
                b.to_async(&rt).iter(|| {
                    i = (i + 1) % many.len();
                    gate.authorize(&many[i], &principal)
                })
            });
            group.bench_function(BenchmarkId::new(format!("{users}/gate_authorize_cached"), kind), |b| {
                b.to_async(&rt).iter(|| {
                    i = (i + 1) % many.len();
                    cached.authorize(&many[i], &principal)
                })
            });
        }
        // Every user of the directory restarts one database, each call with its own ticket:
        // the decision cache answers by principal class where the action's policies cannot
        // tell a class's members apart, so one call per class misses, not one per user.
        let (db, stats_before) = (
            calls("db_restart", "db1-0", 1).remove(0),
            cached_policy.decision_cache_stats(),
        );
        let directory: Vec<(EntityRef, Action)> = (0..users)
            .map(|i| {
                let call = db.clone().with_attr("ticket", format!("CHG-{i}"));
                (EntityRef::new("User", format!("u{i}")), call)
            })
            .collect();
        let pass = |g: &Gate| {
            let started = Instant::now();
            for (who, call) in &directory {
                std::hint::black_box(rt.block_on(g.authorize(call, who)));
            }
            started.elapsed() / u32::try_from(users).unwrap()
        };
        let (uncached_pass, cached_pass) = (pass(&gate), pass(&cached));
        let stats = cached_policy.decision_cache_stats();
        eprintln!(
            "realistic/{users}: db_restart by each of the {users} users once: {cached_pass:.2?} a call cached ({} misses, {} hits), {uncached_pass:.2?} uncached",
            stats.misses - stats_before.misses,
            stats.hits - stats_before.hits
        );
        // The first call after an entity refresh against a warm one (slices are built with the
        // snapshot), timed one call at a time over 15 refreshes. On this kind of machine any
        // call made after the thread spent a few milliseconds elsewhere runs cold, refresh or
        // not, bare Cedar's too: so the same calls are also timed after the thread spun (no
        // memory touched) for as long as the refresh took — what is left between the two is
        // what the refresh itself costs the first call.
        let (who, action, resource) = ("u1", "db_restart", "db1-0");
        let call = calls(action, resource, 1).remove(0);
        let principal = EntityRef::new("User", who);
        let bare_call = Request::new(
            uid("User", who),
            uid("Action", action),
            uid(resource_type(action), resource),
            Context::from_pairs([("source_ip".to_owned(), RestrictedExpression::new_ip("10.1.2.3"))]).unwrap(),
            None,
        )
        .unwrap();
        let spin = |d: StdDuration| {
            let t = Instant::now();
            while t.elapsed() < d {
                std::hint::spin_loop();
            }
        };
        let timed = |f: &mut dyn FnMut()| {
            let t = Instant::now();
            f();
            t.elapsed()
        };
        let mut after: [Vec<StdDuration>; 5] = Default::default();
        // `JITGATE_REFRESHES=0` skips this part (under valgrind it takes a quarter of an hour).
        let refreshes =
            std::env::var("JITGATE_REFRESHES").map_or(15, |n| n.parse().expect("JITGATE_REFRESHES is a number"));
        for _ in 0..refreshes {
            let refreshing = timed(&mut || rt.block_on(policy.refresh_entities()).unwrap());
            let mut jit = || {
                std::hint::black_box(rt.block_on(gate.authorize(&call, &principal)));
            };
            after[0].push(timed(&mut jit));
            after[1].push(timed(&mut jit));
            spin(refreshing);
            after[2].push(timed(&mut jit));
            let mut bare = || {
                std::hint::black_box(authorizer.is_authorized(&bare_call, &bare_set, &bare_entities));
            };
            bare();
            spin(refreshing);
            after[3].push(timed(&mut bare));
            after[4].push(timed(&mut bare));
        }
        let [refreshed, warm, gap, bare_gap, bare_warm] = after.map(median);
        eprintln!(
            "realistic/{users}: first call after a refresh {refreshed:.2?}, after as long spinning without one {gap:.2?}, warm {warm:.2?}; bare Cedar after as long spinning {bare_gap:.2?}, warm {bare_warm:.2?} (medians of {refreshes}); slices computed on a call: {}",
            policy.slice_stats().overflow
        );
        // As a service runs it: the refresh on another thread (the entity refresher) while this
        // thread keeps answering the same call; timed, the first call this thread starts once
        // the new snapshot is in place and the one after it — beside the same with the other
        // thread spinning as long instead of refreshing.
        let mut serving: [Vec<StdDuration>; 4] = Default::default();
        for _ in 0..refreshes {
            let mut jit = || {
                std::hint::black_box(rt.block_on(gate.authorize(&call, &principal)));
            };
            let refreshing = std::sync::Mutex::new(StdDuration::ZERO);
            let [first, second] = serve_while(&mut jit, || {
                let background = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let t = Instant::now();
                background.block_on(policy.refresh_entities()).unwrap();
                *refreshing.lock().unwrap() = t.elapsed();
            });
            serving[0].push(first);
            serving[1].push(second);
            let spun = *refreshing.lock().unwrap();
            let [first, second] = serve_while(&mut jit, || spin(spun));
            serving[2].push(first);
            serving[3].push(second);
        }
        let [refreshed, warm, spun, spun_warm] = serving.map(median);
        eprintln!(
            "realistic/{users}: refreshed on another thread while this one serves: first call after {refreshed:.2?}, the next {warm:.2?}; the other thread spinning as long instead: {spun:.2?}, {spun_warm:.2?} (medians of {refreshes})"
        );
        // A cached hit with a per-call ticket, as the store grows.
        let sizes: Vec<usize> = match std::env::var("JITGATE_GRANTS") {
            Ok(n) => vec![n.parse().expect("JITGATE_GRANTS is a number")],
            Err(_) => vec![1_000, 1_000_000],
        };
        // The calls are made once, before the store grows, so that every size reads the same
        // inputs from the same memory: what changes between sizes is the store alone (made
        // after a 1M fill, they landed wherever its heap had room, and cost the 1M hit more than
        // the store did).
        let (_, who, action, resource) = KINDS[4];
        let principal = EntityRef::new("User", who);
        let many = calls(action, resource, 4_096);
        for grants in sizes {
            let (before, had) = (rss(), store.grant_count());
            rt.block_on(grow(&store, &streamer, grants, jitgate::Clock::now(&*clock)));
            if grants >= 100_000 {
                // Each grown grant is active, with its approved request and its audit records.
                eprintln!(
                    "realistic/{users}: memory store RSS per active grant, {had} → {grants}: {} bytes ({} audit records in memory)",
                    rss().saturating_sub(before) / (grants - had).max(1),
                    store.audit_len()
                );
            }
            let mut i = 0;
            group.bench_function(
                BenchmarkId::new(format!("{users}/gate_authorize_cached/grant_at"), grants),
                |b| {
                    b.to_async(&rt).iter(|| {
                        i = (i + 1) % many.len();
                        cached.authorize(&many[i], &principal)
                    })
                },
            );
        }
        let stats = cached_policy.decision_cache_stats();
        eprintln!(
            "realistic/{users}: decision cache {} hits, {} misses",
            stats.hits, stats.misses
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(StdDuration::from_secs(2)).warm_up_time(StdDuration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
