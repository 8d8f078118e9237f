//! Operations against a deployment's store, named by its configuration file: migrations,
//! listings, reviews, revocations, off-boarding, the audit export. Each goes through the gate,
//! so each is checked by the policy and audited exactly as the API's.

use std::path::{Path, PathBuf};

use jitgate::config::{Config, StoreKind};
use jitgate::{AccessRequest, EntityRef, Gate, Grant, GrantId, PageRequest, RequestId};
use serde_json::{json, Value};

use crate::{parse, Failure, Format};

/// The configuration's store, as a PostgreSQL store's options (`migrate` needs one).
fn postgres(config: &Config) -> Result<jitgate::postgres::PgStoreOptions, String> {
    if config.store.kind != StoreKind::Postgres {
        return Err("migrate works on a PostgreSQL store: the configuration's [store] kind is not \"postgres\"".into());
    }
    let url = config.store.url.as_deref().unwrap_or_default();
    Ok(jitgate::postgres::PgStoreOptions::new(url).schema(&config.store.schema))
}

fn load(config: &Path) -> Result<Config, String> {
    Config::load(config).map_err(|e| e.to_string())
}

async fn gate(config: &Path) -> Result<Gate, Failure> {
    let config = load(config)?;
    if config.store.kind == StoreKind::Memory {
        return Err(Failure::Usage(
            "the configuration's store is in memory: a command would see an empty store of its own".into(),
        ));
    }
    let (gate, _) = config.gate().await.map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(gate)
}

pub async fn migrate(config: &Path, print: bool) -> Result<(), Failure> {
    let config = load(config)?;
    let options = postgres(&config)?;
    if print {
        print!("{}", jitgate::postgres::PgStore::migration_sql(&config.store.schema));
        return Ok(());
    }
    let store = jitgate::postgres::PgStore::connect(options)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    store.migrate().await.map_err(|e| format!("migrations failed: {e}"))?;
    println!("migrated: schema {}", config.store.schema);
    Ok(())
}

fn request_json(r: &AccessRequest) -> Value {
    json!({
        "id": r.id.to_string(),
        "principal": r.principal.to_string(),
        "scope": r.scope().to_string(),
        "state": r.state.to_string(),
        "created_at": r.created_at.to_rfc3339(),
        "deadline": r.deadline.to_rfc3339(),
        "policies": r.flow.policy_ids,
    })
}

fn grant_json(g: &Grant) -> Value {
    json!({
        "id": g.id.to_string(),
        "request": g.request_id.to_string(),
        "principal": g.principal.to_string(),
        "scope": g.scope.to_string(),
        "state": g.state.to_string(),
        "not_before": g.window.not_before().to_rfc3339(),
        "expires_at": g.window.expires_at().to_rfc3339(),
    })
}

/// A value's wire form (`jitgate::wire`, `docs/wire.md`): what `--format json` prints, the same
/// JSON as the HTTP API's.
fn wire<T, W>(value: &T) -> Value
where
    W: serde::Serialize + for<'a> From<&'a T>,
{
    serde_json::to_value(W::from(value)).unwrap_or(Value::Null)
}

/// The listing: in the wire form for `--format json`, else a line of `columns` per item.
fn print_list<T>(listed: &[T], format: Format, columns: &[&str], row: fn(&T) -> Value, wire: fn(&T) -> Value) {
    if format == Format::Json {
        println!("{}", Value::Array(listed.iter().map(wire).collect()));
        return;
    }
    let items: Vec<Value> = listed.iter().map(row).collect();
    for item in &items {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| item[*c].as_str().map_or_else(|| item[*c].to_string(), str::to_owned))
            .collect();
        println!("{}", cells.join("  "));
    }
    println!("({} listed)", items.len());
}

/// Every page of a listing.
async fn all<T, F, Fut>(mut page: F) -> Result<Vec<T>, String>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<jitgate::Page<T>, jitgate::Error>>,
{
    let mut items = Vec::new();
    let mut request = PageRequest::first(500);
    loop {
        let p = page(request).await.map_err(|e| e.to_string())?;
        items.extend(p.items);
        match p.next {
            Some(next) => request = PageRequest::after(next, 500),
            None => return Ok(items),
        }
    }
}

pub async fn requests(config: &Path, reviewer: Option<&str>, format: Format) -> Result<(), Failure> {
    let gate = gate(config).await?;
    let listed = match reviewer {
        Some(r) => {
            let r = parse::entity("reviewer", r)?;
            all(|p| {
                let (g, r) = (gate.clone(), r.clone());
                async move { g.pending_for_reviewer(&r, &p).await }
            })
            .await?
        }
        None => {
            all(|p| {
                let g = gate.clone();
                async move { g.pending_requests(&p).await }
            })
            .await?
        }
    };
    print_list(
        &listed,
        format,
        &["id", "principal", "scope", "deadline"],
        request_json,
        wire::<_, jitgate::wire::Request>,
    );
    Ok(())
}

