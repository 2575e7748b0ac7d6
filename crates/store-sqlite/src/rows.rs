//! Row mapping: a SQLite row read as the store's [`Columns`], so that the
//! store's one decoder of each type serves this backend too, and the
//! statements that read them (through the statement cache).

use infusion_protocol::PatientId;
use infusion_store::{Columns, StoreError, StoreResult};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Params, Row};

use crate::writer::backend;

pub(crate) use infusion_store::stored_patient;

/// A stored patient id.
pub(crate) fn patient_id(v: i64) -> PatientId {
    PatientId(v as u64)
}

/// A row, read by position.
pub(crate) struct Cols<'a, 'r>(pub &'a Row<'r>);

impl Columns for Cols<'_, '_> {
    fn int(&self, i: usize) -> StoreResult<Option<i64>> {
        self.0.get(i).map_err(backend)
    }

    fn text(&self, i: usize) -> StoreResult<Option<String>> {
        self.0.get(i).map_err(backend)
    }

    fn bytes(&self, i: usize) -> StoreResult<Option<Vec<u8>>> {
        self.0.get(i).map_err(backend)
    }

    fn flag(&self, i: usize) -> StoreResult<bool> {
        match self.0.get_ref(i).map_err(backend)? {
            ValueRef::Integer(v) => Ok(v != 0),
            other => Err(StoreError::Backend(format!(
                "column {i} is {:?}, not a truth value",
                other.data_type()
            ))),
        }
    }
}

/// The first row `sql` selects, decoded by `f`; `None` without one.
pub(crate) fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    f: impl FnOnce(&Cols<'_, '_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut st = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = st.query(params).map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(r) => f(&Cols(r)).map(Some),
        None => Ok(None),
    }
}

/// Every row `sql` selects, each decoded by `f`.
pub(crate) fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    f: impl Fn(&Cols<'_, '_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut st = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = st.query(params).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        out.push(f(&Cols(r))?);
    }
    Ok(out)
}
