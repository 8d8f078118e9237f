//! The quickstart's story on PostgreSQL, across replicas.
//!
//! ```sh
//! cargo run -p jitgate --features postgres --example postgres            # the demo: two replicas in one process
//! cargo run -p jitgate --features postgres --example postgres -- request # in terminal 1: prints a request id
//! cargo run -p jitgate --features postgres --example postgres -- approve <request id>   # terminal 2
//! cargo run -p jitgate --features postgres --example postgres -- authorize              # terminal 1: Allow
//! ```
//! The database comes from `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! the subcommands share the schema `jitgate_example` (`JITGATE_SCHEMA` to change it), the demo
//! uses a throw-away schema.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use jitgate::chrono::Duration;
use jitgate::postgres::{PgStore, PgStoreOptions};
use jitgate::{
    Action, Decision, EntityRef, Flow, Gate, NewRequest, Pattern, RequestId, RequestOutcome, Requirement, RuleTable,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn e(t: &str, id: &str) -> EntityRef {
    EntityRef::new(t, id)
}

fn policy() -> Result<RuleTable, Error> {
    Ok(RuleTable::builder()
        .member(e("User", "sam"), e("Team", "sre"))
        .member(e("User", "lee"), e("Team", "sre-leads"))
        .eligible(
            "prod-db-restart",
            Pattern::In(e("Team", "sre")),
            Pattern::Is(e("Action", "db_restart")),
            Pattern::Any,
            Flow::new(Duration::hours(1))
                .with_requirement(Requirement::new(e("Team", "sre-leads"), 1))
                .with_reason_required(true),
        )
        .build()?)
}

async fn replica(url: &str, schema: &str, ephemeral: bool) -> Result<(Gate, Arc<PgStore>), Error> {
    let store = Arc::new(PgStore::connect(PgStoreOptions::new(url).schema(schema).ephemeral(ephemeral)).await?);
    store.migrate().await?;
    let gate = Gate::builder()
        .policy(Arc::new(policy()?))
        .store(store.clone())
        .build()?;
    Ok((gate, store))
}

fn restart() -> Action {
    Action::new(e("Action", "db_restart"), e("Database", "orders-prod"))
}

async fn wait_until(gate: &Gate, allowed: bool) -> Decision {
    let start = Instant::now();
    loop {
        let d = gate.authorize(&restart(), &e("User", "sam")).await;
        if d.is_allowed() == allowed || start.elapsed() > StdDuration::from_secs(5) {
            return d;
        }
        tokio::time::sleep(StdDuration::from_millis(2)).await;
    }
}

async fn demo(url: &str) -> Result<(), Error> {
    let schema = format!("jitgate_demo_{}", std::process::id());
    let (a, _owner) = replica(url, &schema, true).await?;
    let (b, _) = replica(url, &schema, false).await?;
    let (sam, lee) = (e("User", "sam"), e("User", "lee"));
    println!("== two replicas, A and B, sharing schema {schema}");
    println!("A: authorize -> {}", a.authorize(&restart(), &sam).await);
    let ask = NewRequest::new(sam.clone(), restart(), Duration::minutes(30)).with_justification("INC-4411");
    let RequestOutcome::Pending(req) = a.request(ask).await? else {
        return Err("expected a pending request".into());
    };
    println!("A: request  -> {} pending", req.id);
    let grant = b
        .approve(req.id, &lee, Some("go"))
        .await?
        .grant
        .ok_or("approval completes the flow")?;
    println!("B: approve  -> grant {}", grant.id);
    let t = Instant::now();
    println!(
        "A: authorize -> {} (seen after {:.1} ms)",
        wait_until(&a, true).await,
        t.elapsed().as_secs_f64() * 1e3
    );
    b.revoke(grant.id, &lee, Some("done")).await?;
    println!("B: revoke   -> {}", grant.id);
    let t = Instant::now();
    let after = wait_until(&a, false).await;
    println!(
        "A: authorize -> {after} (seen after {:.1} ms)",
        t.elapsed().as_secs_f64() * 1e3
    );
    if after.is_allowed() {
        return Err("replica A still allows a revoked grant".into());
    }
    // Every Allow above left a use record in A's buffer; a service spawns
    // `run_audit_writer`, a demo that ends writes them itself.
    println!("A: {} use(s) of the grant recorded", a.flush_audit_buffer().await?);
    let head = a.verify_audit().await?.head;
    println!("audit chain verified: {} records, head {}…", head.seq, &head.hash[..16]);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = std::env::var("JITGATE_SCHEMA").unwrap_or_else(|_| "jitgate_example".into());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (sam, lee) = (e("User", "sam"), e("User", "lee"));
    match args.first().map(String::as_str) {
        None | Some("demo") => demo(&url).await,
        Some("request") => {
            let (gate, _) = replica(&url, &schema, false).await?;
            let ask = NewRequest::new(sam, restart(), Duration::minutes(30)).with_justification("INC-4411");
            match gate.request(ask).await? {
                RequestOutcome::Pending(r) | RequestOutcome::AlreadyPending(r) => println!("pending request {}", r.id),
                RequestOutcome::AlreadyCovered(g) => println!("already allowed by grant {}", g.id),
                other => println!("{other:?}"),
            }
            Ok(())
        }
        Some("approve") => {
            let id: RequestId = args.get(1).ok_or("usage: approve <request id>")?.parse()?;
            let (gate, _) = replica(&url, &schema, false).await?;
            let out = gate.approve(id, &lee, Some("go")).await?;
            println!(
                "request {} is {}; grant {:?}",
                out.request.id,
                out.request.state,
                out.grant.map(|g| g.id)
            );
            Ok(())
        }
        Some("authorize") => {
            let (gate, _) = replica(&url, &schema, false).await?;
            println!("{}", gate.authorize(&restart(), &sam).await);
            gate.flush_audit_buffer().await?;
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`: use demo, request, approve <id> or authorize").into()),
    }
}
