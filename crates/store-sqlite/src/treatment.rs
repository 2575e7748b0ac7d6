//! The SQL of limits, prescriptions and patient summaries.

use async_trait::async_trait;
use infusion_protocol::{PatientId, PatientLimits};
use infusion_store::{
    Effects, NewPrescription, PatientSummary, Prescription, StoreResult, Treatment, limits_change,
    next_version,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::SqliteStore;
use crate::accounts::username_of;
use crate::rows::{
    PRESCRIPTION_COLUMNS, db_patient_id, limits_at, patient_id, prescription_at, prescription_row,
    read_mac,
};
use crate::writer::{Cached, WriteCtx, backend};

/// A patient's limits.
pub(crate) fn limits_of(conn: &Connection, pid: i64) -> StoreResult<PatientLimits> {
    conn.row(
        "SELECT min_rate_ul_h, max_rate_ul_h, max_volume_ul FROM limits WHERE patient_id = ?1",
        [pid],
        |r| limits_at(r, 0),
    )
    .map_err(backend)
}

/// A patient's newest prescription version, if one was written.
pub(crate) fn current_prescription(
    conn: &Connection,
    pid: i64,
) -> StoreResult<Option<Prescription>> {
    conn.row(
        &format!(
            "SELECT {PRESCRIPTION_COLUMNS} FROM prescriptions
             WHERE patient_id = ?1 ORDER BY version DESC LIMIT 1"
        ),
        [pid],
        prescription_row,
    )
    .optional()
    .map_err(backend)
}

/// Writes prescription version `version` of `patient`, as a decision
/// allowed it.
pub(crate) fn insert_prescription(
    conn: &Connection,
    patient: PatientId,
    version: u32,
    p: &NewPrescription,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    conn.exec(
        "INSERT INTO prescriptions (patient_id, version, volume_ul, rate_ul_h, state, created_at_ms, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![patient.0 as i64, version, p.volume_ul, p.rate_ul_h, p.state.as_str(), now_ms, actor],
    )
    .map(|_| ())
    .map_err(backend)
}

fn set_limits(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    limits: PatientLimits,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let conn = cx.conn;
    username_of(conn, patient)?;
    let pid = patient.0 as i64;
    let effects = limits_change(
        &limits,
        current_prescription(conn, pid)?.as_ref(),
        patient,
        actor,
        now_ms,
    )?;
    conn.exec(
        "UPDATE limits SET min_rate_ul_h = ?1, max_rate_ul_h = ?2, max_volume_ul = ?3, updated_at_ms = ?4, updated_by = ?5
         WHERE patient_id = ?6",
        params![limits.min_rate_ul_h, limits.max_rate_ul_h, limits.max_volume_ul, now_ms, actor, pid],
    )
    .map_err(backend)?;
    cx.apply(effects)
}

fn set_prescription(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    p: NewPrescription,
    actor: &str,
    now_ms: i64,
) -> StoreResult<u32> {
    let conn = cx.conn;
    username_of(conn, patient)?;
    let pid = patient.0 as i64;
    let current = current_prescription(conn, pid)?.map_or(0, |c| c.version);
    let (version, effects): (u32, Effects) =
        next_version(&p, &limits_of(conn, pid)?, current, patient, actor, now_ms)?;
    insert_prescription(conn, patient, version, &p, actor, now_ms)?;
    cx.apply(effects)?;
    Ok(version)
}

/// Patient summaries in one statement (so that they are one snapshot):
/// account, physician, device, limits and the newest prescription.
/// `filter` is a `WHERE` of our own on `?1`.
fn summaries(
    conn: &Connection,
    filter: &str,
    arg: impl rusqlite::ToSql,
) -> StoreResult<Vec<PatientSummary>> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT p.id, a.username, a.first_name, a.last_name, ph.username, d.mac, d.last_seen_ms,
                    l.min_rate_ul_h, l.max_rate_ul_h, l.max_volume_ul,
                    rx.version, rx.volume_ul, rx.rate_ul_h, rx.state, rx.created_at_ms, rx.created_by,
                    rx.fetched_at_ms
             FROM patients p
             JOIN accounts a ON a.id = p.account_id
             JOIN accounts ph ON ph.id = p.physician_id
             JOIN limits l ON l.patient_id = p.id
             LEFT JOIN devices d ON d.patient_id = p.id AND d.retired_at_ms IS NULL
             LEFT JOIN prescriptions rx ON rx.patient_id = p.id
                  AND rx.version = (SELECT max(version) FROM prescriptions WHERE patient_id = p.id)
             {filter}
             ORDER BY a.last_name, a.first_name, a.username"
        ))
        .map_err(backend)?;
    st.query_map([arg], |r| {
        Ok(PatientSummary {
            patient_id: patient_id(r.get(0)?),
            username: r.get(1)?,
            first_name: r.get(2)?,
            last_name: r.get(3)?,
            physician_username: r.get(4)?,
            device: match r.get::<_, Option<String>>(5)? {
                Some(_) => Some(read_mac(r, 5)?),
                None => None,
            },
            last_contact_ms: r.get(6)?,
            limits: limits_at(r, 7)?,
            prescription: prescription_at(r, 10)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

#[async_trait]
impl Treatment for SqliteStore {
    async fn set_limits(
        &self,
        patient: PatientId,
        limits: PatientLimits,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| set_limits(cx, patient, limits, &actor, now_ms))
            .await
    }

    async fn set_prescription(
        &self,
        patient: PatientId,
        prescription: NewPrescription,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u32> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| set_prescription(cx, patient, prescription, &actor, now_ms))
            .await
    }

    async fn patient(&self, patient: PatientId) -> StoreResult<PatientSummary> {
        self.readers
            .read(move |conn| {
                summaries(
                    conn,
                    "WHERE p.id = ?1",
                    db_patient_id(patient).unwrap_or(-1),
                )?
                .pop()
                .ok_or_else(|| {
                    infusion_store::StoreError::NotFound(format!("no patient {}", patient.0))
                })
            })
            .await
    }

    async fn patients_of(&self, physician_username: &str) -> StoreResult<Vec<PatientSummary>> {
        let user = physician_username.to_owned();
        self.readers
            .read(move |conn| summaries(conn, "WHERE ph.username = ?1", user))
            .await
    }

    async fn prescriptions(&self, patient: PatientId) -> StoreResult<Vec<Prescription>> {
        let Some(pid) = db_patient_id(patient) else {
            return Ok(Vec::new());
        };
        self.readers
            .read(move |conn| {
                let mut st = conn
                    .prepare_cached(&format!(
                        "SELECT {PRESCRIPTION_COLUMNS} FROM prescriptions
                         WHERE patient_id = ?1 ORDER BY version"
                    ))
                    .map_err(backend)?;
                st.query_map([pid], prescription_row)
                    .and_then(|rows| rows.collect())
                    .map_err(backend)
            })
            .await
    }
}
