//! `jitgate explain`, and the answer `explain` and `test` both read from a gate.

use std::sync::Arc;

use jitgate::cedar::CedarPolicy;
use jitgate::{Decision, DenyReason, Destination, Explanation, Flow, Gate, MemoryStore, NullNotifier};
use serde_json::{json, Value};

use crate::inputs::PolicyArgs;
use crate::{check, parse, Failure, Format};

/// A gate over `policy` with an empty in-memory store: what a request would get from a service
/// that has granted nothing yet.
pub fn gate(policy: CedarPolicy) -> Result<Gate, String> {
    Gate::builder()
        .policy(Arc::new(policy))
        .store(Arc::new(MemoryStore::new()))
        // Break-glass alerts need a destination for the gate to build; nothing is sent.
        .destination(Destination::new("cli", Arc::new(NullNotifier)).kinds(["break_glass_used"]))
        .background_delivery(false)
        .build()
        .map_err(|e| e.to_string())
}

/// The short name of an answer: `allow`, `needs_approval`, `deny`, `forbidden`, or `error`.
pub fn kind(decision: &Decision) -> &'static str {
    match decision {
        Decision::Allow { .. } => "allow",
        Decision::NeedsApproval { .. } => "needs_approval",
        Decision::Deny {
            reason: DenyReason::Forbidden { .. },
            ..
        } => "forbidden",
        Decision::Deny {
            reason: DenyReason::NotEligible,
            ..
        } => "deny",
        _ => "error",
    }
}

/// The policies that decided.
pub fn policies(e: &Explanation) -> Vec<String> {
    match &e.decision {
        Decision::NeedsApproval { flow, .. } => flow.policy_ids.clone(),
        Decision::Deny {
            reason: DenyReason::Forbidden { policy_ids },
            ..
        } => policy_ids.clone(),
        _ => match &e.policy {
            jitgate::PolicyDecision::Standing { policy_ids } | jitgate::PolicyDecision::Forbidden { policy_ids } => {
                policy_ids.clone()
            }
            jitgate::PolicyDecision::Eligible { flow } => flow.policy_ids.clone(),
            _ => Vec::new(),
        },
    }
}

/// `1h 30m` for a chrono duration.
pub fn duration(d: chrono::Duration) -> String {
    humantime::format_duration(d.to_std().unwrap_or_default()).to_string()
}

pub fn flow_json(flow: &Flow) -> Value {
    json!({
        "requirements": flow.requirements.iter().map(|r| json!({
            "reviewers": r.reviewers.to_string(),
            "approvals": r.min_approvals,
        })).collect::<Vec<_>>(),
        "max_duration": duration(flow.max_duration),
        "request_ttl": duration(flow.request_ttl),
        "require_reason": flow.require_reason,
        "auto_approve": flow.auto_approve,
        "break_glass": flow.break_glass.as_ref().map(|b| duration(b.max_duration)),
        "max_uses": flow.max_uses,
        "bind_attributes": flow.bind_attributes,
        "policies": flow.policy_ids,
    })
}

pub async fn run(
    policy: &PolicyArgs,
    principal: &str,
    action: &str,
    resource: &str,
    context: Option<&str>,
    format: Format,
) -> Result<(), Failure> {
    let principal = parse::entity("principal", principal)?;
    let context: Option<Value> = context
        .map(|c| serde_json::from_str(c).map_err(|e| format!("--context is not JSON: {e}")))
        .transpose()?;
    let action = parse::action(action, resource, context.as_ref())?;
    let gate = gate(check::load(policy, format).await?)?;
    let explained = gate.explain(&action, &principal).await;
    match format {
        // The wire form (`docs/wire.md`): the HTTP API's `POST /explain` answers the same.
        Format::Json => println!(
            "{}",
            serde_json::to_value(jitgate::wire::Explanation::from(&explained)).unwrap_or(Value::Null)
        ),
        _ => print!("{explained}"),
    }
    Ok(())
}
