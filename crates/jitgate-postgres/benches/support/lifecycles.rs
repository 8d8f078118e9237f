//! The life cycle the PostgreSQL benches count (request → a refused self-approval → approve →
//! authorize → revoke) and a timed run of it on many clients; included by `lifecycle.rs` and
//! `standby.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jitgate_core::{Gate, ManualClock, NullNotifier, RequestOutcome, Store};
use jitgate_testkit::fixtures::{self, ask, lee, restart, sam};

/// The fixture gate on `store`, outbox delivery left to a dispatcher (none here), so that it is
/// not in the measured calls.
pub fn gate(store: Arc<dyn Store>, clock: Arc<ManualClock>) -> Gate {
    Gate::builder()
        .policy(Arc::new(fixtures::policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store)
        .clock(clock)
        .notifier(Arc::new(NullNotifier))
        .background_delivery(false)
        .build()
        .unwrap()
}

pub async fn lifecycle(g: &Gate, db: &str) {
    let RequestOutcome::Pending(r) = g.request(ask(restart(db), 30)).await.unwrap() else {
        panic!("not pending")
    };
    // A refused self-approval: recorded in the audit chain since issue 11.
    assert!(g.approve(r.id, &sam(), None).await.is_err());
    let grant = g.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    assert!(g.authorize(&restart(db), &sam()).await.is_allowed());
    g.revoke(grant.id, &lee(), None).await.unwrap();
}

/// Life cycles per second of `clients` concurrent clients for `seconds` on `g`, with the use
/// writer running; the audit chain is verified afterwards. `tag` keeps resource names apart.
pub async fn run(g: &Gate, clients: usize, seconds: u64, tag: &str) -> f64 {
    // use recording: start (removed to build this bench on commits before it)
    let (stop_writer, stop) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn({
        let g = g.clone();
        async move {
            g.run_audit_writer(async {
                stop.await.ok();
            })
            .await
        }
    });
    // use recording: end
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let g = g.clone();
            let tag = tag.to_owned();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    lifecycle(&g, &format!("{tag}c{c}-{n}")).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    // use recording: start
    stop_writer.send(()).ok();
    writer.await.unwrap();
    // use recording: end
    g.verify_audit().await.expect("chain verifies after the run");
    rate
}
