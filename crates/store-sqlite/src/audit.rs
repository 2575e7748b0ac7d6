//! The audit log's SQL: the chained insert every write ends with, the
//! one-time sealing of rows older than the chain, and the reads.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::audit_chain::chain_hash;
use infusion_store::{
    AuditAction, AuditHead, AuditLog, AuditRecord, ChainedAudit, Columns, NewAudit, StoreError,
    StoreResult, patient_filter,
};
use rusqlite::{Connection, params};

use crate::SqliteStore;
use crate::rows::{all, stored_patient};
use crate::writer::{Cached, backend};

/// The audit chain's head.
pub(crate) fn audit_head(conn: &Connection) -> StoreResult<AuditHead> {
    conn.row(
        "SELECT rows, last_id, hash FROM audit_head WHERE id = 1",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        },
    )
    .map_err(backend)
    .and_then(|(rows, last_id, hash)| {
        Ok(AuditHead {
            rows: rows as u64,
            last_id,
            hash: hash
                .try_into()
                .map_err(|_| StoreError::Backend("audit head hash is not 32 bytes".into()))?,
        })
    })
}

/// Appends one audit entry to the hash chain: its hash over the head's
/// hash and its fields, and the head moved on, in the caller's
/// transaction (on the single writer, so no other insert interleaves).
pub(crate) fn insert_audit(conn: &Connection, e: &NewAudit) -> StoreResult<()> {
    let e = &*e.bounded();
    let head = audit_head(conn)?;
    let hash = chain_hash(&head.hash, e);
    conn.prepare_cached(
        "INSERT INTO audit (at_ms, actor, action, patient_id, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut st| {
        st.execute(params![
            e.at_ms,
            e.actor,
            e.action.as_str(),
            e.patient_id.and_then(stored_patient),
            e.detail,
            &head.hash[..],
            &hash[..],
        ])
    })
    .and_then(|_| {
        conn.exec(
            "UPDATE audit_head SET rows = rows + 1, last_id = ?1, hash = ?2 WHERE id = 1",
            params![conn.last_insert_rowid(), &hash[..]],
        )
    })
    .map(|_| ())
    .map_err(backend)
}

/// Seals the rows written before the chain existed into it, in id order,
/// once: only while the head has never moved, so that a row slipped in
/// around the application later is reported by verification, never
/// sealed. Runs at start-up after the migrations.
pub(crate) fn seal_legacy_audit(conn: &Connection) -> StoreResult<u64> {
    let head = audit_head(conn)?;
    if head.rows != 0 || head.last_id != 0 {
        return Ok(0);
    }
    let rows = audit_rows(conn, "WHERE hash IS NULL ORDER BY id", [])?;
    let mut prev = head.hash;
    for r in &rows {
        let hash = chain_hash(&prev, &r.entry);
        conn.exec(
            "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE id = ?3",
            params![&prev[..], &hash[..], r.id],
        )
        .and_then(|_| {
            conn.exec(
                "UPDATE audit_head SET rows = rows + 1, last_id = ?1, hash = ?2 WHERE id = 1",
                params![r.id, &hash[..]],
            )
        })
        .map_err(backend)?;
        prev = hash;
    }
    Ok(rows.len() as u64)
}

/// Audit rows with their chain columns, selected by `tail` (a `WHERE`
/// and `ORDER BY` of our own).
fn audit_rows(
    conn: &Connection,
    tail: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<ChainedAudit>> {
    let sql = format!(
        "SELECT {}, prev_hash, hash FROM audit {tail}",
        AuditRecord::COLUMNS
    );
    all(conn, &sql, params, |r| {
        let AuditRecord { id, entry } = AuditRecord::from_row(r)?;
        Ok(ChainedAudit {
            id,
            entry,
            // A hash of another length is a row edited around the
            // application: the verifier names it, it does not fail on it.
            prev_hash: r.bytes(6)?.and_then(|v| v.try_into().ok()),
            hash: r.bytes(7)?.and_then(|v| v.try_into().ok()),
        })
    })
}

/// The newest audit entries (of one patient, or all), newest first; with
/// `security_only`, only the [`AuditAction::SECURITY`] actions.
pub(crate) fn audit_log(
    conn: &Connection,
    patient: Option<PatientId>,
    limit: u32,
    security_only: bool,
) -> StoreResult<Vec<AuditRecord>> {
    let Some(pid) = patient_filter(patient) else {
        return Ok(Vec::new());
    };
    // The action names are our own constants, never input.
    let actions = if security_only {
        let names: Vec<String> = AuditAction::SECURITY
            .iter()
            .map(|a| format!("'{}'", a.as_str()))
            .collect();
        format!("AND action IN ({})", names.join(", "))
    } else {
        String::new()
    };
    // Two shapes, so that a patient's entries come through its index.
    let patient = if pid.is_some() {
        "patient_id = ?1"
    } else {
        "?1 IS NULL"
    };
    let sql = format!(
        "SELECT {} FROM audit WHERE {patient} {actions} ORDER BY id DESC LIMIT ?2",
        AuditRecord::COLUMNS
    );
    all(conn, &sql, params![pid, limit], |r| {
        AuditRecord::from_row(r)
    })
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn append_audit(&self, entry: NewAudit) -> StoreResult<()> {
        self.writer
            .write(move |cx| insert_audit(cx.conn, &entry))
            .await
    }

    async fn audit_log(
        &self,
        patient_id: Option<PatientId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.readers
            .read(move |conn| audit_log(conn, patient_id, limit, false))
            .await
    }

    async fn security_events(
        &self,
        patient_id: Option<PatientId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.readers
            .read(move |conn| audit_log(conn, patient_id, limit, true))
            .await
    }

    async fn audit_chain(&self, after_id: i64, limit: u32) -> StoreResult<Vec<ChainedAudit>> {
        self.readers
            .read(move |conn| {
                audit_rows(
                    conn,
                    "WHERE id > ?1 ORDER BY id LIMIT ?2",
                    params![after_id, limit],
                )
            })
            .await
    }

    async fn audit_head(&self) -> StoreResult<AuditHead> {
        self.readers.read(audit_head).await
    }
}
