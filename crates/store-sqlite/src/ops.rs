//! The SQL of each store operation. Writes run on the writer thread inside
//! their own savepoint ([`WriteCtx`]); reads run on a reader connection.

use infusion_protocol::{
    Alarm, Event, EventBody, Index, InfusionState, MacAddress, PatientId, PatientLimits, Progress,
    PublicKey, StateChange, Vitals,
};
use infusion_store::audit_chain::chain_hash;
use infusion_store::throttle::{self, Attempt, ThrottleKey};
use infusion_store::{
    AccountId, AccountOverview, AccountRecord, AuditAction, AuditHead, AuditRecord, BoundDevice,
    ChainedAudit, Change, DEFAULT_LIMITS, Decision, DeviceId, LoginRecord, NewAudit, NewPatient,
    NewPhysician, NewPrescription, NewSuggestion, NewToken, NewWebSession, PatientSummary,
    PolledIndex, Prescription, PresentedToken, ReportOutcome, Role, StoreError, StoreResult,
    StoredEvent, Suggestion, TokenHash, TokenStatus, WebSession, alarm_of, check_account_names,
    check_institution, check_limits, check_prescription, check_presented,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::writer::{Cached, WriteCtx, backend};

fn db_patient_id(id: PatientId) -> Option<i64> {
    i64::try_from(id.0).ok()
}

fn patient_id(v: i64) -> PatientId {
    PatientId(v as u64)
}

fn read_u32(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u32> {
    row.get::<_, i64>(i)
        .and_then(|v| u32::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v)))
}

