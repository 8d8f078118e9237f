//! A real failover: a primary and a synchronous standby started by the test from the machine's
//! PostgreSQL binaries (see `common/cluster.rs`), two gate replicas connected to both servers,
//! and a workload of requests, approvals, revokes and one-shot uses running while the primary
//! is killed (immediate shutdown) and the standby promoted — five times, the killed server
//! coming back each time as the new standby.
//!
//! Asserted: no acknowledged write is lost; no one-shot grant allows twice; no revoked grant is
//! allowed after its revoke returned; the audit chain verifies, against every checkpoint taken
//! before a failover; the outbox delivers every event at least once, with the ids it was
//! committed with. Printed: the time from each kill to the first successful `approve`
//! (`cargo test -p jitgate-postgres --test failover -- --nocapture`; docs/PERFORMANCE.md).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use jitgate_core::audit::CheckpointSigner;
use jitgate_core::*;
use jitgate_postgres::{PgStore, PgStoreOptions};
use jitgate_testkit::fixtures::{lee, read_customer, restart, sam, team};

use common::cluster::{binaries, Cluster};

const FAILOVERS: usize = 5;

/// Restarting a database: one lead approves, no use limit. Reading a customer: one use.
fn policy() -> RuleTable {
    let act = |a: &str| Pattern::Is(EntityRef::new("Action", a));
    let one_lead = || Flow::new(Duration::hours(1)).with_requirement(Requirement::new(team("sre-leads"), 1));
    RuleTable::builder()
        .member(sam(), team("sre"))
        .member(lee(), team("sre-leads"))
        .eligible(
            "restart",
            Pattern::In(team("sre")),
            act("db_restart"),
            Pattern::Any,
            one_lead(),
        )
        .eligible(
            "read-once",
            Pattern::In(team("sre")),
            act("read_customer"),
            Pattern::Any,
            one_lead().with_max_uses(1, false),
        )
        .build()
        .expect("valid policy")
}

fn gate(store: Arc<PgStore>, clock: Arc<ManualClock>) -> Gate {
    Gate::builder()
        .policy(Arc::new(policy()))
        .store(store)
        .clock(clock)
        // Events go to the destination `default` and are delivered by the dispatchers below.
        .notifier(Arc::new(NullNotifier))
        .background_delivery(false)
        .limits(Limits::default().with_pending_per_principal(10_000))
        .build()
        .expect("gate")
}

/// What the workload was told had succeeded.
#[derive(Default)]
struct Ledger {
    requests: Vec<RequestId>,
    grants: Vec<GrantId>,
    revoked: Vec<(GrantId, Action)>,
    /// One-shot grants and how many of the `authorize` calls made with each allowed.
    one_shot: Vec<(GrantId, usize)>,
    /// A revoked grant allowed by the replica that revoked it, after the revoke returned.
    revoked_but_allowed: Vec<GrantId>,
    failures: usize,
    /// Failures other than "unavailable" (or a verb's deadline): what they said.
    unexpected: Vec<String>,
}

/// Whether a failed verb said what a failover should make it say.
fn unavailable(e: &Error) -> bool {
    matches!(e, Error::Store(StoreError::Unavailable(_) | StoreError::Timeout { .. }))
}

