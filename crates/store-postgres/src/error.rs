//! From sqlx errors to the store's error.

use infusion_store::StoreError;

/// Maps a database failure to the store's error: anything that says the
/// database cannot be reached or is going away (connection errors, a pool
/// with no connection to give, SQLSTATE classes 08 and 57P, too many
/// connections, a cancelled statement, a serialization failure) becomes
/// [`StoreError::Unavailable`], worth a retry and answered 503; a unique
/// violation becomes [`StoreError::Conflict`]; anything else is a
/// [`StoreError::Backend`] fault, logged and never shown.
pub fn db_error(e: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match &e {
        E::Io(_)
        | E::Tls(_)
        | E::Protocol(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        E::Database(db) => {
            let code = db.code().unwrap_or_default();
            let transient = code.starts_with("08")
                || code.starts_with("57P")
                || matches!(&*code, "53300" | "57014" | "55P03" | "40001" | "40P01");
            if transient {
                StoreError::Unavailable(e.to_string())
            } else if code == "23505" {
                StoreError::Conflict("that name or address is taken".into())
            } else {
                StoreError::Backend(e.to_string())
            }
        }
        _ => StoreError::Backend(e.to_string()),
    }
}
