//! The SQL of limits, prescriptions and patient summaries.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    Confirmation, Limits, NewPrescription, PatientSummary, Prescription, Standing, StoreError,
    StoreResult, Treatment, limits_change, next_version, note_set,
};
use sqlx::PgConnection;

use crate::accounts::lock_patient;
use crate::audit::apply;
use crate::drugs::drug_for;
use crate::rows::{Cols, stored_patient};
use crate::{PgStore, db_error};

/// A patient's limits.
pub(crate) async fn limits_of(conn: &mut PgConnection, pid: i64) -> StoreResult<Limits> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM limits l WHERE l.patient_id = $1",
        Limits::COLUMNS
    )))
    .bind(pid)
    .fetch_one(conn)
    .await
    .map_err(db_error)?;
    Limits::at(&Cols(&row), 0)
}

/// A patient's newest prescription version, if one was written.
pub(crate) async fn current_prescription(
    conn: &mut PgConnection,
    pid: i64,
) -> StoreResult<Option<Prescription>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM prescriptions WHERE patient_id = $1 ORDER BY version DESC LIMIT 1",
        Prescription::COLUMNS
    )))
    .bind(pid)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?
    .as_ref()
    .map(|r| Prescription::from_row(&Cols(r)))
    .transpose()
}

/// Writes prescription version `version` of `patient`, as a decision
/// allowed it.
pub(crate) async fn insert_prescription(
    conn: &mut PgConnection,
    patient: PatientId,
    version: u32,
    p: &NewPrescription,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO prescriptions (patient_id, version, volume_ul, rate_ul_h, state, created_at_ms, created_by, drug_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(patient.0 as i64)
    .bind(i64::from(version))
    .bind(i64::from(p.volume_ul))
    .bind(i64::from(p.rate_ul_h))
    .bind(p.state.as_str())
    .bind(now_ms)
    .bind(actor)
    .bind(p.drug.map(|d| d.0))
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(db_error)
}

/// Patient summaries in one statement (so that they are one snapshot):
/// account, physician, device, limits and the newest prescription.
/// `filter` is a `WHERE` of our own on `$1`.
pub(crate) fn summaries_sql(filter: &str) -> String {
    format!(
        "SELECT {} FROM patients p
         JOIN accounts a ON a.id = p.account_id
         JOIN accounts ph ON ph.id = p.physician_id
         JOIN limits l ON l.patient_id = p.id
         LEFT JOIN devices d ON d.patient_id = p.id AND d.retired_at_ms IS NULL
         LEFT JOIN LATERAL (
             SELECT {} FROM prescriptions
             WHERE patient_id = p.id ORDER BY version DESC LIMIT 1
         ) rx ON TRUE
         {filter}
         ORDER BY a.last_name, a.first_name, a.username",
        PatientSummary::COLUMNS,
        Prescription::COLUMNS
    )
}

#[async_trait]
impl Treatment for PgStore {
    async fn set_limits(
        &self,
        patient: PatientId,
        limits: Limits,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        lock_patient(&mut tx, patient).await?;
        let pid = patient.0 as i64;
        let current = current_prescription(&mut tx, pid).await?;
        let effects = limits_change(&limits, current.as_ref(), patient, actor, now_ms)?;
        sqlx::query(
            "UPDATE limits SET min_rate_ul_h = $1, max_rate_ul_h = $2, max_volume_ul = $3, updated_at_ms = $4, updated_by = $5,
                    soft_min_rate_ul_h = $7, soft_max_rate_ul_h = $8, soft_max_volume_ul = $9, is_set = TRUE
             WHERE patient_id = $6",
        )
        .bind(i64::from(limits.hard.min_rate_ul_h))
        .bind(i64::from(limits.hard.max_rate_ul_h))
        .bind(i64::from(limits.hard.max_volume_ul))
        .bind(now_ms)
        .bind(actor)
        .bind(pid)
        .bind(i64::from(limits.soft.min_rate_ul_h))
        .bind(i64::from(limits.soft.max_rate_ul_h))
        .bind(i64::from(limits.soft.max_volume_ul))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn prescribe(
        &self,
        patient: PatientId,
        p: NewPrescription,
        confirmation: &Confirmation,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u32> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        lock_patient(&mut tx, patient).await?;
        let pid = patient.0 as i64;
        let limits = limits_of(&mut tx, pid).await?;
        let current = current_prescription(&mut tx, pid).await?;
        let drug = drug_for(&mut tx, pid, p.drug).await?;
        let read = Standing {
            limits: &limits,
            current: current.as_ref(),
            drug: drug.as_ref(),
        };
        let (version, effects) = next_version(&p, read, confirmation, patient, actor, now_ms)?;
        insert_prescription(&mut tx, patient, version, &p, actor, now_ms).await?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(version)
    }

    async fn set_patient_note(
        &self,
        patient: PatientId,
        text: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (note, effects) = note_set(text, patient, actor, now_ms)?;
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let found = sqlx::query("UPDATE patients SET note = $2, note_set_at_ms = $3 WHERE id = $1")
            .bind(stored_patient(patient).unwrap_or(-1))
            .bind(&note)
            .bind(note.as_ref().map(|_| now_ms))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        if found == 0 {
            return Err(StoreError::NotFound(format!("no patient {}", patient.0)));
        }
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn patient(&self, patient: PatientId) -> StoreResult<PatientSummary> {
        sqlx::query(sqlx::AssertSqlSafe(summaries_sql("WHERE p.id = $1")))
            .bind(stored_patient(patient).unwrap_or(-1))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .as_ref()
            .map(|r| PatientSummary::from_row(&Cols(r)))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("no patient {}", patient.0)))
    }

    async fn patients_of(&self, physician_username: &str) -> StoreResult<Vec<PatientSummary>> {
        sqlx::query(sqlx::AssertSqlSafe(summaries_sql("WHERE ph.username = $1")))
            .bind(physician_username)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| PatientSummary::from_row(&Cols(r)))
            .collect()
    }

    async fn prescriptions(&self, patient: PatientId) -> StoreResult<Vec<Prescription>> {
        let Some(pid) = stored_patient(patient) else {
            return Ok(Vec::new());
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM prescriptions WHERE patient_id = $1 ORDER BY version",
            Prescription::COLUMNS
        )))
        .bind(pid)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| Prescription::from_row(&Cols(r)))
        .collect()
    }
}
