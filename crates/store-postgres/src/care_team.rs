//! The SQL of wards, nurses and caregivers.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    AccountId, AccountRecord, CareTeam, CaregiverGrant, InstitutionRow, NewCaregiver, NewNurse,
    PatientSummary, StoreError, StoreResult, WardFound, WardId, WardOverview, WardPatient,
    caregiver_granted, caregiver_revoked, nurse_created, patient_at, ward_assigned, ward_created,
};
use sqlx::PgConnection;

use crate::accounts::{taken, username_taken};
use crate::audit::apply;
use crate::rows::{Cols, stored_patient};
use crate::treatment::summaries_sql;
use crate::{PgStore, db_error};

async fn ward_named(conn: &mut PgConnection, name: &str) -> StoreResult<Option<WardFound>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM wards w JOIN institutions i ON i.id = w.institution_id
         WHERE lower(w.name) = lower($1)",
        WardFound::COLUMNS
    )))
    .bind(name)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?
    .as_ref()
    .map(|r| WardFound::from_row(&Cols(r)))
    .transpose()
}

async fn grants(
    conn: &mut PgConnection,
    filter: &str,
    arg: i64,
) -> StoreResult<Vec<CaregiverGrant>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM caregivers g JOIN accounts a ON a.id = g.account_id {filter}
         ORDER BY g.granted_at_ms DESC, g.id DESC",
        CaregiverGrant::COLUMNS
    )))
    .bind(arg)
    .fetch_all(conn)
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| CaregiverGrant::from_row(&Cols(r)))
    .collect()
}

/// A ward name another instance took between the check and the insert.
fn ward_taken(name: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| match db_error(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("there is a ward named {name:?} already"))
        }
        other => other,
    }
}