fn read_state(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<InfusionState> {
    let s: String = row.get(i)?;
    match s.as_str() {
        "run" => Ok(InfusionState::Run),
        "hold" => Ok(InfusionState::Hold),
        _ => Err(rusqlite::Error::InvalidColumnType(
            i,
            "state".into(),
            rusqlite::types::Type::Text,
        )),
    }
}

fn read_mac(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<MacAddress> {
    let s: String = row.get(i)?;
    MacAddress::parse(&s).map_err(|_| {
        rusqlite::Error::InvalidColumnType(i, "mac".into(), rusqlite::types::Type::Text)
    })
}

/// Revokes `device`'s token chain, the one a replayed token belonged to:
/// marks its live tokens revoked and raises the device's token generation,
/// so that no token issued before now works again.
pub(crate) fn revoke_chain(conn: &Connection, device: DeviceId, now_ms: i64) -> StoreResult<()> {
    conn.exec(
        "UPDATE tokens SET revoked_at_ms = ?1
         WHERE device_id = ?2 AND used_at_ms IS NULL AND revoked_at_ms IS NULL",
        params![now_ms, device.0],
    )
    .and_then(|_| {
        conn.exec(
            "UPDATE devices SET token_generation = token_generation + 1 WHERE id = ?1",
            [device.0],
        )
    })
    .map(|_| ())
    .map_err(backend)
}

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
            e.patient_id.and_then(db_patient_id),
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
    let hash32 = |v: Option<Vec<u8>>| v.and_then(|v| <[u8; 32]>::try_from(v).ok());
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT id, at_ms, actor, action, patient_id, detail, prev_hash, hash FROM audit {tail}"
        ))
        .map_err(backend)?;
    st.query_map(params, |r| {
        let AuditRecord { id, entry } = audit_record(r)?;
        Ok(ChainedAudit {
            id,
            entry,
            prev_hash: hash32(r.get(6)?),
            hash: hash32(r.get(7)?),
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

/// Audit rows after `after_id`, in id order, at most `limit`.
pub(crate) fn audit_chain(
    conn: &Connection,
    after_id: i64,
    limit: u32,
) -> StoreResult<Vec<ChainedAudit>> {
    audit_rows(
        conn,
        "WHERE id > ?1 ORDER BY id LIMIT ?2",
        params![after_id, limit],
    )
}

fn username_taken(conn: &Connection, username: &str) -> StoreResult<bool> {
    conn.row(
        "SELECT 1 FROM accounts WHERE username = ?1",
        [username],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
    .map_err(backend)
}

pub(crate) fn create_staff(
    cx: &mut WriteCtx<'_>,
    new: NewPhysician,
    role: Role,
    actor: &str,
    now_ms: i64,
) -> StoreResult<AccountId> {
    check_account_names(&new.username, &new.first_name, &new.last_name)?;
    check_institution(&new.institution)?;
    let conn = cx.conn;
    if username_taken(conn, &new.username)? {
        return Err(StoreError::username_taken(&new.username));
    }
    conn.exec(
        "INSERT INTO institutions (name, created_at_ms) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
        params![new.institution, now_ms],
    )
    .map_err(backend)?;
    conn.exec(
        "INSERT INTO accounts (username, password_hash, role, first_name, last_name, institution_id, created_at_ms)
         SELECT ?1, ?2, ?7, ?3, ?4, id, ?5 FROM institutions WHERE name = ?6",
        params![new.username, new.password_hash, new.first_name, new.last_name, now_ms, new.institution, role.as_str()],
    )
    .map_err(backend)?;
    let id = conn.last_insert_rowid();
    insert_audit(
        conn,
        &NewAudit::staff_created(now_ms, actor, role, &new.username, &new.institution),
    )?;
    Ok(AccountId(id))
}

pub(crate) fn create_patient(
    cx: &mut WriteCtx<'_>,
    new: NewPatient,
    actor: &str,
    now_ms: i64,
) -> StoreResult<PatientId> {
    check_account_names(&new.username, &new.first_name, &new.last_name)?;
    let conn = cx.conn;
    let physician: Option<(i64, Option<i64>)> = conn
        .query_row(
            "SELECT id, institution_id FROM accounts WHERE username = ?1 AND role = 'physician'",
            [&new.physician_username],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    let Some((physician_id, institution_id)) = physician else {
        return Err(StoreError::no_physician(&new.physician_username));
    };
    if username_taken(conn, &new.username)? {
        return Err(StoreError::username_taken(&new.username));
    }
    conn.exec(
        "INSERT INTO accounts (username, password_hash, role, first_name, last_name, institution_id, created_at_ms)
         VALUES (?1, ?2, 'patient', ?3, ?4, ?5, ?6)",
        params![new.username, new.password_hash, new.first_name, new.last_name, institution_id, now_ms],
    )
    .map_err(backend)?;
    let account_id = conn.last_insert_rowid();
    conn.exec(
        "INSERT INTO patients (account_id, physician_id) VALUES (?1, ?2)",
        params![account_id, physician_id],
    )
    .map_err(backend)?;
    let pid = conn.last_insert_rowid();
    conn.exec(
        "INSERT INTO limits (patient_id, min_rate_ul_h, max_rate_ul_h, max_volume_ul, updated_at_ms, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            pid,
            DEFAULT_LIMITS.min_rate_ul_h,
            DEFAULT_LIMITS.max_rate_ul_h,
            DEFAULT_LIMITS.max_volume_ul,
            now_ms,
            actor
        ],
    )
    .map_err(backend)?;
    let patient = patient_id(pid);
    insert_audit(
        conn,
        &NewAudit::patient_created(
            now_ms,
            actor,
            patient,
            &new.username,
            &new.physician_username,
        ),
    )?;
    Ok(patient)
}

fn patient_by_username(conn: &Connection, username: &str) -> StoreResult<PatientId> {
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

pub(crate) fn bind_device(
    cx: &mut WriteCtx<'_>,
    username: &str,
    mac: MacAddress,
    public_key: PublicKey,
    actor: &str,
    now_ms: i64,
) -> StoreResult<DeviceId> {
    let conn = cx.conn;
    let patient = patient_by_username(conn, username)?;
    let pid = patient.0 as i64;
    let mac_text = mac.to_string();
    let holder: Option<(i64, i64)> = conn
        .query_row(
            "SELECT id, patient_id FROM devices WHERE mac = ?1 AND retired_at_ms IS NULL",
            [&mac_text],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    let id = match holder {
        Some((id, holder)) if holder == pid => {
            // A new secret for the same pump: the old one stops working.
            conn.exec(
                "UPDATE devices SET public_key = ?1 WHERE id = ?2",
                params![&public_key.0[..], id],
            )
            .map_err(backend)?;
            id
        }
        Some(_) => {
            return Err(StoreError::device_taken(&mac));
        }
        None => {
            conn.exec(
                "UPDATE devices SET retired_at_ms = ?1 WHERE patient_id = ?2 AND retired_at_ms IS NULL",
                params![now_ms, pid],
            )
            .map_err(backend)?;
            conn.exec(
                "INSERT INTO devices (patient_id, mac, registered_at_ms, public_key) VALUES (?1, ?2, ?3, ?4)",
                params![pid, mac_text, now_ms, &public_key.0[..]],
            )
            .map_err(backend)?;
            conn.last_insert_rowid()
        }
    };
    insert_audit(
        conn,
        &NewAudit::device_bound(now_ms, actor, patient, &mac_text, username),
    )?;
    Ok(DeviceId(id))
}

fn limits_of(conn: &Connection, pid: i64) -> StoreResult<PatientLimits> {
    conn.prepare_cached(
        "SELECT min_rate_ul_h, max_rate_ul_h, max_volume_ul FROM limits WHERE patient_id = ?1",
    )
    .and_then(|mut st| {
        st.query_row([pid], |r| {
            Ok(PatientLimits {
                min_rate_ul_h: read_u32(r, 0)?,
                max_rate_ul_h: read_u32(r, 1)?,
                max_volume_ul: read_u32(r, 2)?,
            })
        })
    })
    .map_err(backend)
}

fn current_prescription(conn: &Connection, pid: i64) -> StoreResult<Option<Prescription>> {
    conn.prepare_cached(
        "SELECT version, volume_ul, rate_ul_h, state, created_at_ms, created_by, fetched_at_ms FROM prescriptions
         WHERE patient_id = ?1 ORDER BY version DESC LIMIT 1",
    )
    .and_then(|mut st| st.query_row([pid], prescription_row).optional())
    .map_err(backend)
}

fn prescription_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Prescription> {
    Ok(Prescription {
        version: read_u32(r, 0)?,
        volume_ul: read_u32(r, 1)?,
        rate_ul_h: read_u32(r, 2)?,
        state: read_state(r, 3)?,
        created_at_ms: r.get(4)?,
        created_by: r.get(5)?,
        fetched_at_ms: r.get(6)?,
    })
}

pub(crate) fn set_limits(
    cx: &mut WriteCtx<'_>,
    username: &str,
    limits: PatientLimits,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    check_limits(&limits)?;
    let conn = cx.conn;
    let patient = patient_by_username(conn, username)?;
    let pid = patient.0 as i64;
    cx.announce(Change::Limits { patient });
    if let Some(p) = current_prescription(conn, pid)?
        && !limits.allows(p.volume_ul, p.rate_ul_h)
    {
        return Err(StoreError::limits_exclude(&p));
    }
    conn.exec(
        "UPDATE limits SET min_rate_ul_h = ?1, max_rate_ul_h = ?2, max_volume_ul = ?3, updated_at_ms = ?4, updated_by = ?5
         WHERE patient_id = ?6",
        params![limits.min_rate_ul_h, limits.max_rate_ul_h, limits.max_volume_ul, now_ms, actor, pid],
    )
    .map_err(backend)?;
    insert_audit(
        conn,
        &NewAudit::limits_changed(now_ms, actor, patient, &limits),
    )
}

pub(crate) fn set_prescription(
    cx: &mut WriteCtx<'_>,
    username: &str,
    p: NewPrescription,
    actor: &str,
    now_ms: i64,
) -> StoreResult<u32> {
    let conn = cx.conn;
    let patient = patient_by_username(conn, username)?;
    let pid = patient.0 as i64;
    check_prescription(&p, &limits_of(conn, pid)?)?;
    let version = current_prescription(conn, pid)?.map_or(0, |c| c.version) + 1;
    cx.announce(Change::Prescription { patient, version });
    conn.exec(
        "INSERT INTO prescriptions (patient_id, version, volume_ul, rate_ul_h, state, created_at_ms, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![pid, version, p.volume_ul, p.rate_ul_h, p.state.as_str(), now_ms, actor],
    )
    .map_err(backend)?;
    insert_audit(
        conn,
        &NewAudit::prescription_changed(now_ms, actor, patient, version, &p),
    )?;
    Ok(version)
}

pub(crate) fn login_record(conn: &Connection, username: &str) -> StoreResult<Option<LoginRecord>> {
    conn.prepare_cached(
        "SELECT a.id, p.id, a.password_hash, a.first_name, a.last_name, COALESCE(i.name, ''), d.id, d.mac,
                d.public_key, d.login_nonce
         FROM accounts a
         JOIN patients p ON p.account_id = a.id
         LEFT JOIN institutions i ON i.id = a.institution_id
         LEFT JOIN devices d ON d.patient_id = p.id AND d.retired_at_ms IS NULL
         WHERE a.username = ?1 AND a.role = 'patient'",
    )
    .and_then(|mut st| {
        st.query_row([username], |r| {
            let device = match r.get::<_, Option<i64>>(6)? {
                Some(id) => Some(BoundDevice {
                    id: DeviceId(id),
                    mac: read_mac(r, 7)?,
                    public_key: r
                        .get::<_, Option<[u8; 32]>>(8)?
                        .map(infusion_protocol::HexBytes),
                    login_nonce: r.get(9)?,
                }),
                None => None,
            };
            Ok(LoginRecord {
                account_id: AccountId(r.get(0)?),
                patient_id: patient_id(r.get(1)?),
                password_hash: r.get(2)?,
                first_name: r.get(3)?,
                last_name: r.get(4)?,
                institution: r.get(5)?,
                device,
            })
        })
        .optional()
    })
    .map_err(backend)
}

fn insert_token(
    conn: &Connection,
    t: &NewToken,
    device: i64,
    pid: i64,
    now_ms: i64,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO tokens (hash, device_id, patient_id, issued_at_ms, expires_at_ms, generation)
         SELECT ?1, ?2, ?3, ?4, ?5, token_generation FROM devices WHERE id = ?2",
    )
    .and_then(|mut st| st.execute(params![&t.hash.0[..], device, pid, now_ms, t.expires_at_ms]))
    .map(|_| ())
    .map_err(backend)
}

pub(crate) fn start_device_session(
    cx: &mut WriteCtx<'_>,
    record: &LoginRecord,
    device: DeviceId,
    nonce: Option<[u8; 16]>,
    token: NewToken,
    now_ms: i64,
) -> StoreResult<()> {
    let conn = cx.conn;
    let pid = db_patient_id(record.patient_id).ok_or(StoreError::Forbidden)?;
    let mac: Option<String> = conn
        .query_row(
            "SELECT mac FROM devices WHERE id = ?1 AND patient_id = ?2 AND retired_at_ms IS NULL",
            params![device.0, pid],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    // The binding changed between the lookup and now: refuse like a wrong MAC.
    let Some(mac) = mac else {
        return Err(StoreError::Forbidden);
    };
    if let Some(nonce) = nonce {
        let newer = conn
            .exec(
                "UPDATE devices SET login_nonce = ?1
                 WHERE id = ?2 AND (login_nonce IS NULL OR login_nonce < ?1)",
                params![&nonce[..], device.0],
            )
            .map_err(backend)?;
        if newer != 1 {
            return Err(StoreError::NonceReplayed);
        }
    }
    insert_token(conn, &token, device.0, pid, now_ms)?;
    conn.exec(
        "UPDATE devices SET last_seen_ms = ?1 WHERE id = ?2",
        params![now_ms, device.0],
    )
    .map_err(backend)?;
    insert_audit(
        conn,
        &NewAudit::device_login(now_ms, &mac, record.patient_id),
    )
}

/// Consumes the presented token for `patient`, or says why not. On refusal
/// the audit entry is kept and nothing else changes.
fn consume_token(
    cx: &mut WriteCtx<'_>,
    presented: TokenHash,
    patient: PatientId,
    now_ms: i64,
) -> StoreResult<(i64, i64, String)> {
    let conn = cx.conn;
    let row = conn
        .prepare_cached(
            "SELECT t.device_id, t.patient_id, t.expires_at_ms, t.used_at_ms, d.mac, d.retired_at_ms,
                    t.revoked_at_ms IS NOT NULL OR t.generation <> d.token_generation
             FROM tokens t JOIN devices d ON d.id = t.device_id WHERE t.hash = ?1",
        )
        .and_then(|mut st| {
            st.query_row([&presented.0[..]], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    PresentedToken {
                        device: DeviceId(r.get(0)?),
                        owner: patient_id(r.get(1)?),
                        expires_at_ms: r.get(2)?,
                        used_at_ms: r.get(3)?,
                        mac: r.get(4)?,
                        device_retired: r.get::<_, Option<i64>>(5)?.is_some(),
                        revoked: r.get(6)?,
                    },
                ))
            })
            .optional()
        })
        .map_err(backend)?;
    if let Err(refusal) = check_presented(row.as_ref().map(|(_, t)| t), patient, now_ms) {
        cx.keep_refusal(&refusal);
        return Err(refusal.error);
    }
    let Some((device, token)) = row else {
        return Err(StoreError::TokenInvalid);
    };
    let changed = conn
        .prepare_cached("UPDATE tokens SET used_at_ms = ?1 WHERE hash = ?2 AND used_at_ms IS NULL")
        .and_then(|mut st| st.execute(params![now_ms, &presented.0[..]]))
        .map_err(backend)?;
    if changed != 1 {
        // Cannot happen on the single writer; kept so that the guarantee
        // does not rest on that.
        return Err(StoreError::TokenUsed);
    }
    conn.prepare_cached("UPDATE devices SET last_seen_ms = ?1 WHERE id = ?2")
        .and_then(|mut st| st.execute(params![now_ms, device]))
        .map_err(backend)?;
    Ok((device, token.owner.0 as i64, token.mac))
}

pub(crate) fn poll_index(
    cx: &mut WriteCtx<'_>,
    presented: TokenHash,
    patient: PatientId,
    next: NewToken,
    now_ms: i64,
) -> StoreResult<PolledIndex> {
    let (device, pid, mac) = consume_token(cx, presented, patient, now_ms)?;
    let mac =
        MacAddress::parse(&mac).map_err(|_| StoreError::Backend(format!("bad MAC {mac:?}")))?;
    let conn = cx.conn;
    let limits = limits_of(conn, pid)?;
    let index = match current_prescription(conn, pid)? {
        Some(p) if p.fetched_at_ms.is_none() => {
            conn.prepare_cached(
                "UPDATE prescriptions SET fetched_at_ms = ?1 WHERE patient_id = ?2 AND version = ?3",
            )
            .and_then(|mut st| st.execute(params![now_ms, pid, p.version]))
            .map_err(backend)?;
            Index {
                version: p.version,
                volume_ul: p.volume_ul,
                rate_ul_h: p.rate_ul_h,
                state: p.state,
                limits,
            }
        }
        Some(p) => Index {
            version: p.version,
            volume_ul: p.volume_ul,
            rate_ul_h: p.rate_ul_h,
            state: p.state,
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
    insert_token(conn, &next, device, pid, now_ms)?;
    Ok(PolledIndex { index, mac })
}

pub(crate) fn report(
    cx: &mut WriteCtx<'_>,
    presented: TokenHash,
    patient: PatientId,
    events: &[Event],
    next: NewToken,
    now_ms: i64,
) -> StoreResult<ReportOutcome> {
    let (device, pid, _) = consume_token(cx, presented, patient, now_ms)?;
    let conn = cx.conn;
    let mut outcome = ReportOutcome::default();
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO events (device_id, patient_id, seq, uptime_ms, kind, delivered_ul, rate_ul_h,
                index_version, state, alarm, heart_rate_bpm, spo2_pct, tremor_score, received_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (device_id, seq) DO NOTHING",
        )
        .map_err(backend)?;
    let mut alarms = Vec::new();
    for e in events {
        let w = infusion_protocol::WireEvent::from(*e);
        let n = insert
            .execute(params![
                device,
                pid,
                e.seq,
                e.uptime_ms as i64,
                w.kind.as_str(),
                w.delivered_ul,
                w.rate_ul_h,
                w.index_version,
                w.state.map(StateChange::as_str),
                w.alarm.map(Alarm::as_str),
                w.heart_rate_bpm,
                w.spo2_pct,
                w.tremor_score,
                now_ms
            ])
            .map_err(backend)?;
        if n == 1 {
            outcome.accepted += 1;
            if let Some(a) = alarm_of(&e.body) {
                alarms.push((e.seq, a));
            }
        } else {
            outcome.duplicates += 1;
        }
    }
    drop(insert);
    if outcome.accepted > 0 {
        cx.announce(Change::Events {
            patient: patient_id(pid),
        });
    }
    if !alarms.is_empty() {
        let mac: String = conn
            .query_row("SELECT mac FROM devices WHERE id = ?1", [device], |r| {
                r.get(0)
            })
            .map_err(backend)?;
        for (seq, a) in alarms {
            cx.announce(Change::Alarm {
                patient: patient_id(pid),
                alarm: a,
            });
            insert_audit(
                conn,
                &NewAudit::alarm(now_ms, &mac, patient_id(pid), a, seq),
            )?;
        }
    }
    insert_token(conn, &next, device, pid, now_ms)?;
    Ok(outcome)
}

pub(crate) fn prune_tokens(cx: &mut WriteCtx<'_>, before_ms: i64) -> StoreResult<u64> {
    let tokens = cx
        .conn
        .execute("DELETE FROM tokens WHERE expires_at_ms < ?1", [before_ms])
        .map_err(backend)?;
    let sessions = cx
        .conn
        .execute(
            "DELETE FROM web_sessions WHERE expires_at_ms < ?1 OR ended_at_ms < ?1",
            [before_ms],
        )
        .map_err(backend)?;
    Ok((tokens + sessions) as u64)
}

pub(crate) fn patient_summary(conn: &Connection, username: &str) -> StoreResult<PatientSummary> {
    let row = conn
        .query_row(
            "SELECT p.id, a.username, a.first_name, a.last_name, ph.username, d.mac, d.last_seen_ms
             FROM patients p
             JOIN accounts a ON a.id = p.account_id
             JOIN accounts ph ON ph.id = p.physician_id
             LEFT JOIN devices d ON d.patient_id = p.id AND d.retired_at_ms IS NULL
             WHERE a.username = ?1",
            [username],
            |r| {
                let device = match r.get::<_, Option<String>>(5)? {
                    Some(_) => Some(read_mac(r, 5)?),
                    None => None,
                };
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    device,
                    r.get::<_, Option<i64>>(6)?,
                ))
            },
        )
        .optional()
        .map_err(backend)?
        .ok_or_else(|| StoreError::no_patient(username))?;
    let (pid, username, first_name, last_name, physician_username, device, last_contact_ms) = row;
    Ok(PatientSummary {
        patient_id: patient_id(pid),
        username,
        first_name,
        last_name,
        physician_username,
        device,
        limits: limits_of(conn, pid)?,
        prescription: current_prescription(conn, pid)?,
        last_contact_ms,
    })
}

pub(crate) fn prescriptions(
    conn: &Connection,
    patient: PatientId,
) -> StoreResult<Vec<Prescription>> {
    let Some(pid) = db_patient_id(patient) else {
        return Ok(Vec::new());
    };
    let mut st = conn
        .prepare_cached(
            "SELECT version, volume_ul, rate_ul_h, state, created_at_ms, created_by, fetched_at_ms FROM prescriptions
             WHERE patient_id = ?1 ORDER BY version",
        )
        .map_err(backend)?;
    st.query_map([pid], prescription_row)
        .and_then(|rows| rows.collect())
        .map_err(backend)
}

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::InvalidColumnType(i, what.into(), rusqlite::types::Type::Text)
    };
    let kind: String = r.get(5)?;
    let body = match kind.as_str() {
        "progress" => EventBody::Progress(Progress {
            delivered_ul: read_u32(r, 6)?,
            rate_ul_h: read_u32(r, 7)?,
            index_version: read_u32(r, 8)?,
        }),
        "state" => {
            let s: String = r.get(9)?;
            EventBody::State(StateChange::parse(&s).ok_or_else(|| bad(9, "state"))?)
        }
        "alarm" => {
            let s: String = r.get(10)?;
            EventBody::Alarm(Alarm::parse(&s).ok_or_else(|| bad(10, "alarm"))?)
        }
        "vitals" => EventBody::Vitals(Vitals {
            heart_rate_bpm: r.get(11)?,
            spo2_pct: r.get(12)?,
            tremor_score: r.get(13)?,
        }),
        _ => return Err(bad(5, "kind")),
    };
    Ok(StoredEvent {
        id: r.get(0)?,
        device_id: DeviceId(r.get(1)?),
        seq: read_u32(r, 2)?,
        uptime_ms: r.get::<_, i64>(3)? as u64,
        received_at_ms: r.get(4)?,
        body,
    })
}

const EVENT_COLUMNS: &str =
    "id, device_id, seq, uptime_ms, received_at_ms, kind, delivered_ul, rate_ul_h,
    index_version, state, alarm, heart_rate_bpm, spo2_pct, tremor_score";

/// Events after `after_id`, oldest first; or with `newest_first`, the
/// newest (and `after_id` ignored).
pub(crate) fn events(
    conn: &Connection,
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
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE patient_id = ?1 AND id > ?2 ORDER BY id {order} LIMIT ?3"
        ))
        .map_err(backend)?;
    st.query_map(params![pid, after, limit], event_row)
        .and_then(|rows| rows.collect())
        .map_err(backend)
}

