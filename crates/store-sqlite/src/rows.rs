//! Row mapping: SQLite columns to the store's domain types. Conversions
//! that can fail on a row no program of ours wrote become
//! `InvalidColumnType`, a fault, never a panic.

use infusion_protocol::{InfusionState, MacAddress, PatientId, PatientLimits};
use infusion_store::{
    AccountId, AccountRecord, EventRow, Prescription, Role, StoreError, StoredEvent, stored_mac,
    stored_role, stored_state,
};
use rusqlite::Row;

/// A patient id as stored (`None` for one no row can have).
pub(crate) fn db_patient_id(id: PatientId) -> Option<i64> {
    i64::try_from(id.0).ok()
}

/// A stored patient id.
pub(crate) fn patient_id(v: i64) -> PatientId {
    PatientId(v as u64)
}

/// A store decoding failure as a column error, so that it travels through
/// rusqlite's row mapping.
fn column(i: usize, e: StoreError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

/// A column that must hold a `u32` (volumes, rates, versions, seqs).
pub(crate) fn read_u32(row: &Row<'_>, i: usize) -> rusqlite::Result<u32> {
    row.get::<_, i64>(i)
        .and_then(|v| u32::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v)))
}

/// A MAC address column.
pub(crate) fn read_mac(row: &Row<'_>, i: usize) -> rusqlite::Result<MacAddress> {
    let s: String = row.get(i)?;
    stored_mac(&s).map_err(|e| column(i, e))
}

fn read_state(row: &Row<'_>, i: usize) -> rusqlite::Result<InfusionState> {
    let s: String = row.get(i)?;
    stored_state(&s).map_err(|e| column(i, e))
}

/// Three limit columns from `i`: minimum rate, maximum rate, maximum volume.
pub(crate) fn limits_at(r: &Row<'_>, i: usize) -> rusqlite::Result<PatientLimits> {
    Ok(PatientLimits {
        min_rate_ul_h: read_u32(r, i)?,
        max_rate_ul_h: read_u32(r, i + 1)?,
        max_volume_ul: read_u32(r, i + 2)?,
    })
}

/// The prescription columns, in [`prescription_at`]'s order.
pub(crate) const PRESCRIPTION_COLUMNS: &str =
    "version, volume_ul, rate_ul_h, state, created_at_ms, created_by, fetched_at_ms";

/// A prescription from its seven columns starting at `i`; `None` when the
/// version is null (a left join found none).
pub(crate) fn prescription_at(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<Prescription>> {
    if r.get::<_, Option<i64>>(i)?.is_none() {
        return Ok(None);
    }
    Ok(Some(Prescription {
        version: read_u32(r, i)?,
        volume_ul: read_u32(r, i + 1)?,
        rate_ul_h: read_u32(r, i + 2)?,
        state: read_state(r, i + 3)?,
        created_at_ms: r.get(i + 4)?,
        created_by: r.get(i + 5)?,
        fetched_at_ms: r.get(i + 6)?,
    }))
}

/// A prescription row selected with [`PRESCRIPTION_COLUMNS`].
pub(crate) fn prescription_row(r: &Row<'_>) -> rusqlite::Result<Prescription> {
    prescription_at(r, 0)?.ok_or(rusqlite::Error::InvalidColumnType(
        0,
        "version".into(),
        rusqlite::types::Type::Null,
    ))
}

/// An event row selected with [`EventRow::COLUMNS`], decoded by the
/// store's one decoder.
pub(crate) fn event_row(r: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    EventRow {
        id: r.get(0)?,
        device_id: r.get(1)?,
        seq: r.get(2)?,
        uptime_ms: r.get(3)?,
        received_at_ms: r.get(4)?,
        kind: r.get(5)?,
        delivered_ul: r.get(6)?,
        rate_ul_h: r.get(7)?,
        index_version: r.get(8)?,
        state: r.get(9)?,
        alarm: r.get(10)?,
        heart_rate_bpm: r.get(11)?,
        spo2_pct: r.get(12)?,
        tremor_score: r.get(13)?,
    }
    .decode()
    .map_err(|e| column(5, e))
}

/// The account columns, in [`account_row`]'s order.
pub(crate) const ACCOUNT_COLUMNS: &str = "id, username, role, first_name, last_name, password_hash";

/// A role column.
pub(crate) fn read_role(r: &Row<'_>, i: usize) -> rusqlite::Result<Role> {
    let role: String = r.get(i)?;
    stored_role(&role).map_err(|e| column(i, e))
}

/// An account row selected with [`ACCOUNT_COLUMNS`].
pub(crate) fn account_row(r: &Row<'_>) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        account_id: AccountId(r.get(0)?),
        username: r.get(1)?,
        role: read_role(r, 2)?,
        first_name: r.get(3)?,
        last_name: r.get(4)?,
        password_hash: r.get(5)?,
    })
}
