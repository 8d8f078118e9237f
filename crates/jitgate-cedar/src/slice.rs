//! Policy slicing: evaluate only the policies whose scope can match the request.
//!
//! A Cedar policy is `scope && conditions`, and its scope (`principal …, action …,
//! resource …`) is decided by equality, entity type and the entity hierarchy alone. A policy
//! whose principal or action constraint cannot match the request is never satisfied, never
//! determining and never evaluated past its scope, so leaving it out changes neither the
//! decision, nor the determining policy ids, nor the evaluation errors. That holds for forbids
//! too: a forbid is only dropped when its own scope excludes the request. The hierarchy used
//! here is the same `Entities` Cedar evaluates with, so "can match" is exact, not a guess.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use cedar_policy::{ActionConstraint, Entities, EntityTypeName, EntityUid, Policy, PolicySet, PrincipalConstraint};

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

pub(crate) fn action_may_match(c: &ActionConstraint, a: &EntityUid, entities: &Entities) -> bool {
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

/// What the policies' principal scopes can tell principals apart by: the entities they name
/// with `==` and the groups they name with `in`.
#[derive(Debug, Default)]
struct Mentions {
    named: HashSet<EntityUid>,
}

impl Mentions {
    fn of(all: &PolicySet) -> Self {
        let mut named = HashSet::new();
        for p in all.policies() {
            match p.principal_constraint() {
                PrincipalConstraint::Eq(u) | PrincipalConstraint::In(u) | PrincipalConstraint::IsIn(_, u) => {
                    named.insert(u);
                }
                PrincipalConstraint::Any | PrincipalConstraint::Is(_) => {}
            }
        }
        Self { named }
    }

    /// The principal's class: its type and the named entities it is or is in. Every principal
    /// scope matches all principals of a class or none of them (`==` and `in` only ask whether
    /// the principal is, or descends from, a named entity; `is` only asks its type), so a class
    /// shares one slice per action.
    fn class(&self, principal: &EntityUid, entities: &Entities) -> Class {
        let mut members: Vec<EntityUid> = entities
            .ancestors(principal)
            .into_iter()
            .flatten()
            .chain(std::iter::once(principal))
            .filter(|e| self.named.contains(*e))
            .cloned()
            .collect();
        members.sort_unstable();
        members.dedup();
        Class {
            type_name: principal.type_name().clone(),
            members,
        }
    }
}

type Fast = foldhash::fast::RandomState;

/// Principals that no policy scope can tell apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Class {
    type_name: EntityTypeName,
    members: Vec<EntityUid>,
}

/// How many slices of principals the snapshot did not know (not in the entities, or not of a
/// principal type) are kept before starting over.
const OVERFLOW_CAPACITY: usize = 10_000;

/// The slices of one policy set for one entity snapshot, keyed by principal class and action:
/// built once, with the snapshot, for every class of the principals in the entities and every
/// action of the schema. Memory grows with the number of distinct classes (combinations of
/// the groups the policies name), not with users × actions; equal slices are shared.
pub struct SliceIndex {
    all: PolicySet,
    mentions: Mentions,
    // Looked up on every uncached call: foldhash (seeded per process).
    built: HashMap<(Class, EntityUid), Arc<PolicySet>, Fast>,
    /// Principals the snapshot did not know: computed on first use, bounded.
    overflow: RwLock<HashMap<(Class, EntityUid), Arc<PolicySet>, Fast>>,
    distinct: usize,
}

impl std::fmt::Debug for SliceIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SliceIndex")
            .field("slices", &self.built.len())
            .field("distinct", &self.distinct)
            .finish_non_exhaustive()
    }
}

/// The number of slices an index holds and how many of them differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SliceStats {
    /// Principal classes × actions built with the snapshot.
    pub keys: usize,
    /// Distinct slices among them (each held once).
    pub distinct: usize,
    /// Slices computed since, for principals the snapshot did not know.
    pub overflow: usize,
}

impl SliceIndex {
    /// Builds every slice of `all` for the principals among `entities` whose type is one of
    /// `principal_types`, for each of `actions`.
    pub fn new<'a>(
        all: &PolicySet,
        entities: &Entities,
        principal_types: &HashSet<EntityTypeName>,
        actions: impl IntoIterator<Item = &'a EntityUid>,
    ) -> Self {
        let mentions = Mentions::of(all);
        let mut classes: HashMap<Class, EntityUid> = HashMap::new();
        for e in entities.iter() {
            let uid = e.uid();
            if principal_types.contains(uid.type_name()) {
                classes.entry(mentions.class(&uid, entities)).or_insert(uid);
            }
        }
        let actions: Vec<&EntityUid> = actions.into_iter().collect();
        let mut shared: HashMap<Vec<cedar_policy::PolicyId>, Arc<PolicySet>> = HashMap::new();
        let mut built = HashMap::with_capacity_and_hasher(classes.len() * actions.len(), Fast::default());
        for (class, principal) in classes {
            for action in &actions {
                let ids: Vec<cedar_policy::PolicyId> = all
                    .policies()
                    .filter(|p| may_apply(p, &principal, action, entities))
                    .map(|p| p.id().clone())
                    .collect();
                let set = shared
                    .entry(ids)
                    .or_insert_with(|| Arc::new(slice(all, &principal, action, entities)));
                built.insert((class.clone(), (*action).clone()), Arc::clone(set));
            }
        }
        Self {
            all: all.clone(),
            mentions,
            built,
            overflow: RwLock::new(HashMap::default()),
            distinct: shared.len(),
        }
    }

    /// The slice for a request by `principal` for `action`.
    pub fn get(&self, principal: &EntityUid, action: &EntityUid, entities: &Entities) -> Arc<PolicySet> {
        let key = (self.mentions.class(principal, entities), action.clone());
        if let Some(s) = self.built.get(&key) {
            return Arc::clone(s);
        }
        if let Some(s) = self.overflow.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Arc::clone(s);
        }
        let s = Arc::new(slice(&self.all, principal, action, entities));
        let mut overflow = self.overflow.write().unwrap_or_else(|p| p.into_inner());
        if overflow.len() >= OVERFLOW_CAPACITY {
            overflow.clear();
        }
        overflow.insert(key, Arc::clone(&s));
        s
    }

    /// How many slices the index holds.
    pub fn stats(&self) -> SliceStats {
        SliceStats {
            keys: self.built.len(),
            distinct: self.distinct,
            overflow: self.overflow.read().unwrap_or_else(|p| p.into_inner()).len(),
        }
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
    // Through an index over every entity of the principal's type: the slice comes from the
    // principal's class, built from whichever of its members came first.
    let index = SliceIndex::new(all, entities, &HashSet::from([principal.type_name().clone()]), [action]);
    let sliced = authorizer.is_authorized(request, &index.get(principal, action, entities), entities);
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
