//! jitgate's annotations: what turns a `permit` into an eligibility rule with its flow.

use std::collections::HashSet;
use std::sync::Arc;

use cedar_policy::{ActionConstraint, Effect, Policy, PolicyId, Template};
use chrono::Duration;
use jitgate_core::{EntityRef, Flow, Requirement};

use crate::duration::parse_iso8601;
use crate::schema::NAMESPACE;
use crate::CedarError;

/// What classifying reads of a policy or a template: a template's annotations are checked
/// whether or not it is linked, and each link is classified under its own id.
pub(crate) trait Rule {
    fn id(&self) -> &PolicyId;
    fn annotation(&self, key: &str) -> Option<&str>;
    fn annotations(&self) -> impl Iterator<Item = (&str, &str)>;
    fn effect(&self) -> Effect;
    fn action_constraint(&self) -> ActionConstraint;
}

macro_rules! rule {
    ($t:ty) => {
        impl Rule for $t {
            fn id(&self) -> &PolicyId {
                <$t>::id(self)
            }
            fn annotation(&self, key: &str) -> Option<&str> {
                <$t>::annotation(self, key)
            }
            fn annotations(&self) -> impl Iterator<Item = (&str, &str)> {
                <$t>::annotations(self)
            }
            fn effect(&self) -> Effect {
                <$t>::effect(self)
            }
            fn action_constraint(&self) -> ActionConstraint {
                <$t>::action_constraint(self)
            }
        }
    };
}
rule!(Policy);
rule!(Template);

/// The annotations that describe a `@jit` rule's approval flow.
pub const FLOW: &[&str] = &[
    "reviewers",
    "min_approvals",
    "max_duration",
    "request_ttl",
    "require_reason",
    "auto_approve",
    "break_glass",
    "one_shot",
    "max_uses",
    "bind",
];

/// jitgate's other annotations.
pub const OTHER: &[&str] = &["id", "description", "jit", "self_approval"];

/// Whether `key` is an annotation jitgate reads (a flow annotation, `@id`, `@jit`,
/// `@self_approval`); everything else, `@description` included, is the authors' metadata.
pub(crate) fn is_jitgate_own(key: &str) -> bool {
    FLOW.contains(&key) || matches!(key, "id" | "jit" | "self_approval")
}

fn known() -> impl Iterator<Item = &'static str> {
    OTHER.iter().chain(FLOW).copied()
}

/// What a policy is, for jitgate.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// A plain permit: standing permission.
    Standing,
    /// A `@jit` permit: eligibility, with this policy's flow.
    Jit(Arc<Flow>),
    /// A forbid.
    Forbid,
    /// A permit of `Jit::Action::"review"` or `"revoke"`.
    Review {
        /// `@self_approval("true")`: lets the requester review their own request.
        self_approval: bool,
    },
}

fn err(policy: &impl Rule, annotation: &str, value: &str, problem: impl Into<String>) -> CedarError {
    CedarError::Annotation {
        policy_id: policy.id().to_string(),
        annotation: annotation.to_owned(),
        value: value.to_owned(),
        problem: problem.into(),
        location: None,
    }
}

fn boolean(policy: &impl Rule, key: &str) -> Result<bool, CedarError> {
    match policy.annotation(key) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(err(policy, key, v, "must be \"true\" or \"false\"")),
    }
}

/// Bounds on the numbers and durations jitgate's annotations may name, checked when the
/// policies load; an annotation over one is a [`CedarError::Annotation`] naming the policy and
/// the annotation. Set with [`CedarPolicyBuilder::annotation_limits`](crate::CedarPolicyBuilder::annotation_limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnnotationLimits {
    /// The most approvals `@min_approvals` may require (default 100): a bound on the work and
    /// memory of a quorum check, far above any real review process.
    pub max_min_approvals: u32,
    /// The most uses `@max_uses` may allow (default 1,000).
    pub max_uses: u32,
    /// The longest duration `@max_duration`, `@request_ttl` and `@break_glass` may name
    /// (default a year and a day, `P366D`).
    pub max_duration: Duration,
}

impl Default for AnnotationLimits {
    fn default() -> Self {
        Self {
            max_min_approvals: 100,
            max_uses: 1_000,
            max_duration: Duration::days(366),
        }
    }
}

impl AnnotationLimits {
    /// The most approvals `@min_approvals` may require.
    #[must_use]
    pub fn with_max_min_approvals(mut self, n: u32) -> Self {
        self.max_min_approvals = n;
        self
    }
    /// The most uses `@max_uses` may allow.
    #[must_use]
    pub fn with_max_uses(mut self, n: u32) -> Self {
        self.max_uses = n;
        self
    }
    /// The longest duration an annotation may name.
    #[must_use]
    pub fn with_max_duration(mut self, d: Duration) -> Self {
        self.max_duration = d;
        self
    }
}

