//! Policy slicing: evaluate only the policies whose scope can match the request.
//!
//! A Cedar policy is `scope && conditions`, and its scope (`principal …, action …,
//! resource …`) is decided by equality, entity type and the entity hierarchy alone. A policy
//! whose principal or action constraint cannot match the request is never satisfied, never
//! determining and never evaluated past its scope, so leaving it out changes neither the
//! decision, nor the determining policy ids, nor the evaluation errors. That holds for forbids
//! too: a forbid is only dropped when its own scope excludes the request. The hierarchy used
//! here is the same `Entities` Cedar evaluates with, so "can match" is exact, not a guess.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cedar_policy::{ActionConstraint, Entities, EntityUid, Policy, PolicySet, PrincipalConstraint};

fn principal_may_match(c: &PrincipalConstraint, p: &EntityUid, entities: &Entities) -> bool {
    let within = |g: &EntityUid| g == p || entities.is_ancestor_of(g, p);
    match c {
        PrincipalConstraint::Any => true,
        PrincipalConstraint::Eq(u) => u == p,
        PrincipalConstraint::In(g) => within(g),
        PrincipalConstraint::Is(t) => p.type_name() == t,
        PrincipalConstraint::IsIn(t, g) => p.type_name() == t && within(g),
    }
}

fn action_may_match(c: &ActionConstraint, a: &EntityUid, entities: &Entities) -> bool {
    match c {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(u) => u == a,
        ActionConstraint::In(groups) => groups.iter().any(|g| g == a || entities.is_ancestor_of(g, a)),
    }
}

/// Whether `policy`'s principal and action scope can match a request by `principal` for `action`.
pub fn may_apply(policy: &Policy, principal: &EntityUid, action: &EntityUid, entities: &Entities) -> bool {
    action_may_match(&policy.action_constraint(), action, entities)
        && principal_may_match(&policy.principal_constraint(), principal, entities)
}

/// Adds `policy` (one of `all`'s) to `set`: a static policy as it is, a link with its template.
///
/// # Errors
/// Cedar's, when `set` already holds a policy of that id.
pub fn add(set: &mut PolicySet, all: &PolicySet, policy: &Policy) -> Result<(), cedar_policy::PolicySetError> {
    match (policy.template_id(), policy.template_links()) {
        (Some(template), Some(slots)) => {
            if set.template(template).is_none() {
                if let Some(t) = all.template(template) {
                    set.add_template(t.clone())?;
                }
            }
            set.link(template.clone(), policy.id().clone(), slots)
        }
        _ => set.add(policy.clone()),
    }
}

/// The slice of `all` for a request by `principal` for `action`: every policy whose scope can
/// match it. `entities` must be the entities the request is evaluated with (including the
/// schema's action entities, for action groups).
pub fn slice(all: &PolicySet, principal: &EntityUid, action: &EntityUid, entities: &Entities) -> PolicySet {
    let mut set = PolicySet::new();
    for p in all.policies().filter(|p| may_apply(p, principal, action, entities)) {
        if add(&mut set, all, p).is_err() {
            // Ids are unique in `all`: this cannot happen, and the whole set is always right.
            return all.clone();
        }
    }
    set
}

/// Slices per (principal, action), computed on first use. Bounded: when full it starts over.
/// Lives with one entity snapshot, so a refresh of the entities starts a new one.
pub(crate) struct SliceCache {
    slices: RwLock<HashMap<(EntityUid, EntityUid), Arc<PolicySet>>>,
    capacity: usize,
}

impl SliceCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slices: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    pub(crate) fn get(
        &self,
        all: &PolicySet,
        principal: &EntityUid,
        action: &EntityUid,
        entities: &Entities,
    ) -> Arc<PolicySet> {
        let key = (principal.clone(), action.clone());
        if let Some(s) = self.slices.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Arc::clone(s);
        }
        let s = Arc::new(slice(all, principal, action, entities));
        let mut slices = self.slices.write().unwrap_or_else(|p| p.into_inner());
        if slices.len() >= self.capacity {
            slices.clear();
        }
        slices.insert(key, Arc::clone(&s));
        s
    }
}

/// Evaluates `request` on the whole set and on its slice and says how they differ (decision,
/// determining policy ids, errors), if at all. Used by the differential tests and the fuzz target.
pub fn compare_with_whole(
    all: &PolicySet,
    principal: &EntityUid,
    action: &EntityUid,
    request: &cedar_policy::Request,
    entities: &Entities,
) -> Option<String> {
    use std::collections::BTreeSet;
    let authorizer = cedar_policy::Authorizer::new();
    let whole = authorizer.is_authorized(request, all, entities);
    let sliced = authorizer.is_authorized(request, &slice(all, principal, action, entities), entities);
    let reasons = |r: &cedar_policy::Response| {
        r.diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect::<BTreeSet<_>>()
    };
    let errors = |r: &cedar_policy::Response| {
        r.diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect::<BTreeSet<_>>()
    };
    if whole.decision() != sliced.decision() {
        return Some(format!(
            "decision: whole {:?}, slice {:?}",
            whole.decision(),
            sliced.decision()
        ));
    }
    if reasons(&whole) != reasons(&sliced) {
        return Some(format!(
            "determining policies: whole {:?}, slice {:?}",
            reasons(&whole),
            reasons(&sliced)
        ));
    }
    if errors(&whole) != errors(&sliced) {
        return Some(format!(
            "errors: whole {:?}, slice {:?}",
            errors(&whole),
            errors(&sliced)
        ));
    }
    None
}
