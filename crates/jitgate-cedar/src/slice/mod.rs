//! Policy slicing: evaluate only the policies whose scope can match the request.
//!
//! A Cedar policy is `scope && conditions`, and its scope (`principal …, action …,
//! resource …`) is decided by equality, entity type and the entity hierarchy alone. A policy
//! whose principal or action constraint cannot match the request is never satisfied, never
//! determining and never evaluated past its scope, so leaving it out changes neither the
//! decision, nor the determining policy ids, nor the evaluation errors. That holds for forbids
//! too: a forbid is only dropped when its own scope excludes the request, or when conditions
//! that open it and read only the principal are false for this principal (`crate::probes`). The
//! hierarchy used here is the same `Entities` Cedar evaluates with, so "can match" is exact,
//! not a guess.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use cedar_policy::{
    ActionConstraint, Entities, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet, PrincipalConstraint,
};

use crate::probes::{ProbeOutcomes, Probes};

mod compare;

pub use compare::{class_decides, compare_with_whole, compare_within_class};

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
    slice_of(all, |p| may_apply(p, principal, action, entities))
}

/// The policies of `all` that `keep`, as a set (links with their templates).
fn slice_of(all: &PolicySet, keep: impl Fn(&Policy) -> bool) -> PolicySet {
    let mut set = PolicySet::new();
    for p in all.policies().filter(|p| keep(p)) {
        if add(&mut set, all, p).is_err() {
            // Ids are unique in `all`: this cannot happen, and the whole set is always right.
            return all.clone();
        }
    }
    set
}

/// What the policies can tell principals apart by: the entities their principal scopes name
/// with `==` and the groups they name with `in`, and the conditions that open a policy and read
/// nothing but the principal (`crate::probes`).
#[derive(Debug)]
struct Mentions {
    named: HashSet<EntityUid>,
    probes: Probes,
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
        Self {
            named,
            probes: Probes::of(all),
        }
    }

    /// The principal's class: its type, the named entities it is or is in, and what its
    /// leading principal conditions come to. Every principal scope matches all principals of a
    /// class or none of them (`==` and `in` only ask whether the principal is, or descends
    /// from, a named entity; `is` only asks its type), and a ruled-out policy is false without
    /// an error for all of them, so a class shares one slice per action.
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
            probes: self.probes.outcomes(principal, entities),
        }
    }
}

type Fast = foldhash::fast::RandomState;

/// Principals that no policy scope or leading principal condition can tell apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Class {
    type_name: EntityTypeName,
    members: Vec<EntityUid>,
    probes: ProbeOutcomes,
}

/// A class of the snapshot's principals, numbered within the snapshot.
pub type ClassId = u32;

/// The class of each principal of the snapshot, by type name (as Cedar prints it), then id.
type ByPrincipal = HashMap<Box<str>, HashMap<Box<str>, Arc<ClassSlices>, Fast>, Fast>;

/// How many slices of principals the snapshot did not know (not in the entities, or not of a
/// principal type) are kept before starting over.
const OVERFLOW_CAPACITY: usize = 10_000;

/// One class of the snapshot's principals: its number and its slices, by action.
#[derive(Debug)]
struct ClassSlices {
    id: ClassId,
    by_action: HashMap<EntityUid, Arc<PolicySet>, Fast>,
}

/// The slices of one policy set for one entity snapshot, keyed by principal class and action:
/// built once, with the snapshot, for every class of the principals in the entities and every
/// action of the schema. Memory grows with the number of distinct classes (combinations of
/// the groups the policies name and of their opening principal conditions' values) and with
/// one entry per principal naming its class, not with users × actions; equal slices are shared.
pub struct SliceIndex {
    all: PolicySet,
    mentions: Mentions,
    // Looked up on every call (the class keys cached decisions): foldhash (seeded per
    // process). By type name, then id (a few dozen bytes per principal, where a whole
    // `EntityUid` key is over a hundred).
    by_principal: ByPrincipal,
    /// The same slices by class: for a principal the snapshot does not hold whose class it does.
    by_class: HashMap<Class, Arc<ClassSlices>, Fast>,
    /// Principals the snapshot did not know: computed on first use, bounded.
    overflow: RwLock<HashMap<(Class, EntityUid), Arc<PolicySet>, Fast>>,
    keys: usize,
    distinct: usize,
}

