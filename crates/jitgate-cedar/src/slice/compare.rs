//! What the differential tests and the fuzz target check slicing and the decision cache's
//! class key against: bare Cedar on the whole policy set.

use std::collections::{HashMap, HashSet};

use cedar_policy::{Entities, EntityUid, PolicySet};

use super::{action_may_match, ClassId, SliceIndex};
use crate::probes::Probes;

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

/// Whether principals of one class decide alike on `action` under `all`: every policy that
/// may apply to it reads the principal only in its scope and in leading conditions that read
/// nothing else (decided per principal with the snapshot, and part of its class). The decision
/// cache keys such calls on the class instead of the principal.
pub fn class_decides(all: &PolicySet, action: &EntityUid, entities: &Entities) -> bool {
    let probes = Probes::of(all);
    all.policies()
        .filter(|p| action_may_match(&p.action_constraint(), action, entities))
        .all(|p| probes.class_decides(p))
}

/// For the differential tests and the fuzz target: when [`class_decides`] holds for `action`,
/// checks that bare Cedar decides the requests of any two of `principals` that share a class
/// in an index over `entities` (same action, resource and context) alike on the whole set —
/// the decision, the determining policies, and which policies are in error — and says how
/// they differ, if at all. `None` also when the claim does not apply (an action on whose
/// policies the principal can tell).
pub fn compare_within_class(
    all: &PolicySet,
    entities: &Entities,
    principals: &[EntityUid],
    action: &EntityUid,
    resource: &EntityUid,
    context: &cedar_policy::Context,
) -> Option<String> {
    use std::collections::BTreeSet;
    if !class_decides(all, action, entities) {
        return None;
    }
    let types = principals.iter().map(|p| p.type_name().clone()).collect();
    let index = SliceIndex::new(all, entities, &types, [action]);
    let answer = |p: &EntityUid| {
        let request =
            cedar_policy::Request::new(p.clone(), action.clone(), resource.clone(), context.clone(), None).ok()?;
        let r = cedar_policy::Authorizer::new().is_authorized(&request, all, entities);
        let reasons: BTreeSet<String> = r.diagnostics().reason().map(ToString::to_string).collect();
        let errors: BTreeSet<String> = r
            .diagnostics()
            .errors()
            .map(|e| {
                let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
                pe.policy_id().to_string()
            })
            .collect();
        Some((r.decision(), reasons, errors))
    };
    // The first member of each class answers for it.
    let mut first: HashMap<ClassId, (&EntityUid, _)> = HashMap::new();
    for p in principals {
        let Some(class) = index.class_of(&p.type_name().to_string(), p.id().unescaped()) else {
            continue;
        };
        let mine = answer(p);
        match first.get(&class) {
            Some((q, theirs)) if *theirs != mine => {
                return Some(format!("{p} and {q} (class {class}): {mine:?} against {theirs:?}"));
            }
            Some(_) => {}
            None => {
                first.insert(class, (p, mine));
            }
        }
    }
    None
}
