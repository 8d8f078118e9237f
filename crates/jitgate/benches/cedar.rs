//! `Gate::authorize` on Cedar against a bare `Authorizer::is_authorized` on the same policies,
//! in the same run. Run: `cargo bench -p jitgate --bench cedar`.
//!
//! The set: 50 policies (20 `@jit` rules, 20 standing permits, 5 forbids, 5 review rules) over
//! an organisation three levels deep (org → 5 departments → 20 teams → 10,000 users) and 200
//! databases, about 10,200 entities. Grants: 1k and 1M in the in-memory store. `Gate::authorize`
//! is measured without and with the decision cache.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{Authorizer, Context, Entities, Entity, EntityUid, PolicySet, Request};
use chrono::Duration;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use jitgate::cedar::{CedarPolicy, StaticEntities};
use jitgate::{
    Action, Decision, EntityRef, Flow, Gate, GrantId, ManualClock, MemoryStore, NewRequest, RequestId, Store,
    UseRecording,
};
// Filling the store with grants past the rules needs the state machine (feature `testing`).
use jitgate_core::machine;

const SCHEMA: &str = r#"
entity Team in [Team];
entity User in [Team];
entity Env;
entity Database in [Env, Team];
action "read_logs" appliesTo { principal: [User], resource: [Database] };
action "db_restart" appliesTo { principal: [User], resource: [Database] };
action "db_drop" appliesTo { principal: [User], resource: [Database] };
"#;

fn uid(t: &str, id: &str) -> EntityUid {
    EntityUid::from_str(&format!("{t}::\"{id}\"")).unwrap()
}

fn entities() -> Vec<Entity> {
    let mut v = vec![Entity::new_no_attrs(uid("Team", "org"), HashSet::new())];
    for d in 0..5 {
        v.push(Entity::new_no_attrs(
            uid("Team", &format!("dept{d}")),
            HashSet::from([uid("Team", "org")]),
        ));
        for t in 0..4 {
            let team = format!("team{d}-{t}");
            v.push(Entity::new_no_attrs(
                uid("Team", &team),
                HashSet::from([uid("Team", &format!("dept{d}"))]),
            ));
            for u in 0..500 {
                v.push(Entity::new_no_attrs(
                    uid("User", &format!("u{d}-{t}-{u}")),
                    HashSet::from([uid("Team", &team)]),
                ));
            }
            for db in 0..10 {
                let env = if db % 2 == 0 { "prod" } else { "staging" };
                v.push(Entity::new_no_attrs(
                    uid("Database", &format!("db{d}-{t}-{db}")),
                    HashSet::from([uid("Team", &team), uid("Env", env)]),
                ));
            }
        }
    }
    v.push(Entity::new_no_attrs(uid("Env", "prod"), HashSet::new()));
    v.push(Entity::new_no_attrs(uid("Env", "staging"), HashSet::new()));
    v
}

fn policies() -> String {
    let mut s = String::new();
    for d in 0..5 {
        for t in 0..4 {
            let team = format!("team{d}-{t}");
            s += &format!(
                "@id(\"restart-{team}\") @jit(\"approval\") @reviewers(\"Team::\\\"dept{d}\\\"\") @max_duration(\"PT1H\")\n\
                 permit(principal in Team::\"{team}\", action == Action::\"db_restart\", resource in Team::\"{team}\");\n\
                 @id(\"logs-{team}\")\n\
                 permit(principal in Team::\"{team}\", action == Action::\"read_logs\", resource in Team::\"{team}\");\n"
            );
        }
        s += &format!(
            "@id(\"review-dept{d}\")\npermit(principal in Team::\"dept{d}\", action == Jit::Action::\"review\", resource)\n\
             when {{ resource.requester != principal }};\n\
             @id(\"no-drop-{d}\")\nforbid(principal in Team::\"dept{d}\", action == Action::\"db_drop\", resource in Env::\"prod\");\n"
        );
    }
    s
}

