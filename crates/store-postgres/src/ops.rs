//! The SQL of each store operation. Each public function is one
//! transaction (or one statement, which PostgreSQL runs as one).
//!
//! The hot paths are written for few round trips: the index transaction is
//! a single statement (consume the token, touch the device, issue the next
//! token and read the index, in one data-modifying `WITH`), and a report
//! stores its whole batch with one `INSERT … SELECT FROM UNNEST`.

use infusion_protocol::{
    Alarm, Event, HexBytes, Index, InfusionState, MacAddress, PatientId, PatientLimits, PublicKey,
    StateChange, WireEvent,
};
use infusion_store::audit_chain::chain_hash;
use infusion_store::throttle::{self, Attempt, ThrottleKey};
use infusion_store::{
    AccountId, AccountOverview, AccountRecord, AuditAction, AuditHead, AuditRecord, BoundDevice,
    ChainedAudit, Change, DEFAULT_LIMITS, Decision, DeviceId, LoginRecord, NewAudit, NewPatient,
    NewPhysician, NewPrescription, NewSuggestion, NewToken, NewWebSession, PatientSummary,
    PolledIndex, Prescription, PresentedToken, Refusal, ReportOutcome, Role, StoreError,
    StoreResult, StoredEvent, Suggestion, TokenHash, TokenStatus, WebSession, alarm_of,
    check_account_names, check_institution, check_limits, check_prescription, check_presented,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::db_error;
use crate::feed::CHANNEL;

fn db_patient_id(id: PatientId) -> Option<i64> {
    i64::try_from(id.0).ok()
}

fn patient_id(v: i64) -> PatientId {
    PatientId(v as u64)
}

/// A column that must hold a `u32` (volumes, rates, versions, seqs).
fn get_u32(row: &PgRow, i: usize) -> StoreResult<u32> {
    let v: i64 = row.try_get(i).map_err(db_error)?;
    u32::try_from(v).map_err(|_| StoreError::Backend(format!("column {i} out of range: {v}")))
}

fn get<'r, T>(row: &'r PgRow, i: usize) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(i).map_err(db_error)
}

fn parse_state(s: &str) -> StoreResult<InfusionState> {
    match s {
        "run" => Ok(InfusionState::Run),
        "hold" => Ok(InfusionState::Hold),
        other => Err(StoreError::Backend(format!("bad stored state {other:?}"))),
    }
}

fn parse_mac(s: &str) -> StoreResult<MacAddress> {
    MacAddress::parse(s).map_err(|_| StoreError::Backend(format!("bad stored MAC {s:?}")))
}

/// Appends one audit entry on `conn` (a transaction or a pool connection).
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
async fn insert_audit_on(conn: &mut PgConnection, e: &NewAudit) -> StoreResult<()> {
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
    .bind(e.patient_id.and_then(db_patient_id))
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
    let hash32 = |v: Option<Vec<u8>>| v.and_then(|v| <[u8; 32]>::try_from(v).ok());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, at_ms, actor, action, patient_id, detail, prev_hash, hash FROM audit
         {filter} ORDER BY id LIMIT $2"
    )))
    .bind(arg)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| {
        let AuditRecord { id, entry } = audit_record(r)?;
        Ok(ChainedAudit {
            id,
            entry,
            prev_hash: hash32(get(r, 6)?),
            hash: hash32(get(r, 7)?),
        })
    })
    .collect()
}

/// Audit rows after `after_id`, in id order, at most `limit`.
pub(crate) async fn audit_chain(
    pool: &PgPool,
    after_id: i64,
    limit: u32,
) -> StoreResult<Vec<ChainedAudit>> {
    let mut conn = pool.acquire().await.map_err(db_error)?;
    audit_rows(&mut conn, "WHERE id > $1", after_id, limit).await
}

/// The audit chain's head.
pub(crate) async fn audit_head(pool: &PgPool) -> StoreResult<AuditHead> {
    let mut conn = pool.acquire().await.map_err(db_error)?;
    audit_head_on(&mut conn, false).await
}

/// Appends one audit entry in its own transaction.
pub(crate) async fn insert_audit(pool: &PgPool, e: &NewAudit) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    insert_audit_on(&mut tx, e).await?;
    tx.commit().await.map_err(db_error)
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

async fn username_taken(conn: &mut PgConnection, username: &str) -> StoreResult<bool> {
    sqlx::query("SELECT 1 FROM accounts WHERE username = $1")
        .bind(username)
        .fetch_optional(conn)
        .await
        .map(|r| r.is_some())
        .map_err(db_error)
}

pub(crate) async fn create_staff(
    pool: &PgPool,
    new: NewPhysician,
    role: Role,
    actor: &str,
    now_ms: i64,
) -> StoreResult<AccountId> {
    check_account_names(&new.username, &new.first_name, &new.last_name)?;
    check_institution(&new.institution)?;
    let mut tx = pool.begin().await.map_err(db_error)?;
    if username_taken(&mut tx, &new.username).await? {
        return Err(StoreError::username_taken(&new.username));
    }
    sqlx::query(
        "INSERT INTO institutions (name, created_at_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&new.institution)
    .bind(now_ms)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO accounts (username, password_hash, role, first_name, last_name, institution_id, created_at_ms)
         SELECT $1, $2, $7, $3, $4, id, $5 FROM institutions WHERE name = $6
         RETURNING id",
    )
    .bind(&new.username)
    .bind(&new.password_hash)
    .bind(&new.first_name)
    .bind(&new.last_name)
    .bind(now_ms)
    .bind(&new.institution)
    .bind(role.as_str())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match db_error(e) {
        StoreError::Conflict(_) => StoreError::username_taken(&new.username),
        other => other,
    })?;
    insert_audit_on(
        &mut tx,
        &NewAudit::staff_created(now_ms, actor, role, &new.username, &new.institution),
    )
    .await?;
    tx.commit().await.map_err(db_error)?;
    Ok(AccountId(id))
}

