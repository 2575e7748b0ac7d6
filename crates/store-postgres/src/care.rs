//! The SQL of unbinding a pump and moving a patient to another physician.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    Care, MovingPatient, PhysicianFound, StoreError, StoreResult, moved, unbound,
};

use crate::audit::apply;
use crate::rows::stored_patient;
use crate::{PgStore, db_error};

#[async_trait]
impl Care for PgStore {
    async fn unbind_device(&self, patient: PatientId, actor: &str, now_ms: i64) -> StoreResult<()> {
        let pid = stored_patient(patient).unwrap_or(-1);
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let username: String = sqlx::query_scalar(
            "SELECT a.username FROM patients p JOIN accounts a ON a.id = p.account_id
             WHERE p.id = $1 FOR UPDATE OF p",
        )
        .bind(pid)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .ok_or_else(|| StoreError::NotFound(format!("no patient {}", patient.0)))?;
        let mac: Option<String> = sqlx::query_scalar(
            "SELECT mac FROM devices WHERE patient_id = $1 AND retired_at_ms IS NULL FOR UPDATE",
        )
        .bind(pid)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let effects = unbound(mac.as_deref(), patient, &username, actor, now_ms)?;
        sqlx::query(
            "UPDATE devices SET retired_at_ms = $2 WHERE patient_id = $1 AND retired_at_ms IS NULL",
        )
        .bind(pid)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn move_patient(
        &self,
        patient: PatientId,
        physician: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let pid = stored_patient(patient).unwrap_or(-1);
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let row: (String, Option<i64>, String) = sqlx::query_as(
            "SELECT a.username, a.institution_id, ph.username FROM patients p
             JOIN accounts a ON a.id = p.account_id JOIN accounts ph ON ph.id = p.physician_id
             WHERE p.id = $1 FOR UPDATE OF p",
        )
        .bind(pid)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .ok_or_else(|| StoreError::NotFound(format!("no patient {}", patient.0)))?;
        let to: Option<(i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT id, username, institution_id FROM accounts
             WHERE username = $1 AND role = 'physician'",
        )
        .bind(physician)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let p = MovingPatient::from_row(patient, row);
        let found = to.map(PhysicianFound::from_row);
        let (to, effects) = moved(&p, found.as_ref(), physician, actor, now_ms)?;
        sqlx::query("UPDATE patients SET physician_id = $2 WHERE id = $1")
            .bind(pid)
            .bind(to.0)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }
}
