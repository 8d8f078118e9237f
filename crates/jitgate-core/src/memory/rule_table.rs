//! A small rule-table policy: patterns over principal, action and resource, group
//! membership with nesting, and flows attached to eligibility rules.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::model::entity::{Action, EntityRef};
use crate::model::flow::{Flow, FlowError};
use crate::model::grant::Grant;
use crate::model::policy_version::PolicyVersion;
use crate::model::request::AccessRequest;
use crate::ports::policy::{Policy, PolicyDecision, PolicyError, ReviewerStanding};

/// Matches one entity of a rule.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Pattern {
    /// Any entity.
    Any,
    /// Exactly this entity.
    Is(EntityRef),
    /// This entity or any member of it, directly or through nested groups.
    In(EntityRef),
    /// Any entity of this type (Cedar's `is`).
    Type(String),
}

#[derive(Clone, Debug)]
enum Effect {
    Standing,
    Eligible(Arc<Flow>),
    Forbid,
}

#[derive(Clone, Debug)]
struct Rule {
    id: String,
    effect: Effect,
    principal: Pattern,
    action: Pattern,
    resource: Pattern,
}

/// Builds a [`RuleTable`].
#[derive(Default, Debug)]
pub struct RuleTableBuilder {
    rules: Vec<Rule>,
    parents: HashMap<EntityRef, Vec<EntityRef>>,
    revokers: Vec<Pattern>,
    auditors: Vec<Pattern>,
    errors: Vec<(String, FlowError)>,
}

impl RuleTableBuilder {
    /// Makes `member` a direct member of `group` (groups may themselves be members of groups).
    #[must_use]
    pub fn member(mut self, member: EntityRef, group: EntityRef) -> Self {
        self.parents.entry(member).or_default().push(group);
        self
    }

    fn rule(mut self, id: &str, effect: Effect, principal: Pattern, action: Pattern, resource: Pattern) -> Self {
        self.rules.push(Rule {
            id: id.to_owned(),
            effect,
            principal,
            action,
            resource,
        });
        self
    }

    /// Allows the matching actions without any request.
    #[must_use]
    pub fn standing(self, id: &str, principal: Pattern, action: Pattern, resource: Pattern) -> Self {
        self.rule(id, Effect::Standing, principal, action, resource)
    }

    /// Makes the matching principals eligible to ask for the matching actions through `flow`
    /// (the rule id is added to the flow's policy ids).
    #[must_use]
    pub fn eligible(mut self, id: &str, principal: Pattern, action: Pattern, resource: Pattern, flow: Flow) -> Self {
        if let Err(e) = flow.validate() {
            self.errors.push((id.to_owned(), e));
        }
        let flow = flow.with_policy_id(id);
        self.rule(id, Effect::Eligible(Arc::new(flow)), principal, action, resource)
    }

    /// Forbids the matching actions, whatever else allows them.
    #[must_use]
    pub fn forbid(self, id: &str, principal: Pattern, action: Pattern, resource: Pattern) -> Self {
        self.rule(id, Effect::Forbid, principal, action, resource)
    }

    /// Lets the matching principals revoke any grant (holders may always give up their own,
    /// and eligible reviewers of the grant's request may revoke it).
    #[must_use]
    pub fn revoker(mut self, who: Pattern) -> Self {
        self.revokers.push(who);
        self
    }

    /// Lets the matching principals read and verify the audit trail
    /// ([`Policy::may_read_audit`]); by default nobody may.
    #[must_use]
    pub fn auditor(mut self, who: Pattern) -> Self {
        self.auditors.push(who);
        self
    }