pub(crate) async fn create_patient(
    pool: &PgPool,
    new: NewPatient,
    actor: &str,
    now_ms: i64,
) -> StoreResult<PatientId> {
    check_account_names(&new.username, &new.first_name, &new.last_name)?;
    let mut tx = pool.begin().await.map_err(db_error)?;
    let physician = sqlx::query(
        "SELECT id, institution_id FROM accounts WHERE username = $1 AND role = 'physician'",
    )
    .bind(&new.physician_username)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    let Some(physician) = physician else {
        return Err(StoreError::no_physician(&new.physician_username));
    };
    let physician_id: i64 = get(&physician, 0)?;
    let institution_id: Option<i64> = get(&physician, 1)?;
    if username_taken(&mut tx, &new.username).await? {
        return Err(StoreError::username_taken(&new.username));
    }
    let pid: i64 = sqlx::query_scalar(
        "WITH account AS (
             INSERT INTO accounts (username, password_hash, role, first_name, last_name, institution_id, created_at_ms)
             VALUES ($1, $2, 'patient', $3, $4, $5, $6) RETURNING id
         ), patient AS (
             INSERT INTO patients (account_id, physician_id) SELECT id, $7 FROM account RETURNING id
         )
         INSERT INTO limits (patient_id, min_rate_ul_h, max_rate_ul_h, max_volume_ul, updated_at_ms, updated_by)
         SELECT id, $8, $9, $10, $6, $11 FROM patient
         RETURNING patient_id",
    )
    .bind(&new.username)
    .bind(&new.password_hash)
    .bind(&new.first_name)
    .bind(&new.last_name)
    .bind(institution_id)
    .bind(now_ms)
    .bind(physician_id)
    .bind(i64::from(DEFAULT_LIMITS.min_rate_ul_h))
    .bind(i64::from(DEFAULT_LIMITS.max_rate_ul_h))
    .bind(i64::from(DEFAULT_LIMITS.max_volume_ul))
    .bind(actor)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match db_error(e) {
        StoreError::Conflict(_) => StoreError::username_taken(&new.username),
        other => other,
    })?;
    let patient = patient_id(pid);
    insert_audit_on(
        &mut tx,
        &NewAudit::patient_created(
            now_ms,
            actor,
            patient,
            &new.username,
            &new.physician_username,
        ),
    )
    .await?;
    tx.commit().await.map_err(db_error)?;
    Ok(patient)
}

/// The patient record of a username, locked for the rest of the
/// transaction so that changes to one patient's limits, prescription and
/// device are serialized across instances.
async fn lock_patient(conn: &mut PgConnection, username: &str) -> StoreResult<PatientId> {
    sqlx::query_scalar::<_, i64>(
        "SELECT p.id FROM patients p JOIN accounts a ON a.id = p.account_id
         WHERE a.username = $1 FOR UPDATE OF p",
    )
    .bind(username)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?
    .map(patient_id)
    .ok_or_else(|| StoreError::no_patient(username))
}

pub(crate) async fn bind_device(
    pool: &PgPool,
    username: &str,
    mac: MacAddress,
    public_key: PublicKey,
    actor: &str,
    now_ms: i64,
) -> StoreResult<DeviceId> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    let patient = lock_patient(&mut tx, username).await?;
    let pid = patient.0 as i64;
    let mac_text = mac.to_string();
    let holder =
        sqlx::query("SELECT id, patient_id FROM devices WHERE mac = $1 AND retired_at_ms IS NULL")
            .bind(&mac_text)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
    if let Some(holder) = holder {
        let (id, owner): (i64, i64) = (get(&holder, 0)?, get(&holder, 1)?);
        if owner != pid {
            return Err(StoreError::device_taken(&mac));
        }
        // A new secret for the same pump: the old one stops working.
        sqlx::query("UPDATE devices SET public_key = $1 WHERE id = $2")
            .bind(&public_key.0[..])
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_audit_on(
            &mut tx,
            &NewAudit::device_bound(now_ms, actor, patient, &mac_text, username),
        )
        .await?;
        tx.commit().await.map_err(db_error)?;
        return Ok(DeviceId(id));
    }
    sqlx::query(
        "UPDATE devices SET retired_at_ms = $1 WHERE patient_id = $2 AND retired_at_ms IS NULL",
    )
    .bind(now_ms)
    .bind(pid)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO devices (patient_id, mac, registered_at_ms, public_key) VALUES ($1, $2, $3, $4)
         RETURNING id",
    )
    .bind(pid)
    .bind(&mac_text)
    .bind(now_ms)
    .bind(&public_key.0[..])
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match db_error(e) {
        // Another instance bound this MAC in the meantime.
        StoreError::Conflict(_) => StoreError::device_taken(&mac),
        other => other,
    })?;
    insert_audit_on(
        &mut tx,
        &NewAudit::device_bound(now_ms, actor, patient, &mac_text, username),
    )
    .await?;
    tx.commit().await.map_err(db_error)?;
    Ok(DeviceId(id))
}

async fn limits_of(conn: &mut PgConnection, pid: i64) -> StoreResult<PatientLimits> {
    let row = sqlx::query(
        "SELECT min_rate_ul_h, max_rate_ul_h, max_volume_ul FROM limits WHERE patient_id = $1",
    )
    .bind(pid)
    .fetch_one(conn)
    .await
    .map_err(db_error)?;
    Ok(PatientLimits {
        min_rate_ul_h: get_u32(&row, 0)?,
        max_rate_ul_h: get_u32(&row, 1)?,
        max_volume_ul: get_u32(&row, 2)?,
    })
}

const PRESCRIPTION_COLUMNS: &str =
    "version, volume_ul, rate_ul_h, state, created_at_ms, created_by, fetched_at_ms";

fn prescription_row(row: &PgRow) -> StoreResult<Prescription> {
    Ok(Prescription {
        version: get_u32(row, 0)?,
        volume_ul: get_u32(row, 1)?,
        rate_ul_h: get_u32(row, 2)?,
        state: parse_state(get(row, 3)?)?,
        created_at_ms: get(row, 4)?,
        created_by: get(row, 5)?,
        fetched_at_ms: get(row, 6)?,
    })
}

async fn current_prescription(
    conn: &mut PgConnection,
    pid: i64,
) -> StoreResult<Option<Prescription>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PRESCRIPTION_COLUMNS} FROM prescriptions WHERE patient_id = $1
         ORDER BY version DESC LIMIT 1"
    )))
    .bind(pid)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?
    .as_ref()
    .map(prescription_row)
    .transpose()
}

pub(crate) async fn set_limits(
    pool: &PgPool,
    username: &str,
    limits: PatientLimits,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    check_limits(&limits)?;
    let mut tx = pool.begin().await.map_err(db_error)?;
    let patient = lock_patient(&mut tx, username).await?;
    let pid = patient.0 as i64;
    if let Some(p) = current_prescription(&mut tx, pid).await?
        && !limits.allows(p.volume_ul, p.rate_ul_h)
    {
        return Err(StoreError::limits_exclude(&p));
    }
    sqlx::query(
        "UPDATE limits SET min_rate_ul_h = $1, max_rate_ul_h = $2, max_volume_ul = $3, updated_at_ms = $4, updated_by = $5
         WHERE patient_id = $6",
    )
    .bind(i64::from(limits.min_rate_ul_h))
    .bind(i64::from(limits.max_rate_ul_h))
    .bind(i64::from(limits.max_volume_ul))
    .bind(now_ms)
    .bind(actor)
    .bind(pid)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    insert_audit_on(
        &mut tx,
        &NewAudit::limits_changed(now_ms, actor, patient, &limits),
    )
    .await?;
    notify(&mut tx, Change::Limits { patient }).await?;
    tx.commit().await.map_err(db_error)
}

