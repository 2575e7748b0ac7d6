//! Row mapping: a PostgreSQL row read as the store's [`Columns`], so that
//! the store's one decoder of each type serves this backend too.

use infusion_protocol::PatientId;
use infusion_store::{Columns, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{Column, Row, TypeInfo};

use crate::db_error;

pub(crate) use infusion_store::stored_patient;

/// A stored patient id.
pub(crate) fn patient_id(v: i64) -> PatientId {
    PatientId(v as u64)
}

/// Column `i`, of the type asked for.
pub(crate) fn get<'r, T>(row: &'r PgRow, i: usize) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(i).map_err(db_error)
}

/// A row, read by position.
pub(crate) struct Cols<'r>(pub &'r PgRow);

impl Columns for Cols<'_> {
    fn int(&self, i: usize) -> StoreResult<Option<i64>> {
        // sqlx decodes each integer width as its own type: the schema
        // keeps vitals in SMALLINT and INTEGER, everything else in BIGINT.
        let column = self.0.try_column(i).map_err(db_error)?;
        match column.type_info().name() {
            "INT2" => Ok(get::<Option<i16>>(self.0, i)?.map(i64::from)),
            "INT4" => Ok(get::<Option<i32>>(self.0, i)?.map(i64::from)),
            _ => get(self.0, i),
        }
    }

    fn text(&self, i: usize) -> StoreResult<Option<String>> {
        get(self.0, i)
    }

    fn bytes(&self, i: usize) -> StoreResult<Option<Vec<u8>>> {
        get(self.0, i)
    }

    fn flag(&self, i: usize) -> StoreResult<bool> {
        get(self.0, i)
    }
}
