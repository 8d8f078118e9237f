//! [`CedarPolicy`]: jitgate's [`Policy`] on Cedar.
//!
//! - `builder`: what to load, and `build`;
//! - `compile`: reading, parsing, linking, splitting and validating it, every error at once;
//! - `evaluation`: Cedar calls on the sliced policy set, the decision cache, flows from `@jit`;
//! - `request_entities`: review and revoke decisions on a small store around jitgate's own
//!   request and grant entities.

mod builder;
mod compile;
mod evaluation;
mod request_entities;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use cedar_policy::{Authorizer, Decision, EntityUid, PolicyId, PolicySet, RestrictedExpression, Schema};
use jitgate_core::{
    AccessRequest, Action, EntityRef, Grant, Policy, PolicyDecision, PolicyError, PolicyVersion, ReviewerStanding,
};

use crate::annotations::Kind;
use crate::convert::TypeNames;
use crate::decisions::Who;
use crate::entities::EntityCache;
use crate::CedarError;

pub use self::builder::CedarPolicyBuilder;
use self::evaluation::ids;

/// jitgate's [`Policy`] on Cedar.
///
/// - **Standing**: a plain `permit` matches and no `forbid` does.
/// - **Eligible**: a `@jit("approval")` permit matches and no `forbid` does; the flow combines
///   every matching `@jit` permit's ([`Flow::combine`](jitgate_core::Flow::combine): all requirements, the shortest limits).
/// - **Forbidden**: a `forbid` matches — whatever else does, grants included.
/// - **Reviewers**: an `is_authorized` call with `Jit::Action::"review"` on the request as a
///   `Jit::AccessRequest` entity, on the policies of jitgate's own actions only (the service's
///   policies, even those with an unconstrained `action`, are never asked about reviews); the reviewer then counts toward each requirement whose
///   `@reviewers` group they belong to. Revokes likewise, with `Jit::Action::"revoke"` on a
///   `Jit::Grant` (a holder may always give up their own grant).
/// - **Auditors**: `Jit::Action::"read_audit"` on `Jit::AuditTrail::"trail"`, e.g.
///   `permit(principal in Team::"security", action == Jit::Action::"read_audit", resource);`.
///
/// Every decision carries the ids (`@id`) of the policies that made it.
pub struct CedarPolicy {
    /// The review schema (the service's with jitgate's part).
    schema: Schema,
    /// The service's schema alone.
    service_schema: Schema,
    main: PolicySet,
    review: PolicySet,
    kinds: HashMap<PolicyId, Kind>,
    entities: EntityCache,
    types: TypeNames,
    authorizer: Authorizer,
    review_action: EntityUid,
    revoke_action: EntityUid,
    /// `Jit::Action::"read_audit"` on `Jit::AuditTrail::"trail"`: who is an auditor.
    audit_action: EntityUid,
    audit_trail: EntityUid,
    principal_types: Vec<String>,
    /// The context attributes each action's policies read: the decision cache keys on these.
    context_reads: crate::context_reads::ReadsByAction,
    hits: AtomicU64,
    misses: AtomicU64,
    /// A digest of the schema, policies and links it was built from.
    version: PolicyVersion,
}

/// Hit and miss counts of the decision cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Decisions answered from the cache.
    pub hits: u64,
    /// Decisions computed (and then cached).
    pub misses: u64,
    /// Decisions held now (for the current entities).
    pub entries: usize,
    /// Their estimated size in bytes (bounded by `decision_cache_bytes`).
    pub bytes: usize,
}

impl std::fmt::Debug for CedarPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CedarPolicy")
            .field("policies", &self.kinds.len())
            .finish_non_exhaustive()
    }
}

impl CedarPolicy {
    /// Starts a builder (principal types: those of the schema's actions).
    pub fn builder() -> CedarPolicyBuilder {
        CedarPolicyBuilder::new()
    }