pub(crate) async fn set_prescription(
    pool: &PgPool,
    username: &str,
    p: NewPrescription,
    actor: &str,
    now_ms: i64,
) -> StoreResult<u32> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    let patient = lock_patient(&mut tx, username).await?;
    let version = write_prescription(&mut tx, patient, &p, actor, now_ms).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(version)
}

/// Writes the next prescription version of a patient already locked in
/// this transaction, within their limits; audits and announces it.
async fn write_prescription(
    tx: &mut PgConnection,
    patient: PatientId,
    p: &NewPrescription,
    actor: &str,
    now_ms: i64,
) -> StoreResult<u32> {
    let pid = patient.0 as i64;
    check_prescription(p, &limits_of(tx, pid).await?)?;
    let version = current_prescription(tx, pid)
        .await?
        .map_or(0, |c| c.version)
        + 1;
    sqlx::query(
        "INSERT INTO prescriptions (patient_id, version, volume_ul, rate_ul_h, state, created_at_ms, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(pid)
    .bind(i64::from(version))
    .bind(i64::from(p.volume_ul))
    .bind(i64::from(p.rate_ul_h))
    .bind(p.state.as_str())
    .bind(now_ms)
    .bind(actor)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    insert_audit_on(
        tx,
        &NewAudit::prescription_changed(now_ms, actor, patient, version, p),
    )
    .await?;
    notify(tx, Change::Prescription { patient, version }).await?;
    Ok(version)
}

pub(crate) async fn login_record(
    pool: &PgPool,
    username: &str,
) -> StoreResult<Option<LoginRecord>> {
    let row = sqlx::query(
        "SELECT a.id, p.id, a.password_hash, a.first_name, a.last_name, COALESCE(i.name, ''), d.id, d.mac,
                d.public_key, d.login_nonce
         FROM accounts a
         JOIN patients p ON p.account_id = a.id
         LEFT JOIN institutions i ON i.id = a.institution_id
         LEFT JOIN devices d ON d.patient_id = p.id AND d.retired_at_ms IS NULL
         WHERE a.username = $1 AND a.role = 'patient'",
    )
    .bind(username)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?;
    let Some(r) = row else {
        return Ok(None);
    };
    let device = match get::<Option<i64>>(&r, 6)? {
        Some(id) => Some(BoundDevice {
            id: DeviceId(id),
            mac: parse_mac(get(&r, 7)?)?,
            public_key: match get::<Option<Vec<u8>>>(&r, 8)? {
                Some(key) => Some(HexBytes(key.try_into().map_err(|_| {
                    StoreError::Backend("stored device key is not 32 bytes".into())
                })?)),
                None => None,
            },
            login_nonce: match get::<Option<Vec<u8>>>(&r, 9)? {
                Some(nonce) => Some(nonce.try_into().map_err(|_| {
                    StoreError::Backend("stored login nonce is not 16 bytes".into())
                })?),
                None => None,
            },
        }),
        None => None,
    };
    Ok(Some(LoginRecord {
        account_id: AccountId(get(&r, 0)?),
        patient_id: patient_id(get(&r, 1)?),
        password_hash: get(&r, 2)?,
        first_name: get(&r, 3)?,
        last_name: get(&r, 4)?,
        institution: get(&r, 5)?,
        device,
    }))
}

pub(crate) async fn start_device_session(
    pool: &PgPool,
    record: &LoginRecord,
    device: DeviceId,
    nonce: Option<[u8; 16]>,
    token: NewToken,
    now_ms: i64,
) -> StoreResult<()> {
    let pid = db_patient_id(record.patient_id).ok_or(StoreError::Forbidden)?;
    let mut tx = pool.begin().await.map_err(db_error)?;
    // Touching the device row checks (and locks) the binding in one go.
    let mac: Option<String> = sqlx::query_scalar(
        "UPDATE devices SET last_seen_ms = $1 WHERE id = $2 AND patient_id = $3 AND retired_at_ms IS NULL
         RETURNING mac",
    )
    .bind(now_ms)
    .bind(device.0)
    .bind(pid)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    // The binding changed between the lookup and now: refuse like a wrong MAC.
    let Some(mac) = mac else {
        return Err(StoreError::Forbidden);
    };
    if let Some(nonce) = nonce {
        // The row is locked by the update above: a concurrent login with
        // the same nonce waits here and then finds it no longer newer.
        let newer = sqlx::query(
            "UPDATE devices SET login_nonce = $1
             WHERE id = $2 AND (login_nonce IS NULL OR login_nonce < $1)",
        )
        .bind(&nonce[..])
        .bind(device.0)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if newer.rows_affected() != 1 {
            return Err(StoreError::NonceReplayed);
        }
    }
    sqlx::query(
        "INSERT INTO tokens (hash, device_id, patient_id, issued_at_ms, expires_at_ms, generation)
         SELECT $1, $2, $3, $4, $5, token_generation FROM devices WHERE id = $2",
    )
    .bind(&token.hash.0[..])
    .bind(device.0)
    .bind(pid)
    .bind(now_ms)
    .bind(token.expires_at_ms)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    insert_audit_on(
        &mut tx,
        &NewAudit::device_login(now_ms, &mac, record.patient_id),
    )
    .await?;
    tx.commit().await.map_err(db_error)
}

/// Consumes the presented token (if it is unused, unexpired, this
/// patient's, and its device registration current), stamps the device as
/// seen and issues the next token, all in one statement. Returns the device
/// id and MAC, or no row when the token may not be used.
///
/// Atomic across instances: a concurrent `UPDATE` of the same token row
/// waits for the first to commit and then re-evaluates `used_at_ms IS NULL`
/// on the new row version, finds it false and updates nothing.
const CONSUME: &str = "
    consumed AS (
        UPDATE tokens t SET used_at_ms = $3
        FROM devices d
        WHERE t.hash = $1 AND t.patient_id = $2 AND t.used_at_ms IS NULL AND t.expires_at_ms > $3
          AND t.revoked_at_ms IS NULL AND t.generation = d.token_generation
          AND d.id = t.device_id AND d.retired_at_ms IS NULL
        RETURNING t.device_id, t.patient_id, d.mac, t.generation
    ), seen AS (
        UPDATE devices SET last_seen_ms = $3 FROM consumed WHERE devices.id = consumed.device_id
    ), issued AS (
        INSERT INTO tokens (hash, device_id, patient_id, issued_at_ms, expires_at_ms, generation)
        SELECT $4, device_id, patient_id, $3, $5, generation FROM consumed
    )";

/// After a refused consumption: finds out why, keeps what the refusal
/// leaves behind (its audit entry and, for a replay, the revocation of the
/// device's chain) in a transaction of its own, the refused one having
/// changed nothing, and returns the error to answer with.
async fn refuse_token(
    pool: &PgPool,
    presented: TokenHash,
    patient: PatientId,
    now_ms: i64,
) -> StoreError {
    let found = sqlx::query(
        "SELECT t.device_id, t.patient_id, t.expires_at_ms, t.used_at_ms, d.mac,
                d.retired_at_ms IS NOT NULL,
                t.revoked_at_ms IS NOT NULL OR t.generation <> d.token_generation
         FROM tokens t JOIN devices d ON d.id = t.device_id WHERE t.hash = $1",
    )
    .bind(&presented.0[..])
    .fetch_optional(pool)
    .await
    .map_err(db_error)
    .and_then(|row| {
        row.map(|r| {
            Ok(PresentedToken {
                device: DeviceId(get(&r, 0)?),
                owner: patient_id(get(&r, 1)?),
                expires_at_ms: get(&r, 2)?,
                used_at_ms: get(&r, 3)?,
                mac: get(&r, 4)?,
                device_retired: get(&r, 5)?,
                revoked: get(&r, 6)?,
            })
        })
        .transpose()
    });
    let found = match found {
        Ok(f) => f,
        Err(e) => return e,
    };
    let refusal = match check_presented(found.as_ref(), patient, now_ms) {
        Err(refusal) => *refusal,
        // Valid now but not a moment ago: a concurrent request took it.
        Ok(()) => Refusal {
            error: StoreError::TokenUsed,
            audit: NewAudit::of(
                now_ms,
                "anonymous",
                AuditAction::TokenRefused,
                Some(patient),
                StoreError::TokenUsed.to_string(),
            ),
            revoke_chain_of: None,
        },
    };
    match keep_refusal(pool, &refusal).await {
        Ok(()) => refusal.error,
        Err(failed) => failed,
    }
}

/// Writes a refusal's audit entry and revokes a replayed chain, in one
/// transaction.
///
/// The revocation marks the live tokens first and raises the device's
/// token generation second: a consumption locks its token row, then the
/// device row, so taking them in the same order cannot deadlock. A
/// consumption that raced the revocation may still have issued a token,
/// but with the old generation, so that token is dead.
async fn keep_refusal(pool: &PgPool, refusal: &Refusal) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    if let Some(device) = refusal.revoke_chain_of {
        sqlx::query(
            "UPDATE tokens SET revoked_at_ms = $1
             WHERE device_id = $2 AND used_at_ms IS NULL AND revoked_at_ms IS NULL",
        )
        .bind(refusal.audit.at_ms)
        .bind(device.0)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query("UPDATE devices SET token_generation = token_generation + 1 WHERE id = $1")
            .bind(device.0)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    insert_audit_on(&mut tx, &refusal.audit).await?;
    tx.commit().await.map_err(db_error)
}

pub(crate) async fn poll_index(
    pool: &PgPool,
    presented: TokenHash,
    patient: PatientId,
    next: NewToken,
    now_ms: i64,
) -> StoreResult<PolledIndex> {
    let Some(pid) = db_patient_id(patient) else {
        return Err(refuse_token(pool, presented, patient, now_ms).await);
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH {CONSUME}, cur AS (
             SELECT c.patient_id, c.mac, p.version, p.volume_ul, p.rate_ul_h, p.state, p.fetched_at_ms
             FROM consumed c
             LEFT JOIN LATERAL (
                 SELECT version, volume_ul, rate_ul_h, state, fetched_at_ms FROM prescriptions
                 WHERE patient_id = c.patient_id ORDER BY version DESC LIMIT 1
             ) p ON TRUE
         ), fetched AS (
             UPDATE prescriptions f SET fetched_at_ms = $3 FROM cur
             WHERE cur.fetched_at_ms IS NULL AND f.patient_id = cur.patient_id AND f.version = cur.version
         )
         SELECT l.min_rate_ul_h, l.max_rate_ul_h, l.max_volume_ul,
                cur.version, cur.volume_ul, cur.rate_ul_h, cur.state, cur.mac
         FROM cur JOIN limits l ON l.patient_id = cur.patient_id"
    )))
    .bind(&presented.0[..])
    .bind(pid)
    .bind(now_ms)
    .bind(&next.hash.0[..])
    .bind(next.expires_at_ms)
    .persistent(true)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?;
    let Some(r) = row else {
        return Err(refuse_token(pool, presented, patient, now_ms).await);
    };
    let limits = PatientLimits {
        min_rate_ul_h: get_u32(&r, 0)?,
        max_rate_ul_h: get_u32(&r, 1)?,
        max_volume_ul: get_u32(&r, 2)?,
    };
    let mac = parse_mac(&get::<String>(&r, 7)?)?;
    let index = match get::<Option<String>>(&r, 6)? {
        Some(state) => Index {
            version: get_u32(&r, 3)?,
            volume_ul: get_u32(&r, 4)?,
            rate_ul_h: get_u32(&r, 5)?,
            state: parse_state(&state)?,
            limits,
        },
        None => Index {
            version: 0,
            volume_ul: 0,
            rate_ul_h: 0,
            state: InfusionState::Hold,
            limits,
        },
    };
    Ok(PolledIndex { index, mac })
}