    /// Finishes the table, computing the transitive group closure.
    ///
    /// # Errors
    /// Every invalid flow, each with the id of its rule.
    pub fn build(self) -> Result<RuleTable, RuleTableError> {
        if !self.errors.is_empty() {
            return Err(RuleTableError { errors: self.errors });
        }
        let mut ancestors: HashMap<EntityRef, HashSet<EntityRef>> = HashMap::new();
        for member in self.parents.keys() {
            let mut seen = HashSet::new();
            let mut stack: Vec<&EntityRef> = self.parents[member].iter().collect();
            while let Some(g) = stack.pop() {
                if seen.insert(g.clone()) {
                    stack.extend(self.parents.get(g).into_iter().flatten());
                }
            }
            ancestors.insert(member.clone(), seen);
        }
        let groups = self.parents.values().flatten().cloned().collect();
        let mut memberships: Vec<String> = self
            .parents
            .iter()
            .map(|(m, ps)| {
                let mut ps: Vec<String> = ps.iter().map(ToString::to_string).collect();
                ps.sort();
                format!("{m} in {}", ps.join(","))
            })
            .collect();
        memberships.sort();
        let mut parts = vec![
            format!("{:?}", self.rules),
            memberships.join("\n"),
            format!("{:?}", self.revokers),
        ];
        // Only when there are any: the versions of tables without auditors stay as they were.
        if !self.auditors.is_empty() {
            parts.push(format!("auditors {:?}", self.auditors));
        }
        Ok(RuleTable {
            version: PolicyVersion::digest(parts.iter().map(String::as_bytes)),
            rules: self.rules,
            ancestors,
            groups,
            revokers: self.revokers,
            auditors: self.auditors,
        })
    }
}

/// Rules whose flows are invalid: every one of them, each with its rule id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.errors.iter().map(|(rule, e)| format!("rule `{rule}`: {e}")).collect::<Vec<_>>().join("; "))]
#[non_exhaustive]
pub struct RuleTableError {
    /// The rule ids and what is wrong with their flows, in the order the rules were added.
    pub errors: Vec<(String, FlowError)>,
}

/// A rule-table [`Policy`].
///
/// - A `forbid` rule that matches wins over everything.
/// - Otherwise a matching `standing` rule allows.
/// - Otherwise matching `eligible` rules make the principal eligible; their flows are
///   combined with [`Flow::combine`].
/// - A reviewer may count toward a requirement when they are, or are a member of, its
///   reviewer set.
///
/// # Examples
/// ```
/// use chrono::Duration;
/// use jitgate_core::{EntityRef, Flow, Pattern, Requirement, RuleTable};
/// let e = EntityRef::new;
/// let policy = RuleTable::builder()
///     .member(e("User", "sam"), e("Team", "sre"))
///     .eligible(
///         "prod-db-restart",
///         Pattern::In(e("Team", "sre")),
///         Pattern::Is(e("Action", "db_restart")),
///         Pattern::Any,
///         Flow::new(Duration::hours(1)).with_requirement(Requirement::new(e("Team", "sre-leads"), 1)),
///     )
///     .build()
///     .unwrap();
/// # let _ = policy;
/// ```
#[derive(Clone, Debug)]
pub struct RuleTable {
    rules: Vec<Rule>,
    ancestors: HashMap<EntityRef, HashSet<EntityRef>>,
    /// Every entity that has members: a group, never a principal.
    groups: HashSet<EntityRef>,
    revokers: Vec<Pattern>,
    auditors: Vec<Pattern>,
    /// A digest of the rules, memberships and revokers (in this build of jitgate's terms).
    version: PolicyVersion,
}

impl RuleTable {
    /// Starts an empty table.
    pub fn builder() -> RuleTableBuilder {
        RuleTableBuilder::default()
    }

    /// Whether `entity` is `group` or a (transitive) member of it.
    pub fn is_in(&self, entity: &EntityRef, group: &EntityRef) -> bool {
        entity == group || self.ancestors.get(entity).is_some_and(|a| a.contains(group))
    }

    fn matches(&self, p: &Pattern, e: &EntityRef) -> bool {
        match p {
            Pattern::Any => true,
            Pattern::Is(x) => x == e,
            Pattern::In(g) => self.is_in(e, g),
            Pattern::Type(t) => *e.type_name == **t,
        }
    }