    /// The review schema: the service's with jitgate's part merged in (the review and revoke
    /// policies validate against it).
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The service's schema alone (the service's policies validate against it, as in bare Cedar).
    pub fn service_schema(&self) -> &Schema {
        &self.service_schema
    }

    /// The entity types that request, review and hold grants.
    pub fn principal_types(&self) -> &[String] {
        &self.principal_types
    }

    /// Every policy, as loaded (with the authors' ids): the service's, template links included,
    /// then those of jitgate's own actions.
    pub fn policies(&self) -> impl Iterator<Item = &cedar_policy::Policy> {
        self.main.policies().chain(self.review.policies())
    }

    /// Reloads the entities from the provider. On error the previous entities stay in use
    /// (until older than the maximum age, if one is set).
    ///
    /// # Errors
    /// The provider's [`CedarError`].
    pub async fn refresh_entities(&self) -> Result<(), CedarError> {
        self.entities.refresh().await
    }

    /// When the entities in use were loaded (at build, or by the last successful refresh).
    pub fn entities_loaded_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.entities.loaded_at()
    }

    /// The slices of the current entity snapshot: principal classes × actions, and how many
    /// distinct slices they share (zero when the entities are too old).
    pub fn slice_stats(&self) -> crate::slice::SliceStats {
        self.entities.current().map(|s| s.slices.stats()).unwrap_or_default()
    }

    /// Hits and misses of the decision cache (zero when it is off).
    pub fn decision_cache_stats(&self) -> CacheStats {
        let (entries, bytes) = self
            .entities
            .current()
            .ok()
            .and_then(|s| {
                s.decisions
                    .as_ref()
                    .map(|c| c.lock().unwrap_or_else(|p| p.into_inner()).usage())
            })
            .unwrap_or((0, 0));
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
            bytes,
        }
    }
}

impl CedarPolicy {
    /// Whether `actor` may end a grant (`Jit::Grant::"<id>"`) held by `holder` on `scope`: its
    /// holder always may; anyone else needs a `Jit::Action::"revoke"` permit.
    fn may_end(
        &self,
        actor: &EntityRef,
        id: String,
        (holder, scope, break_glass): (&EntityRef, &jitgate_core::Scope, bool),
    ) -> Result<bool, PolicyError> {
        if actor == holder {
            return Ok(true);
        }
        let (response, _) = self.ask_about_jit_entity(
            &self.types.uid(actor)?,
            &self.revoke_action,
            ("Grant", id),
            vec![
                ("holder", RestrictedExpression::new_entity_uid(self.types.uid(holder)?)),
                ("action", RestrictedExpression::new_string(scope.action.id.to_string())),
                ("break_glass", RestrictedExpression::new_bool(break_glass)),
            ],
            (&scope.resource, holder),
        )?;
        Ok(response.decision() == Decision::Allow)
    }
}

impl Policy for CedarPolicy {
    fn version(&self) -> Option<PolicyVersion> {
        Some(self.version)
    }

