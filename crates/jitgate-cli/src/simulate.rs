//! `jitgate simulate`: a log of actions replayed against a policy set — what would be standing,
//! auto-approved, need approval or be denied, per action and per team; the approval load per
//! reviewer group per day; standing permissions the log barely uses; and, against a baseline
//! set, every row whose answer changes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use jitgate::cedar::CedarPolicy;
use jitgate::{Action, EntityRef, Policy, PolicyDecision};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::inputs::PolicyArgs;
use crate::{chart, check, parse, Failure, Format};

/// One line of the log.
#[derive(Deserialize, Debug)]
struct Row {
    principal: String,
    action: String,
    resource: String,
    #[serde(default)]
    context: Option<Value>,
    /// RFC 3339; its date counts the approval load per day.
    #[serde(default)]
    time: Option<String>,
}

/// What a row gets.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Answer {
    Standing(Vec<String>),
    AutoApproved,
    NeedsApproval(Vec<String>),
    Denied,
    Forbidden,
    Error(String),
}

impl Answer {
    fn of(decided: Result<PolicyDecision, jitgate::PolicyError>) -> Self {
        match decided {
            Ok(PolicyDecision::Standing { policy_ids }) => Answer::Standing(policy_ids),
            Ok(PolicyDecision::Eligible { flow }) if flow.auto_approve => Answer::AutoApproved,
            Ok(PolicyDecision::Eligible { flow }) => {
                Answer::NeedsApproval(flow.requirements.iter().map(|r| r.reviewers.to_string()).collect())
            }
            Ok(PolicyDecision::Forbidden { .. }) => Answer::Forbidden,
            Ok(_) => Answer::Denied,
            Err(e) => Answer::Error(e.to_string()),
        }
    }

    fn column(&self) -> usize {
        match self {
            Answer::Standing(_) => 0,
            Answer::AutoApproved => 1,
            Answer::NeedsApproval(_) => 2,
            Answer::Denied | Answer::Forbidden | Answer::Error(_) => 3,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Answer::Standing(_) => "standing",
            Answer::AutoApproved => "auto_approved",
            Answer::NeedsApproval(_) => "needs_approval",
            Answer::Denied => "denied",
            Answer::Forbidden => "forbidden",
            Answer::Error(_) => "error",
        }
    }
}

const COLUMNS: [&str; 4] = ["standing", "auto-approved", "needs approval", "denied"];

/// A parsed row, ready to decide.
struct Request {
    line: usize,
    principal: EntityRef,
    action: Action,
    day: String,
}

fn read_log(path: &Path) -> Result<Vec<Request>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let rows: Vec<(usize, Row)> = if path.extension().is_some_and(|x| x == "csv") {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        // Columns by their header's names, in any order; `context` and `time` may be left out.
        let headers = reader
            .headers()
            .map_err(|e| format!("{}:1: {e}", path.display()))?
            .clone();
        let column = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
        let required =
            |name: &str| column(name).ok_or_else(|| format!("{}:1: the header has no `{name}` column", path.display()));
        let (principal, action, resource) = (required("principal")?, required("action")?, required("resource")?);
        let (time, context) = (column("time"), column("context"));
        reader
            .records()
            .enumerate()
            .map(|(i, r)| {
                let r = r.map_err(|e| format!("{}:{}: {e}", path.display(), i + 2))?;
                let get = |n: Option<usize>| n.and_then(|n| r.get(n)).unwrap_or_default().to_owned();
                let context = match get(context).trim() {
                    "" => None,
                    c => Some(
                        serde_json::from_str(c).map_err(|e| format!("{}:{}: context: {e}", path.display(), i + 2))?,
                    ),
                };
                Ok((
                    i + 2,
                    Row {
                        principal: get(Some(principal)),
                        action: get(Some(action)),
                        resource: get(Some(resource)),
                        time: Some(get(time)).filter(|t| !t.is_empty()),
                        context,
                    },
                ))
            })
            .collect::<Result<_, String>>()?
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map(|r| (i + 1, r))
                    .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
            })
            .collect::<Result<_, String>>()?
    };
    rows.into_iter()
        .map(|(line, r)| {
            let at = |e: String| format!("{}:{line}: {e}", path.display());
            Ok(Request {
                line,
                principal: parse::entity("principal", &r.principal).map_err(at)?,
                action: parse::action(&r.action, &r.resource, r.context.as_ref()).map_err(at)?,
                day: r.time.as_deref().and_then(|t| t.get(..10)).unwrap_or("-").to_owned(),
            })
        })
        .collect()
}