/// A report's events as parallel columns, for one `UNNEST` insert.
#[derive(Default)]
struct EventColumns {
    seq: Vec<i64>,
    uptime_ms: Vec<i64>,
    kind: Vec<&'static str>,
    delivered_ul: Vec<Option<i64>>,
    rate_ul_h: Vec<Option<i64>>,
    index_version: Vec<Option<i64>>,
    state: Vec<Option<&'static str>>,
    alarm: Vec<Option<&'static str>>,
    heart_rate_bpm: Vec<Option<i32>>,
    spo2_pct: Vec<Option<i16>>,
    tremor_score: Vec<Option<i16>>,
}

impl EventColumns {
    fn of(events: &[Event]) -> EventColumns {
        let mut c = EventColumns::default();
        for e in events {
            let w = WireEvent::from(*e);
            c.seq.push(i64::from(w.seq));
            c.uptime_ms.push(w.uptime_ms as i64);
            c.kind.push(w.kind.as_str());
            c.delivered_ul.push(w.delivered_ul.map(i64::from));
            c.rate_ul_h.push(w.rate_ul_h.map(i64::from));
            c.index_version.push(w.index_version.map(i64::from));
            c.state.push(w.state.map(StateChange::as_str));
            c.alarm.push(w.alarm.map(Alarm::as_str));
            c.heart_rate_bpm.push(w.heart_rate_bpm.map(i32::from));
            c.spo2_pct.push(w.spo2_pct.map(i16::from));
            c.tremor_score.push(w.tremor_score.map(i16::from));
        }
        c
    }
}