#[async_trait]
impl CareTeam for PgStore {
    async fn create_ward(
        &self,
        name: &str,
        institution: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<WardId> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let institutions: Vec<InstitutionRow> =
            sqlx::query_as("SELECT id, name FROM institutions ORDER BY id")
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
        let is_taken = ward_named(&mut tx, name).await?.is_some();
        let (institution, effects) =
            ward_created(name, institution, &institutions, is_taken, actor, now_ms)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO wards (institution_id, name, created_at_ms) VALUES ($1, $2, $3)
             RETURNING id",
        )
        .bind(institution)
        .bind(name)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(ward_taken(name))?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(WardId(id))
    }

    async fn create_nurse(
        &self,
        new: NewNurse,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let ward = ward_named(&mut tx, &new.ward).await?;
        let is_taken = username_taken(&mut tx, &new.username).await?;
        let effects = nurse_created(&new, ward.as_ref(), is_taken, actor, now_ms)?;
        let Some(ward) = ward else {
            return Err(StoreError::NotFound(format!(
                "no ward named {:?}",
                new.ward
            )));
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (username, password_hash, role, first_name, last_name,
                                   institution_id, created_at_ms, must_change_password)
             VALUES ($1, $2, 'nurse', $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&new.username)
        .bind(&new.password_hash)
        .bind(&new.first_name)
        .bind(&new.last_name)
        .bind(ward.institution)
        .bind(now_ms)
        .bind(new.must_change_password)
        .fetch_one(&mut *tx)
        .await
        .map_err(taken(&new.username))?;
        sqlx::query("INSERT INTO nurses (account_id, ward_id) VALUES ($1, $2)")
            .bind(id)
            .bind(ward.id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(AccountId(id))
    }

    async fn assign_ward(
        &self,
        patient: PatientId,
        ward: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let pid = stored_patient(patient).unwrap_or(-1);
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let p = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM patients p JOIN accounts a ON a.id = p.account_id
             WHERE p.id = $1 FOR UPDATE OF p",
            WardPatient::COLUMNS
        )))
        .bind(pid)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .as_ref()
        .map(|r| WardPatient::from_row(patient, &Cols(r)))
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("no patient {}", patient.0)))?;
        let found = ward_named(&mut tx, ward).await?;
        let effects = ward_assigned(&p, found.as_ref(), ward, actor, now_ms)?;
        let Some(found) = found else {
            return Err(StoreError::NotFound(format!("no ward named {ward:?}")));
        };
        sqlx::query("UPDATE patients SET ward_id = $2 WHERE id = $1")
            .bind(pid)
            .bind(found.id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn ward_patients(&self, ward: WardId) -> StoreResult<Vec<PatientSummary>> {
        sqlx::query(sqlx::AssertSqlSafe(summaries_sql("WHERE p.ward_id = $1")))
            .bind(ward.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| PatientSummary::from_row(&Cols(r)))
            .collect()
    }

    async fn wards(&self, institution: &str) -> StoreResult<Vec<WardOverview>> {
        sqlx::query(sqlx::AssertSqlSafe(WardOverview::QUERY.replace('?', "$")))
            .bind(institution)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| WardOverview::from_row(&Cols(r)))
            .collect()
    }

    async fn grant_caregiver(
        &self,
        new: NewCaregiver,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        let pid = stored_patient(new.patient).unwrap_or(-1);
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // The patient's row lock orders grants to one patient.
        let (patient_username, institution): (String, Option<i64>) = sqlx::query_as(
            "SELECT a.username, a.institution_id FROM patients p
             JOIN accounts a ON a.id = p.account_id WHERE p.id = $1 FOR UPDATE OF p",
        )
        .bind(pid)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .ok_or_else(|| StoreError::NotFound(format!("no patient {}", new.patient.0)))?;
        let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM accounts a WHERE lower(a.username) = lower($1)",
            AccountRecord::COLUMNS
        )))
        .bind(&new.username)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .as_ref()
        .map(|r| AccountRecord::at(&Cols(r), 0))
        .transpose()?;
        let current = match &existing {
            Some(a) => grants(&mut tx, "WHERE g.account_id = $1", a.account_id.0)
                .await?
                .into_iter()
                .find(|g| g.patient == new.patient && g.active(now_ms)),
            None => None,
        };
        let effects = caregiver_granted(
            &new,
            existing.as_ref(),
            current.as_ref(),
            &patient_username,
            actor,
            now_ms,
        )?;
        let account = match (existing, &new.password_hash) {
            (Some(a), _) => a.account_id.0,
            (None, hash) => sqlx::query_scalar(
                "INSERT INTO accounts (username, password_hash, role, first_name, last_name,
                                       institution_id, created_at_ms, must_change_password)
                 VALUES ($1, $2, 'caregiver', $3, $4, $5, $6, TRUE) RETURNING id",
            )
            .bind(&new.username)
            .bind(hash.as_deref().unwrap_or_default())
            .bind(&new.first_name)
            .bind(&new.last_name)
            .bind(institution)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await
            .map_err(taken(&new.username))?,
        };
        sqlx::query(
            "INSERT INTO caregivers (account_id, patient_id, granted_by, granted_at_ms, ends_at_ms)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(account)
        .bind(pid)
        .bind(actor)
        .bind(now_ms)
        .bind(new.ends_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(AccountId(account))
    }

    async fn revoke_caregiver(
        &self,
        patient: PatientId,
        grant: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let pid = stored_patient(patient).unwrap_or(-1);
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query("SELECT 1 FROM patients WHERE id = $1 FOR UPDATE")
            .bind(pid)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let found = grants(&mut tx, "WHERE g.id = $1", grant)
            .await?
            .into_iter()
            .find(|g| g.patient == patient);
        let effects = caregiver_revoked(found.as_ref(), patient, actor, now_ms)?;
        sqlx::query("UPDATE caregivers SET revoked_at_ms = $3 WHERE id = $1 AND patient_id = $2")
            .bind(grant)
            .bind(pid)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn caregivers(&self, patient: PatientId) -> StoreResult<Vec<CaregiverGrant>> {
        let Some(pid) = stored_patient(patient) else {
            return Ok(Vec::new());
        };
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        grants(&mut conn, "WHERE g.patient_id = $1", pid).await
    }

    async fn caregiver_patients(
        &self,
        account: AccountId,
        now_ms: i64,
    ) -> StoreResult<Vec<PatientId>> {
        sqlx::query(
            "SELECT patient_id FROM caregivers
             WHERE account_id = $1 AND revoked_at_ms IS NULL AND ends_at_ms > $2
             ORDER BY patient_id",
        )
        .bind(account.0)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| patient_at(&Cols(r), 0))
        .collect()
    }
}