/// Decides every request on two threads (the policy is shared), with a progress bar on a
/// terminal.
fn decide_all(policy: &CedarPolicy, requests: &[Request], label: &str) -> Vec<Answer> {
    let bar = indicatif::ProgressBar::new(requests.len() as u64).with_message(label.to_owned());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let chunk = requests.len().div_ceil(threads).max(1);
    let answers: Vec<Vec<Answer>> = std::thread::scope(|s| {
        let workers: Vec<_> = requests
            .chunks(chunk)
            .map(|part| {
                let bar = bar.clone();
                s.spawn(move || {
                    let mut out = Vec::with_capacity(part.len());
                    for (i, r) in part.iter().enumerate() {
                        out.push(Answer::of(policy.evaluate(&r.principal, &r.action)));
                        if i % 4096 == 4095 {
                            bar.inc(4096);
                        }
                    }
                    out
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_default()).collect()
    });
    bar.finish_and_clear();
    answers.into_iter().flatten().collect()
}

/// Each principal's direct groups, from a Cedar entities JSON file.
fn teams_of(entities: Option<&Path>) -> Result<HashMap<String, Vec<String>>, String> {
    let Some(path) = entities else {
        return Ok(HashMap::new());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let list: Vec<Value> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let reference = |v: &Value| -> Option<String> {
        let (t, i) = (v.get("type")?.as_str()?, v.get("id")?.as_str()?);
        Some(EntityRef::new(t, i).to_string())
    };
    Ok(list
        .iter()
        .filter_map(|e| {
            let uid = reference(e.get("uid")?)?;
            let parents = e.get("parents")?.as_array()?.iter().filter_map(reference).collect();
            Some((uid, parents))
        })
        .collect())
}

/// The service's standing permits: permits without `@jit` that are not about jitgate's own
/// actions.
fn standing_policies(policy: &CedarPolicy) -> Vec<String> {
    policy
        .policies()
        .filter(|p| p.effect() == jitgate::cedar_policy::Effect::Permit && p.annotation("jit").is_none())
        .filter(|p| !p.to_string().contains("Jit::Action"))
        .map(|p| p.annotation("id").map_or_else(|| p.id().to_string(), str::to_owned))
        .collect()
}

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// The log: JSON lines (`{"principal", "action", "resource", "context", "time"}`) or CSV
    /// (a header naming `principal`, `action`, `resource`, and optionally `time` and `context`, in any order), by extension.
    #[arg(long)]
    pub log: PathBuf,
    /// Another policy directory to compare with: every row whose answer changes is listed.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Writes an SVG chart of the approval load per reviewer group per day.
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// A standing permission used by fewer rows than this share of the log is a candidate to
    /// move to just-in-time (default 0.01: 1 %).
    #[arg(long, default_value_t = 0.01)]
    pub rarely: f64,
}

pub async fn run(policy_args: &PolicyArgs, args: &SimulateArgs, format: Format) -> Result<(), Failure> {
    let requests = read_log(&args.log)?;
    // No decision cache: a log's rows rarely repeat, and a cache that misses costs every call a
    // lock and an insertion (measured: 180,000 decisions a second with one, 250,000-360,000
    // without; docs/PERFORMANCE.md).
    let policy = check::load(policy_args, format).await?;
    let started = std::time::Instant::now();
    let answers = decide_all(&policy, &requests, "simulating");
    let decide_seconds = started.elapsed().as_secs_f64();
    let teams = teams_of(policy_args.entities_path().as_deref())?;

    let mut by_action: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    let mut by_team: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    let mut load: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut standing_uses: BTreeMap<String, u64> = standing_policies(&policy).into_iter().map(|p| (p, 0)).collect();
    let mut totals = [0u64; 4];
    for (r, a) in requests.iter().zip(&answers) {
        let c = a.column();
        totals[c] += 1;
        by_action.entry(r.action.scope.action.to_string()).or_default()[c] += 1;
        let no_team = vec!["(no group)".to_owned()];
        let of = teams.get(&r.principal.to_string()).filter(|t| !t.is_empty());
        for team in of.unwrap_or(&no_team) {
            by_team.entry(team.clone()).or_default()[c] += 1;
        }
        match a {
            Answer::NeedsApproval(groups) => {
                for g in groups {
                    *load.entry(g.clone()).or_default().entry(r.day.clone()).or_default() += 1;
                }
            }
            Answer::Standing(ids) => {
                for id in ids {
                    *standing_uses.entry(id.clone()).or_default() += 1;
                }
            }
            _ => {}
        }
    }
    let threshold = (requests.len() as f64 * args.rarely).ceil() as u64;
    let rarely: Vec<(&String, &u64)> = standing_uses.iter().filter(|(_, n)| **n < threshold.max(1)).collect();

    let mut changes = Vec::new();
    if let Some(dir) = &args.baseline {
        let baseline_args = PolicyArgs {
            dir: Some(dir.clone()),
            ..PolicyArgs::default()
        };
        let baseline = check::load(&baseline_args, format).await?;
        let before = decide_all(&baseline, &requests, "baseline");
        for ((r, now), then) in requests.iter().zip(&answers).zip(&before) {
            if now.name() != then.name() {
                changes.push((r, then.name(), now.name()));
            }
        }
    }
    if let Some(path) = &args.chart {
        std::fs::write(path, chart::approval_load(&load))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }

    match format {
        Format::Json => {
            let table = |m: &BTreeMap<String, [u64; 4]>| -> Value {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            json!({"standing": v[0], "auto_approved": v[1], "needs_approval": v[2], "denied": v[3]}),
                        )
                    })
                    .collect::<serde_json::Map<_, _>>()
                    .into()
            };
            println!(
                "{}",
                json!({
                    "rows": requests.len(),
                    "decide_seconds": decide_seconds,
                    "totals": {"standing": totals[0], "auto_approved": totals[1], "needs_approval": totals[2], "denied": totals[3]},
                    "by_action": table(&by_action),
                    "by_team": table(&by_team),
                    "approval_load": load,
                    "rarely_used_standing": rarely.iter().map(|(p, n)| json!({"policy": p, "uses": n})).collect::<Vec<_>>(),
                    "changes": changes.iter().map(|(r, from, to)| json!({"line": r.line, "principal": r.principal.to_string(), "scope": r.action.scope.to_string(), "baseline": from, "now": to})).collect::<Vec<_>>(),
                })
            );
        }
        _ => {
            println!(
                "{} rows, decided in {decide_seconds:.2} s ({:.0} a second)",
                requests.len(),
                requests.len() as f64 / decide_seconds.max(1e-9)
            );
            print_table("action", &by_action, totals);
            print_table("team", &by_team, totals);
            println!("\napproval load per reviewer group (requests per day: mean, max)");
            for (group, days) in &load {
                let total: u64 = days.values().sum();
                let max = days.values().max().copied().unwrap_or(0);
                println!(
                    "  {group:<32} {:>8.1} {max:>6}  over {} day(s)",
                    total as f64 / days.len() as f64,
                    days.len()
                );
            }
            println!("\nstanding permissions used by fewer than {threshold} rows (candidates for just-in-time)");
            for (p, n) in &rarely {
                println!("  {p:<32} {n:>8} uses");
            }
            if args.baseline.is_some() {
                println!("\n{} rows change answer against the baseline", changes.len());
                for (r, from, to) in changes.iter().take(50) {
                    println!(
                        "  line {:>7}: {} {}: {from} -> {to}",
                        r.line, r.principal, r.action.scope
                    );
                }
                if changes.len() > 50 {
                    println!("  ... and {} more (--format json lists them all)", changes.len() - 50);
                }
            }
            if let Some(path) = &args.chart {
                println!("\nchart: {}", path.display());
            }
        }
    }
    Ok(())
}

fn print_table(what: &str, rows: &BTreeMap<String, [u64; 4]>, totals: [u64; 4]) {
    println!(
        "\n{what:<32} {:>10} {:>14} {:>15} {:>10}",
        COLUMNS[0], COLUMNS[1], COLUMNS[2], COLUMNS[3]
    );
    for (name, v) in rows {
        println!("{name:<32} {:>10} {:>14} {:>15} {:>10}", v[0], v[1], v[2], v[3]);
    }
    println!(
        "{:<32} {:>10} {:>14} {:>15} {:>10}",
        "total", totals[0], totals[1], totals[2], totals[3]
    );
}