pub(crate) async fn report(
    pool: &PgPool,
    presented: TokenHash,
    patient: PatientId,
    events: &[Event],
    next: NewToken,
    now_ms: i64,
) -> StoreResult<ReportOutcome> {
    let Some(pid) = db_patient_id(patient) else {
        return Err(refuse_token(pool, presented, patient, now_ms).await);
    };
    let mut tx = pool.begin().await.map_err(db_error)?;
    let consumed = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH {CONSUME} SELECT device_id, mac FROM consumed"
    )))
    .bind(&presented.0[..])
    .bind(pid)
    .bind(now_ms)
    .bind(&next.hash.0[..])
    .bind(next.expires_at_ms)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    let Some(consumed) = consumed else {
        drop(tx);
        return Err(refuse_token(pool, presented, patient, now_ms).await);
    };
    let device: i64 = get(&consumed, 0)?;
    let mac: String = get(&consumed, 1)?;
    let c = EventColumns::of(events);
    let stored: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO events (device_id, patient_id, seq, uptime_ms, kind, delivered_ul, rate_ul_h,
             index_version, state, alarm, heart_rate_bpm, spo2_pct, tremor_score, received_at_ms)
         SELECT $1, $2, e.*, $3 FROM UNNEST($4::bigint[], $5::bigint[], $6::text[], $7::bigint[],
             $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::int[], $13::smallint[],
             $14::smallint[]) AS e
         ON CONFLICT (device_id, seq) DO NOTHING
         RETURNING seq",
    )
    .bind(device)
    .bind(pid)
    .bind(now_ms)
    .bind(&c.seq)
    .bind(&c.uptime_ms)
    .bind(&c.kind)
    .bind(&c.delivered_ul)
    .bind(&c.rate_ul_h)
    .bind(&c.index_version)
    .bind(&c.state)
    .bind(&c.alarm)
    .bind(&c.heart_rate_bpm)
    .bind(&c.spo2_pct)
    .bind(&c.tremor_score)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_error)?;
    let accepted = u32::try_from(stored.len()).unwrap_or(u32::MAX);
    let outcome = ReportOutcome {
        accepted,
        duplicates: u32::try_from(events.len())
            .unwrap_or(u32::MAX)
            .saturating_sub(accepted),
    };
    if accepted > 0 {
        notify(&mut tx, Change::Events { patient }).await?;
    }
    for e in events {
        let Some(alarm) = alarm_of(&e.body) else {
            continue;
        };
        if !stored.contains(&i64::from(e.seq)) {
            continue;
        }
        insert_audit_on(
            &mut tx,
            &NewAudit::alarm(now_ms, &mac, patient, alarm, e.seq),
        )
        .await?;
        notify(&mut tx, Change::Alarm { patient, alarm }).await?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(outcome)
}

pub(crate) async fn prune_tokens(pool: &PgPool, before_ms: i64) -> StoreResult<u64> {
    let mut removed = 0;
    for sql in [
        "DELETE FROM tokens WHERE expires_at_ms < $1",
        "DELETE FROM web_sessions WHERE expires_at_ms < $1 OR ended_at_ms < $1",
    ] {
        removed += sqlx::query(sql)
            .bind(before_ms)
            .execute(pool)
            .await
            .map_err(db_error)?
            .rows_affected();
    }
    Ok(removed)
}

pub(crate) async fn patient_summary(pool: &PgPool, username: &str) -> StoreResult<PatientSummary> {
    let mut conn = pool.acquire().await.map_err(db_error)?;
    let r = sqlx::query(
        "SELECT p.id, a.username, a.first_name, a.last_name, ph.username, d.mac, d.last_seen_ms
         FROM patients p
         JOIN accounts a ON a.id = p.account_id
         JOIN accounts ph ON ph.id = p.physician_id
         LEFT JOIN devices d ON d.patient_id = p.id AND d.retired_at_ms IS NULL
         WHERE a.username = $1",
    )
    .bind(username)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?
    .ok_or_else(|| StoreError::no_patient(username))?;
    let pid: i64 = get(&r, 0)?;
    let device = get::<Option<String>>(&r, 5)?
        .as_deref()
        .map(parse_mac)
        .transpose()?;
    Ok(PatientSummary {
        patient_id: patient_id(pid),
        username: get(&r, 1)?,
        first_name: get(&r, 2)?,
        last_name: get(&r, 3)?,
        physician_username: get(&r, 4)?,
        device,
        limits: limits_of(&mut conn, pid).await?,
        prescription: current_prescription(&mut conn, pid).await?,
        last_contact_ms: get(&r, 6)?,
    })
}

pub(crate) async fn prescriptions(
    pool: &PgPool,
    patient: PatientId,
) -> StoreResult<Vec<Prescription>> {
    let Some(pid) = db_patient_id(patient) else {
        return Ok(Vec::new());
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PRESCRIPTION_COLUMNS} FROM prescriptions WHERE patient_id = $1 ORDER BY version"
    )))
    .bind(pid)
    .fetch_all(pool)
    .await
    .map_err(db_error)?
    .iter()
    .map(prescription_row)
    .collect()
}

fn event_row(r: &PgRow) -> StoreResult<StoredEvent> {
    let opt_u32 = |i: usize| -> StoreResult<Option<u32>> {
        get::<Option<i64>>(r, i)?
            .map(|v| u32::try_from(v).map_err(|_| StoreError::Backend(format!("column {i}: {v}"))))
            .transpose()
    };
    let bad = |what: &str| StoreError::Backend(format!("bad stored event {what}"));
    let kind: String = get(r, 5)?;
    let wire = WireEvent {
        seq: get_u32(r, 2)?,
        uptime_ms: get::<i64>(r, 3)? as u64,
        kind: infusion_protocol::EventKind::parse(&kind).ok_or_else(|| bad("kind"))?,
        delivered_ul: opt_u32(6)?,
        rate_ul_h: opt_u32(7)?,
        index_version: opt_u32(8)?,
        state: get::<Option<String>>(r, 9)?
            .map(|s| StateChange::parse(&s).ok_or_else(|| bad("state")))
            .transpose()?,
        alarm: get::<Option<String>>(r, 10)?
            .map(|s| Alarm::parse(&s).ok_or_else(|| bad("alarm")))
            .transpose()?,
        heart_rate_bpm: get::<Option<i32>>(r, 11)?
            .map(|v| u16::try_from(v).map_err(|_| bad("heart rate")))
            .transpose()?,
        spo2_pct: get::<Option<i16>>(r, 12)?
            .map(|v| u8::try_from(v).map_err(|_| bad("SpO2")))
            .transpose()?,
        tremor_score: get::<Option<i16>>(r, 13)?
            .map(|v| u8::try_from(v).map_err(|_| bad("tremor score")))
            .transpose()?,
    };
    let event = Event::try_from(wire).map_err(|_| bad("fields"))?;
    Ok(StoredEvent {
        id: get(r, 0)?,
        device_id: DeviceId(get(r, 1)?),
        seq: event.seq,
        uptime_ms: event.uptime_ms,
        received_at_ms: get(r, 4)?,
        body: event.body,
    })
}