pub(crate) fn patient_usernames_of(conn: &Connection, physician: &str) -> StoreResult<Vec<String>> {
    let mut st = conn
        .prepare_cached(
            "SELECT a.username FROM patients p
             JOIN accounts a ON a.id = p.account_id
             JOIN accounts ph ON ph.id = p.physician_id
             WHERE ph.username = ?1 ORDER BY a.last_name, a.first_name, a.username",
        )
        .map_err(backend)?;
    st.query_map([physician], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(backend)
}

/// The newest audit entries (of one patient, or all), newest first; with
/// `security_only`, only the [`AuditAction::SECURITY`] actions.
pub(crate) fn audit_log(
    conn: &Connection,
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
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT id, at_ms, actor, action, patient_id, detail FROM audit
             WHERE {patient} {actions} ORDER BY id DESC LIMIT ?2"
        ))
        .map_err(backend)?;
    st.query_map(params![pid, limit], audit_record)
        .and_then(|rows| rows.collect())
        .map_err(backend)
}

/// An audit row's first six columns: id, at_ms, actor, action,
/// patient_id, detail.
fn audit_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
    let action: String = r.get(3)?;
    Ok(AuditRecord {
        id: r.get(0)?,
        entry: NewAudit {
            at_ms: r.get(1)?,
            actor: r.get(2)?,
            action: AuditAction::parse(&action).ok_or_else(|| {
                rusqlite::Error::InvalidColumnType(3, "action".into(), rusqlite::types::Type::Text)
            })?,
            patient_id: r.get::<_, Option<i64>>(4)?.map(patient_id),
            detail: r.get(5)?,
        },
    })
}

