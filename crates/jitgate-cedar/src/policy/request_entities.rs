//! Review and revoke decisions on a small store: the actor, the subject, the resource, the
//! action, all their ancestors, and jitgate's own request or grant entity.

use std::collections::{HashMap, HashSet};

use cedar_policy::{Entities, Entity, EntityUid, Request, RestrictedExpression};
use jitgate_core::{EntityRef, PolicyError};

use crate::schema::NAMESPACE;

use super::CedarPolicy;

impl CedarPolicy {
    /// Asks Cedar whether `actor` may take jitgate's `action` on one of jitgate's own entities
    /// (`Jit::<ty>::"<id>"`, a member of `resource`, about `subject`: the requester or holder).
    ///
    /// Cedar cannot add one entity to a store without rescanning all of it, so the decision
    /// runs on a small store instead: the actor, the subject, the resource, the action, every
    /// ancestor of each (with their attributes), and the new entity — everything a review or
    /// revoke policy's scope can test, and the attributes its conditions can read directly.
    /// A condition that dereferences an entity beyond these errors, and errors fail closed.
    pub(super) fn ask_about_jit_entity(
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
            .map_err(|e| PolicyError::with_source(format!("cannot build the {ty} entity"), e))?;
        let entities = reachable(
            &snapshot.entities,
            [actor, action, &resource_uid, &self.types.uid(subject)?],
            entity,
        )?;
        let request =
            Request::new(actor.clone(), action.clone(), uid, cedar_policy::Context::empty(), None).map_err(|e| {
                PolicyError::with_source(format!("the Cedar request about a {ty} does not fit the schema"), e)
            })?;
        Ok((self.decide(&request, &self.review, &entities)?, entities))
    }
}

/// A store of `roots` and all their ancestors, copied from `base`, plus `extra`.
pub(super) fn reachable<'a>(
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
        .map_err(|e| PolicyError::with_source("cannot assemble the review entities", e))
}