const EVENT_COLUMNS: &str =
    "id, device_id, seq, uptime_ms, received_at_ms, kind, delivered_ul, rate_ul_h,
    index_version, state, alarm, heart_rate_bpm, spo2_pct, tremor_score";

/// Events after `after_id`, oldest first; or with `newest_first`, the
/// newest (and `after_id` ignored).
pub(crate) async fn events(
    pool: &PgPool,
    patient: PatientId,
    after_id: i64,
    limit: u32,
    newest_first: bool,
) -> StoreResult<Vec<StoredEvent>> {
    let Some(pid) = db_patient_id(patient) else {
        return Ok(Vec::new());
    };
    let (after, order) = if newest_first {
        (0, "DESC")
    } else {
        (after_id, "")
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE patient_id = $1 AND id > $2 ORDER BY id {order} LIMIT $3"
    )))
    .bind(pid)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db_error)?
    .iter()
    .map(event_row)
    .collect()
}

/// The newest audit entries (of one patient, or all), newest first; with
/// `security_only`, only the [`AuditAction::SECURITY`] actions.
pub(crate) async fn audit_log(
    pool: &PgPool,
    patient: Option<PatientId>,
    limit: u32,
    security_only: bool,
) -> StoreResult<Vec<AuditRecord>> {
    let pid = match patient {
        Some(p) => match db_patient_id(p) {
            Some(pid) => Some(pid),
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    let actions: Option<Vec<&str>> =
        security_only.then(|| AuditAction::SECURITY.iter().map(|a| a.as_str()).collect());
    sqlx::query(
        "SELECT id, at_ms, actor, action, patient_id, detail FROM audit
         WHERE ($1::bigint IS NULL OR patient_id = $1)
           AND ($3::text[] IS NULL OR action = ANY($3))
         ORDER BY id DESC LIMIT $2",
    )
    .bind(pid)
    .bind(i64::from(limit))
    .bind(actions)
    .fetch_all(pool)
    .await
    .map_err(db_error)?
    .iter()
    .map(audit_record)
    .collect()
}

/// An audit row's first six columns: id, at_ms, actor, action,
/// patient_id, detail.
fn audit_record(r: &PgRow) -> StoreResult<AuditRecord> {
    let action: String = get(r, 3)?;
    Ok(AuditRecord {
        id: get(r, 0)?,
        entry: NewAudit {
            at_ms: get(r, 1)?,
            actor: get(r, 2)?,
            action: AuditAction::parse(&action)
                .ok_or_else(|| StoreError::Backend(format!("bad audit action {action:?}")))?,
            patient_id: get::<Option<i64>>(r, 4)?.map(patient_id),
            detail: get(r, 5)?,
        },
    })
}

pub(crate) async fn token_status(
    pool: &PgPool,
    hash: TokenHash,
) -> StoreResult<Option<TokenStatus>> {
    sqlx::query(
        "SELECT device_id, patient_id, expires_at_ms, used_at_ms, revoked_at_ms
         FROM tokens WHERE hash = $1",
    )
    .bind(&hash.0[..])
    .fetch_optional(pool)
    .await
    .map_err(db_error)?
    .map(|r| {
        Ok(TokenStatus {
            device_id: DeviceId(get(&r, 0)?),
            patient_id: patient_id(get(&r, 1)?),
            expires_at_ms: get(&r, 2)?,
            used_at_ms: get(&r, 3)?,
            revoked_at_ms: get(&r, 4)?,
        })
    })
    .transpose()
}

const ACCOUNT_COLUMNS: &str =
    "a.id, a.username, a.role, a.first_name, a.last_name, a.password_hash";

fn account_row(r: &PgRow) -> StoreResult<AccountRecord> {
    let role: String = get(r, 2)?;
    Ok(AccountRecord {
        account_id: AccountId(get(r, 0)?),
        username: get(r, 1)?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Backend(format!("bad stored role {role:?}")))?,
        first_name: get(r, 3)?,
        last_name: get(r, 4)?,
        password_hash: get(r, 5)?,
    })
}

pub(crate) async fn account(pool: &PgPool, username: &str) -> StoreResult<Option<AccountRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.username = $1"
    )))
    .bind(username)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?
    .as_ref()
    .map(account_row)
    .transpose()
}

pub(crate) async fn start_web_session(
    pool: &PgPool,
    account: AccountId,
    session: NewWebSession,
    now_ms: i64,
) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    let username: Option<String> = sqlx::query_scalar(
        "WITH s AS (
             INSERT INTO web_sessions (hash, account_id, created_at_ms, last_seen_ms, expires_at_ms)
             SELECT $1, id, $3, $3, $4 FROM accounts WHERE id = $2
             RETURNING account_id
         )
         SELECT a.username FROM s JOIN accounts a ON a.id = s.account_id",
    )
    .bind(&session.hash.0[..])
    .bind(account.0)
    .bind(now_ms)
    .bind(session.expires_at_ms)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    let username = username.ok_or_else(|| StoreError::NotFound("no such account".into()))?;
    insert_audit_on(&mut tx, &NewAudit::web_session(now_ms, &username, true)).await?;
    tx.commit().await.map_err(db_error)
}

pub(crate) async fn web_session(
    pool: &PgPool,
    hash: TokenHash,
    idle_timeout_ms: i64,
    now_ms: i64,
) -> StoreResult<Option<WebSession>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH s AS (
             UPDATE web_sessions SET last_seen_ms = $2
             WHERE hash = $1 AND ended_at_ms IS NULL AND expires_at_ms > $2
               AND last_seen_ms > $2 - $3
             RETURNING account_id, created_at_ms, expires_at_ms
         )
         SELECT {ACCOUNT_COLUMNS}, s.created_at_ms, s.expires_at_ms
         FROM s JOIN accounts a ON a.id = s.account_id"
    )))
    .bind(&hash.0[..])
    .bind(now_ms)
    .bind(idle_timeout_ms)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?;
    let Some(r) = row else {
        return Ok(None);
    };
    let a = account_row(&r)?;
    Ok(Some(WebSession {
        account_id: a.account_id,
        username: a.username,
        role: a.role,
        first_name: a.first_name,
        last_name: a.last_name,
        created_at_ms: get(&r, 6)?,
        expires_at_ms: get(&r, 7)?,
    }))
}

