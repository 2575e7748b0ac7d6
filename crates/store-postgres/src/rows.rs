//! Row mapping: PostgreSQL columns to the store's domain types.

use infusion_protocol::{PatientId, PatientLimits};
use infusion_store::{
    AccountId, AccountRecord, EventRow, Prescription, StoreError, StoreResult, StoredEvent,
    stored_role, stored_state,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::db_error;

/// A patient id as stored (`None` for one no row can have).
pub(crate) fn db_patient_id(id: PatientId) -> Option<i64> {
    i64::try_from(id.0).ok()
}

/// A stored patient id.
pub(crate) fn patient_id(v: i64) -> PatientId {
    PatientId(v as u64)
}

/// Column `i`.
pub(crate) fn get<'r, T>(row: &'r PgRow, i: usize) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(i).map_err(db_error)
}

/// A column that must hold a `u32` (volumes, rates, versions, seqs).
pub(crate) fn get_u32(row: &PgRow, i: usize) -> StoreResult<u32> {
    let v: i64 = get(row, i)?;
    u32::try_from(v).map_err(|_| StoreError::Backend(format!("column {i} out of range: {v}")))
}

/// Three limit columns from `i`: minimum rate, maximum rate, maximum volume.
pub(crate) fn limits_at(r: &PgRow, i: usize) -> StoreResult<PatientLimits> {
    Ok(PatientLimits {
        min_rate_ul_h: get_u32(r, i)?,
        max_rate_ul_h: get_u32(r, i + 1)?,
        max_volume_ul: get_u32(r, i + 2)?,
    })
}

/// The prescription columns, in [`prescription_at`]'s order.
pub(crate) const PRESCRIPTION_COLUMNS: &str =
    "version, volume_ul, rate_ul_h, state, created_at_ms, created_by, fetched_at_ms";

/// A prescription from its seven columns starting at `i`; `None` when the
/// version is null (a left join found none).
pub(crate) fn prescription_at(r: &PgRow, i: usize) -> StoreResult<Option<Prescription>> {
    if get::<Option<i64>>(r, i)?.is_none() {
        return Ok(None);
    }
    Ok(Some(Prescription {
        version: get_u32(r, i)?,
        volume_ul: get_u32(r, i + 1)?,
        rate_ul_h: get_u32(r, i + 2)?,
        state: stored_state(get(r, i + 3)?)?,
        created_at_ms: get(r, i + 4)?,
        created_by: get(r, i + 5)?,
        fetched_at_ms: get(r, i + 6)?,
    }))
}

/// A prescription row selected with [`PRESCRIPTION_COLUMNS`].
pub(crate) fn prescription_row(r: &PgRow) -> StoreResult<Prescription> {
    prescription_at(r, 0)?.ok_or_else(|| StoreError::Backend("prescription without version".into()))
}

/// An event row selected with [`EventRow::COLUMNS`], decoded by the
/// store's one decoder.
pub(crate) fn event_row(r: &PgRow) -> StoreResult<StoredEvent> {
    EventRow {
        id: get(r, 0)?,
        device_id: get(r, 1)?,
        seq: get(r, 2)?,
        uptime_ms: get(r, 3)?,
        received_at_ms: get(r, 4)?,
        kind: get(r, 5)?,
        delivered_ul: get(r, 6)?,
        rate_ul_h: get(r, 7)?,
        index_version: get(r, 8)?,
        state: get(r, 9)?,
        alarm: get(r, 10)?,
        heart_rate_bpm: get::<Option<i32>>(r, 11)?.map(i64::from),
        spo2_pct: get::<Option<i16>>(r, 12)?.map(i64::from),
        tremor_score: get::<Option<i16>>(r, 13)?.map(i64::from),
    }
    .decode()
}

/// The account columns, in [`account_row`]'s order.
pub(crate) const ACCOUNT_COLUMNS: &str =
    "a.id, a.username, a.role, a.first_name, a.last_name, a.password_hash";

/// An account row selected with [`ACCOUNT_COLUMNS`].
pub(crate) fn account_row(r: &PgRow) -> StoreResult<AccountRecord> {
    Ok(AccountRecord {
        account_id: AccountId(get(r, 0)?),
        username: get(r, 1)?,
        role: stored_role(get(r, 2)?)?,
        first_name: get(r, 3)?,
        last_name: get(r, 4)?,
        password_hash: get(r, 5)?,
    })
}