pub(crate) fn token_status(conn: &Connection, hash: TokenHash) -> StoreResult<Option<TokenStatus>> {
    conn.row(
        "SELECT device_id, patient_id, expires_at_ms, used_at_ms, revoked_at_ms
         FROM tokens WHERE hash = ?1",
        [&hash.0[..]],
        |r| {
            Ok(TokenStatus {
                device_id: DeviceId(r.get(0)?),
                patient_id: patient_id(r.get(1)?),
                expires_at_ms: r.get(2)?,
                used_at_ms: r.get(3)?,
                revoked_at_ms: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(backend)
}

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRecord> {
    let role: String = r.get(2)?;
    Ok(AccountRecord {
        account_id: AccountId(r.get(0)?),
        username: r.get(1)?,
        role: Role::parse(&role).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(2, "role".into(), rusqlite::types::Type::Text)
        })?,
        first_name: r.get(3)?,
        last_name: r.get(4)?,
        password_hash: r.get(5)?,
    })
}

const ACCOUNT_COLUMNS: &str = "id, username, role, first_name, last_name, password_hash";

pub(crate) fn account(conn: &Connection, username: &str) -> StoreResult<Option<AccountRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = ?1"
    ))
    .and_then(|mut st| st.query_row([username], account_row).optional())
    .map_err(backend)
}