impl std::fmt::Debug for SliceIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SliceIndex")
            .field("slices", &self.keys)
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
        let actions: Vec<&EntityUid> = actions.into_iter().collect();
        let mut classes: HashMap<Class, Arc<ClassSlices>, Fast> = HashMap::default();
        let mut shared: HashMap<Vec<PolicyId>, Arc<PolicySet>> = HashMap::new();
        let mut by_principal = ByPrincipal::default();
        for e in entities.iter() {
            let uid = e.uid();
            if !principal_types.contains(uid.type_name()) {
                continue;
            }
            let class = mentions.class(&uid, entities);
            let slices = match classes.get(&class) {
                Some(slices) => Arc::clone(slices),
                None => {
                    let mut slices = ClassSlices {
                        id: ClassId::try_from(classes.len()).unwrap_or(ClassId::MAX),
                        by_action: HashMap::with_capacity_and_hasher(actions.len(), Fast::default()),
                    };
                    for action in &actions {
                        let ids: Vec<PolicyId> = all
                            .policies()
                            .filter(|p| in_slice(p, &class, &uid, action, entities))
                            .map(|p| p.id().clone())
                            .collect();
                        let set = shared
                            .entry(ids)
                            .or_insert_with(|| Arc::new(class_slice(all, &class, &uid, action, entities)));
                        slices.by_action.insert((*action).clone(), Arc::clone(set));
                    }
                    let slices = Arc::new(slices);
                    classes.insert(class, Arc::clone(&slices));
                    slices
                }
            };
            by_principal
                .entry(uid.type_name().to_string().into())
                .or_default()
                .insert(uid.id().unescaped().into(), slices);
        }
        Self {
            all: all.clone(),
            mentions,
            by_principal,
            keys: classes.len() * actions.len(),
            by_class: classes,
            overflow: RwLock::new(HashMap::default()),
            distinct: shared.len(),
        }
    }

    /// The slice for a request by `principal` for `action`.
    pub fn get(&self, principal: &EntityUid, action: &EntityUid, entities: &Entities) -> Arc<PolicySet> {
        self.get_named(&principal.type_name().to_string(), principal, action, entities)
    }

    /// [`get`](Self::get), with the principal's type name as Cedar prints it already at hand
    /// (the authorize path has it as a string: no name is printed per call).
    pub(crate) fn get_named(
        &self,
        type_name: &str,
        principal: &EntityUid,
        action: &EntityUid,
        entities: &Entities,
    ) -> Arc<PolicySet> {
        let known = self
            .by_principal
            .get(type_name)
            .and_then(|ids| ids.get(principal.id().unescaped()));
        if let Some(s) = known.and_then(|slices| slices.by_action.get(action)) {
            return Arc::clone(s);
        }
        let class = self.mentions.class(principal, entities);
        if let Some(s) = self
            .by_class
            .get(&class)
            .and_then(|slices| slices.by_action.get(action))
        {
            return Arc::clone(s);
        }
        let key = (class, action.clone());
        if let Some(s) = self.overflow.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Arc::clone(s);
        }
        let s = Arc::new(class_slice(&self.all, &key.0, principal, action, entities));
        let mut overflow = self.overflow.write().unwrap_or_else(|p| p.into_inner());
        if overflow.len() >= OVERFLOW_CAPACITY {
            overflow.clear();
        }
        overflow.insert(key, Arc::clone(&s));
        s
    }

    /// The class of a principal the snapshot holds (by its type name as Cedar prints it, and
    /// its id), or `None`. Two principals of one class decide alike on every action whose
    /// policies read the principal only in their scopes and in leading conditions that read
    /// nothing else (see [`compare_within_class`]).
    pub fn class_of(&self, type_name: &str, id: &str) -> Option<ClassId> {
        Some(self.by_principal.get(type_name)?.get(id)?.id)
    }

    /// How many slices the index holds.
    pub fn stats(&self) -> SliceStats {
        SliceStats {
            keys: self.keys,
            distinct: self.distinct,
            overflow: self.overflow.read().unwrap_or_else(|p| p.into_inner()).len(),
        }
    }
}

