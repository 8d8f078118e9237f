//! Sealing: turning committed audit entries into the hash chain.
//!
//! Commits append to `audit_entries` without any lock, each row tagged with its transaction id
//! (`xid8`). A sealer, holding the `audit_head` row lock, chains entries in `(xid, id)` order,
//! but only those whose transaction is older than the oldest transaction still running in this
//! database (see [`CUTOFF`]; transactions of other databases cannot add entries): every such
//! transaction has finished, and any transaction that has not will get or has an id at or
//! above that cutoff, so nothing can later appear before a sealed entry. The chain therefore has one order, no gaps, and is append-only, while commits never
//! wait for each other.

use std::sync::Weak;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jitgate_core::audit::{AuditEntry, ChainHead, RECORD_VERSION};
use jitgate_core::Unsealed;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::error::{CorruptRow, EditedBeforeSealing};

const BATCH: i64 = 5_000;

/// The sealing horizon for snapshot `$1`: the oldest transaction still running *in this
/// database* (only those can add audit entries), or the snapshot's `xmax` when none is. A
/// transaction left open in another database of the same server never holds sealing back.
/// Seeing other sessions' transaction ids takes superuser or `pg_read_all_stats`; without
/// either, the horizon is the cluster-wide one (`xmin`), as hidden ids could be this
/// database's.
const CUTOFF: &str = "\
    SELECT CASE \
      WHEN pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER') \
           OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \
      THEN least( \
        pg_snapshot_xmax($1::pg_snapshot), \
        (SELECT min(x) FROM pg_snapshot_xip($1::pg_snapshot) AS x \
          WHERE x::xid IN ( \
            SELECT backend_xid FROM pg_stat_activity \
              WHERE datname = current_database() AND backend_xid IS NOT NULL \
            UNION ALL \
            SELECT transaction FROM pg_prepared_xacts WHERE database = current_database()))) \
      ELSE pg_snapshot_xmin($1::pg_snapshot) \
    END::text";

/// Seals one batch. With `wait` the head lock is awaited, otherwise a sealer already at work
/// makes this a no-op. Returns the cutoff used (`None` if skipped) and how many entries were sealed.
async fn seal_batch(pool: &PgPool, wait: bool) -> Result<Option<(u64, usize)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let lock = if wait {
        "SELECT seq, hash, sealed_xid::text AS sealed_xid, sealed_id FROM audit_head WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT seq, hash, sealed_xid::text AS sealed_xid, sealed_id FROM audit_head WHERE id = 1 FOR UPDATE SKIP LOCKED"
    };
    let Some(head) = sqlx::query(lock).fetch_optional(&mut *tx).await? else {
        return Ok(None);
    };
    let seq: i64 = head.try_get("seq")?;
    let mut chain = ChainHead {
        seq: seq as u64,
        hash: head.try_get("hash")?,
    };
    let sealed_xid: String = head.try_get("sealed_xid")?;
    let sealed_id: i64 = head.try_get("sealed_id")?;
    // The snapshot first, then (in a later statement, so that it reads backends as they are
    // after it) which of its running transactions are in this database.
    let snapshot: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(&mut *tx)
        .await?;
    let cutoff: String = sqlx::query_scalar(CUTOFF).bind(&snapshot).fetch_one(&mut *tx).await?;
    let rows = sqlx::query(
        "SELECT id, xid::text AS xid, request_id, entry, digest FROM audit_entries \
         WHERE (xid, id) > ($1::text::xid8, $2) AND xid < $3::text::xid8 \
         ORDER BY audit_entries.xid, audit_entries.id LIMIT $4",
    )
    .bind(&sealed_xid)
    .bind(sealed_id)
    .bind(&cutoff)
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let cutoff_n: u64 = cutoff.parse().unwrap_or(0);
    if rows.is_empty() {
        tx.rollback().await?;
        return Ok(Some((cutoff_n, 0)));
    }
    let (mut seqs, mut ids, mut reqs, mut prevs, mut hashes, mut bodies) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut last_xid, mut last_id) = (sealed_xid, sealed_id);
    let mut edited = None;
    for row in &rows {
        let body: serde_json::Value = row.try_get("entry")?;
        // The content fixed at commit: an entry edited since is never chained as genuine.
        let digest: Option<String> = row.try_get("digest")?;
        if digest.is_some_and(|d| jitgate_core::audit::canonical_hash(&body).as_deref() != Some(d.as_str())) {
            edited = Some(row.try_get::<i64, _>("id")?);
            break;
        }
        let entry: AuditEntry = serde_json::from_value(body.clone()).map_err(|source| {
            sqlx::Error::Decode(Box::new(CorruptRow {
                what: "audit_entries".into(),
                source,
            }))
        })?;
        let record = chain.append(entry);
        last_xid = row.try_get("xid")?;
        last_id = row.try_get("id")?;
        seqs.push(record.seq as i64);
        ids.push(last_id);
        reqs.push(row.try_get::<Uuid, _>("request_id")?);
        prevs.push(record.prev_hash);
        hashes.push(record.hash);
        bodies.push(body);
    }
    let edited = edited.map(|entry_id| sqlx::Error::Decode(Box::new(EditedBeforeSealing { entry_id })));
    if seqs.is_empty() {
        // The first entry in line was edited: nothing to seal, and the chain stops here.
        tx.rollback().await?;
        return match edited {
            Some(e) => Err(e),
            None => Ok(Some((cutoff_n, 0))),
        };
    }
    sqlx::query(
        "WITH sealed AS ( \
             INSERT INTO audit (seq, entry_id, request_id, prev_hash, hash, entry, v) \
             SELECT u.*, $11::smallint FROM UNNEST($1::bigint[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[]) u) \
         UPDATE audit_head SET seq = $7, hash = $8, sealed_xid = $9::text::xid8, sealed_id = $10 WHERE id = 1",
    )
    .bind(seqs)
    .bind(ids)
    .bind(reqs)
    .bind(prevs)
    .bind(hashes)
    .bind(bodies)
    .bind(chain.seq as i64)
    .bind(&chain.hash)
    .bind(last_xid)
    .bind(last_id)
    .bind(RECORD_VERSION as i16)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    match edited {
        Some(e) => Err(e),
        None => Ok(Some((cutoff_n, rows.len()))),
    }
}

