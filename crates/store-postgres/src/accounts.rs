//! The SQL of accounts.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    AccountId, AccountOverview, AccountRecord, Accounts, NewPatient, NewPhysician, Role,
    StoreError, StoreResult, TokenHash, new_patient, new_staff, patient_created,
};
use sqlx::PgConnection;

use crate::audit::apply;
use crate::rows::{Cols, get, patient_id, stored_patient};
use crate::{PgStore, db_error, lifecycle};

pub(crate) async fn username_taken(conn: &mut PgConnection, username: &str) -> StoreResult<bool> {
    sqlx::query("SELECT 1 FROM accounts WHERE lower(username) = lower($1)")
        .bind(username)
        .fetch_optional(conn)
        .await
        .map(|r| r.is_some())
        .map_err(db_error)
}

/// A unique violation on insert: another instance took the username
/// between the check and the insert.
pub(crate) fn taken(username: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| match db_error(e) {
        StoreError::Conflict(_) => StoreError::username_taken(username),
        other => other,
    }
}

impl PgStore {
    async fn create_staff(
        &self,
        new: NewPhysician,
        role: Role,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let is_taken = username_taken(&mut tx, &new.username).await?;
        let effects = new_staff(&new, role, is_taken, actor, now_ms)?;
        sqlx::query(
            "INSERT INTO institutions (name, created_at_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&new.institution)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (username, password_hash, role, first_name, last_name, institution_id, created_at_ms,
                                   must_change_password)
             SELECT $1, $2, $7, $3, $4, id, $5, $8 FROM institutions WHERE name = $6
             RETURNING id",
        )
        .bind(&new.username)
        .bind(&new.password_hash)
        .bind(&new.first_name)
        .bind(&new.last_name)
        .bind(now_ms)
        .bind(&new.institution)
        .bind(role.as_str())
        .bind(new.must_change_password)
        .fetch_one(&mut *tx)
        .await
        .map_err(taken(&new.username))?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(AccountId(id))
    }
}

/// The patient record of `username` (`NotFound` unless a patient's).
pub(crate) async fn patient_by_username(
    conn: &mut PgConnection,
    username: &str,
) -> StoreResult<PatientId> {
    sqlx::query_scalar::<_, i64>(
        "SELECT p.id FROM patients p JOIN accounts a ON a.id = p.account_id WHERE a.username = $1",
    )
    .bind(username)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?
    .map(patient_id)
    .ok_or_else(|| StoreError::no_patient(username))
}

/// The username of patient `patient`, its record locked for the rest of
/// the transaction so that changes to one patient's limits, prescription,
/// device, alarms and suggestions are serialized across instances.
pub(crate) async fn lock_patient(
    conn: &mut PgConnection,
    patient: PatientId,
) -> StoreResult<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT a.username FROM patients p JOIN accounts a ON a.id = p.account_id
         WHERE p.id = $1 FOR UPDATE OF p",
    )
    .bind(stored_patient(patient).unwrap_or(-1))
    .fetch_optional(conn)
    .await
    .map_err(db_error)?
    .ok_or_else(|| StoreError::NotFound(format!("no patient {}", patient.0)))
}

#[async_trait]
impl Accounts for PgStore {
    async fn create_physician(
        &self,
        new: NewPhysician,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        self.create_staff(new, Role::Physician, actor, now_ms).await
    }

    async fn create_admin(
        &self,
        new: NewPhysician,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        self.create_staff(new, Role::Admin, actor, now_ms).await
    }

    async fn create_patient(
        &self,
        new: NewPatient,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<PatientId> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let physician = sqlx::query(
            "SELECT id, institution_id FROM accounts WHERE username = $1 AND role = 'physician'",
        )
        .bind(&new.physician_username)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let is_taken = username_taken(&mut tx, &new.username).await?;
        let limits = new_patient(&new, physician.is_some(), is_taken, now_ms)?;
        let Some(physician) = physician else {
            return Err(StoreError::no_physician(&new.physician_username));
        };
        let physician_id: i64 = get(&physician, 0)?;
        let institution_id: Option<i64> = get(&physician, 1)?;
        let pid: i64 = sqlx::query_scalar(
            "WITH account AS (
                 INSERT INTO accounts (username, password_hash, role, first_name, last_name, institution_id, created_at_ms)
                 VALUES ($1, $2, 'patient', $3, $4, $5, $6) RETURNING id
             ), patient AS (
                 INSERT INTO patients (account_id, physician_id, record_number, birth_date)
                 SELECT id, $7, $12, $13 FROM account RETURNING id
             )
             INSERT INTO limits (patient_id, min_rate_ul_h, max_rate_ul_h, max_volume_ul, updated_at_ms, updated_by,
                                 soft_min_rate_ul_h, soft_max_rate_ul_h, soft_max_volume_ul, is_set)
             SELECT id, $8, $9, $10, $6, $11, $8, $9, $10, FALSE FROM patient
             RETURNING patient_id",
        )
        .bind(&new.username)
        .bind(&new.password_hash)
        .bind(&new.first_name)
        .bind(&new.last_name)
        .bind(institution_id)
        .bind(now_ms)
        .bind(physician_id)
        .bind(i64::from(limits.min_rate_ul_h))
        .bind(i64::from(limits.max_rate_ul_h))
        .bind(i64::from(limits.max_volume_ul))
        .bind(actor)
        .bind(&new.identifiers.record_number)
        .bind(&new.identifiers.birth_date)
        .fetch_one(&mut *tx)
        .await
        .map_err(taken(&new.username))?;
        let patient = patient_id(pid);
        apply(&mut tx, patient_created(patient, &new, actor, now_ms)).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(patient)
    }

    async fn accounts(&self) -> StoreResult<Vec<AccountOverview>> {
        sqlx::query(AccountOverview::QUERY)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| AccountOverview::from_row(&Cols(r)))
            .collect()
    }

    async fn account(&self, username: &str) -> StoreResult<Option<AccountRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM accounts a WHERE a.username = $1",
            AccountRecord::COLUMNS
        )))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .as_ref()
        .map(|r| AccountRecord::at(&Cols(r), 0))
        .transpose()
    }

    async fn patient_id(&self, username: &str) -> StoreResult<PatientId> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        patient_by_username(&mut conn, username).await
    }

    async fn username_of(&self, patient: PatientId) -> StoreResult<String> {
        sqlx::query_scalar(
            "SELECT a.username FROM patients p JOIN accounts a ON a.id = p.account_id WHERE p.id = $1",
        )
        .bind(stored_patient(patient).unwrap_or(-1))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .ok_or_else(|| StoreError::NotFound(format!("no patient {}", patient.0)))
    }

    async fn change_password(
        &self,
        account: AccountId,
        password_hash: String,
        keep: Option<TokenHash>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        lifecycle::change_password(self, account, &password_hash, keep, actor, now_ms).await
    }

    async fn set_account_enabled(
        &self,
        username: &str,
        enabled: bool,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        lifecycle::set_enabled(self, username, enabled, actor, now_ms).await
    }

    async fn reset_password(
        &self,
        username: &str,
        password_hash: String,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        lifecycle::reset_password(self, username, &password_hash, actor, now_ms).await
    }
}
