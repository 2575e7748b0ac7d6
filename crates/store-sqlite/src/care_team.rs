//! The SQL of wards, nurses and caregivers.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    AccountId, AccountRecord, CareTeam, CaregiverGrant, Columns, InstitutionRow, NewCaregiver,
    NewNurse, PatientSummary, StoreError, StoreResult, WardFound, WardId, WardOverview,
    WardPatient, caregiver_granted, caregiver_revoked, nurse_created, patient_at, stored_patient,
    ward_assigned, ward_created,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::SqliteStore;
use crate::accounts::username_taken;
use crate::rows::{all, one};
use crate::treatment::summaries;
use crate::writer::{Cached, WriteCtx, backend};

fn ward_named(conn: &Connection, name: &str) -> StoreResult<Option<WardFound>> {
    let sql = format!(
        "SELECT {} FROM wards w JOIN institutions i ON i.id = w.institution_id
         WHERE lower(w.name) = lower(?1)",
        WardFound::COLUMNS
    );
    one(conn, &sql, [name], |r| WardFound::from_row(r))
}

fn create_ward(
    cx: &mut WriteCtx<'_>,
    name: &str,
    institution: Option<&str>,
    actor: &str,
    now_ms: i64,
) -> StoreResult<WardId> {
    let conn = cx.conn;
    let institutions: Vec<InstitutionRow> = all(
        conn,
        "SELECT id, name FROM institutions ORDER BY id",
        [],
        |r| Ok((r.i64(0)?, r.string(1)?)),
    )?;
    let taken = ward_named(conn, name)?.is_some();
    let (institution, effects) =
        ward_created(name, institution, &institutions, taken, actor, now_ms)?;
    conn.exec(
        "INSERT INTO wards (institution_id, name, created_at_ms) VALUES (?1, ?2, ?3)",
        params![institution, name, now_ms],
    )
    .map_err(backend)?;
    let id = conn.last_insert_rowid();
    cx.apply(effects)?;
    Ok(WardId(id))
}

fn create_nurse(
    cx: &mut WriteCtx<'_>,
    new: NewNurse,
    actor: &str,
    now_ms: i64,
) -> StoreResult<AccountId> {
    let conn = cx.conn;
    let ward = ward_named(conn, &new.ward)?;
    let taken = username_taken(conn, &new.username)?;
    let effects = nurse_created(&new, ward.as_ref(), taken, actor, now_ms)?;
    let Some(ward) = ward else {
        return Err(StoreError::NotFound(format!(
            "no ward named {:?}",
            new.ward
        )));
    };
    conn.exec(
        "INSERT INTO accounts (username, password_hash, role, first_name, last_name, institution_id,
                               created_at_ms, must_change_password)
         VALUES (?1, ?2, 'nurse', ?3, ?4, ?5, ?6, ?7)",
        params![new.username, new.password_hash, new.first_name, new.last_name, ward.institution,
                now_ms, new.must_change_password],
    )
    .map_err(backend)?;
    let id = conn.last_insert_rowid();
    conn.exec(
        "INSERT INTO nurses (account_id, ward_id) VALUES (?1, ?2)",
        params![id, ward.id.0],
    )
    .map_err(backend)?;
    cx.apply(effects)?;
    Ok(AccountId(id))
}

fn assign_ward(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    ward: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let conn = cx.conn;
    let pid = stored_patient(patient).unwrap_or(-1);
    let sql = format!(
        "SELECT {} FROM patients p JOIN accounts a ON a.id = p.account_id WHERE p.id = ?1",
        WardPatient::COLUMNS
    );
    let p = one(conn, &sql, [pid], |r| WardPatient::from_row(patient, r))?
        .ok_or_else(|| StoreError::NotFound(format!("no patient {}", patient.0)))?;
    let found = ward_named(conn, ward)?;
    let effects = ward_assigned(&p, found.as_ref(), ward, actor, now_ms)?;
    let Some(found) = found else {
        return Err(StoreError::NotFound(format!("no ward named {ward:?}")));
    };
    conn.exec(
        "UPDATE patients SET ward_id = ?2 WHERE id = ?1",
        params![pid, found.id.0],
    )
    .map_err(backend)?;
    cx.apply(effects)
}

fn grants(conn: &Connection, filter: &str, arg: i64) -> StoreResult<Vec<CaregiverGrant>> {
    let sql = format!(
        "SELECT {} FROM caregivers g JOIN accounts a ON a.id = g.account_id {filter}
         ORDER BY g.granted_at_ms DESC, g.id DESC",
        CaregiverGrant::COLUMNS
    );
    all(conn, &sql, [arg], |r| CaregiverGrant::from_row(r))
}

