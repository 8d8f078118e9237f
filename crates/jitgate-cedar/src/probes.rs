//! Conditions that open a policy and read only the principal, decided once per principal with
//! each entity snapshot: what lets a slice leave out a forbid that cannot apply to a principal.

use std::collections::HashSet;

use cedar_policy::{Authorizer, Context, Entities, EntityUid, Policy, PolicyId, PolicySet, Request};
use serde_json::Value;

/// Conditions that open a policy and read nothing but the principal (its attributes, its
/// groups, entity literals): `when { principal.contractor }`, `unless { principal in
/// Team::"oncall" }`. With the entities fixed they have one value per principal, decided once
/// per snapshot, so a forbid such a condition rules out for a principal (a contractor forbid,
/// for an employee) is never evaluated for them.
///
/// Exact, not a guess: Cedar evaluates a policy's scope, then its conditions in order, each
/// `&&` left to right, stopping at the first `false`. A probe holds the longest such prefix of
/// a policy's conditions that reads only the principal, as a policy of its own with an open
/// scope; where the probe is neither satisfied nor in error for a principal, one of those
/// conditions is `false` after the ones before it held without error, so the policy itself is
/// `false` for that principal — never satisfied, never an error — whatever the request.
#[derive(Debug, Default)]
pub(crate) struct Probes {
    set: PolicySet,
    /// (the policy, its probe), in the set's order.
    of: Vec<(PolicyId, PolicyId)>,
}

impl Probes {
    pub(crate) fn of(all: &PolicySet) -> Self {
        let mut probes = Self::default();
        for p in all.policies() {
            let Some(conditions) = p.to_json().ok().and_then(|json| principal_prefix(&json)) else {
                continue;
            };
            let probe_id = PolicyId::new(format!("probe{}", probes.of.len()));
            let probe = serde_json::json!({
                "effect": "permit",
                "principal": { "op": "All" },
                "action": { "op": "All" },
                "resource": { "op": "All" },
                "conditions": conditions,
            });
            let Ok(probe) = Policy::from_json(Some(probe_id.clone()), probe) else {
                continue;
            };
            if probes.set.add(probe).is_ok() {
                probes.of.push((p.id().clone(), probe_id));
            }
        }
        probes
    }

    /// The policies whose leading principal conditions are `false` for `principal`, sorted.
    pub(crate) fn ruled_out(&self, principal: &EntityUid, entities: &Entities) -> Vec<PolicyId> {
        if self.of.is_empty() {
            return Vec::new();
        }
        // The probes read only the principal: any action and resource will do.
        let Ok(request) = Request::new(
            principal.clone(),
            principal.clone(),
            principal.clone(),
            Context::empty(),
            None,
        ) else {
            return Vec::new();
        };
        let response = Authorizer::new().is_authorized(&request, &self.set, entities);
        let settled: HashSet<&PolicyId> = response
            .diagnostics()
            .reason()
            .chain(response.diagnostics().errors().map(|e| {
                let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
                pe.policy_id()
            }))
            .collect();
        let mut out: Vec<PolicyId> = self
            .of
            .iter()
            .filter(|(_, probe)| !settled.contains(probe))
            .map(|(policy, _)| policy.clone())
            .collect();
        out.sort_unstable();
        out
    }
}

/// The longest prefix of a policy's conditions (its JSON form) that reads only the principal:
/// whole `when`/`unless` clauses, then the leading conjuncts of the first `when` that does not
/// (in the JSON form's clause shape), or `None` if there is none.
fn principal_prefix(policy: &Value) -> Option<Vec<Value>> {
    let mut prefix = Vec::new();
    for clause in policy.get("conditions")?.as_array()? {
        let (kind, body) = (clause.get("kind")?.as_str()?, clause.get("body")?);
        if reads_only_principal(body) {
            prefix.push(clause.clone());
            continue;
        }
        if kind == "when" {
            let mut conjuncts = Vec::new();
            flatten_and(body, &mut conjuncts);
            let leading: Vec<&Value> = conjuncts.into_iter().take_while(|c| reads_only_principal(c)).collect();
            prefix.extend(
                leading
                    .into_iter()
                    .map(|c| serde_json::json!({ "kind": "when", "body": c })),
            );
        }
        break;
    }
    (!prefix.is_empty()).then_some(prefix)
}

/// `a && b && c` as `[a, b, c]`, in evaluation order.
fn flatten_and<'a>(e: &'a Value, out: &mut Vec<&'a Value>) {
    match e.get("&&") {
        Some(and) => match (and.get("left"), and.get("right")) {
            (Some(left), Some(right)) => {
                flatten_and(left, out);
                flatten_and(right, out);
            }
            _ => out.push(e),
        },
        None => out.push(e),
    }
}

/// Whether the expression reads no variable but `principal` (and no slot or unknown).
fn reads_only_principal(e: &Value) -> bool {
    match e {
        Value::Object(map) => map.iter().all(|(key, inner)| match key.as_str() {
            "Var" => inner == "principal",
            "Slot" | "unknown" => false,
            _ => reads_only_principal(inner),
        }),
        Value::Array(items) => items.iter().all(reads_only_principal),
        _ => true,
    }
}