pub(crate) fn start_web_session(
    cx: &mut WriteCtx<'_>,
    account: AccountId,
    session: NewWebSession,
    now_ms: i64,
) -> StoreResult<()> {
    let conn = cx.conn;
    let username: Option<String> = conn
        .query_row(
            "SELECT username FROM accounts WHERE id = ?1",
            [account.0],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    let username = username.ok_or_else(|| StoreError::NotFound("no such account".into()))?;
    conn.exec(
        "INSERT INTO web_sessions (hash, account_id, created_at_ms, last_seen_ms, expires_at_ms)
         VALUES (?1, ?2, ?3, ?3, ?4)",
        params![
            &session.hash.0[..],
            account.0,
            now_ms,
            session.expires_at_ms
        ],
    )
    .map_err(backend)?;
    insert_audit(conn, &NewAudit::web_session(now_ms, &username, true))
}

pub(crate) fn web_session(
    cx: &mut WriteCtx<'_>,
    hash: TokenHash,
    idle_timeout_ms: i64,
    now_ms: i64,
) -> StoreResult<Option<WebSession>> {
    let conn = cx.conn;
    let live: Option<(i64, i64, i64)> = conn
        .prepare_cached(
            "UPDATE web_sessions SET last_seen_ms = ?2
             WHERE hash = ?1 AND ended_at_ms IS NULL AND expires_at_ms > ?2 AND last_seen_ms > ?2 - ?3
             RETURNING account_id, created_at_ms, expires_at_ms",
        )
        .and_then(|mut st| {
            st.query_row(params![&hash.0[..], now_ms, idle_timeout_ms], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(backend)?;
    let Some((account_id, created_at_ms, expires_at_ms)) = live else {
        return Ok(None);
    };
    let a = conn
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"
        ))
        .and_then(|mut st| st.query_row([account_id], account_row))
        .map_err(backend)?;
    Ok(Some(WebSession {
        account_id: a.account_id,
        username: a.username,
        role: a.role,
        first_name: a.first_name,
        last_name: a.last_name,
        created_at_ms,
        expires_at_ms,
    }))
}

pub(crate) fn end_web_session(
    cx: &mut WriteCtx<'_>,
    hash: TokenHash,
    now_ms: i64,
) -> StoreResult<bool> {
    let conn = cx.conn;
    let username: Option<String> = conn
        .query_row(
            "UPDATE web_sessions SET ended_at_ms = ?2 WHERE hash = ?1 AND ended_at_ms IS NULL
             RETURNING (SELECT username FROM accounts WHERE id = account_id)",
            params![&hash.0[..], now_ms],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    match username {
        Some(u) => {
            insert_audit(conn, &NewAudit::web_session(now_ms, &u, false))?;
            Ok(true)
        }
        None => Ok(false),
    }
}

pub(crate) fn open_alarms(conn: &Connection, patient: PatientId) -> StoreResult<Vec<StoredEvent>> {
    let Some(pid) = db_patient_id(patient) else {
        return Ok(Vec::new());
    };
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events e WHERE patient_id = ?1 AND kind = 'alarm'
             AND NOT EXISTS (SELECT 1 FROM alarm_acks a WHERE a.event_id = e.id)
             ORDER BY id DESC LIMIT 100"
        ))
        .map_err(backend)?;
    st.query_map([pid], event_row)
        .and_then(|rows| rows.collect())
        .map_err(backend)
}

pub(crate) fn acknowledge_alarm(
    cx: &mut WriteCtx<'_>,
    username: &str,
    event_id: i64,
    actor: &str,
    now_ms: i64,
) -> StoreResult<bool> {
    let conn = cx.conn;
    let patient = patient_by_username(conn, username)?;
    let alarm: Option<String> = conn
        .query_row(
            "SELECT alarm FROM events WHERE id = ?1 AND patient_id = ?2 AND kind = 'alarm'",
            params![event_id, patient.0 as i64],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    let alarm = alarm.ok_or_else(|| StoreError::no_alarm(event_id))?;
    let added = conn
        .execute(
            "INSERT INTO alarm_acks (event_id, acked_at_ms, acked_by) VALUES (?1, ?2, ?3)
             ON CONFLICT (event_id) DO NOTHING",
            params![event_id, now_ms, actor],
        )
        .map_err(backend)?;
    if added == 0 {
        return Ok(false);
    }
    insert_audit(
        conn,
        &NewAudit::alarm_acknowledged(now_ms, actor, patient, &alarm, event_id),
    )?;
    cx.announce(Change::AlarmAcknowledged { patient });
    Ok(true)
}

pub(crate) fn username_of(conn: &Connection, patient: PatientId) -> StoreResult<String> {
    conn.row(
        "SELECT a.username FROM patients p JOIN accounts a ON a.id = p.account_id WHERE p.id = ?1",
        [db_patient_id(patient).unwrap_or(-1)],
        |r| r.get(0),
    )
    .optional()
    .map_err(backend)?
    .ok_or_else(|| StoreError::NotFound(format!("no patient {}", patient.0)))
}

pub(crate) fn suggest(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    s: NewSuggestion,
    now_ms: i64,
) -> StoreResult<Option<i64>> {
    let conn = cx.conn;
    let pid =
        db_patient_id(patient).ok_or_else(|| StoreError::NotFound("no such patient".into()))?;
    let current = current_prescription(conn, pid)?.map_or(0, |c| c.version);
    s.check(current, &limits_of(conn, pid)?)?;
    let pending: Option<(i64, i64)> = conn
        .query_row(
            "SELECT id, based_on_version FROM suggestions WHERE patient_id = ?1 AND status = 'pending'",
            [pid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    match pending {
        Some((_, v)) if v == i64::from(current) => return Ok(None),
        Some((id, _)) => {
            conn.exec(
                "UPDATE suggestions SET status = 'superseded', decided_at_ms = ?2 WHERE id = ?1",
                params![id, now_ms],
            )
            .map_err(backend)?;
        }
        None => {}
    }
    conn.exec(
        "INSERT INTO suggestions (patient_id, based_on_version, volume_ul, rate_ul_h, reason, created_at_ms, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')",
        params![pid, s.based_on_version, s.volume_ul, s.rate_ul_h, s.reason, now_ms],
    )
    .map_err(backend)?;
    let id = conn.last_insert_rowid();
    insert_audit(conn, &NewAudit::suggestion_made(now_ms, patient, id, &s))?;
    cx.announce(Change::Suggestion { patient });
    Ok(Some(id))
}

pub(crate) fn pending_suggestions(
    conn: &Connection,
    patient: PatientId,
) -> StoreResult<Vec<Suggestion>> {
    let Some(pid) = db_patient_id(patient) else {
        return Ok(Vec::new());
    };
    let mut st = conn
        .prepare_cached(
            "SELECT id, created_at_ms, based_on_version, volume_ul, rate_ul_h, reason FROM suggestions
             WHERE patient_id = ?1 AND status = 'pending' ORDER BY id DESC",
        )
        .map_err(backend)?;
    st.query_map([pid], |r| {
        Ok(Suggestion {
            id: r.get(0)?,
            created_at_ms: r.get(1)?,
            proposal: NewSuggestion {
                based_on_version: read_u32(r, 2)?,
                volume_ul: read_u32(r, 3)?,
                rate_ul_h: read_u32(r, 4)?,
                reason: r.get(5)?,
            },
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

pub(crate) fn decide_suggestion(
    cx: &mut WriteCtx<'_>,
    username: &str,
    id: i64,
    approve: bool,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Decision> {
    let conn = cx.conn;
    let patient = patient_by_username(conn, username)?;
    let pid = patient.0 as i64;
    let row: Option<(u32, u32, u32)> = conn
        .query_row(
            "SELECT based_on_version, volume_ul, rate_ul_h FROM suggestions
             WHERE id = ?1 AND patient_id = ?2 AND status = 'pending'",
            params![id, pid],
            |r| Ok((read_u32(r, 0)?, read_u32(r, 1)?, read_u32(r, 2)?)),
        )
        .optional()
        .map_err(backend)?;
    let (based_on, volume_ul, rate_ul_h) = row.ok_or_else(|| StoreError::no_suggestion(id))?;
    let decision = if approve {
        let current = current_prescription(conn, pid)?.map_or(0, |c| c.version);
        if current != based_on {
            return Err(StoreError::stale_suggestion(based_on, current));
        }
        let p = NewPrescription {
            volume_ul,
            rate_ul_h,
            state: InfusionState::Run,
        };
        Decision::Approved(set_prescription(cx, username, p, actor, now_ms)?)
    } else {
        Decision::Rejected
    };
    let (status, version) = match decision {
        Decision::Approved(v) => ("approved", Some(v)),
        Decision::Rejected => ("rejected", None),
    };
    conn.exec(
        "UPDATE suggestions SET status = ?2, decided_at_ms = ?3, decided_by = ?4, approved_version = ?5 WHERE id = ?1",
        params![id, status, now_ms, actor, version],
    )
    .map_err(backend)?;
    insert_audit(
        conn,
        &NewAudit::suggestion_decided(now_ms, actor, patient, id, version),
    )?;
    cx.announce(Change::Suggestion { patient });
    Ok(decision)
}

pub(crate) fn accounts(conn: &Connection) -> StoreResult<Vec<AccountOverview>> {
    let mut st = conn
        .prepare_cached(
            "SELECT a.username, a.role, a.first_name, a.last_name, i.name, ph.username, d.mac
             FROM accounts a
             LEFT JOIN institutions i ON i.id = a.institution_id
             LEFT JOIN patients p ON p.account_id = a.id
             LEFT JOIN accounts ph ON ph.id = p.physician_id
             LEFT JOIN devices d ON d.patient_id = p.id AND d.retired_at_ms IS NULL
             ORDER BY a.role, a.username",
        )
        .map_err(backend)?;
    st.query_map([], |r| {
        let role: String = r.get(1)?;
        Ok(AccountOverview {
            username: r.get(0)?,
            role: Role::parse(&role).ok_or_else(|| {
                rusqlite::Error::InvalidColumnType(1, "role".into(), rusqlite::types::Type::Text)
            })?,
            first_name: r.get(2)?,
            last_name: r.get(3)?,
            institution: r.get(4)?,
            physician: r.get(5)?,
            device: r.get(6)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

/// A login attempt (the store crate's `throttle` module): refused while
/// any key is locked, otherwise counted against the up-front keys.
pub(crate) fn login_attempt(
    conn: &Connection,
    keys: &[ThrottleKey],
    now_ms: i64,
) -> StoreResult<Attempt> {
    let mut locked = 0i64;
    for k in keys {
        let until: Option<i64> = conn
            .row(
                "SELECT locked_until_ms FROM login_throttle WHERE key = ?1",
                [&k.key],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        locked = locked.max(until.map_or(0, |u| u - now_ms));
    }
    if locked > 0 {
        return Ok(Attempt::Locked {
            retry_after_ms: locked,
        });
    }
    for k in keys.iter().filter(|k| k.up_front) {
        count_attempt(conn, k, now_ms)?;
    }
    Ok(Attempt::Allowed)
}

/// A failed check: counted against the keys not counted up front.
pub(crate) fn login_failed(
    conn: &Connection,
    keys: &[ThrottleKey],
    now_ms: i64,
) -> StoreResult<()> {
    for k in keys.iter().filter(|k| !k.up_front) {
        count_attempt(conn, k, now_ms)?;
    }
    Ok(())
}

/// A success: clears the keys counted up front.
pub(crate) fn login_succeeded(conn: &Connection, keys: &[ThrottleKey]) -> StoreResult<()> {
    for k in keys.iter().filter(|k| k.up_front) {
        conn.exec("DELETE FROM login_throttle WHERE key = ?1", [&k.key])
            .map_err(backend)?;
    }
    Ok(())
}

/// Counts one attempt against `k` (restarting a count older than the
/// window), locks it for its next lockout past the free attempts, and
/// audits the first lockout of a window.
fn count_attempt(conn: &Connection, k: &ThrottleKey, now_ms: i64) -> StoreResult<()> {
    let attempts: i64 = conn
        .row(
            "INSERT INTO login_throttle (key, attempts, last_attempt_ms, locked_until_ms)
             VALUES (?1, 1, ?2, 0)
             ON CONFLICT (key) DO UPDATE SET
                 attempts = CASE WHEN ?2 - login_throttle.last_attempt_ms > ?3 THEN 1
                                 ELSE login_throttle.attempts + 1 END,
                 last_attempt_ms = ?2
             RETURNING attempts",
            params![k.key, now_ms, throttle::WINDOW_MS],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
    let lock = k.backoff.lockout_ms(attempts);
    if lock > 0 {
        conn.exec(
            "UPDATE login_throttle SET locked_until_ms = ?2 WHERE key = ?1",
            params![k.key, now_ms + lock],
        )
        .map_err(backend)?;
        if attempts == k.backoff.free + 1 {
            insert_audit(conn, &NewAudit::locked_out(now_ms, &k.key, attempts, lock))?;
        }
    }
    Ok(())
}

pub(crate) fn find_server_secret(conn: &Connection, name: &str) -> StoreResult<Option<[u8; 32]>> {
    conn.query_row(
        "SELECT secret FROM server_secrets WHERE name = ?1",
        [name],
        |r| r.get::<_, [u8; 32]>(0),
    )
    .optional()
    .map_err(backend)
}

pub(crate) fn remove_server_secrets(
    cx: &mut WriteCtx<'_>,
    names: &[String],
    actor: &str,
    now_ms: i64,
) -> StoreResult<u64> {
    let conn = cx.conn;
    let mut removed = 0;
    for name in names {
        removed += conn
            .execute("DELETE FROM server_secrets WHERE name = ?1", [name])
            .map_err(backend)?;
    }
    if removed > 0 {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        insert_audit(conn, &NewAudit::server_keys_moved(now_ms, actor, &names))?;
    }
    Ok(u64::try_from(removed).unwrap_or(u64::MAX))
}

pub(crate) fn server_secret(
    cx: &mut WriteCtx<'_>,
    name: &str,
    fresh: [u8; 32],
    now_ms: i64,
) -> StoreResult<[u8; 32]> {
    let conn = cx.conn;
    conn.exec(
        "INSERT INTO server_secrets (name, secret, created_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO NOTHING",
        params![name, &fresh[..], now_ms],
    )
    .map_err(backend)?;
    conn.row(
        "SELECT secret FROM server_secrets WHERE name = ?1",
        [name],
        |r| r.get::<_, [u8; 32]>(0),
    )
    .map_err(backend)
}
