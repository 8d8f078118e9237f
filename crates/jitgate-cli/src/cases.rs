//! `jitgate test`: policy test cases in TOML, each a request and the answer it must get.
//!
//! ```toml
//! [[case]]
//! name = "restarting prod needs one SRE lead, for at most an hour"
//! principal = 'User::"sam"'
//! action = 'Action::"db_restart"'
//! resource = 'Database::"orders-prod"'
//! context = { ticket = "INC-1" }           # optional
//! expect = "needs_approval"                # allow | needs_approval | deny | forbidden
//! policies = ["prod-db-restart"]           # optional: the policies that must decide
//! [case.flow]                              # optional, for needs_approval
//! approvals = ['1 of Team::"sre-leads"']   # every requirement, in any order
//! max_duration = "1h"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::explain::{duration, flow_json, kind, policies};
use crate::inputs::PolicyArgs;
use crate::{check, explain, parse, Failure, Format};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<Case>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    principal: String,
    action: String,
    resource: String,
    #[serde(default)]
    context: Option<toml::Value>,
    expect: Expect,
    #[serde(default)]
    policies: Option<Vec<String>>,
    #[serde(default)]
    flow: Option<ExpectedFlow>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Expect {
    Allow,
    NeedsApproval,
    Deny,
    Forbidden,
}

impl Expect {
    fn name(self) -> &'static str {
        match self {
            Expect::Allow => "allow",
            Expect::NeedsApproval => "needs_approval",
            Expect::Deny => "deny",
            Expect::Forbidden => "forbidden",
        }
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ExpectedFlow {
    /// `"N of <reviewers>"`, one per requirement.
    #[serde(default)]
    approvals: Option<Vec<String>>,
    #[serde(default)]
    max_duration: Option<String>,
    #[serde(default)]
    auto_approve: Option<bool>,
    #[serde(default)]
    require_reason: Option<bool>,
    #[serde(default)]
    max_uses: Option<u32>,
}

/// One case's result: what differs from the expectation (empty: passed).
struct Outcome {
    name: String,
    file: PathBuf,
    mismatches: Vec<String>,
    actual: Value,
}

fn case_files(policy: &PolicyArgs, named: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    if !named.is_empty() {
        return Ok(named.to_vec());
    }
    let Some(dir) = policy.dir() else {
        return Err("name the cases with --cases FILE (or give a policy directory holding *.test.toml)".into());
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "no *.test.toml in {}: name the cases with --cases FILE",
            dir.display()
        ));
    }
    Ok(files)
}

fn read_cases(path: &Path) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: CaseFile = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(file.case)
}

