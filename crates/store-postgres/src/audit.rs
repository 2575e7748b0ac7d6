//! The audit log's SQL: the chained insert every write ends with, the
//! one-time sealing of rows older than the chain, and the reads.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::audit_chain::chain_hash;
use infusion_store::{
    AuditAction, AuditHead, AuditLog, AuditRecord, ChainedAudit, Change, Columns, Effects,
    NewAudit, StoreError, StoreResult, patient_filter,
};
use sqlx::{PgConnection, PgPool};

use crate::feed::CHANNEL;
use crate::rows::{Cols, get, stored_patient};
use crate::{PgStore, db_error};

/// Applies a decision's effects in the caller's transaction: each change
/// is queued with `pg_notify` (delivered at commit), then each audit
/// entry is appended, last, since the audit head's lock must be the last
/// lock a transaction takes.
pub(crate) async fn apply(conn: &mut PgConnection, effects: Effects) -> StoreResult<()> {
    for alarm in &effects.alarms {
        crate::alarms::write(conn, alarm).await?;
    }
    for change in effects.changes {
        notify(conn, change).await?;
    }
    for entry in &effects.audit {
        insert_audit_on(conn, entry).await?;
    }
    Ok(())
}

/// Queues `change` for delivery to every instance when the transaction
/// commits.
async fn notify(conn: &mut PgConnection, change: Change) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(change.to_payload())
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(db_error)
}

/// The audit chain's head, locked until the transaction ends when `lock`:
/// the lock that puts concurrent audit inserts, from any instance, in one
/// order. Every transaction takes it as its last lock (the audit insert is
/// its last write, or comes after its patient's lock), so it cannot be
/// part of a deadlock.
async fn audit_head_on(conn: &mut PgConnection, lock: bool) -> StoreResult<AuditHead> {
    let sql = if lock {
        "SELECT rows, last_id, hash FROM audit_head WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT rows, last_id, hash FROM audit_head WHERE id = 1"
    };
    let r = sqlx::query(sql).fetch_one(conn).await.map_err(db_error)?;
    let hash: Vec<u8> = get(&r, 2)?;
    Ok(AuditHead {
        rows: get::<i64>(&r, 0)? as u64,
        last_id: get(&r, 1)?,
        hash: hash
            .try_into()
            .map_err(|_| StoreError::Backend("audit head hash is not 32 bytes".into()))?,
    })
}

/// Appends one audit entry to the hash chain, under the head's lock.
pub(crate) async fn insert_audit_on(conn: &mut PgConnection, e: &NewAudit) -> StoreResult<()> {
    let e = &*e.bounded();
    let head = audit_head_on(conn, true).await?;
    let hash = chain_hash(&head.hash, e);
    sqlx::query(
        "WITH row AS (
             INSERT INTO audit (at_ms, actor, action, patient_id, detail, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
         )
         UPDATE audit_head SET rows = rows + 1, last_id = (SELECT id FROM row), hash = $7
         WHERE id = 1",
    )
    .bind(e.at_ms)
    .bind(&e.actor)
    .bind(e.action.as_str())
    .bind(e.patient_id.and_then(stored_patient))
    .bind(&e.detail)
    .bind(&head.hash[..])
    .bind(&hash[..])
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(db_error)
}

/// Seals the rows written before the chain existed into it, in id order,
/// once: only while the head has never moved (see the SQLite backend).
pub(crate) async fn seal_legacy_audit(pool: &PgPool) -> StoreResult<u64> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    let head = audit_head_on(&mut tx, true).await?;
    if head.rows != 0 || head.last_id != 0 {
        return Ok(0);
    }
    let rows = audit_rows(&mut tx, "WHERE hash IS NULL AND id > $1", 0, u32::MAX).await?;
    let mut prev = head.hash;
    for r in &rows {
        let hash = chain_hash(&prev, &r.entry);
        sqlx::query(
            "WITH sealed AS (UPDATE audit SET prev_hash = $1, hash = $2 WHERE id = $3)
             UPDATE audit_head SET rows = rows + 1, last_id = $3, hash = $2 WHERE id = 1",
        )
        .bind(&prev[..])
        .bind(&hash[..])
        .bind(r.id)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        prev = hash;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(rows.len() as u64)
}

/// Audit rows with their chain columns: `filter` is a `WHERE` of our own
/// on `$1`; ordered by id, at most `limit`.
async fn audit_rows(
    conn: &mut PgConnection,
    filter: &str,
    arg: i64,
    limit: u32,
) -> StoreResult<Vec<ChainedAudit>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {}, prev_hash, hash FROM audit {filter} ORDER BY id LIMIT $2",
        AuditRecord::COLUMNS
    )))
    .bind(arg)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| {
        let r = Cols(r);
        let AuditRecord { id, entry } = AuditRecord::from_row(&r)?;
        Ok(ChainedAudit {
            id,
            entry,
            // A hash of another length is a row edited around the
            // application: the verifier names it, it does not fail on it.
            prev_hash: r.bytes(6)?.and_then(|v| v.try_into().ok()),
            hash: r.bytes(7)?.and_then(|v| v.try_into().ok()),
        })
    })
    .collect()
}

/// The newest audit entries (of one patient, or all), newest first; with
/// `security_only`, only the [`AuditAction::SECURITY`] actions.
async fn audit_log(
    pool: &PgPool,
    patient: Option<PatientId>,
    limit: u32,
    security_only: bool,
) -> StoreResult<Vec<AuditRecord>> {
    let Some(pid) = patient_filter(patient) else {
        return Ok(Vec::new());
    };
    let actions: Option<Vec<&str>> =
        security_only.then(|| AuditAction::SECURITY.iter().map(|a| a.as_str()).collect());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM audit
         WHERE ($1::bigint IS NULL OR patient_id = $1)
           AND ($3::text[] IS NULL OR action = ANY($3))
         ORDER BY id DESC LIMIT $2",
        AuditRecord::COLUMNS
    )))
    .bind(pid)
    .bind(i64::from(limit))
    .bind(actions)
    .fetch_all(pool)
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| AuditRecord::from_row(&Cols(r)))
    .collect()
}

#[async_trait]
impl AuditLog for PgStore {
    async fn append_audit(&self, entry: NewAudit) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        insert_audit_on(&mut tx, &entry).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn audit_log(
        &self,
        patient_id: Option<PatientId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        audit_log(&self.pool, patient_id, limit, false).await
    }

    async fn security_events(
        &self,
        patient_id: Option<PatientId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        audit_log(&self.pool, patient_id, limit, true).await
    }

    async fn audit_chain(&self, after_id: i64, limit: u32) -> StoreResult<Vec<ChainedAudit>> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        audit_rows(&mut conn, "WHERE id > $1", after_id, limit).await
    }

    async fn audit_head(&self) -> StoreResult<AuditHead> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        audit_head_on(&mut conn, false).await
    }
}
