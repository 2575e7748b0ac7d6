//! The SQL of limits, prescriptions and patient summaries.

use std::sync::LazyLock;

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    Confirmation, Effects, Limits, NewPrescription, PatientSummary, Prescription, Standing,
    StoreError, StoreResult, Treatment, limits_change, next_version, note_set,
};
use rusqlite::{Connection, params};

use crate::SqliteStore;
use crate::accounts::username_of;
use crate::drugs::drug_for;
use crate::rows::{all, one, stored_patient};
use crate::writer::{Cached, WriteCtx, backend};

/// A patient's limits.
pub(crate) fn limits_of(conn: &Connection, pid: i64) -> StoreResult<Limits> {
    // On every login: the text is built once.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM limits l WHERE l.patient_id = ?1",
            Limits::COLUMNS
        )
    });
    one(conn, &SQL, [pid], |r| Limits::at(r, 0))?
        .ok_or_else(|| StoreError::NotFound(format!("no limits for patient {pid}")))
}

/// A patient's newest prescription version, if one was written.
pub(crate) fn current_prescription(
    conn: &Connection,
    pid: i64,
) -> StoreResult<Option<Prescription>> {
    // On every index poll: the text is built once, not per request.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM prescriptions WHERE patient_id = ?1 ORDER BY version DESC LIMIT 1",
            Prescription::COLUMNS
        )
    });
    one(conn, &SQL, [pid], |r| Prescription::from_row(r))
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
        "INSERT INTO prescriptions (patient_id, version, volume_ul, rate_ul_h, state, created_at_ms, created_by, drug_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![patient.0 as i64, version, p.volume_ul, p.rate_ul_h, p.state.as_str(), now_ms, actor, p.drug.map(|d| d.0)],
    )
    .map(|_| ())
    .map_err(backend)
}

fn set_limits(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    limits: Limits,
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
        "UPDATE limits SET min_rate_ul_h = ?1, max_rate_ul_h = ?2, max_volume_ul = ?3, updated_at_ms = ?4, updated_by = ?5,
                soft_min_rate_ul_h = ?7, soft_max_rate_ul_h = ?8, soft_max_volume_ul = ?9, is_set = 1
         WHERE patient_id = ?6",
        params![
            limits.hard.min_rate_ul_h,
            limits.hard.max_rate_ul_h,
            limits.hard.max_volume_ul,
            now_ms,
            actor,
            pid,
            limits.soft.min_rate_ul_h,
            limits.soft.max_rate_ul_h,
            limits.soft.max_volume_ul
        ],
    )
    .map_err(backend)?;
    cx.apply(effects)
}

fn prescribe(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    p: NewPrescription,
    confirmation: &Confirmation,
    actor: &str,
    now_ms: i64,
) -> StoreResult<u32> {
    let conn = cx.conn;
    username_of(conn, patient)?;
    let pid = patient.0 as i64;
    let current = current_prescription(conn, pid)?;
    let limits = limits_of(conn, pid)?;
    let drug = drug_for(conn, pid, p.drug)?;
    let read = Standing {
        limits: &limits,
        current: current.as_ref(),
        drug: drug.as_ref(),
    };
    let (version, effects): (u32, Effects) =
        next_version(&p, read, confirmation, patient, actor, now_ms)?;
    insert_prescription(conn, patient, version, &p, actor, now_ms)?;
    cx.apply(effects)?;
    Ok(version)
}

/// Patient summaries in one statement (so that they are one snapshot):
/// account, physician, device, limits and the newest prescription.
/// `filter` is a `WHERE` of our own on `?1`.
pub(crate) fn summaries(
    conn: &Connection,
    filter: &str,
    arg: impl rusqlite::ToSql,
) -> StoreResult<Vec<PatientSummary>> {
    let sql = format!(
        "SELECT {} FROM patients p
         JOIN accounts a ON a.id = p.account_id
         JOIN accounts ph ON ph.id = p.physician_id
         JOIN limits l ON l.patient_id = p.id
         LEFT JOIN devices d ON d.patient_id = p.id AND d.retired_at_ms IS NULL
         LEFT JOIN prescriptions rx ON rx.patient_id = p.id
              AND rx.version = (SELECT max(version) FROM prescriptions WHERE patient_id = p.id)
         {filter}
         ORDER BY a.last_name, a.first_name, a.username",
        PatientSummary::COLUMNS
    );
    all(conn, &sql, [arg], |r| PatientSummary::from_row(r))
}

#[async_trait]
impl Treatment for SqliteStore {
    async fn set_limits(
        &self,
        patient: PatientId,
        limits: Limits,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| set_limits(cx, patient, limits, &actor, now_ms))
            .await
    }

    async fn prescribe(
        &self,
        patient: PatientId,
        prescription: NewPrescription,
        confirmation: &Confirmation,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u32> {
        let (actor, confirmation) = (actor.to_owned(), confirmation.clone());
        self.writer
            .write(move |cx| prescribe(cx, patient, prescription, &confirmation, &actor, now_ms))
            .await
    }

    async fn set_patient_note(
        &self,
        patient: PatientId,
        text: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (text, actor) = (text.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| {
                username_of(cx.conn, patient)?;
                let (note, effects) = note_set(&text, patient, &actor, now_ms)?;
                let at = note.as_ref().map(|_| now_ms);
                cx.conn
                    .exec(
                        "UPDATE patients SET note = ?2, note_set_at_ms = ?3 WHERE id = ?1",
                        params![stored_patient(patient).unwrap_or(-1), note, at],
                    )
                    .map_err(backend)?;
                cx.apply(effects)
            })
            .await
    }

    async fn patient(&self, patient: PatientId) -> StoreResult<PatientSummary> {
        self.readers
            .read(move |conn| {
                summaries(
                    conn,
                    "WHERE p.id = ?1",
                    stored_patient(patient).unwrap_or(-1),
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
        let Some(pid) = stored_patient(patient) else {
            return Ok(Vec::new());
        };
        self.readers
            .read(move |conn| {
                let sql = format!(
                    "SELECT {} FROM prescriptions WHERE patient_id = ?1 ORDER BY version",
                    Prescription::COLUMNS
                );
                all(conn, &sql, [pid], |r| Prescription::from_row(r))
            })
            .await
    }
}
