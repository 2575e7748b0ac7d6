//! The SQL of accounts.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    AccountId, AccountOverview, AccountRecord, Accounts, NewPatient, NewPhysician, Role,
    StoreError, StoreResult, TokenHash, new_patient, new_staff, patient_created,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::rows::{all, one, patient_id, stored_patient};
use crate::writer::{Cached, WriteCtx, backend};
use crate::{SqliteStore, lifecycle};

pub(crate) fn username_taken(conn: &Connection, username: &str) -> StoreResult<bool> {
    conn.row(
        "SELECT 1 FROM accounts WHERE lower(username) = lower(?1)",
        [username],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
    .map_err(backend)
}

fn create_staff(
    cx: &mut WriteCtx<'_>,
    new: NewPhysician,
    role: Role,
    actor: &str,
    now_ms: i64,
) -> StoreResult<AccountId> {
    let conn = cx.conn;
    let effects = new_staff(
        &new,
        role,
        username_taken(conn, &new.username)?,
        actor,
        now_ms,
    )?;
    conn.exec(
        "INSERT INTO institutions (name, created_at_ms) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
        params![new.institution, now_ms],
    )
    .map_err(backend)?;
    conn.exec(
        "INSERT INTO accounts (username, password_hash, role, first_name, last_name, institution_id, created_at_ms,
                               must_change_password)
         SELECT ?1, ?2, ?7, ?3, ?4, id, ?5, ?8 FROM institutions WHERE name = ?6",
        params![new.username, new.password_hash, new.first_name, new.last_name, now_ms, new.institution, role.as_str(),
                new.must_change_password],
    )
    .map_err(backend)?;
    let id = conn.last_insert_rowid();
    cx.apply(effects)?;
    Ok(AccountId(id))
}

fn create_patient(
    cx: &mut WriteCtx<'_>,
    new: NewPatient,
    actor: &str,
    now_ms: i64,
) -> StoreResult<PatientId> {
    let conn = cx.conn;
    let physician: Option<(i64, Option<i64>)> = conn
        .row(
            "SELECT id, institution_id FROM accounts WHERE username = ?1 AND role = 'physician'",
            [&new.physician_username],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    let limits = new_patient(
        &new,
        physician.is_some(),
        username_taken(conn, &new.username)?,
        now_ms,
    )?;
    let Some((physician_id, institution_id)) = physician else {
        return Err(StoreError::no_physician(&new.physician_username));
    };
    conn.exec(
        "INSERT INTO accounts (username, password_hash, role, first_name, last_name, institution_id, created_at_ms)
         VALUES (?1, ?2, 'patient', ?3, ?4, ?5, ?6)",
        params![new.username, new.password_hash, new.first_name, new.last_name, institution_id, now_ms],
    )
    .map_err(backend)?;
    let account_id = conn.last_insert_rowid();
    conn.exec(
        "INSERT INTO patients (account_id, physician_id, record_number, birth_date) VALUES (?1, ?2, ?3, ?4)",
        params![
            account_id,
            physician_id,
            new.identifiers.record_number,
            new.identifiers.birth_date
        ],
    )
    .map_err(backend)?;
    let pid = conn.last_insert_rowid();
    conn.exec(
        "INSERT INTO limits (patient_id, min_rate_ul_h, max_rate_ul_h, max_volume_ul, updated_at_ms, updated_by,
                             soft_min_rate_ul_h, soft_max_rate_ul_h, soft_max_volume_ul, is_set)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?2, ?3, ?4, 0)",
        params![
            pid,
            limits.min_rate_ul_h,
            limits.max_rate_ul_h,
            limits.max_volume_ul,
            now_ms,
            actor
        ],
    )
    .map_err(backend)?;
    let patient = patient_id(pid);
    cx.apply(patient_created(patient, &new, actor, now_ms))?;
    Ok(patient)
}

fn accounts(conn: &Connection) -> StoreResult<Vec<AccountOverview>> {
    all(conn, AccountOverview::QUERY, [], |r| {
        AccountOverview::from_row(r)
    })
}

/// The patient record of `username`, or `NotFound`.
pub(crate) fn patient_by_username(conn: &Connection, username: &str) -> StoreResult<PatientId> {
    conn.row(
        "SELECT p.id FROM patients p JOIN accounts a ON a.id = p.account_id WHERE a.username = ?1",
        [username],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map_err(backend)?
    .map(patient_id)
    .ok_or_else(|| StoreError::no_patient(username))
}

/// The username of patient record `patient`, or `NotFound`.
pub(crate) fn username_of(conn: &Connection, patient: PatientId) -> StoreResult<String> {
    conn.row(
        "SELECT a.username FROM patients p JOIN accounts a ON a.id = p.account_id WHERE p.id = ?1",
        [stored_patient(patient).unwrap_or(-1)],
        |r| r.get(0),
    )
    .optional()
    .map_err(backend)?
    .ok_or_else(|| StoreError::NotFound(format!("no patient {}", patient.0)))
}

impl SqliteStore {
    /// A physician or administrator account, on the writer.
    async fn create_staff(
        &self,
        new: NewPhysician,
        role: Role,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| create_staff(cx, new, role, &actor, now_ms))
            .await
    }
}

#[async_trait]
impl Accounts for SqliteStore {
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
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| create_patient(cx, new, &actor, now_ms))
            .await
    }

    async fn accounts(&self) -> StoreResult<Vec<AccountOverview>> {
        self.readers.read(accounts).await
    }

    async fn account(&self, username: &str) -> StoreResult<Option<AccountRecord>> {
        let user = username.to_owned();
        self.readers
            .read(move |conn| {
                let sql = format!(
                    "SELECT {} FROM accounts a WHERE a.username = ?1",
                    AccountRecord::COLUMNS
                );
                one(conn, &sql, [user], |r| AccountRecord::at(r, 0))
            })
            .await
    }

    async fn patient_id(&self, username: &str) -> StoreResult<PatientId> {
        let user = username.to_owned();
        self.readers
            .read(move |conn| patient_by_username(conn, &user))
            .await
    }

    async fn username_of(&self, patient: PatientId) -> StoreResult<String> {
        self.readers
            .read(move |conn| username_of(conn, patient))
            .await
    }

    async fn change_password(
        &self,
        account: AccountId,
        password_hash: String,
        keep: Option<TokenHash>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| {
                lifecycle::change_password(cx, account, &password_hash, keep, &actor, now_ms)
            })
            .await
    }

    async fn set_account_enabled(
        &self,
        username: &str,
        enabled: bool,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (username, actor) = (username.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| lifecycle::set_enabled(cx, &username, enabled, &actor, now_ms))
            .await
    }

    async fn reset_password(
        &self,
        username: &str,
        password_hash: String,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (username, actor) = (username.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| {
                lifecycle::reset_password(cx, &username, &password_hash, &actor, now_ms)
            })
            .await
    }
}
