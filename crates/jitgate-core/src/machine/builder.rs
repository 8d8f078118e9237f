//! Collects the pieces of one transition's commit, with stable event ids.

use chrono::{DateTime, Utc};

use crate::audit::{AuditAction, AuditEntry};
use crate::model::entity::{EntityRef, Scope};
use crate::model::event::{Event, EventKind};
use crate::model::grant::Grant;
use crate::model::ids::{EventId, GrantId, RequestId};
use crate::model::request::AccessRequest;
use crate::ports::store::Commit;

/// Collects the pieces of a commit with stable event ids.
pub(super) struct Builder {
    pub(super) commit: Commit,
    subject: String,
    at: DateTime<Utc>,
}

impl Builder {
    pub(super) fn new(subject: String, at: DateTime<Utc>) -> Self {
        Self {
            commit: Commit::default(),
            subject,
            at,
        }
    }

    pub(super) fn audit(
        &mut self,
        actor: &EntityRef,
        action: AuditAction,
        req: &AccessRequest,
        grant: Option<GrantId>,
        text: Option<String>,
        policy_ids: Vec<String>,
    ) {
        self.commit.audit.push(AuditEntry {
            at: self.at,
            actor: actor.clone(),
            action,
            request_id: req.id,
            grant_id: grant,
            principal: req.principal.clone(),
            scope: req.scope().clone(),
            text,
            policy_ids,
            binding: None,
            replica: None,
            policy_version: None,
        });
    }

    pub(super) fn grant_audit(&mut self, actor: &EntityRef, action: AuditAction, g: &Grant, text: Option<String>) {
        self.commit.audit.push(AuditEntry {
            at: self.at,
            actor: actor.clone(),
            action,
            request_id: g.request_id,
            grant_id: Some(g.id),
            principal: g.principal.clone(),
            scope: g.scope.clone(),
            text,
            policy_ids: Vec::new(),
            binding: None,
            replica: None,
            policy_version: None,
        });
    }

    pub(super) fn event(
        &mut self,
        principal: &EntityRef,
        scope: &Scope,
        request_id: RequestId,
        grant_id: Option<GrantId>,
        kind: EventKind,
    ) {
        let id = EventId(format!("{}/{}", self.subject, self.commit.events.len()));
        self.commit.events.push(Event {
            id,
            at: self.at,
            principal: principal.clone(),
            scope: scope.clone(),
            request_id,
            grant_id,
            kind,
        });
    }

    pub(super) fn request_event(&mut self, req: &AccessRequest, kind: EventKind) {
        self.event(&req.principal, req.scope(), req.id, req.grant_id, kind);
    }

    /// `RequestResolved`, for the reviewers who no longer need to act.
    pub(super) fn resolved(&mut self, req: &AccessRequest, by: Option<&EntityRef>) {
        let reviewers = req.flow.requirements.iter().map(|r| r.reviewers.clone()).collect();
        self.request_event(
            req,
            EventKind::RequestResolved {
                state: req.state,
                by: by.cloned(),
                reviewers,
            },
        );
    }

    pub(super) fn grant_event(&mut self, g: &Grant, kind: EventKind) {
        self.event(&g.principal, &g.scope, g.request_id, Some(g.id), kind);
    }
}