    fn matching<'a>(&'a self, principal: &'a EntityRef, action: &'a Action) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| {
            self.matches(&r.principal, principal)
                && self.matches(&r.action, &action.scope.action)
                && self.matches(&r.resource, &action.scope.resource)
        })
    }
}

impl Policy for RuleTable {
    fn version(&self) -> Option<PolicyVersion> {
        Some(self.version)
    }

    fn evaluate(&self, principal: &EntityRef, action: &Action) -> Result<PolicyDecision, PolicyError> {
        let mut forbid = Vec::new();
        let mut standing = Vec::new();
        let mut flow: Option<Arc<Flow>> = None;
        for rule in self.matching(principal, action) {
            match &rule.effect {
                Effect::Forbid => forbid.push(rule.id.clone()),
                Effect::Standing => standing.push(rule.id.clone()),
                Effect::Eligible(f) => {
                    flow = Some(match flow {
                        None => Arc::clone(f),
                        Some(prev) => Arc::new(prev.combine(f)),
                    })
                }
            }
        }
        Ok(if !forbid.is_empty() {
            PolicyDecision::Forbidden { policy_ids: forbid }
        } else if !standing.is_empty() {
            PolicyDecision::Standing { policy_ids: standing }
        } else if let Some(flow) = flow {
            PolicyDecision::Eligible { flow }
        } else {
            PolicyDecision::NotEligible
        })
    }

    fn reviewer_standing(
        &self,
        reviewer: &EntityRef,
        request: &AccessRequest,
    ) -> Result<ReviewerStanding, PolicyError> {
        let eligible_for: Vec<usize> = request
            .flow
            .requirements
            .iter()
            .enumerate()
            .filter(|(_, r)| self.is_in(reviewer, &r.reviewers))
            .map(|(i, _)| i)
            .collect();
        let policy_ids = if eligible_for.is_empty() {
            Vec::new()
        } else {
            request.flow.policy_ids.clone()
        };
        Ok(ReviewerStanding {
            eligible_for,
            policy_ids,
            self_approval: false,
        })
    }

    /// The holder, a configured revoker, or a reviewer of the flow it came from.
    fn may_revoke(&self, actor: &EntityRef, grant: &Grant, request: &AccessRequest) -> Result<bool, PolicyError> {
        Ok(*actor == grant.principal || self.may_withdraw(actor, request)?)
    }

    /// A configured auditor ([`RuleTableBuilder::auditor`]).
    fn may_read_audit(&self, caller: &EntityRef) -> Result<bool, PolicyError> {
        Ok(self.auditors.iter().any(|p| self.matches(p, caller)))
    }

    /// The requester, a configured revoker, or a reviewer of the request's flow.
    fn may_withdraw(&self, actor: &EntityRef, request: &AccessRequest) -> Result<bool, PolicyError> {
        Ok(*actor == request.principal
            || self.revokers.iter().any(|p| self.matches(p, actor))
            || request
                .flow
                .requirements
                .iter()
                .any(|r| self.is_in(actor, &r.reviewers)))
    }

    /// The reviewer and its groups: a requirement counts a reviewer only when the reviewer is
    /// in its group (see `reviewer_standing`).
    fn break_glass_policies(&self) -> Vec<String> {
        self.rules
            .iter()
            .filter(|r| matches!(&r.effect, Effect::Eligible(flow) if flow.break_glass.is_some()))
            .map(|r| r.id.clone())
            .collect()
    }

    fn reviewer_groups(&self, reviewer: &EntityRef) -> Result<Option<Vec<EntityRef>>, PolicyError> {
        let mut groups = vec![reviewer.clone()];
        groups.extend(self.ancestors.get(reviewer).into_iter().flatten().cloned());
        Ok(Some(groups))
    }