fn grant_caregiver(
    cx: &mut WriteCtx<'_>,
    new: NewCaregiver,
    actor: &str,
    now_ms: i64,
) -> StoreResult<AccountId> {
    let conn = cx.conn;
    let pid = stored_patient(new.patient).unwrap_or(-1);
    let (patient_username, institution): (String, Option<i64>) = conn
        .row(
            "SELECT a.username, a.institution_id FROM patients p
             JOIN accounts a ON a.id = p.account_id WHERE p.id = ?1",
            [pid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("no patient {}", new.patient.0)))?;
    let sql = format!(
        "SELECT {} FROM accounts a WHERE lower(a.username) = lower(?1)",
        AccountRecord::COLUMNS
    );
    let existing = one(conn, &sql, [&new.username], |r| AccountRecord::at(r, 0))?;
    let current = match &existing {
        Some(a) => grants(conn, "WHERE g.account_id = ?1", a.account_id.0)?
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
    let account = match (existing, new.password_hash) {
        (Some(a), _) => a.account_id.0,
        (None, hash) => {
            conn.exec(
                "INSERT INTO accounts (username, password_hash, role, first_name, last_name,
                                       institution_id, created_at_ms, must_change_password)
                 VALUES (?1, ?2, 'caregiver', ?3, ?4, ?5, ?6, 1)",
                params![
                    new.username,
                    hash.unwrap_or_default(),
                    new.first_name,
                    new.last_name,
                    institution,
                    now_ms
                ],
            )
            .map_err(backend)?;
            conn.last_insert_rowid()
        }
    };
    conn.exec(
        "INSERT INTO caregivers (account_id, patient_id, granted_by, granted_at_ms, ends_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account, pid, actor, now_ms, new.ends_at_ms],
    )
    .map_err(backend)?;
    cx.apply(effects)?;
    Ok(AccountId(account))
}

fn revoke_caregiver(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    grant: i64,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let conn = cx.conn;
    let pid = stored_patient(patient).unwrap_or(-1);
    let found = grants(conn, "WHERE g.id = ?1", grant)?
        .into_iter()
        .find(|g| g.patient == patient);
    let effects = caregiver_revoked(found.as_ref(), patient, actor, now_ms)?;
    conn.exec(
        "UPDATE caregivers SET revoked_at_ms = ?3 WHERE id = ?1 AND patient_id = ?2",
        params![grant, pid, now_ms],
    )
    .map_err(backend)?;
    cx.apply(effects)
}

#[async_trait]
impl CareTeam for SqliteStore {
    async fn create_ward(
        &self,
        name: &str,
        institution: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<WardId> {
        let (name, institution, actor) = (
            name.to_owned(),
            institution.map(str::to_owned),
            actor.to_owned(),
        );
        self.writer
            .write(move |cx| create_ward(cx, &name, institution.as_deref(), &actor, now_ms))
            .await
    }

    async fn create_nurse(
        &self,
        new: NewNurse,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| create_nurse(cx, new, &actor, now_ms))
            .await
    }

    async fn assign_ward(
        &self,
        patient: PatientId,
        ward: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (ward, actor) = (ward.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| assign_ward(cx, patient, &ward, &actor, now_ms))
            .await
    }

    async fn ward_patients(&self, ward: WardId) -> StoreResult<Vec<PatientSummary>> {
        self.readers
            .read(move |conn| summaries(conn, "WHERE p.ward_id = ?1", ward.0))
            .await
    }

    async fn wards(&self, institution: &str) -> StoreResult<Vec<WardOverview>> {
        let institution = institution.to_owned();
        self.readers
            .read(move |conn| {
                all(conn, WardOverview::QUERY, [institution], |r| {
                    WardOverview::from_row(r)
                })
            })
            .await
    }

    async fn grant_caregiver(
        &self,
        new: NewCaregiver,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| grant_caregiver(cx, new, &actor, now_ms))
            .await
    }

    async fn revoke_caregiver(
        &self,
        patient: PatientId,
        grant: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| revoke_caregiver(cx, patient, grant, &actor, now_ms))
            .await
    }

    async fn caregivers(&self, patient: PatientId) -> StoreResult<Vec<CaregiverGrant>> {
        let Some(pid) = stored_patient(patient) else {
            return Ok(Vec::new());
        };
        self.readers
            .read(move |conn| grants(conn, "WHERE g.patient_id = ?1", pid))
            .await
    }

    async fn caregiver_patients(
        &self,
        account: AccountId,
        now_ms: i64,
    ) -> StoreResult<Vec<PatientId>> {
        self.readers
            .read(move |conn| {
                all(
                    conn,
                    "SELECT patient_id FROM caregivers
                     WHERE account_id = ?1 AND revoked_at_ms IS NULL AND ends_at_ms > ?2
                     ORDER BY patient_id",
                    params![account.0, now_ms],
                    |r| patient_at(r, 0),
                )
            })
            .await
    }
}
