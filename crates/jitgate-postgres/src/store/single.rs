//! A commit as one statement: the request and grant writes run as data-modifying CTEs beside
//! the audit entries, the outbox rows and the change feed's `NOTIFY`, in one round trip
//! instead of `BEGIN`, a statement per row and `COMMIT`. A compare-and-swap update that finds
//! another version makes `jitgate_all_applied` (migration 8) abort the statement, and a
//! duplicate aborts it too, so nothing is written; the store then runs the commit step by step
//! in a transaction, which names the refusal exactly.

use chrono::{DateTime, Utc};
use jitgate_core::{Commit, Grant, StoreError, Write};
use sqlx::types::Json;

use super::codec::{principal_key, scope_key};
use super::PgStore;
use crate::error::backend;

/// The SQLSTATE `jitgate_all_applied` raises.
const NOT_APPLIED: &str = "JG409";

const COMMIT: &str = concat!(
    "WITH req_ins AS ( \
         INSERT INTO requests (id, principal, scope_key, state, version, created_at, deadline, body) \
         SELECT $10, $11, $12, $13, $14, $15, $16, $17 WHERE $18 = 'insert' RETURNING 1), \
     req_upd AS ( \
         UPDATE requests SET state = $13, version = $14, body = $17, claimed_until = NULL \
         WHERE $18 = 'update' AND id = $10 AND version = $19 RETURNING 1), \
     grant_ins AS ( \
         INSERT INTO grants (id, request_id, principal, scope_key, state, version, not_before, expires_at, awaits_ack, body, reminded) \
         SELECT * FROM UNNEST($20::uuid[], $21::uuid[], $22::text[], $23::text[], $24::text[], $25::int8[], \
                              $26::timestamptz[], $27::timestamptz[], $28::bool[], $29::jsonb[], $30::bool[]) RETURNING 1), \
     grant_upd AS ( \
         UPDATE grants g SET state = u.state, version = u.version, awaits_ack = u.awaits_ack, body = u.body, \
                claimed_until = NULL, change_xid = pg_current_xact_id(), reminded = u.reminded \
         FROM UNNEST($31::uuid[], $32::int8[], $33::text[], $34::int8[], $35::bool[], $36::jsonb[], $37::bool[]) \
              AS u(id, expected, state, version, awaits_ack, body, reminded) \
         WHERE g.id = u.id AND g.version = u.expected RETURNING 1), ",
    audit_ctes!(),
    ", notified AS MATERIALIZED (SELECT pg_notify($5, $9) WHERE $6) \
 SELECT jitgate_all_applied((SELECT count(*) FROM req_upd) = $38 AND (SELECT count(*) FROM grant_upd) = $39) AS applied, \
        (SELECT count(*) FROM notified) AS notified, \
        (SELECT count(*) FROM req_ins) + (SELECT count(*) FROM grant_ins) AS inserted"
);

/// The columns of the grants a commit inserts, one array each (bodies serialized straight
/// from the commit's grants when bound).
#[derive(Default)]
struct Inserts<'a> {
    id: Vec<uuid::Uuid>,
    request_id: Vec<uuid::Uuid>,
    principal: Vec<String>,
    scope_key: Vec<String>,
    state: Vec<String>,
    version: Vec<i64>,
    not_before: Vec<DateTime<Utc>>,
    expires_at: Vec<DateTime<Utc>>,
    awaits_ack: Vec<bool>,
    body: Vec<Json<&'a Grant>>,
    reminded: Vec<bool>,
}

/// The columns of the grants a commit updates, one array each.
#[derive(Default)]
struct Updates<'a> {
    id: Vec<uuid::Uuid>,
    expected: Vec<i64>,
    state: Vec<String>,
    version: Vec<i64>,
    awaits_ack: Vec<bool>,
    body: Vec<Json<&'a Grant>>,
    reminded: Vec<bool>,
}

impl PgStore {
    /// Runs `c` as one statement. `Ok(Some(changed_grants))`: applied; `Ok(None)`: refused (a
    /// version found changed, or a duplicate), nothing written.
    pub(super) async fn commit_in_one(&self, c: &Commit) -> Result<Option<bool>, StoreError> {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        let (mode, expected, r) = match c.request() {
            None => ("none", 0, None),
            Some(Write::Insert(r)) => ("insert", 0, Some(r)),
            Some(Write::Update {
                value,
                expected_version,
            }) => ("update", *expected_version as i64, Some(value)),
        };
        // NULL when there is no request write (no row reads it then).
        let request_body = r.map(Json);
        let (mut ins, mut upd) = (Inserts::default(), Updates::default());
        for w in c.grants() {
            let g = w.value();
            match w {
                Write::Insert(_) => {
                    ins.id.push(g.id.0);
                    ins.request_id.push(g.request_id.0);
                    ins.principal.push(principal_key(&g.principal));
                    ins.scope_key.push(scope_key(&g.scope));
                    ins.state.push(g.state.to_string());
                    ins.version.push(g.version as i64);
                    ins.not_before.push(g.window.not_before());
                    ins.expires_at.push(g.window.expires_at());
                    ins.awaits_ack.push(g.awaits_acknowledgement());
                    ins.body.push(Json(g));
                    ins.reminded.push(g.reminded_at.is_some());
                }
                Write::Update { expected_version, .. } => {
                    upd.id.push(g.id.0);
                    upd.expected.push(*expected_version as i64);
                    upd.state.push(g.state.to_string());
                    upd.version.push(g.version as i64);
                    upd.awaits_ack.push(g.awaits_acknowledgement());
                    upd.body.push(Json(g));
                    upd.reminded.push(g.reminded_at.is_some());
                }
            }
        }
        let audit = super::commit::AuditRows::of(c)?;
        let changed_grants = !c.grants().is_empty();
        let updates = upd.id.len() as i64;
        let result = audit
            .bind(sqlx::query(COMMIT), self, changed_grants)
            .bind(r.map_or(uuid::Uuid::nil(), |r| r.id.0))
            .bind(r.map(|r| principal_key(&r.principal)).unwrap_or_default())
            .bind(r.map(|r| scope_key(r.scope())).unwrap_or_default())
            .bind(r.map(|r| r.state.to_string()).unwrap_or_default())
            .bind(r.map_or(0, |r| r.version as i64))
            .bind(r.map_or(epoch, |r| r.created_at))
            .bind(r.map_or(epoch, |r| r.deadline))
            .bind(request_body)
            .bind(mode)
            .bind(expected)
            .bind(ins.id)
            .bind(ins.request_id)
            .bind(ins.principal)
            .bind(ins.scope_key)
            .bind(ins.state)
            .bind(ins.version)
            .bind(ins.not_before)
            .bind(ins.expires_at)
            .bind(ins.awaits_ack)
            .bind(ins.body)
            .bind(ins.reminded)
            .bind(upd.id)
            .bind(upd.expected)
            .bind(upd.state)
            .bind(upd.version)
            .bind(upd.awaits_ack)
            .bind(upd.body)
            .bind(upd.reminded)
            .bind(i64::from(mode == "update"))
            .bind(updates)
            .fetch_one(self.db()?)
            .await;
        match result {
            Ok(_) => Ok(Some(changed_grants)),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(NOT_APPLIED) || db.is_unique_violation() => {
                Ok(None)
            }
            Err(e) => Err(backend(e)),
        }
    }
}