    /// An entity is a principal unless it has members (a group).
    fn is_principal(&self, entity: &EntityRef) -> bool {
        !self.groups.contains(entity)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::model::flow::Requirement;

    fn e(t: &str, i: &str) -> EntityRef {
        EntityRef::new(t, i)
    }

    fn flow(max_h: i64, reviewers: &str) -> Flow {
        Flow::new(Duration::hours(max_h)).with_requirement(Requirement::new(e("Team", reviewers), 1))
    }

    #[test]
    fn membership_is_transitive() {
        let t = RuleTable::builder()
            .member(e("User", "a"), e("Team", "inner"))
            .member(e("Team", "inner"), e("Team", "middle"))
            .member(e("Team", "middle"), e("Team", "outer"))
            .build()
            .unwrap();
        assert!(t.is_in(&e("User", "a"), &e("Team", "outer")));
        assert!(t.is_in(&e("Team", "outer"), &e("Team", "outer")));
        assert!(!t.is_in(&e("Team", "outer"), &e("User", "a")));
    }

    #[test]
    fn membership_cycles_terminate() {
        let t = RuleTable::builder()
            .member(e("Team", "x"), e("Team", "y"))
            .member(e("Team", "y"), e("Team", "x"))
            .build()
            .unwrap();
        assert!(t.is_in(&e("Team", "x"), &e("Team", "y")));
    }

    #[test]
    fn forbid_beats_standing_beats_eligible_and_eligible_flows_combine() {
        let act = Action::new(e("Action", "go"), e("Db", "x"));
        let base = RuleTable::builder()
            .eligible("a", Pattern::Any, Pattern::Any, Pattern::Any, flow(4, "leads"))
            .eligible(
                "b",
                Pattern::Any,
                Pattern::Any,
                Pattern::Type("Db".into()),
                flow(1, "security"),
            );
        let t = base.build().unwrap();
        match t.evaluate(&e("User", "u"), &act).unwrap() {
            PolicyDecision::Eligible { flow } => {
                assert_eq!(flow.requirements.len(), 2, "every matching rule's requirement");
                assert_eq!(flow.max_duration, Duration::hours(1), "the shortest maximum");
                assert_eq!(flow.policy_ids, vec!["a".to_string(), "b".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        let t = RuleTable::builder()
            .eligible("a", Pattern::Any, Pattern::Any, Pattern::Any, flow(4, "leads"))
            .standing("s", Pattern::Any, Pattern::Any, Pattern::Any)
            .build()
            .unwrap();
        assert!(matches!(
            t.evaluate(&e("User", "u"), &act).unwrap(),
            PolicyDecision::Standing { .. }
        ));
        let t = RuleTable::builder()
            .standing("s", Pattern::Any, Pattern::Any, Pattern::Any)
            .forbid("f", Pattern::Is(e("User", "u")), Pattern::Any, Pattern::Any)
            .build()
            .unwrap();
        assert_eq!(
            t.evaluate(&e("User", "u"), &act).unwrap(),
            PolicyDecision::Forbidden {
                policy_ids: vec!["f".into()]
            }
        );
        assert!(matches!(
            t.evaluate(&e("User", "v"), &act).unwrap(),
            PolicyDecision::Standing { .. }
        ));
        assert_eq!(
            RuleTable::builder()
                .build()
                .unwrap()
                .evaluate(&e("User", "u"), &act)
                .unwrap(),
            PolicyDecision::NotEligible
        );
    }

    #[test]
    fn every_invalid_flow_is_a_build_error_naming_its_rule() {
        let bad = || Flow::new(Duration::zero()).with_auto_approve(true);
        let err = RuleTable::builder()
            .eligible("bad", Pattern::Any, Pattern::Any, Pattern::Any, bad())
            .eligible("worse", Pattern::Any, Pattern::Any, Pattern::Any, bad())
            .build()
            .unwrap_err();
        let rules: Vec<&str> = err.errors.iter().map(|(rule, _)| rule.as_str()).collect();
        assert_eq!(rules, ["bad", "worse"], "every invalid rule, not the first");
        assert!(err.to_string().contains("max_duration"), "{err}");
        assert!(err.to_string().contains("rule `worse`"), "{err}");
    }
}