/// `d` as an ISO-8601 duration: whole days as `PnD`, anything else in seconds.
fn iso(d: Duration) -> String {
    if d.num_seconds() % 86_400 == 0 {
        format!("P{}D", d.num_days())
    } else {
        format!("PT{}S", d.num_seconds())
    }
}

fn duration(policy: &impl Rule, key: &str, limits: &AnnotationLimits) -> Result<Option<Duration>, CedarError> {
    policy
        .annotation(key)
        .map(|v| {
            let d = parse_iso8601(v).map_err(|p| err(policy, key, v, p))?;
            if d > limits.max_duration {
                return Err(err(
                    policy,
                    key,
                    v,
                    format!("must be at most {} (the annotation limit)", iso(limits.max_duration)),
                ));
            }
            Ok(d)
        })
        .transpose()
}

/// Names other tools use for what jitgate calls otherwise.
const SYNONYMS: &[(&str, &str)] = &[
    ("approvers", "reviewers"),
    ("approver", "reviewers"),
    ("min_reviewers", "min_approvals"),
    ("approvals", "min_approvals"),
    ("ttl", "request_ttl"),
    ("duration", "max_duration"),
    ("emergency", "break_glass"),
];

/// The jitgate annotation `key` is probably a misspelling of: a known synonym, the same
/// letters without `_`, a plural or singular, or at most two edits away (for names of five
/// letters or more).
fn misspelt(key: &str) -> Option<&'static str> {
    if known().any(|k| k == key) {
        return None;
    }
    if let Some((_, meant)) = SYNONYMS.iter().find(|(other, _)| other.eq_ignore_ascii_case(key)) {
        return Some(meant);
    }
    let squash = |s: &str| s.replace('_', "").to_ascii_lowercase();
    known().find(|k| {
        let (a, b) = (squash(k), squash(key));
        a == b || a.trim_end_matches('s') == b.trim_end_matches('s') || (a.len() >= 5 && edit_distance(&a, &b) <= 2)
    })
}

/// Levenshtein distance between two short ASCII names.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Whether the policy's action scope names one of jitgate's own actions.
pub(crate) fn is_jit_action_policy(policy: &impl Rule) -> bool {
    match policy.action_constraint() {
        ActionConstraint::Any => false,
        ActionConstraint::Eq(uid) => is_jit_action(&uid),
        ActionConstraint::In(uids) => uids.iter().any(is_jit_action),
    }
}

fn is_jit_action(uid: &cedar_policy::EntityUid) -> bool {
    uid.type_name().to_string() == format!("{NAMESPACE}::Action")
}

/// Whether the policy's action scope names jitgate's actions and the service's together: it
/// belongs to neither policy set.
pub(crate) fn mixes_jit_and_service_actions(policy: &impl Rule) -> bool {
    match policy.action_constraint() {
        ActionConstraint::In(uids) => uids.iter().any(is_jit_action) && uids.iter().any(|u| !is_jit_action(u)),
        _ => false,
    }
}

/// Classifies a policy and checks its annotations.
pub(crate) fn classify(
    policy: &impl Rule,
    entity_types: &HashSet<String>,
    limits: &AnnotationLimits,
) -> Result<Kind, CedarError> {
    for (key, value) in policy.annotations() {
        // Any other annotation is the authors' own metadata (`@advice`, `@owner`), unless it
        // looks like a misspelt jitgate annotation.
        if let Some(meant) = misspelt(key) {
            return Err(err(
                policy,
                key,
                value,
                format!("not a jitgate annotation; did you mean @{meant}?"),
            ));
        }
    }
    let flow_keys: Vec<&str> = FLOW
        .iter()
        .copied()
        .filter(|k| policy.annotation(k).is_some())
        .collect();
    if policy.effect() == Effect::Forbid {
        if let Some(k) = flow_keys.first().copied().or(policy.annotation("jit").map(|_| "jit")) {
            return Err(err(
                policy,
                k,
                policy.annotation(k).unwrap_or_default(),
                "flow annotations belong on @jit permits, not on forbids",
            ));
        }
        if let Some(v) = policy.annotation("self_approval") {
            return Err(err(
                policy,
                "self_approval",
                v,
                "belongs on a permit of Jit::Action::\"review\"",
            ));
        }
        return Ok(Kind::Forbid);
    }
    let review = is_jit_action_policy(policy);
    if let Some(v) = policy.annotation("self_approval") {
        if !review {
            return Err(err(
                policy,
                "self_approval",
                v,
                "belongs on a permit of Jit::Action::\"review\"",
            ));
        }
    }
    let Some(jit) = policy.annotation("jit") else {
        if let Some(k) = flow_keys.first() {
            return Err(err(
                policy,
                k,
                policy.annotation(k).unwrap_or_default(),
                "flow annotations need @jit(\"approval\") on the same permit",
            ));
        }
        return Ok(if review {
            Kind::Review {
                self_approval: boolean(policy, "self_approval")?,
            }
        } else {
            Kind::Standing
        });
    };
    if jit != "approval" {
        return Err(err(
            policy,
            "jit",
            jit,
            "the only kind is \"approval\": write @jit(\"approval\")",
        ));
    }
    if review {
        return Err(err(
            policy,
            "jit",
            jit,
            "jitgate's own review and revoke actions cannot be requested just in time",
        ));
    }
    Ok(Kind::Jit(Arc::new(flow(policy, entity_types, limits)?)))
}