pub async fn grants(config: &Path, principal: &str, format: Format) -> Result<(), Failure> {
    let gate = gate(config).await?;
    let principal = parse::entity("principal", principal)?;
    let listed = all(|p| {
        let (g, who) = (gate.clone(), principal.clone());
        async move { g.active_grants(&who, &p).await }
    })
    .await?;
    print_list(
        &listed,
        format,
        &["id", "principal", "scope", "expires_at"],
        grant_json,
        wire::<_, jitgate::wire::Grant>,
    );
    Ok(())
}

/// Writes what the gate buffered (refusal records, grant uses) before the process ends: a
/// command has no background writer to do it later.
async fn flushed<T>(gate: &Gate, result: Result<T, jitgate::Error>) -> Result<T, Failure> {
    if let Err(e) = gate.flush_audit_buffer().await {
        eprintln!("jitgate: could not write the audit records of this command: {e}");
    }
    result.map_err(verb_error)
}

/// An error from a verb: a refusal (the rules said no: exit 1) or a failure (exit 2).
fn verb_error(e: jitgate::Error) -> Failure {
    if e.is_refusal() {
        eprintln!("refused: {e}");
        Failure::Found
    } else {
        Failure::Usage(e.to_string())
    }
}

pub async fn review(
    config: &Path,
    id: &str,
    reviewer: &str,
    comment: Option<&str>,
    approve: bool,
    format: Format,
) -> Result<(), Failure> {
    let id: RequestId = id.parse().map_err(|e| format!("request id: {e}"))?;
    let reviewer = parse::entity("--as", reviewer)?;
    let gate = gate(config).await?;
    let outcome = if approve {
        gate.approve(id, &reviewer, comment).await
    } else {
        gate.deny(id, &reviewer, comment).await
    };
    let outcome = flushed(&gate, outcome).await?;
    match format {
        Format::Json => println!("{}", wire::<_, jitgate::wire::ReviewOutcome>(&outcome)),
        _ => match &outcome.grant {
            Some(g) => println!(
                "{}: granted {} until {}",
                outcome.request.id,
                g.id,
                g.window.expires_at()
            ),
            None => println!("{}: {}", outcome.request.id, outcome.request.state),
        },
    }
    Ok(())
}

pub async fn revoke(config: &Path, id: &str, actor: &str, reason: Option<&str>, format: Format) -> Result<(), Failure> {
    let id: GrantId = id.parse().map_err(|e| format!("grant id: {e}"))?;
    let actor = parse::entity("--as", actor)?;
    let gate = gate(config).await?;
    let grant = flushed(&gate, gate.revoke(id, &actor, reason).await).await?;
    match format {
        Format::Json => println!("{}", wire::<_, jitgate::wire::Grant>(&grant)),
        _ => println!("{}: {}", grant.id, grant.state),
    }
    Ok(())
}

pub async fn offboard(
    config: &Path,
    principal: &str,
    actor: &str,
    reason: Option<&str>,
    format: Format,
) -> Result<(), Failure> {
    let principal: EntityRef = parse::entity("principal", principal)?;
    let actor = parse::entity("--as", actor)?;
    let gate = gate(config).await?;
    let done = flushed(&gate, gate.revoke_all(&principal, &actor, reason).await).await?;
    match format {
        Format::Json => println!(
            "{}",
            json!({
                "revoked": done.revoked.iter().map(wire::<_, jitgate::wire::Grant>).collect::<Vec<_>>(),
                "withdrawn": done.withdrawn.iter().map(wire::<_, jitgate::wire::Request>).collect::<Vec<_>>(),
            })
        ),
        _ => println!(
            "{principal}: {} grant(s) revoked, {} pending request(s) closed",
            done.revoked.len(),
            done.withdrawn.len()
        ),
    }
    Ok(())
}

pub async fn export(config: &Path, out: Option<&PathBuf>) -> Result<(), Failure> {
    let gate = gate(config).await?;
    let written = match out {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            let mut file = std::io::BufWriter::new(file);
            let n = gate.export_audit(&mut file).await.map_err(|e| e.to_string())?;
            std::io::Write::flush(&mut file).map_err(|e| e.to_string())?;
            n
        }
        None => gate
            .export_audit(std::io::stdout().lock())
            .await
            .map_err(|e| e.to_string())?,
    };
    eprintln!("{written} audit records exported");
    Ok(())
}