/// Fills the store to `n` grants (held by principals outside the organisation, on many scopes).
async fn grow(store: &MemoryStore, n: usize, now: chrono::DateTime<chrono::Utc>) {
    let flow = Arc::new(Flow::new(Duration::hours(8)).with_auto_approve(true));
    for i in store.grant_count()..n {
        let action = Action::new(
            EntityRef::new("Action", "db_restart"),
            EntityRef::new("Database", format!("db{}", i % 200)),
        );
        let ask = NewRequest::new(EntityRef::new("User", format!("filler{i}")), action, Duration::hours(4));
        let commit = machine::open(RequestId::new_random(), GrantId::new_random(), ask, &flow, None, now)
            .unwrap()
            .commit;
        store.commit(commit).await.unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let load = |cache: usize| {
        rt.block_on(
            CedarPolicy::builder()
                .schema("bench.cedarschema", SCHEMA)
                .policies("bench.cedar", &policies())
                .entities(Arc::new(StaticEntities(entities())))
                .decision_cache(cache)
                .build(),
        )
        .expect("bench policies load")
    };
    let policy = Arc::new(load(0));
    let review_policy = Arc::clone(&policy);
    let cached_policy = load(10_000);
    assert_eq!(policy.policies().count(), 50);
    // Bare Cedar: the same 50 policies, the same entities, a prebuilt request.
    let bare_set = PolicySet::from_policies(policy.policies().cloned()).unwrap();
    let bare_entities = Entities::from_entities(entities(), Some(policy.schema())).unwrap();
    let authorizer = Authorizer::new();

    let clock = Arc::new(ManualClock::default());
    let store = Arc::new(MemoryStore::new());
    // Beside bare Cedar, uses are not recorded (the `authorize` bench measures recording): with
    // no writer task here the default buffer would fill and every call would write its record.
    let gate = Gate::builder()
        .policy(policy)
        .store(store.clone())
        .clock(clock.clone())
        .use_recording(UseRecording::Off)
        .build()
        .unwrap();
    let cached = Gate::builder()
        .policy(Arc::new(cached_policy))
        .store(store.clone())
        .clock(clock.clone())
        .use_recording(UseRecording::Off)
        .build()
        .unwrap();
    let holder = EntityRef::new("User", "u2-1-7");
    let restart = Action::new(
        EntityRef::new("Action", "db_restart"),
        EntityRef::new("Database", "db2-1-4"),
    );
    let logs = Action::new(
        EntityRef::new("Action", "read_logs"),
        EntityRef::new("Database", "db2-1-4"),
    );
    // The holder's own grant, through the real flow.
    rt.block_on(async {
        let ask = NewRequest::new(holder.clone(), restart.clone(), Duration::hours(1));
        let jitgate::RequestOutcome::Pending(r) = gate.request(ask).await.unwrap() else {
            panic!()
        };
        gate.approve(r.id, &EntityRef::new("User", "u2-0-0"), None)
            .await
            .unwrap()
            .grant
            .unwrap();
    });
    let bare_request = |a: &Action| {
        Request::new(
            uid("User", &holder.id),
            uid("Action", &a.scope.action.id),
            uid("Database", &a.scope.resource.id),
            Context::empty(),
            None,
        )
        .unwrap()
    };
    let (bare_restart, bare_logs) = (bare_request(&restart), bare_request(&logs));

    let mut group = c.benchmark_group("cedar");
    // A review decision: the access request as a Cedar entity, added for this call only.
    let review_request = rt.block_on(async {
        let asker = EntityRef::new("User", "u2-1-8");
        let ask = NewRequest::new(asker, restart.clone(), Duration::minutes(30));
        match gate.request(ask).await.unwrap() {
            jitgate::RequestOutcome::Pending(r) => r,
            other => panic!("{other:?}"),
        }
    });
    let reviewer = EntityRef::new("User", "u2-0-1");
    group.bench_function("reviewer_standing", |b| {
        b.iter(|| jitgate::Policy::reviewer_standing(&*review_policy, &reviewer, &review_request).unwrap())
    });
    group.bench_function("bare_is_authorized/eligible", |b| {
        b.iter(|| authorizer.is_authorized(&bare_restart, &bare_set, &bare_entities))
    });
    group.bench_function("bare_is_authorized/standing", |b| {
        b.iter(|| authorizer.is_authorized(&bare_logs, &bare_set, &bare_entities))
    });
    group.bench_function("gate_authorize/standing", |b| {
        b.to_async(&rt).iter(|| gate.authorize(&logs, &holder))
    });
    group.bench_function("gate_authorize_cached/standing", |b| {
        b.to_async(&rt).iter(|| cached.authorize(&logs, &holder))
    });
    for n in [1_000usize, 1_000_000] {
        rt.block_on(grow(&store, n, jitgate::Clock::now(&*clock)));
        assert!(matches!(
            rt.block_on(gate.authorize(&restart, &holder)),
            Decision::Allow { .. }
        ));
        group.bench_with_input(BenchmarkId::new("gate_authorize/grant_allow", n), &n, |b, _| {
            b.to_async(&rt).iter(|| gate.authorize(&restart, &holder));
        });
        assert!(matches!(
            rt.block_on(cached.authorize(&restart, &holder)),
            Decision::Allow { .. }
        ));
        group.bench_with_input(BenchmarkId::new("gate_authorize_cached/grant_allow", n), &n, |b, _| {
            b.to_async(&rt).iter(|| cached.authorize(&restart, &holder));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
