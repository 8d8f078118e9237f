//! [`CedarPolicy`]: jitgate's [`Policy`] on Cedar.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use cedar_policy::{
    Authorizer, Decision, Entities, Entity, EntityUid, PolicyId, PolicySet, Request, RestrictedExpression, Schema,
    ValidationMode, Validator,
};
use jitgate_core::{
    AccessRequest, Action, EntityRef, Flow, Grant, Policy, PolicyDecision, PolicyError, ReviewerStanding,
};
use miette::Diagnostic;

use crate::annotations::{classify, Kind};
use crate::convert::TypeNames;
use crate::entities::{EntityCache, EntityProvider, Snapshot, StaticEntities};
use crate::load::{diagnostic_location, parse, Source};
use crate::schema::{merged, NAMESPACE};
use crate::CedarError;

/// Builds a [`CedarPolicy`]: schema, policies, entities.
pub struct CedarPolicyBuilder {
    schema: Option<(String, String)>,
    principal_type: String,
    sources: Vec<Source>,
    provider: Option<Arc<dyn EntityProvider>>,
    max_age: Option<StdDuration>,
    decision_cache: Option<std::num::NonZeroUsize>,
    errors: Vec<CedarError>,
}

impl CedarPolicyBuilder {
    /// The service's schema in Cedar schema syntax (required). jitgate's part is merged in.
    #[must_use]
    pub fn schema(mut self, name: &str, cedarschema: &str) -> Self {
        self.schema = Some((name.to_owned(), cedarschema.to_owned()));
        self
    }

    /// Reads the service's schema from a `.cedarschema` file.
    #[must_use]
    pub fn schema_file(mut self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        match std::fs::read_to_string(path) {
            Ok(text) => self.schema = Some((path.display().to_string(), text)),
            Err(source) => self.errors.push(CedarError::Io {
                path: path.to_owned(),
                source,
            }),
        }
        self
    }

    /// The entity type of requesters and reviewers (default `User`).
    #[must_use]
    pub fn principal_type(mut self, name: &str) -> Self {
        name.clone_into(&mut self.principal_type);
        self
    }

    /// Adds policy text; `name` is what errors call it.
    #[must_use]
    pub fn policies(mut self, name: &str, text: &str) -> Self {
        self.sources.push(Source {
            name: name.to_owned(),
            text: text.to_owned(),
        });
        self
    }

    /// Adds the policies of a `.cedar` file.
    #[must_use]
    pub fn policy_file(mut self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        match std::fs::read_to_string(path) {
            Ok(text) => self.sources.push(Source {
                name: path.display().to_string(),
                text,
            }),
            Err(source) => self.errors.push(CedarError::Io {
                path: path.to_owned(),
                source,
            }),
        }
        self
    }