    fn evaluate(&self, principal: &EntityRef, action: &Action) -> Result<PolicyDecision, PolicyError> {
        let snapshot = self.entities.current()?;
        // Only the context attributes the action's policies read can change the decision: the
        // others never reach Cedar (a per-call ticket costs nothing) and stay out of the key.
        let reads = self.context_reads.of_action(&action.scope.action);
        let Some(cache) = &snapshot.decisions else {
            return self.evaluate_in(
                &snapshot,
                principal,
                &action.scope,
                &reads.context.relevant(&action.context),
            );
        };
        // Where the action's policies cannot tell the members of a principal class apart, the
        // decision is the class's: one principal's call answers all of them.
        let class = reads
            .by_class
            .then(|| snapshot.slices.class_of(&principal.type_name, &principal.id))
            .flatten();
        let who = class.map_or(Who::Principal(principal), Who::Class);
        // Looked up on what the call holds: a hit copies nothing but the decision.
        let mut decisions = cache.lock().unwrap_or_else(|p| p.into_inner());
        let key = decisions.lookup(who, &action.scope, reads.context.view(&action.context));
        if let Some(d) = decisions.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(d.clone());
        }
        drop(decisions);
        self.misses.fetch_add(1, Ordering::Relaxed);
        let decision = self.evaluate_in(
            &snapshot,
            principal,
            &action.scope,
            &reads.context.relevant(&action.context),
        )?;
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(&key, decision.clone());
        Ok(decision)
    }
    fn reviewer_standing(
        &self,
        reviewer: &EntityRef,
        request: &AccessRequest,
    ) -> Result<ReviewerStanding, PolicyError> {
        let reviewer_uid = self.types.uid(reviewer)?;
        let (response, entities) = self.ask_about_jit_entity(
            &reviewer_uid,
            &self.review_action,
            ("AccessRequest", request.id.0.to_string()),
            vec![
                (
                    "requester",
                    RestrictedExpression::new_entity_uid(self.types.uid(&request.principal)?),
                ),
                (
                    "action",
                    RestrictedExpression::new_string(request.action.scope.action.id.to_string()),
                ),
                (
                    "justification",
                    RestrictedExpression::new_string(request.justification.clone().unwrap_or_default()),
                ),
                ("break_glass", RestrictedExpression::new_bool(request.break_glass)),
            ],
            (&request.action.scope.resource, &request.principal),
        )?;
        if response.decision() == Decision::Deny {
            return Ok(ReviewerStanding::default());
        }
        let determining = ids(&response);
        let eligible_for = request
            .flow
            .requirements
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                self.types
                    .uid(&r.reviewers)
                    .is_ok_and(|g| g == reviewer_uid || entities.is_ancestor_of(&g, &reviewer_uid))
            })
            .map(|(i, _)| i)
            .collect();
        let self_approval = *reviewer == request.principal
            && determining
                .iter()
                .any(|id| matches!(self.kinds.get(*id), Some(Kind::Review { self_approval: true })));
        Ok(
            ReviewerStanding::new(eligible_for, determining.iter().map(|id| id.to_string()).collect())
                .with_self_approval(self_approval),
        )
    }

    fn may_revoke(&self, actor: &EntityRef, grant: &Grant, _request: &AccessRequest) -> Result<bool, PolicyError> {
        self.may_end(
            actor,
            grant.id.0.to_string(),
            (&grant.principal, &grant.scope, grant.break_glass),
        )
    }

    /// As for the grant the request would become: a Cedar `Jit::Action::"revoke"` decision on a
    /// `Jit::Grant` whose holder is the requester.
    fn may_withdraw(&self, actor: &EntityRef, request: &AccessRequest) -> Result<bool, PolicyError> {
        self.may_end(
            actor,
            format!("for-{}", request.id.0),
            (&request.principal, request.scope(), request.break_glass),
        )
    }

    /// A Cedar `Jit::Action::"read_audit"` decision on `Jit::AuditTrail::"trail"`, on the
    /// policies of jitgate's own actions.
    fn may_read_audit(&self, caller: &EntityRef) -> Result<bool, PolicyError> {
        let actor = self.types.uid(caller)?;
        let snapshot = self.entities.current()?;
        let trail = cedar_policy::Entity::new_no_attrs(self.audit_trail.clone(), std::collections::HashSet::new());
        let entities = self::request_entities::reachable(&snapshot.entities, [&actor, &self.audit_action], trail)?;
        let request = cedar_policy::Request::new(
            actor,
            self.audit_action.clone(),
            self.audit_trail.clone(),
            cedar_policy::Context::empty(),
            None,
        )
        .map_err(|e| PolicyError::with_source("the Cedar request about the audit trail does not fit the schema", e))?;
        Ok(self.decide(&request, &self.review, &entities)?.decision() == Decision::Allow)
    }

    /// The policy's annotations that are not jitgate's own (`@advice`, `@owner`,
    /// `@description`, ...).
    fn metadata(&self, policy_id: &str) -> Vec<(String, String)> {
        let id = PolicyId::new(policy_id);
        let Some(policy) = self.main.policy(&id).or_else(|| self.review.policy(&id)) else {
            return Vec::new();
        };
        policy
            .annotations()
            .filter(|(key, _)| !crate::annotations::is_jitgate_own(key))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    }

    /// The `@jit` permits whose flow has `@break_glass`.
    fn break_glass_policies(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .kinds
            .iter()
            .filter(|(_, kind)| matches!(kind, Kind::Jit(flow) if flow.break_glass.is_some()))
            .map(|(id, _)| id.to_string())
            .collect();
        ids.sort();
        ids
    }

    /// The reviewer and its ancestors in the current entities: `reviewer_standing` counts a
    /// reviewer only toward requirements whose group is one of them.
    fn reviewer_groups(&self, reviewer: &EntityRef) -> Result<Option<Vec<EntityRef>>, PolicyError> {
        let uid = self.types.uid(reviewer)?;
        let snapshot = self.entities.current()?;
        let mut groups = vec![reviewer.clone()];
        if let Some(ancestors) = snapshot.entities.ancestors(&uid) {
            groups.extend(ancestors.map(|a| EntityRef::new(a.type_name().to_string(), a.id().unescaped())));
        }
        Ok(Some(groups))
    }

    /// Only entities of the principal types (`CedarPolicyBuilder::principal_types`; by default
    /// the schema's actions' principals) request, review and hold grants; a `Team` never does.
    fn is_principal(&self, entity: &EntityRef) -> bool {
        self.principal_types.iter().any(|t| **t == *entity.type_name)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use cedar_policy::{Entity, Request};

    use super::request_entities::reachable;
    use super::*;
    use crate::entities::entities_from_json;
    use crate::entities::StaticEntities;

    const EXTRA: &str = r#"
        @id("owning-team-review")
        permit(principal in Team::"payments", action == Jit::Action::"review", resource in Team::"payments")
        when { resource.requester in Team::"sre" && !resource.break_glass };
        @id("no-eve") forbid(principal == User::"eve", action, resource);
        @id("self-review-staging") @self_approval("true")
        permit(principal, action == Jit::Action::"review", resource in Env::"staging")
        when { resource.requester == principal && resource.justification like "*INC*" };
    "#;

    #[tokio::test]
    async fn review_decisions_on_the_small_store_equal_those_on_the_whole_store() {
        let json = include_str!("../../../../examples/policies/entities.json");
        let policy = CedarPolicy::builder()
            .schema(
                "app.cedarschema",
                include_str!("../../../../examples/policies/app.cedarschema"),
            )
            .policies(
                "access.cedar",
                &(include_str!("../../../../examples/policies/access.cedar").to_owned() + EXTRA),
            )
            .entities(Arc::new(StaticEntities(entities_from_json(json).unwrap())))
            .build()
            .await
            .unwrap();
        let snapshot = policy.entities.current().unwrap();
        let users = ["sam", "lee", "lin", "ada", "sec", "sue", "sol", "eve"];
        let resources = [
            ("Database", "orders-prod"),
            ("Database", "orders-staging"),
            ("Service", "orders"),
            ("Customer", "c-42"),
        ];
        let (mut compared, mut allowed) = (0, 0);
        for requester in users {
            for (ty, id) in resources {
                for (justification, break_glass) in [("INC-1", false), ("routine", true)] {
                    let (req_ref, res_ref) = (EntityRef::new("User", requester), EntityRef::new(ty, id));
                    let uid = policy
                        .types
                        .uid(&EntityRef::new("Jit::AccessRequest", format!("r-{requester}-{id}")))
                        .unwrap();
                    let entity = Entity::new(
                        uid.clone(),
                        HashMap::from([
                            (
                                "requester".to_owned(),
                                RestrictedExpression::new_entity_uid(policy.types.uid(&req_ref).unwrap()),
                            ),
                            (
                                "action".to_owned(),
                                RestrictedExpression::new_string("db_restart".into()),
                            ),
                            (
                                "justification".to_owned(),
                                RestrictedExpression::new_string(justification.into()),
                            ),
                            ("break_glass".to_owned(), RestrictedExpression::new_bool(break_glass)),
                        ]),
                        HashSet::from([policy.types.uid(&res_ref).unwrap()]),
                    )
                    .unwrap();
                    let whole = snapshot.entities.clone().add_entities([entity.clone()], None).unwrap();
                    for reviewer in users {
                        let actor = policy.types.uid(&EntityRef::new("User", reviewer)).unwrap();
                        let roots = [
                            &actor,
                            &policy.review_action,
                            &policy.types.uid(&res_ref).unwrap(),
                            &policy.types.uid(&req_ref).unwrap(),
                        ];
                        let small = reachable(&snapshot.entities, roots, entity.clone()).unwrap();
                        let request = Request::new(
                            actor,
                            policy.review_action.clone(),
                            uid.clone(),
                            cedar_policy::Context::empty(),
                            None,
                        )
                        .unwrap();
                        let a = policy.authorizer.is_authorized(&request, &policy.review, &whole);
                        let b = policy.authorizer.is_authorized(&request, &policy.review, &small);
                        assert_eq!(a.decision(), b.decision(), "{reviewer} reviewing {requester} on {id}");
                        assert_eq!(ids(&a), ids(&b), "{reviewer} reviewing {requester} on {id}");
                        assert_eq!(a.diagnostics().errors().count(), b.diagnostics().errors().count());
                        compared += 1;
                        allowed += usize::from(a.decision() == Decision::Allow);
                    }
                }
            }
        }
        assert_eq!(compared, 8 * 4 * 2 * 8);
        assert!(
            allowed > 20 && allowed < compared - 20,
            "both outcomes are exercised: {allowed} of {compared}"
        );
    }
}