/// Seals everything committed before this call, waiting up to `wait` for transactions that
/// were still running when it started. Reads of the chain call it, so they see their own
/// writes; past `wait` they return what is sealed (see [`unsealed`]).
pub(crate) async fn seal_committed(pool: &PgPool, wait: Duration) -> Result<(), sqlx::Error> {
    let target: String = sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
        .fetch_one(pool)
        .await?;
    let target: u64 = target.parse().unwrap_or(0);
    let start = Instant::now();
    loop {
        if let Some((cutoff, sealed)) = seal_batch(pool, true).await? {
            if cutoff >= target && (sealed as i64) < BATCH {
                return Ok(());
            }
            if sealed > 0 {
                continue;
            }
        }
        if start.elapsed() >= wait {
            let held = unsealed(pool).await?;
            tracing::warn!(
                unsealed = held.records,
                oldest = ?held.oldest,
                "audit sealing is held back by a transaction still open in this database; reads return the sealed chain only"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The committed entries after the sealed head: how many, and the earliest `at`.
pub(crate) async fn unsealed(pool: &PgPool) -> Result<Unsealed, sqlx::Error> {
    let row = sqlx::query(
        "SELECT count(*) AS n, min((e.entry->>'at')::timestamptz) AS oldest \
         FROM audit_entries e, audit_head h \
         WHERE h.id = 1 AND (e.xid, e.id) > (h.sealed_xid, h.sealed_id)",
    )
    .fetch_one(pool)
    .await?;
    let n: i64 = row.try_get("n")?;
    Ok(Unsealed::new(n.max(0) as u64, row.try_get("oldest")?))
}

/// Sets the gauges `jitgate_audit_unsealed_records` and `jitgate_audit_unsealed_age_seconds`
/// (0 when none waits; by the wall clock, not the gate's).
pub(crate) fn report_unsealed(u: &Unsealed, now: DateTime<Utc>) {
    metrics::gauge!("jitgate_audit_unsealed_records").set(u.records as f64);
    let age = u
        .oldest
        .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1e3);
    metrics::gauge!("jitgate_audit_unsealed_age_seconds").set(age);
}

/// How often the background sealer counts what is left unsealed for the gauges.
const GAUGE_EVERY: Duration = Duration::from_secs(1);

/// How long the background sealer waits after a commit's wake-up before sealing.
const COALESCE: Duration = Duration::from_millis(10);

/// Seals in the background: after local commits (notified, gathering those of the next
/// [`COALESCE`]) and every 250 ms; sets the
/// unsealed gauges at most every second.
pub(crate) async fn run_sealer(wake: Weak<tokio::sync::Notify>, pool: PgPool) {
    let mut gauged: Option<Instant> = None;
    loop {
        let Some(notify) = wake.upgrade() else { return };
        let woken = tokio::select! {
            _ = notify.notified() => true,
            _ = tokio::time::sleep(Duration::from_millis(250)) => false,
        };
        drop(notify);
        if woken {
            // Let the commits of the next few milliseconds join this batch: one sealing
            // transaction for many commits, not one each (reads seal what they need themselves).
            tokio::time::sleep(COALESCE).await;
        }
        loop {
            match seal_batch(&pool, false).await {
                Ok(Some((_, n))) if n as i64 == BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %jitgate_core::ErrorChain(&e), "audit sealing failed; will retry");
                    break;
                }
            }
        }
        if gauged.is_none_or(|at| at.elapsed() >= GAUGE_EVERY) {
            gauged = Some(Instant::now());
            match unsealed(&pool).await {
                Ok(u) => report_unsealed(&u, Utc::now()),
                Err(e) => {
                    tracing::debug!(error = %jitgate_core::ErrorChain(&e), "counting unsealed audit entries failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    fn gauges(u: &Unsealed, now: DateTime<Utc>) -> Vec<(String, f64)> {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || report_unsealed(u, now));
        let mut out: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| match value {
                DebugValue::Gauge(v) => (key.key().name().to_owned(), v.into_inner()),
                other => panic!("a gauge, not {other:?}"),
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn the_gauges_say_how_many_entries_wait_and_for_how_long() {
        let now = Utc::now();
        let waiting = Unsealed::new(3, Some(now - chrono::Duration::milliseconds(2_500)));
        assert_eq!(
            gauges(&waiting, now),
            vec![
                ("jitgate_audit_unsealed_age_seconds".to_owned(), 2.5),
                ("jitgate_audit_unsealed_records".to_owned(), 3.0),
            ]
        );
        assert_eq!(
            gauges(&Unsealed::default(), now),
            vec![
                ("jitgate_audit_unsealed_age_seconds".to_owned(), 0.0),
                ("jitgate_audit_unsealed_records".to_owned(), 0.0),
            ]
        );
    }
}
