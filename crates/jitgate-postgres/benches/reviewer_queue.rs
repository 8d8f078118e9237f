//! A reviewer's queue (`Gate::pending_for_reviewer`, first page of 50) while 10 requests wait
//! for the reviewer and 10 or 100,000 unrelated requests (for another team) wait too, on the
//! in-memory store and on PostgreSQL. "scan" is the gate without the reviewer index (a
//! policy that does not name the reviewer's groups: every pending request is read, as before
//! the index); "index" reads the store's index by reviewer group.
//!
//! `cargo bench -p jitgate-postgres --bench reviewer_queue` (database from
//! `JITGATE_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`).

use std::sync::Arc;

use chrono::Duration;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use jitgate_core::{
    AccessRequest, Action, EntityRef, Flow, Gate, Grant, ManualClock, MemoryStore, NewRequest, PageRequest, Pattern,
    Policy, PolicyDecision, PolicyError, RequestOutcome, Requirement, ReviewerStanding, RuleTable, Store,
};
use jitgate_postgres::{PgStore, PgStoreOptions};

const RELATED: usize = 10;

fn e(t: &str, i: &str) -> EntityRef {
    EntityRef::new(t, i)
}

fn policy() -> RuleTable {
    let flow = |team: &str| Flow::new(Duration::hours(1)).with_requirement(Requirement::new(e("Team", team), 1));
    RuleTable::builder()
        .member(e("User", "reviewer"), e("Team", "leads"))
        .eligible(
            "related",
            Pattern::Type("User".into()),
            Pattern::Is(e("Action", "related")),
            Pattern::Any,
            flow("leads"),
        )
        .eligible(
            "unrelated",
            Pattern::Type("User".into()),
            Pattern::Is(e("Action", "unrelated")),
            Pattern::Any,
            flow("other"),
        )
        .build()
        .expect("valid policy")
}

/// The same policy without `reviewer_groups`: the gate reads every pending request.
struct WithoutGroups(RuleTable);

impl Policy for WithoutGroups {
    fn evaluate(&self, p: &EntityRef, a: &Action) -> Result<PolicyDecision, PolicyError> {
        self.0.evaluate(p, a)
    }
    fn reviewer_standing(&self, r: &EntityRef, q: &AccessRequest) -> Result<ReviewerStanding, PolicyError> {
        self.0.reviewer_standing(r, q)
    }
    fn may_revoke(&self, a: &EntityRef, g: &Grant, q: &AccessRequest) -> Result<bool, PolicyError> {
        self.0.may_revoke(a, g, q)
    }
    fn is_principal(&self, e: &EntityRef) -> bool {
        self.0.is_principal(e)
    }
}

fn ask(kind: &str, n: usize) -> NewRequest {
    NewRequest::new(
        e("User", &format!("u{n}")),
        Action::new(e("Action", kind), e("Thing", &format!("t{n}"))),
        Duration::minutes(30),
    )
}

async fn open(gate: &Gate, kind: &str, n: usize) -> AccessRequest {
    match gate.request(ask(kind, n)).await.expect("request") {
        RequestOutcome::Pending(r) => r,
        other => panic!("not pending: {other:?}"),
    }
}

fn gate(store: Arc<dyn Store>, policy: Arc<dyn Policy>) -> Gate {
    Gate::builder()
        .policy(policy)
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store)
        .clock(Arc::new(ManualClock::default()))
        .background_delivery(false)
        .verb_deadline(std::time::Duration::from_secs(600))
        .build()
        .unwrap()
}

/// The unrelated requests are the oldest: the worst case for reading every request.
async fn fill_memory(store: &Arc<dyn Store>, unrelated: usize) {
    let g = gate(store.clone(), Arc::new(policy()));
    for n in 0..unrelated {
        open(&g, "unrelated", n).await;
    }
    for n in 0..RELATED {
        open(&g, "related", unrelated + n).await;
    }
}

/// 10 related requests through the gate; the unrelated ones are copies of one request made
/// through the gate, with new ids, principals, scopes and earlier creation times.
async fn fill_postgres(store: &Arc<PgStore>, unrelated: usize) {
    let g = gate(store.clone(), Arc::new(policy()));
    let template = open(&g, "unrelated", 0).await;
    sqlx::query(
        "INSERT INTO requests (id, principal, scope_key, state, version, created_at, deadline, body) \
         SELECT c.id, 'User::\"c' || c.n || '\"', r.scope_key || c.n, r.state, r.version, \
                r.created_at - c.n * interval '1 ms', r.deadline, jsonb_set(r.body, '{id}', to_jsonb(c.id::text)) \
         FROM requests r, (SELECT gen_random_uuid() AS id, n FROM generate_series(1, $2) n) c WHERE r.id = $1",
    )
    .bind(template.id.0)
    .bind(unrelated as i64 - 1)
    .execute(store.pool())
    .await
    .expect("copies");
    sqlx::query("ANALYZE requests").execute(store.pool()).await.unwrap();
    for n in 0..RELATED {
        open(&g, "related", unrelated + n).await;
    }
}

fn queue(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url =
        std::env::var("JITGATE_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let reviewer = e("User", "reviewer");
    let page = PageRequest::first(50);
    let mut group = c.benchmark_group("pending_for_reviewer");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(5));
    for unrelated in [10, 100_000] {
        let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
        rt.block_on(fill_memory(&memory, unrelated));
        let schema = format!("jitgate_queue_{}_{unrelated}", std::process::id());
        let pg = rt.block_on(async {
            let s = PgStore::connect(PgStoreOptions::new(&url).schema(&schema).ephemeral(true))
                .await
                .expect("PostgreSQL reachable");
            s.migrate().await.expect("migrate");
            let s = Arc::new(s);
            fill_postgres(&s, unrelated).await;
            s
        });
        let stores: [(&str, Arc<dyn Store>); 2] = [("memory", memory), ("postgres", pg)];
        for (name, store) in stores {
            for (how, policy) in [
                ("scan", Arc::new(WithoutGroups(policy())) as Arc<dyn Policy>),
                ("index", Arc::new(policy()) as Arc<dyn Policy>),
            ] {
                let g = gate(store.clone(), policy);
                let got = rt.block_on(g.pending_for_reviewer(&reviewer, &page)).unwrap();
                assert_eq!(got.items.len(), RELATED, "{name}/{how}: the reviewer's requests");
                group.bench_with_input(
                    BenchmarkId::new(format!("{name}/{how}"), unrelated),
                    &unrelated,
                    |b, _| b.iter(|| rt.block_on(g.pending_for_reviewer(&reviewer, &page)).unwrap()),
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, queue);
criterion_main!(benches);