pub(crate) async fn end_web_session(
    pool: &PgPool,
    hash: TokenHash,
    now_ms: i64,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    let username: Option<String> = sqlx::query_scalar(
        "WITH s AS (
             UPDATE web_sessions SET ended_at_ms = $2 WHERE hash = $1 AND ended_at_ms IS NULL
             RETURNING account_id
         )
         SELECT a.username FROM s JOIN accounts a ON a.id = s.account_id",
    )
    .bind(&hash.0[..])
    .bind(now_ms)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    let Some(username) = username else {
        return Ok(false);
    };
    insert_audit_on(&mut tx, &NewAudit::web_session(now_ms, &username, false)).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

pub(crate) async fn patient_usernames_of(
    pool: &PgPool,
    physician: &str,
) -> StoreResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT a.username FROM patients p
         JOIN accounts a ON a.id = p.account_id
         JOIN accounts ph ON ph.id = p.physician_id
         WHERE ph.username = $1 ORDER BY a.last_name, a.first_name, a.username",
    )
    .bind(physician)
    .fetch_all(pool)
    .await
    .map_err(db_error)
}

pub(crate) async fn open_alarms(
    pool: &PgPool,
    patient: PatientId,
) -> StoreResult<Vec<StoredEvent>> {
    let Some(pid) = db_patient_id(patient) else {
        return Ok(Vec::new());
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE patient_id = $1 AND kind = 'alarm'
         AND NOT EXISTS (SELECT 1 FROM alarm_acks a WHERE a.event_id = e.id)
         ORDER BY id DESC LIMIT 100"
    )))
    .bind(pid)
    .fetch_all(pool)
    .await
    .map_err(db_error)?
    .iter()
    .map(event_row)
    .collect()
}

pub(crate) async fn acknowledge_alarm(
    pool: &PgPool,
    username: &str,
    event_id: i64,
    actor: &str,
    now_ms: i64,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    let patient = lock_patient(&mut tx, username).await?;
    let alarm: Option<String> = sqlx::query_scalar(
        "SELECT alarm FROM events WHERE id = $1 AND patient_id = $2 AND kind = 'alarm'",
    )
    .bind(event_id)
    .bind(patient.0 as i64)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    let alarm = alarm.ok_or_else(|| StoreError::no_alarm(event_id))?;
    let added = sqlx::query(
        "INSERT INTO alarm_acks (event_id, acked_at_ms, acked_by) VALUES ($1, $2, $3)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(now_ms)
    .bind(actor)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?
    .rows_affected();
    if added == 0 {
        return Ok(false);
    }
    insert_audit_on(
        &mut tx,
        &NewAudit::alarm_acknowledged(now_ms, actor, patient, &alarm, event_id),
    )
    .await?;
    notify(&mut tx, Change::AlarmAcknowledged { patient }).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

pub(crate) async fn username_of(pool: &PgPool, patient: PatientId) -> StoreResult<String> {
    sqlx::query_scalar(
        "SELECT a.username FROM patients p JOIN accounts a ON a.id = p.account_id WHERE p.id = $1",
    )
    .bind(db_patient_id(patient).unwrap_or(-1))
    .fetch_optional(pool)
    .await
    .map_err(db_error)?
    .ok_or_else(|| StoreError::NotFound(format!("no patient {}", patient.0)))
}

pub(crate) async fn suggest(
    pool: &PgPool,
    patient: PatientId,
    s: NewSuggestion,
    now_ms: i64,
) -> StoreResult<Option<i64>> {
    let username = username_of(pool, patient).await?;
    let mut tx = pool.begin().await.map_err(db_error)?;
    lock_patient(&mut tx, &username).await?;
    let pid = patient.0 as i64;
    let current = current_prescription(&mut tx, pid)
        .await?
        .map_or(0, |c| c.version);
    s.check(current, &limits_of(&mut tx, pid).await?)?;
    let pending = sqlx::query(
        "SELECT id, based_on_version FROM suggestions WHERE patient_id = $1 AND status = 'pending'",
    )
    .bind(pid)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    if let Some(row) = pending {
        let (id, based_on): (i64, i64) = (get(&row, 0)?, get(&row, 1)?);
        if based_on == i64::from(current) {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE suggestions SET status = 'superseded', decided_at_ms = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO suggestions (patient_id, based_on_version, volume_ul, rate_ul_h, reason, created_at_ms, status)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending') RETURNING id",
    )
    .bind(pid)
    .bind(i64::from(s.based_on_version))
    .bind(i64::from(s.volume_ul))
    .bind(i64::from(s.rate_ul_h))
    .bind(&s.reason)
    .bind(now_ms)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_error)?;
    insert_audit_on(&mut tx, &NewAudit::suggestion_made(now_ms, patient, id, &s)).await?;
    notify(&mut tx, Change::Suggestion { patient }).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(Some(id))
}

pub(crate) async fn pending_suggestions(
    pool: &PgPool,
    patient: PatientId,
) -> StoreResult<Vec<Suggestion>> {
    let Some(pid) = db_patient_id(patient) else {
        return Ok(Vec::new());
    };
    sqlx::query(
        "SELECT id, created_at_ms, based_on_version, volume_ul, rate_ul_h, reason FROM suggestions
         WHERE patient_id = $1 AND status = 'pending' ORDER BY id DESC",
    )
    .bind(pid)
    .fetch_all(pool)
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| {
        Ok(Suggestion {
            id: get(r, 0)?,
            created_at_ms: get(r, 1)?,
            proposal: NewSuggestion {
                based_on_version: get_u32(r, 2)?,
                volume_ul: get_u32(r, 3)?,
                rate_ul_h: get_u32(r, 4)?,
                reason: get(r, 5)?,
            },
        })
    })
    .collect()
}

pub(crate) async fn decide_suggestion(
    pool: &PgPool,
    username: &str,
    id: i64,
    approve: bool,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Decision> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    let patient = lock_patient(&mut tx, username).await?;
    let pid = patient.0 as i64;
    let row = sqlx::query(
        "SELECT based_on_version, volume_ul, rate_ul_h FROM suggestions
         WHERE id = $1 AND patient_id = $2 AND status = 'pending'",
    )
    .bind(id)
    .bind(pid)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?
    .ok_or_else(|| StoreError::no_suggestion(id))?;
    let (based_on, volume_ul, rate_ul_h) =
        (get_u32(&row, 0)?, get_u32(&row, 1)?, get_u32(&row, 2)?);
    let decision = if approve {
        let current = current_prescription(&mut tx, pid)
            .await?
            .map_or(0, |c| c.version);
        if current != based_on {
            return Err(StoreError::stale_suggestion(based_on, current));
        }
        let p = NewPrescription {
            volume_ul,
            rate_ul_h,
            state: InfusionState::Run,
        };
        Decision::Approved(write_prescription(&mut tx, patient, &p, actor, now_ms).await?)
    } else {
        Decision::Rejected
    };
    let (status, version) = match decision {
        Decision::Approved(v) => ("approved", Some(i64::from(v))),
        Decision::Rejected => ("rejected", None),
    };
    sqlx::query(
        "UPDATE suggestions SET status = $2, decided_at_ms = $3, decided_by = $4, approved_version = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(now_ms)
    .bind(actor)
    .bind(version)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    let approved_as = match decision {
        Decision::Approved(v) => Some(v),
        Decision::Rejected => None,
    };
    insert_audit_on(
        &mut tx,
        &NewAudit::suggestion_decided(now_ms, actor, patient, id, approved_as),
    )
    .await?;
    notify(&mut tx, Change::Suggestion { patient }).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(decision)
}

pub(crate) async fn accounts(pool: &PgPool) -> StoreResult<Vec<AccountOverview>> {
    sqlx::query(
        "SELECT a.username, a.role, a.first_name, a.last_name, i.name, ph.username, d.mac
         FROM accounts a
         LEFT JOIN institutions i ON i.id = a.institution_id
         LEFT JOIN patients p ON p.account_id = a.id
         LEFT JOIN accounts ph ON ph.id = p.physician_id
         LEFT JOIN devices d ON d.patient_id = p.id AND d.retired_at_ms IS NULL
         ORDER BY a.role, a.username",
    )
    .fetch_all(pool)
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| {
        let role: String = get(r, 1)?;
        Ok(AccountOverview {
            username: get(r, 0)?,
            role: Role::parse(&role)
                .ok_or_else(|| StoreError::Backend(format!("bad stored role {role:?}")))?,
            first_name: get(r, 2)?,
            last_name: get(r, 3)?,
            institution: get(r, 4)?,
            physician: get(r, 5)?,
            device: get(r, 6)?,
        })
    })
    .collect()
}

/// A login attempt, in one transaction (see the SQLite backend). The
/// upsert's row lock orders concurrent attempts on a key, so a burst of
/// guesses is counted exactly.
pub(crate) async fn login_attempt(
    pool: &PgPool,
    keys: &[ThrottleKey],
    now_ms: i64,
) -> StoreResult<Attempt> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
    let until: Option<i64> =
        sqlx::query_scalar("SELECT max(locked_until_ms) FROM login_throttle WHERE key = ANY($1)")
            .bind(&names)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
    let locked = until.map_or(0, |u| u - now_ms);
    if locked > 0 {
        return Ok(Attempt::Locked {
            retry_after_ms: locked,
        });
    }
    for k in keys.iter().filter(|k| k.up_front) {
        count_attempt(&mut tx, k, now_ms).await?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(Attempt::Allowed)
}

/// A failed check: counted against the keys not counted up front.
pub(crate) async fn login_failed(
    pool: &PgPool,
    keys: &[ThrottleKey],
    now_ms: i64,
) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    for k in keys.iter().filter(|k| !k.up_front) {
        count_attempt(&mut tx, k, now_ms).await?;
    }
    tx.commit().await.map_err(db_error)
}