fn flow(policy: &impl Rule, entity_types: &HashSet<String>, limits: &AnnotationLimits) -> Result<Flow, CedarError> {
    let Some(max) = duration(policy, "max_duration", limits)? else {
        return Err(err(
            policy,
            "max_duration",
            "",
            "a @jit permit needs @max_duration, e.g. @max_duration(\"PT1H\")",
        ));
    };
    let auto = boolean(policy, "auto_approve")?;
    let mut flow = Flow::new(max)
        .with_request_ttl(duration(policy, "request_ttl", limits)?.unwrap_or(Duration::hours(1)))
        .with_reason_required(boolean(policy, "require_reason")?)
        .with_auto_approve(auto)
        .with_policy_id(policy.id().to_string());
    // `@break_glass("true")`: break-glass up to the flow's maximum; `"false"`: none; else the
    // (shorter) bound as a duration.
    let break_glass = match policy.annotation("break_glass") {
        Some("true") => Some(max),
        Some("false") => None,
        _ => duration(policy, "break_glass", limits)?,
    };
    if let Some(bg) = break_glass {
        if bg > max {
            let v = policy.annotation("break_glass").unwrap_or_default();
            return Err(err(
                policy,
                "break_glass",
                v,
                "the break-glass bound must not exceed @max_duration",
            ));
        }
        flow = flow.with_break_glass(bg);
    }
    let one_shot = boolean(policy, "one_shot")?;
    match policy.annotation("max_uses") {
        Some(v) if one_shot => {
            return Err(err(
                policy,
                "max_uses",
                v,
                "@one_shot already limits the grant to one use: keep one of them",
            ))
        }
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=limits.max_uses).contains(&n) => flow = flow.with_max_uses(n, false),
            _ => {
                return Err(err(
                    policy,
                    "max_uses",
                    v,
                    format!("must be a whole number from 1 to {}", limits.max_uses),
                ))
            }
        },
        None if one_shot => flow = flow.with_max_uses(1, false),
        None => {}
    }
    if let Some(v) = policy.annotation("bind") {
        let names: Vec<String> = v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        match names.as_slice() {
            [] => {
                return Err(err(
                    policy,
                    "bind",
                    v,
                    "name the context attributes the grant is bound to, e.g. @bind(\"ticket, command\"), or @bind(\"*\") for every parameter",
                ))
            }
            [all] if all == "*" => flow.bind_parameters = true,
            _ => flow = flow.with_bound_attributes(names),
        }
    }
    let min = match policy.annotation("min_approvals") {
        None => 1,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=limits.max_min_approvals).contains(&n) => n,
            _ => {
                return Err(err(
                    policy,
                    "min_approvals",
                    v,
                    format!("must be a whole number from 1 to {}", limits.max_min_approvals),
                ))
            }
        },
    };
    match policy.annotation("reviewers") {
        Some(v) => {
            let group: EntityRef = v
                .parse()
                .map_err(|e: jitgate_core::EntityRefParseError| err(policy, "reviewers", v, e.problem))?;
            if !entity_types.contains(&*group.type_name) {
                return Err(err(
                    policy,
                    "reviewers",
                    v,
                    format!("the schema has no entity type `{}`", group.type_name),
                ));
            }
            flow = flow.with_requirement(Requirement::new(group, min));
        }
        None if !auto => {
            return Err(err(
                policy,
                "reviewers",
                "",
                "a @jit permit needs @reviewers (or @auto_approve(\"true\"))",
            ));
        }
        None => {}
    }
    Ok(flow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspellings_are_caught_and_other_names_are_metadata() {
        for (typo, meant) in [
            ("oneshot", "one_shot"),
            ("min_approval", "min_approvals"),
            ("reviewer", "reviewers"),
            ("max_durations", "max_duration"),
            ("requst_ttl", "request_ttl"),
            ("breakglass", "break_glass"),
            ("selfapproval", "self_approval"),
            ("approvers", "reviewers"),
            ("ttl", "request_ttl"),
        ] {
            assert_eq!(misspelt(typo), Some(meant), "{typo}");
        }
        for own in ["advice", "owner", "team", "ticket", "severity", "one_shot", "id"] {
            assert_eq!(misspelt(own), None, "{own}");
        }
    }
}