/// One worker: request on one replica, approve on the other, authorize, then revoke (even
/// rounds) or use a one-shot grant from both replicas at once (odd rounds).
async fn worker(id: usize, gates: [Gate; 2], stop: Arc<AtomicBool>, ledger: Arc<Mutex<Ledger>>) {
    let mut round = 0usize;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        let (mine, other) = if (id + round).is_multiple_of(2) {
            (&gates[0], &gates[1])
        } else {
            (&gates[1], &gates[0])
        };
        let one_shot = round % 2 == 1;
        let action = if one_shot {
            read_customer(&format!("c-{id}-{round}"))
        } else {
            restart(&format!("db-{id}-{round}"))
        };
        let step = async {
            let RequestOutcome::Pending(req) = mine
                .request(NewRequest::new(sam(), action.clone(), Duration::minutes(30)))
                .await?
            else {
                panic!("the policy asks for review")
            };
            ledger.lock().unwrap().requests.push(req.id);
            let grant = other
                .approve(req.id, &lee(), None)
                .await?
                .grant
                .expect("one lead suffices");
            ledger.lock().unwrap().grants.push(grant.id);
            if one_shot {
                let who = sam();
                let (a, b, c) = tokio::join!(
                    mine.authorize(&action, &who),
                    other.authorize(&action, &who),
                    mine.authorize(&action, &who)
                );
                let allowed = [a, b, c].iter().filter(|d| d.is_allowed()).count();
                ledger.lock().unwrap().one_shot.push((grant.id, allowed));
            } else {
                other.revoke(grant.id, &lee(), None).await?;
                ledger.lock().unwrap().revoked.push((grant.id, action.clone()));
                if other.authorize(&action, &sam()).await.is_allowed() {
                    ledger.lock().unwrap().revoked_but_allowed.push(grant.id);
                }
            }
            Ok::<(), Error>(())
        };
        if let Err(e) = step.await {
            let mut l = ledger.lock().unwrap();
            l.failures += 1;
            if !unavailable(&e) {
                l.unexpected.push(ErrorChain(&e).to_string());
            }
        }
        // A steady trickle, not a flood: what is checked is every write, and the audit chain
        // is verified from its start in a debug build.
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

/// Delivers outbox events until stopped, recording every delivered event id.
async fn deliver(store: Arc<PgStore>, clock: Arc<ManualClock>, seen: Arc<MemoryNotifier>, stop: Arc<AtomicBool>) {
    let d = Dispatcher::new(store, clock).notifier(seen);
    while !stop.load(Ordering::SeqCst) {
        let idle = !matches!(d.dispatch_once().await, Ok(r) if r.delivered > 0);
        if idle {
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    }
}

async fn until_ok<T, E: std::error::Error>(what: &str, mut f: impl AsyncFnMut() -> Result<T, E>) -> T {
    let start = Instant::now();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if start.elapsed() > StdDuration::from_secs(60) => {
                panic!("{what} kept failing: {}", ErrorChain(&e))
            }
            Err(_) => tokio::time::sleep(StdDuration::from_millis(10)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_five_failovers_to_a_synchronous_standby() {
    let Some(bin) = binaries() else {
        assert!(
            !common::required(),
            "the PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) are required here; install Debian's `postgresql` or set JITGATE_PG_BINDIR"
        );
        eprintln!("skipped: no PostgreSQL server binaries (initdb) on this machine");
        return;
    };
    let mut cluster = tokio::task::spawn_blocking(move || Cluster::start(bin, true))
        .await
        .unwrap()
        .expect("a primary and a synchronous standby start");
    let url = cluster.url();
    // An outbox row claimed on the dead primary, by a claim whose answer was lost, is hidden
    // from every dispatcher until its lease runs out: a short lease keeps the test short.
    let connect = |url: String| async move {
        PgStore::connect(
            PgStoreOptions::new(&url)
                .max_connections(8)
                .claim_lease(StdDuration::from_secs(3)),
        )
        .await
        .expect("connects to the writable server")
    };
    let a = Arc::new(connect(url.clone()).await);
    a.migrate().await.expect("migrations apply");
    let b = Arc::new(connect(url.clone()).await);
    let clock = Arc::new(ManualClock::default());
    let gates = [gate(a.clone(), clock.clone()), gate(b.clone(), clock.clone())];
    let signer = CheckpointSigner::from_seed([7; 32]);
    let public_key = signer.public_key_hex();
    let checkpointer = gates[0].checkpointer(signer);

    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut tasks = Vec::new();
    for id in 0..4 {
        tasks.push(tokio::spawn(worker(id, gates.clone(), stop.clone(), ledger.clone())));
    }
    let (seen_a, seen_b) = (Arc::new(MemoryNotifier::new()), Arc::new(MemoryNotifier::new()));
    let stop_delivery = Arc::new(AtomicBool::new(false));
    let dispatchers = [
        tokio::spawn(deliver(a.clone(), clock.clone(), seen_a.clone(), stop_delivery.clone())),
        tokio::spawn(deliver(b.clone(), clock.clone(), seen_b.clone(), stop_delivery.clone())),
    ];

    let mut checkpoints = Vec::new();
    let mut to_first_approve = Vec::new();
    for round in 0..FAILOVERS {
        tokio::time::sleep(StdDuration::from_millis(700)).await;
        // A request on a replica to approve once the primary is gone; it commits after the
        // standby is synchronous, so it (and all before it) is on the standby.
        let probe = until_ok("a request before the failover", async || {
            match gates[0]
                .request(NewRequest::new(
                    sam(),
                    restart(&format!("probe-{round}")),
                    Duration::minutes(30),
                ))
                .await?
            {
                RequestOutcome::Pending(r) => Ok::<_, Error>(r),
                other => panic!("{other:?}"),
            }
        })
        .await;
        let round_start = Instant::now();
        checkpoints.push(until_ok("a checkpoint", async || checkpointer.checkpoint_now().await).await);

        let before_kill = round_start.elapsed();
        let killed_at = Instant::now();
        cluster = tokio::task::spawn_blocking(move || {
            cluster
                .kill_primary()
                .and_then(|()| cluster.promote())
                .map(|()| cluster)
        })
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("failover {round}: {e}"));
        let approved = until_ok("approve on the new primary", async || {
            gates[(round + 1) % 2].approve(probe.id, &lee(), None).await
        })
        .await;
        to_first_approve.push(killed_at.elapsed());
        let rejoin_start = Instant::now();
        ledger.lock().unwrap().grants.extend(approved.grant.map(|g| g.id));
        cluster = tokio::task::spawn_blocking(move || cluster.rejoin().map(|()| cluster))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("rejoining after failover {round}: {e}"));
        eprintln!(
            "failover {round}: probe and checkpoint {before_kill:?}, kill to approve {:?}, rejoin {:?}",
            to_first_approve[round],
            rejoin_start.elapsed()
        );
    }
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("a worker panicked");
    }
    assert!(a.writable() && b.writable(), "both replicas found the last primary");
    assert!(a.server_switches() >= FAILOVERS as u64 && b.server_switches() >= FAILOVERS as u64);

    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(
        ledger.requests.len() > 20 * FAILOVERS,
        "too little work ran to prove anything: {} requests",
        ledger.requests.len()
    );
    assert!(
        ledger.unexpected.is_empty(),
        "verbs failed during failovers other than as unavailable: {:?}",
        ledger.unexpected
    );
    // No acknowledged write lost.
    for id in &ledger.requests {
        gates[0]
            .read_request(*id)
            .await
            .unwrap_or_else(|e| panic!("request {id} lost: {e}"));
    }
    for id in &ledger.grants {
        gates[1]
            .read_grant(*id)
            .await
            .unwrap_or_else(|e| panic!("grant {id} lost: {e}"));
    }
    // Every revoke that returned holds, on both replicas (their caches caught up by now).
    assert!(
        ledger.revoked_but_allowed.is_empty(),
        "revoked grants allowed by the replica that revoked them: {:?}",
        ledger.revoked_but_allowed
    );
    tokio::time::sleep(StdDuration::from_secs(1)).await;
    for (id, action) in &ledger.revoked {
        let g = gates[0].read_grant(*id).await.unwrap();
        assert_eq!(g.state, GrantState::Revoked, "revoke of {id} lost");
        for gate in &gates {
            assert!(
                !gate.authorize(action, &sam()).await.is_allowed(),
                "revoked {id} allowed"
            );
        }
    }
    // One-shot grants: at most one allow each, and every allowed use is recorded.
    for (id, allowed) in &ledger.one_shot {
        assert!(*allowed <= 1, "one-shot grant {id} allowed {allowed} times");
        let uses = gates[0].read_grant(*id).await.unwrap().uses.expect("a use limit");
        assert!(uses.used as usize >= *allowed, "a use of {id} was lost: {uses:?}");
        assert!(uses.used <= 1, "{id}: {uses:?}");
    }
    // The audit chain verifies, and against every checkpoint signed before a failover.
    let report = until_ok("verify the audit chain", async || gates[0].verify_audit().await).await;
    for (i, cp) in checkpoints.iter().enumerate() {
        let anchored = gates[1]
            .verify_audit_against(cp, &public_key)
            .await
            .unwrap_or_else(|e| panic!("checkpoint {i} (seq {}) does not verify: {e}", cp.seq));
        assert!(anchored.head.seq >= cp.seq);
    }
    // Every queued event is delivered at least once, under the id it was committed with.
    let queued: BTreeSet<String> = sqlx::query_scalar::<_, String>("SELECT DISTINCT event_id FROM outbox")
        .fetch_all(a.pool())
        .await
        .unwrap()
        .into_iter()
        .collect();
    let mut delivered: BTreeSet<String> = BTreeSet::new();
    let all_out = async || {
        delivered = seen_a
            .events()
            .into_iter()
            .chain(seen_b.events())
            .map(|e| e.id.0)
            .collect();
        queued.is_subset(&delivered)
    };
    assert!(
        common::replicas::eventually(StdDuration::from_secs(20), all_out).await,
        "{} of {} queued events never delivered",
        queued.difference(&delivered).count(),
        queued.len()
    );
    assert!(delivered.is_subset(&queued), "delivered events under ids never queued");
    stop_delivery.store(true, Ordering::SeqCst);
    for d in dispatchers {
        d.await.unwrap();
    }

    let mut ms: Vec<u128> = to_first_approve.iter().map(StdDuration::as_millis).collect();
    ms.sort_unstable();
    let by_kind: HashMap<&str, usize> = HashMap::from([
        ("requests", ledger.requests.len()),
        ("grants", ledger.grants.len()),
        ("revokes", ledger.revoked.len()),
        ("one-shot", ledger.one_shot.len()),
        ("failed calls", ledger.failures),
    ]);
    println!(
        "failover report: kill → first successful approve over {FAILOVERS} failovers: median {} ms, worst {} ms (all: {ms:?}); \
         acknowledged: {by_kind:?}; audit records: {}; events: {}",
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        report.head.seq,
        queued.len()
    );
    drop(cluster);
}

/// While no server accepts writes, verbs fail at once as unavailable, and `authorize` answers
/// from the grant cache only while its last catch-up is within the staleness bound, then
/// denies; once a standby is promoted, the store finds it by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_no_writable_server_verbs_are_unavailable_and_authorize_keeps_the_staleness_bound() {
    let Some(bin) = binaries() else {
        assert!(!common::required(), "the PostgreSQL server binaries are required here");
        return;
    };
    let mut cluster = tokio::task::spawn_blocking(move || Cluster::start(bin, false))
        .await
        .unwrap()
        .expect("a primary and a standby start");
    let bound = StdDuration::from_secs(2);
    let store = PgStore::connect(PgStoreOptions::new(&cluster.url()).staleness_bound(bound))
        .await
        .expect("connects");
    store.migrate().await.unwrap();
    let store = Arc::new(store);
    let g = gate(store.clone(), Arc::new(ManualClock::default()));
    let RequestOutcome::Pending(req) = g
        .request(NewRequest::new(sam(), restart("orders"), Duration::minutes(30)))
        .await
        .unwrap()
    else {
        panic!("needs approval")
    };
    g.approve(req.id, &lee(), None).await.unwrap();
    assert!(g.authorize(&restart("orders"), &sam()).await.is_allowed());
    assert!(common::replicas::eventually(StdDuration::from_secs(5), async || store.grant_cache_fresh()).await);

    cluster = tokio::task::spawn_blocking(move || cluster.kill_primary().map(|()| cluster))
        .await
        .unwrap()
        .unwrap();
    let down = Instant::now();
    assert!(
        g.authorize(&restart("orders"), &sam()).await.is_allowed(),
        "within the staleness bound, the cache still answers"
    );
    assert!(
        common::replicas::eventually(StdDuration::from_secs(2), async || !store.writable()).await,
        "the store noticed its server is gone"
    );
    // A new store finds no server to write to, and says what each host answered.
    match PgStore::connect(PgStoreOptions::new(&cluster.url()).connect_timeout(StdDuration::from_secs(2))).await {
        Err(jitgate_postgres::PgError::NoWritableServer { tried }) => {
            assert_eq!(tried.len(), 2, "{tried:?}");
            assert!(
                tried.iter().any(|t| t.ends_with("(a standby (read-only))")),
                "{tried:?}"
            );
        }
        other => panic!("expected no writable server, got {other:?}"),
    }
    let refused = g
        .request(NewRequest::new(sam(), restart("billing"), Duration::minutes(30)))
        .await
        .expect_err("nothing can be written");
    assert!(unavailable(&refused), "{}", ErrorChain(&refused));
    let started = Instant::now();
    let read = g.read_request(req.id).await.expect_err("nothing can be read");
    assert!(unavailable(&read), "{}", ErrorChain(&read));
    assert!(
        started.elapsed() < StdDuration::from_secs(1),
        "failed at once, not after a timeout"
    );

    tokio::time::sleep((bound + StdDuration::from_millis(300)).saturating_sub(down.elapsed())).await;
    match g.authorize(&restart("orders"), &sam()).await {
        Decision::Deny {
            reason: DenyReason::StoreError(why),
            ..
        } => assert!(why.contains("unavailable"), "{why}"),
        other => panic!("past the staleness bound with no database, authorize must deny: {other:?}"),
    }

    cluster = tokio::task::spawn_blocking(move || cluster.promote().map(|()| cluster))
        .await
        .unwrap()
        .unwrap();
    assert!(
        common::replicas::eventually(StdDuration::from_secs(10), async || g
            .authorize(&restart("orders"), &sam())
            .await
            .is_allowed())
        .await,
        "the promoted standby has the grant, and the store found it"
    );
    assert!(store.writable());
    assert_eq!(store.server_switches(), 1);
    drop(cluster);
}