/// A success: clears the keys counted up front.
pub(crate) async fn login_succeeded(pool: &PgPool, keys: &[ThrottleKey]) -> StoreResult<()> {
    let names: Vec<&str> = keys
        .iter()
        .filter(|k| k.up_front)
        .map(|k| k.key.as_str())
        .collect();
    sqlx::query("DELETE FROM login_throttle WHERE key = ANY($1)")
        .bind(&names)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(db_error)
}

/// Counts one attempt against `k` (see the SQLite backend).
async fn count_attempt(conn: &mut PgConnection, k: &ThrottleKey, now_ms: i64) -> StoreResult<()> {
    let attempts: i64 = sqlx::query_scalar(
        "INSERT INTO login_throttle (key, attempts, last_attempt_ms, locked_until_ms)
         VALUES ($1, 1, $2, 0)
         ON CONFLICT (key) DO UPDATE SET
             attempts = CASE WHEN $2 - login_throttle.last_attempt_ms > $3 THEN 1
                             ELSE login_throttle.attempts + 1 END,
             last_attempt_ms = $2
         RETURNING attempts",
    )
    .bind(&k.key)
    .bind(now_ms)
    .bind(throttle::WINDOW_MS)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)?;
    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
    let lock = k.backoff.lockout_ms(attempts);
    if lock > 0 {
        sqlx::query("UPDATE login_throttle SET locked_until_ms = $2 WHERE key = $1")
            .bind(&k.key)
            .bind(now_ms + lock)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        if attempts == k.backoff.free + 1 {
            insert_audit_on(conn, &NewAudit::locked_out(now_ms, &k.key, attempts, lock)).await?;
        }
    }
    Ok(())
}

pub(crate) async fn find_server_secret(pool: &PgPool, name: &str) -> StoreResult<Option<[u8; 32]>> {
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await
            .map_err(db_error)?;
    stored.map(|s| secret_bytes(name, s)).transpose()
}

pub(crate) async fn remove_server_secrets(
    pool: &PgPool,
    names: &[&str],
    actor: &str,
    now_ms: i64,
) -> StoreResult<u64> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let removed = sqlx::query("DELETE FROM server_secrets WHERE name = ANY($1)")
        .bind(&names)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
    if removed > 0 {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        insert_audit_on(&mut tx, &NewAudit::server_keys_moved(now_ms, actor, &names)).await?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(removed)
}

/// A stored server secret as the 32 bytes every one of them is.
fn secret_bytes(name: &str, stored: Vec<u8>) -> StoreResult<[u8; 32]> {
    stored
        .try_into()
        .map_err(|_| StoreError::Backend(format!("server secret {name:?} is not 32 bytes")))
}

pub(crate) async fn server_secret(
    pool: &PgPool,
    name: &str,
    fresh: [u8; 32],
    now_ms: i64,
) -> StoreResult<[u8; 32]> {
    sqlx::query(
        "INSERT INTO server_secrets (name, secret, created_at_ms) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(&fresh[..])
    .bind(now_ms)
    .execute(pool)
    .await
    .map_err(db_error)?;
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .map_err(db_error)?;
    secret_bytes(name, stored)
}