/// `"1 of Team::\"sre-leads\""` → (1, `Team::"sre-leads"`).
fn approval(text: &str) -> Result<(u32, String), String> {
    let (n, who) = text
        .split_once(" of ")
        .ok_or_else(|| format!("`{text}`: write an approval as `N of Team::\"name\"`"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{text}`: `{n}` is not a number"))?;
    let who = parse::entity("approvals", who.trim())?;
    Ok((n, who.to_string()))
}

fn compare(case: &Case, e: &jitgate::Explanation) -> Result<Vec<String>, String> {
    let mut mismatches = Vec::new();
    let actual = kind(&e.decision);
    if actual != case.expect.name() {
        mismatches.push(format!(
            "expected {}, got {actual} ({})",
            case.expect.name(),
            e.decision
        ));
    }
    let decided = policies(e);
    if let Some(expected) = &case.policies {
        let (mut want, mut got) = (expected.clone(), decided.clone());
        want.sort();
        got.sort();
        if want != got {
            mismatches.push(format!("expected the policies {want:?} to decide, got {got:?}"));
        }
    }
    if let (Some(f), jitgate::Decision::NeedsApproval { flow, .. }) = (&case.flow, &e.decision) {
        if let Some(approvals) = &f.approvals {
            let mut want = approvals.iter().map(|a| approval(a)).collect::<Result<Vec<_>, _>>()?;
            let mut got: Vec<(u32, String)> = flow
                .requirements
                .iter()
                .map(|r| (r.min_approvals, r.reviewers.to_string()))
                .collect();
            want.sort();
            got.sort();
            if want != got {
                let show = |v: &[(u32, String)]| {
                    v.iter()
                        .map(|(n, w)| format!("{n} of {w}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                mismatches.push(format!("expected approvals [{}], got [{}]", show(&want), show(&got)));
            }
        }
        if let Some(d) = &f.max_duration {
            let want = humantime::parse_duration(d).map_err(|e| format!("max_duration `{d}`: {e}"))?;
            if flow.max_duration.to_std().ok() != Some(want) {
                mismatches.push(format!(
                    "expected a grant of at most {d}, got {}",
                    duration(flow.max_duration)
                ));
            }
        }
        for (what, want, got) in [
            ("auto_approve", f.auto_approve, flow.auto_approve),
            ("require_reason", f.require_reason, flow.require_reason),
        ] {
            if want.is_some_and(|w| w != got) {
                mismatches.push(format!("expected {what} = {}, got {got}", want.unwrap_or_default()));
            }
        }
        if f.max_uses.is_some() && f.max_uses != flow.max_uses {
            mismatches.push(format!("expected max_uses {:?}, got {:?}", f.max_uses, flow.max_uses));
        }
    } else if case.flow.is_some() && mismatches.is_empty() {
        mismatches.push("a [case.flow] is only checked when the answer is needs_approval".into());
    }
    if !mismatches.is_empty() && !decided.is_empty() {
        mismatches.push(format!("policies involved: {}", decided.join(", ")));
    }
    Ok(mismatches)
}

pub async fn run(policy: &PolicyArgs, named: &[PathBuf], format: Format) -> Result<(), Failure> {
    let files = case_files(policy, named)?;
    let mut cases = Vec::new();
    for f in &files {
        cases.extend(read_cases(f)?.into_iter().map(|c| (f.clone(), c)));
    }
    let gate = explain::gate(check::load(policy, format).await?)?;
    let mut outcomes = Vec::new();
    for (file, case) in cases {
        let principal = parse::entity(&format!("{}: principal", case.name), &case.principal)?;
        let context = case
            .context
            .as_ref()
            .map(|c| serde_json::to_value(c).map_err(|e| format!("{}: context: {e}", case.name)))
            .transpose()?;
        let action =
            parse::action(&case.action, &case.resource, context.as_ref()).map_err(|e| format!("{}: {e}", case.name))?;
        let explained = gate.explain(&action, &principal).await;
        let mismatches = compare(&case, &explained).map_err(|e| format!("{}: {e}", case.name))?;
        let actual = json!({
            "decision": kind(&explained.decision),
            "policies": policies(&explained),
            "flow": match &explained.decision {
                jitgate::Decision::NeedsApproval { flow, .. } => Some(flow_json(flow)),
                _ => None,
            },
        });
        outcomes.push(Outcome {
            name: case.name,
            file,
            mismatches,
            actual,
        });
    }
    let failed = outcomes.iter().filter(|o| !o.mismatches.is_empty()).count();
    match format {
        Format::Json => {
            let list: Vec<_> = outcomes
                .iter()
                .map(|o| {
                    json!({
                        "name": o.name,
                        "file": o.file.display().to_string(),
                        "passed": o.mismatches.is_empty(),
                        "mismatches": o.mismatches,
                        "actual": o.actual,
                    })
                })
                .collect();
            println!(
                "{}",
                json!({ "passed": outcomes.len() - failed, "failed": failed, "cases": list })
            );
        }
        _ => {
            for o in &outcomes {
                if o.mismatches.is_empty() {
                    println!("ok    {}", o.name);
                } else {
                    println!("FAIL  {} ({})", o.name, o.file.display());
                    for m in &o.mismatches {
                        println!("        {m}");
                    }
                }
            }
            println!("{} passed, {failed} failed", outcomes.len() - failed);
        }
    }
    if failed > 0 {
        Err(Failure::Found)
    } else {
        Ok(())
    }
}