/// Whether `policy` belongs in the slice of `class` (of which `principal` is a member) for `action`.
fn in_slice(policy: &Policy, class: &Class, principal: &EntityUid, action: &EntityUid, entities: &Entities) -> bool {
    may_apply(policy, principal, action, entities) && class.probes.ruled_out.binary_search(policy.id()).is_err()
}

/// The slice of `all` for `class` (of which `principal` is a member) and `action`.
fn class_slice(
    all: &PolicySet,
    class: &Class,
    principal: &EntityUid,
    action: &EntityUid,
    entities: &Entities,
) -> PolicySet {
    slice_of(all, |p| in_slice(p, class, principal, action, entities))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn uid(s: &str) -> EntityUid {
        EntityUid::from_str(s).unwrap()
    }

    fn user(id: &str, contractor: Option<bool>, groups: &[&str]) -> cedar_policy::Entity {
        cedar_policy::Entity::new(
            uid(&format!("User::\"{id}\"")),
            contractor
                .map(|c| ("contractor".to_owned(), cedar_policy::RestrictedExpression::new_bool(c)))
                .into_iter()
                .collect(),
            groups.iter().map(|g| uid(&format!("Team::\"{g}\""))).collect(),
        )
        .unwrap()
    }

    fn ids(set: &PolicySet) -> Vec<String> {
        let mut v: Vec<String> = set.policies().map(|p| p.id().to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_leading_principal_condition_that_is_false_leaves_its_policy_out() {
        let all = PolicySet::from_policies(
            [
                r#"permit(principal, action, resource);"#,
                r#"forbid(principal, action, resource) when { principal.contractor };"#,
                r#"forbid(principal, action, resource) unless { principal in Team::"oncall" };"#,
                r#"forbid(principal, action, resource) when { principal.contractor && context.late };"#,
                r#"forbid(principal, action, resource) when { context.late && principal.contractor };"#,
                r#"forbid(principal, action, resource) when { resource.prod } when { principal.contractor };"#,
            ]
            .iter()
            .enumerate()
            .map(|(i, text)| Policy::parse(Some(PolicyId::new(format!("p{i}"))), *text).unwrap()),
        )
        .unwrap();
        let entities = Entities::from_entities(
            [
                cedar_policy::Entity::new_no_attrs(uid("Team::\"oncall\""), HashSet::new()),
                user("employee", Some(false), &["oncall"]),
                user("contractor", Some(true), &["oncall"]),
                user("unknown", None, &[]),
                user("employee2", Some(false), &["oncall"]),
            ],
            None,
        )
        .unwrap();
        let action = uid("Action::\"a\"");
        let index = SliceIndex::new(
            &all,
            &entities,
            &HashSet::from([uid("User::\"x\"").type_name().clone()]),
            [&action],
        );
        let slice = |who: &str| ids(&index.get(&uid(&format!("User::\"{who}\"")), &action, &entities));
        // The employee on call: neither contractor forbid (leading conditions false) nor the
        // on-call one; the forbid whose principal test comes after a context test stays, and so
        // does the one whose principal test follows a condition on the resource.
        assert_eq!(slice("employee"), ["p0", "p4", "p5"]);
        assert_eq!(slice("contractor"), ["p0", "p1", "p3", "p4", "p5"]);
        // A missing attribute is an error in Cedar, not `false`: nothing reading it is left out.
        assert_eq!(slice("unknown"), ["p0", "p1", "p2", "p3", "p4", "p5"]);
        // Two employees on call share a class. A principal outside the entities has the class
        // of the user without the attribute (nothing can be decided about it): its slices are
        // those; a principal of another type gets its own, computed on first use.
        let stats = index.stats();
        assert_eq!((stats.keys, stats.overflow), (3, 0));
        assert_eq!(slice("stranger"), ["p0", "p1", "p2", "p3", "p4", "p5"]);
        assert_eq!(index.stats().overflow, 0);
        let team = ids(&index.get(&uid("Team::\"oncall\""), &action, &entities));
        assert_eq!(
            team,
            ["p0", "p1", "p3", "p4", "p5"],
            "a team is in itself: not the on-call forbid"
        );
        assert_eq!(index.stats().overflow, 1);
    }
}
