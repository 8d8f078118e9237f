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

    /// Whether two principals of one class (same scope matches, same probe outcomes) decide
    /// `policy` alike for every request: it reads the principal nowhere but in its scope and in
    /// leading conditions a probe of this set decides.
    pub(crate) fn class_decides(&self, policy: &Policy) -> bool {
        let Ok(json) = policy.to_json() else {
            return false;
        };
        if self.of.iter().any(|(id, _)| id == policy.id()) {
            !reads_principal_past_prefix(&json)
        } else {
            !json.get("conditions").is_some_and(reads_principal)
        }
    }

    /// What the leading principal conditions come to for `principal`: the policies they rule
    /// out (`false`) and those where they are in error, each sorted. For every other policy
    /// with a probe they hold.
    pub(crate) fn outcomes(&self, principal: &EntityUid, entities: &Entities) -> ProbeOutcomes {
        if self.of.is_empty() {
            return ProbeOutcomes::default();
        }
        // The probes read only the principal: any action and resource will do.
        let Ok(request) = Request::new(
            principal.clone(),
            principal.clone(),
            principal.clone(),
            Context::empty(),
            None,
        ) else {
            // Nothing decided: no policy is ruled out, and every probe counts as in error (so
            // no two such principals are taken to decide alike).
            return ProbeOutcomes {
                ruled_out: Vec::new(),
                errored: self.of.iter().map(|(policy, _)| policy.clone()).collect(),
            };
        };
        let response = Authorizer::new().is_authorized(&request, &self.set, entities);
        let held: HashSet<&PolicyId> = response.diagnostics().reason().collect();
        let errored: HashSet<&PolicyId> = response
            .diagnostics()
            .errors()
            .map(|e| {
                let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
                pe.policy_id()
            })
            .collect();
        let mut out = ProbeOutcomes::default();
        for (policy, probe) in &self.of {
            if errored.contains(probe) {
                out.errored.push(policy.clone());
            } else if !held.contains(probe) {
                out.ruled_out.push(policy.clone());
            }
        }
        out.ruled_out.sort_unstable();
        out.errored.sort_unstable();
        out
    }
}

/// What a principal's leading principal conditions come to, policy by policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct ProbeOutcomes {
    /// Policies whose leading principal conditions are `false`: never satisfied, never an
    /// error, for this principal.
    pub(crate) ruled_out: Vec<PolicyId>,
    /// Policies whose leading principal conditions are in error for this principal.
    pub(crate) errored: Vec<PolicyId>,
}

/// Whether a policy (its JSON form) reads the principal anywhere but in its scope and its
/// leading principal conditions (those a probe decides). A policy that does not can only
/// decide differently for two principals when their scope matches or their probes differ,
/// which is what a principal class records; one that cannot be read counts as reading it.
fn reads_principal_past_prefix(policy: &Value) -> bool {
    let Some(clauses) = policy.get("conditions").and_then(Value::as_array) else {
        return policy.get("conditions").is_some();
    };
    let mut rest = clauses.iter();
    for clause in rest.by_ref() {
        let (Some(kind), Some(body)) = (clause.get("kind").and_then(Value::as_str), clause.get("body")) else {
            return true;
        };
        if reads_only_principal(body) {
            continue;
        }
        // The first clause that reads more: its conjuncts past the leading principal ones, and
        // every clause after it, are evaluated for every principal alike only if they do not
        // read the principal.
        let past = if kind == "when" {
            let mut conjuncts = Vec::new();
            flatten_and(body, &mut conjuncts);
            conjuncts
                .into_iter()
                .skip_while(|c| reads_only_principal(c))
                .any(reads_principal)
        } else {
            reads_principal(body)
        };
        return past || rest.any(|c| c.get("body").is_none_or(reads_principal));
    }
    false
}

/// Whether the expression reads the variable `principal` (or a slot or unknown, which may
/// stand for it).
fn reads_principal(e: &Value) -> bool {
    let read = variables(e);
    read.contains("principal") || read.contains(UNKNOWN)
}

/// What a slot or an unknown counts as in [`variables`]: it may stand for any variable.
const UNKNOWN: &str = "?";

/// The variables an expression reads (a slot or an unknown as [`UNKNOWN`]).
fn variables(e: &Value) -> HashSet<&str> {
    fn walk<'a>(e: &'a Value, out: &mut HashSet<&'a str>) {
        match e {
            Value::Object(map) => {
                for (key, inner) in map {
                    match (key.as_str(), inner) {
                        ("Var", Value::String(var)) => {
                            out.insert(var);
                        }
                        ("Var" | "Slot" | "unknown", _) => {
                            out.insert(UNKNOWN);
                        }
                        _ => walk(inner, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = HashSet::new();
    walk(e, &mut out);
    out
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
    variables(e).iter().all(|v| *v == "principal")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decides(text: &str) -> bool {
        let set: PolicySet = text.parse().unwrap();
        let probes = Probes::of(&set);
        let policy = set.policies().next().unwrap();
        probes.class_decides(policy)
    }

    #[test]
    fn the_principal_past_the_opening_conditions_is_found_wherever_it_is() {
        assert!(decides(
            "permit(principal in Team::\"a\", action, resource) when { context.x };"
        ));
        assert!(decides(
            "permit(principal, action, resource) when { principal.c && principal in Team::\"a\" } unless { context.x };"
        ));
        assert!(!decides(
            "permit(principal, action, resource) when { context.x && principal.c };"
        ));
        assert!(!decides(
            "permit(principal, action, resource) when { resource.owner == principal };"
        ));
        // A record whose field is named like the JSON form's keys still hides no read.
        assert!(!decides(
            "permit(principal, action, resource) when { context.r == {\"Var\": principal.level} };"
        ));
        assert!(!decides(
            "permit(principal, action, resource) when { principal.c } when { {\"Slot\": 1, \"x\": principal}.x == resource };"
        ));
    }
}