    /// Adds every `.cedar` file of a directory, in name order.
    #[must_use]
    pub fn policy_dir(mut self, dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
                .collect(),
            Err(source) => {
                self.errors.push(CedarError::Io {
                    path: dir.to_owned(),
                    source,
                });
                return self;
            }
        };
        files.sort();
        for f in files {
            self = self.policy_file(f);
        }
        self
    }

    /// Where entities come from (default: none). They are loaded by [`build`](Self::build)
    /// and then only by [`CedarPolicy::refresh_entities`].
    #[must_use]
    pub fn entities(mut self, provider: Arc<dyn EntityProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Deny (fail closed) once the entities are older than this without a refresh.
    #[must_use]
    pub fn entities_max_age(mut self, max_age: StdDuration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Caches up to `capacity` policy decisions, keyed by principal, action, resource and the
    /// whole context (off by default). Decisions do not depend on time or grants (grants are
    /// looked up after the policy answers), so the cache is only emptied by an entity refresh;
    /// a policy reload builds a new `CedarPolicy`, with a new cache. A `capacity` of 0 leaves
    /// it off. See [`CedarPolicy::decision_cache_stats`].
    #[must_use]
    pub fn decision_cache(mut self, capacity: usize) -> Self {
        self.decision_cache = std::num::NonZeroUsize::new(capacity);
        self
    }

    /// Parses, validates (strict mode) and checks every annotation, then loads the entities.
    ///
    /// # Errors
    /// The first [`CedarError`]: I/O, schema, parse (with line and column), validation,
    /// annotation (naming the policy and annotation), duplicate id, entities.
    pub async fn build(self) -> Result<CedarPolicy, CedarError> {
        if let Some(e) = self.errors.into_iter().next() {
            return Err(e);
        }
        let Some((_, schema_text)) = self.schema else {
            return Err(CedarError::Schema {
                message: "no schema given".into(),
                help: Some("call CedarPolicyBuilder::schema or schema_file with the service's Cedar schema".into()),
                source: Box::new(miette::MietteDiagnostic::new(
                    "CedarPolicyBuilder::build needs a schema",
                )),
            });
        };
        let schema = merged(&schema_text, &self.principal_type)?;
        let (all, origin) = parse(&self.sources)?;
        validate(&schema, &all, &self.sources, &origin)?;
        let entity_types: HashSet<String> = schema.entity_types().map(|t| t.to_string()).collect();
        let mut kinds = HashMap::new();
        let (mut main, mut review) = (PolicySet::new(), PolicySet::new());
        for p in all.policies() {
            let kind = classify(p, &entity_types)?;
            let add = |set: &mut PolicySet| {
                set.add(p.clone()).map_err(|e| CedarError::Validation {
                    policy_id: p.id().to_string(),
                    location: crate::error::Location {
                        source_name: String::new(),
                        line: 0,
                        column: 0,
                        snippet: String::new(),
                    },
                    message: e.to_string(),
                    help: None,
                })
            };
            match &kind {
                Kind::Review { .. } => add(&mut review)?,
                // Forbids and permits of any action apply to reviews and revokes too.
                Kind::Forbid => {
                    add(&mut main)?;
                    add(&mut review)?;
                }
                Kind::Standing if matches!(p.action_constraint(), cedar_policy::ActionConstraint::Any) => {
                    add(&mut main)?;
                    add(&mut review)?;
                }
                Kind::Standing | Kind::Jit(_) => add(&mut main)?,
            }
            kinds.insert(p.id().clone(), kind);
        }
        let provider = self.provider.unwrap_or_else(|| Arc::new(StaticEntities::default()));
        let entities = EntityCache::load(provider, schema.clone(), self.max_age, self.decision_cache).await?;
        let uid = |ty: &str, id: &str| EntityRef::new(ty, id);
        let types = TypeNames::default();
        let internal = |e: EntityRef| {
            types.uid(&e).map_err(|e| CedarError::Schema {
                message: "one of jitgate's own entity types is not a valid Cedar type name".into(),
                help: None,
                source: Box::new(miette::MietteDiagnostic::new(e.to_string())),
            })
        };
        let review_action = internal(uid(&format!("{NAMESPACE}::Action"), "review"))?;
        let revoke_action = internal(uid(&format!("{NAMESPACE}::Action"), "revoke"))?;
        Ok(CedarPolicy {
            schema,
            main,
            review,
            kinds,
            entities,
            types,
            authorizer: Authorizer::new(),
            review_action,
            revoke_action,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }
}

fn validate(
    schema: &Schema,
    set: &PolicySet,
    sources: &[Source],
    origin: &HashMap<String, usize>,
) -> Result<(), CedarError> {
    let result = Validator::new(schema.clone()).validate(set, ValidationMode::Strict);
    let mut errors = result.validation_errors();
    if let Some(e) = errors.next() {
        let more = errors.count();
        let id = e.policy_id().to_string();
        let source = origin.get(&id).map_or_else(
            || Source {
                name: id.clone(),
                text: String::new(),
            },
            |i| sources[*i].clone(),
        );
        let message = if more > 0 {
            format!("{e} (and {more} more validation error(s))")
        } else {
            e.to_string()
        };
        return Err(CedarError::Validation {
            location: diagnostic_location(e, &source),
            policy_id: id,
            message,
            help: e.help().map(|h| h.to_string()),
        });
    }
    Ok(())
}

/// jitgate's [`Policy`] on Cedar.
///
/// - **Standing**: a plain `permit` matches and no `forbid` does.
/// - **Eligible**: a `@jit("approval")` permit matches and no `forbid` does; the flow combines
///   every matching `@jit` permit's ([`Flow::combine`]: all requirements, the shortest limits).
/// - **Forbidden**: a `forbid` matches — whatever else does, grants included.
/// - **Reviewers**: an `is_authorized` call with `Jit::Action::"review"` on the request as a
///   `Jit::AccessRequest` entity; the reviewer then counts toward each requirement whose
///   `@reviewers` group they belong to. Revokes likewise, with `Jit::Action::"revoke"` on a
///   `Jit::Grant` (a holder may always give up their own grant).
///
/// Every decision carries the ids (`@id`) of the policies that made it.
pub struct CedarPolicy {
    schema: Schema,
    main: PolicySet,
    review: PolicySet,
    kinds: HashMap<PolicyId, Kind>,
    entities: EntityCache,
    types: TypeNames,
    authorizer: Authorizer,
    review_action: EntityUid,
    revoke_action: EntityUid,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Hit and miss counts of the decision cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Decisions answered from the cache.
    pub hits: u64,
    /// Decisions computed (and then cached).
    pub misses: u64,
}

impl std::fmt::Debug for CedarPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CedarPolicy")
            .field("policies", &self.kinds.len())
            .finish_non_exhaustive()
    }
}

impl CedarPolicy {
    /// Starts a builder (principal type `User`).
    pub fn builder() -> CedarPolicyBuilder {
        CedarPolicyBuilder {
            schema: None,
            principal_type: "User".into(),
            sources: Vec::new(),
            provider: None,
            max_age: None,
            decision_cache: None,
            errors: Vec::new(),
        }
    }

    /// The merged schema (the service's and jitgate's).
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Every policy of the service, as loaded (with the authors' ids).
    pub fn policies(&self) -> impl Iterator<Item = &cedar_policy::Policy> {
        self.main
            .policies()
            .chain(self.review.policies().filter(|p| self.main.policy(p.id()).is_none()))
    }

    /// Reloads the entities from the provider. On error the previous entities stay in use
    /// (until older than the maximum age, if one is set).
    ///
    /// # Errors
    /// The provider's [`CedarError`].
    pub async fn refresh_entities(&self) -> Result<(), CedarError> {
        self.entities.refresh().await
    }

    /// Hits and misses of the decision cache (zero when it is off).
    pub fn decision_cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn flow_of(&self, ids: &[&PolicyId]) -> Option<Arc<Flow>> {
        let mut flows = ids.iter().filter_map(|id| match self.kinds.get(*id) {
            Some(Kind::Jit(f)) => Some(f),
            _ => None,
        });
        let first = Arc::clone(flows.next()?);
        Some(flows.fold(first, |acc, f| Arc::new(acc.combine(f))))
    }

    /// Runs Cedar; evaluation errors in forbids fail closed, in permits they only skip the permit.
    fn decide(
        &self,
        request: &Request,
        set: &PolicySet,
        entities: &Entities,
    ) -> Result<cedar_policy::Response, PolicyError> {
        let response = self.authorizer.is_authorized(request, set, entities);
        for e in response.diagnostics().errors() {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
            if matches!(self.kinds.get(pe.policy_id()), Some(Kind::Forbid)) {
                return Err(PolicyError::msg(format!(
                    "forbid policy `{}` could not be evaluated: {e}",
                    pe.policy_id()
                )));
            }
            tracing::warn!(policy = %pe.policy_id(), error = %e, "permit policy could not be evaluated; it does not apply");
        }
        Ok(response)
    }

    /// Asks Cedar whether `actor` may take jitgate's `action` on one of jitgate's own entities
    /// (`Jit::<ty>::"<id>"`, a member of `resource`, about `subject`: the requester or holder).
    ///
    /// Cedar cannot add one entity to a store without rescanning all of it, so the decision
    /// runs on a small store instead: the actor, the subject, the resource, the action, every
    /// ancestor of each (with their attributes), and the new entity — everything a review or
    /// revoke policy's scope can test, and the attributes its conditions can read directly.
    /// A condition that dereferences an entity beyond these errors, and errors fail closed.
    fn ask_about_jit_entity(
        &self,
        actor: &EntityUid,
        action: &EntityUid,
        (ty, id): (&str, String),
        attrs: Vec<(&str, RestrictedExpression)>,
        (resource, subject): (&EntityRef, &EntityRef),
    ) -> Result<(cedar_policy::Response, Entities), PolicyError> {
        let snapshot = self.entities.current()?;
        let uid = self.types.uid(&EntityRef::new(format!("{NAMESPACE}::{ty}"), id))?;
        let resource_uid = self.types.uid(resource)?;
        let attrs = attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let entity = Entity::new(uid.clone(), attrs, HashSet::from([resource_uid.clone()]))
            .map_err(|e| PolicyError::msg(format!("cannot build the {ty} entity: {e}")))?;
        let entities = reachable(
            &snapshot.entities,
            [actor, action, &resource_uid, &self.types.uid(subject)?],
            entity,
        )?;
        let request = Request::new(actor.clone(), action.clone(), uid, cedar_policy::Context::empty(), None)
            .map_err(|e| PolicyError::msg(format!("bad {ty} request: {e}")))?;
        Ok((self.decide(&request, &self.review, &entities)?, entities))
    }
}

/// A store of `roots` and all their ancestors, copied from `base`, plus `extra`.
fn reachable<'a>(
    base: &Entities,
    roots: impl IntoIterator<Item = &'a EntityUid>,
    extra: Entity,
) -> Result<Entities, PolicyError> {
    let mut picked: HashMap<EntityUid, Entity> = HashMap::new();
    for root in roots {
        let ancestors = base.ancestors(root).into_iter().flatten();
        for uid in std::iter::once(root).chain(ancestors) {
            if let Some(e) = base.get(uid) {
                picked.entry(uid.clone()).or_insert_with(|| e.clone());
            }
        }
    }
    Entities::from_entities(picked.into_values().chain([extra]), None)
        .map_err(|e| PolicyError::msg(format!("cannot assemble the review entities: {e}")))
}

impl CedarPolicy {
    /// The policy decision, on the slice of the access policies for this principal and action.
    fn evaluate_in(
        &self,
        snapshot: &Snapshot,
        principal: &EntityRef,
        action: &Action,
    ) -> Result<PolicyDecision, PolicyError> {
        let principal_uid = self.types.uid(principal)?;
        let action_uid = self.types.uid(&action.scope.action)?;
        let slice = snapshot
            .slices
            .get(&self.main, &principal_uid, &action_uid, &snapshot.entities);
        let request = Request::new(
            principal_uid,
            action_uid,
            self.types.uid(&action.scope.resource)?,
            self.types.context(&action.context)?,
            None,
        )
        .map_err(|e| PolicyError::msg(format!("bad request: {e}")))?;
        let response = self.decide(&request, &slice, &snapshot.entities)?;
        let determining = ids(&response);
        let names = || determining.iter().map(|id| id.to_string()).collect::<Vec<_>>();
        Ok(match response.decision() {
            Decision::Deny if determining.is_empty() => PolicyDecision::NotEligible,
            Decision::Deny => PolicyDecision::Forbidden { policy_ids: names() },
            Decision::Allow => {
                let standing: Vec<String> = determining
                    .iter()
                    .filter(|id| !matches!(self.kinds.get(**id), Some(Kind::Jit(_))))
                    .map(|id| id.to_string())
                    .collect();
                if !standing.is_empty() {
                    PolicyDecision::Standing { policy_ids: standing }
                } else {
                    match self.flow_of(&determining) {
                        Some(flow) => PolicyDecision::Eligible { flow },
                        None => PolicyDecision::NotEligible,
                    }
                }
            }
        })
    }
}

fn ids(response: &cedar_policy::Response) -> Vec<&PolicyId> {
    let mut v: Vec<&PolicyId> = response.diagnostics().reason().collect();
    v.sort_by_key(|id| id.to_string());
    v
}

impl Policy for CedarPolicy {
    fn evaluate(&self, principal: &EntityRef, action: &Action) -> Result<PolicyDecision, PolicyError> {
        let snapshot = self.entities.current()?;
        let Some(cache) = &snapshot.decisions else {
            return self.evaluate_in(&snapshot, principal, action);
        };
        let key = (principal.clone(), action.scope.clone(), action.context.clone());
        if let Some(d) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(d.clone());
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let decision = self.evaluate_in(&snapshot, principal, action)?;
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key, decision.clone());
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
        Ok(ReviewerStanding {
            eligible_for,
            policy_ids: determining.iter().map(|id| id.to_string()).collect(),
            self_approval,
        })
    }

    fn may_revoke(&self, actor: &EntityRef, grant: &Grant, _request: &AccessRequest) -> Result<bool, PolicyError> {
        if *actor == grant.principal {
            return Ok(true);
        }
        let (response, _) = self.ask_about_jit_entity(
            &self.types.uid(actor)?,
            &self.revoke_action,
            ("Grant", grant.id.0.to_string()),
            vec![
                (
                    "holder",
                    RestrictedExpression::new_entity_uid(self.types.uid(&grant.principal)?),
                ),
                (
                    "action",
                    RestrictedExpression::new_string(grant.scope.action.id.to_string()),
                ),
                ("break_glass", RestrictedExpression::new_bool(grant.break_glass)),
            ],
            (&grant.scope.resource, &grant.principal),
        )?;
        Ok(response.decision() == Decision::Allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::entities_from_json;

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
        let json = include_str!("../../../examples/policies/entities.json");
        let policy = CedarPolicy::builder()
            .schema(
                "app.cedarschema",
                include_str!("../../../examples/policies/app.cedarschema"),
            )
            .policies(
                "access.cedar",
                &(include_str!("../../../examples/policies/access.cedar").to_owned() + EXTRA),
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
