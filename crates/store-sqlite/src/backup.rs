//! Online backup and checked restore of an SQLite database.
//!
//! A backup uses SQLite's online backup API: it copies the database page by
//! page while the server keeps running (readers and the writer are not
//! stopped; pages the writer changes meanwhile are copied again), and the
//! copy is one consistent snapshot. A restore first proves the backup is a
//! sound database of a schema this program knows (`integrity_check`,
//! `user_version`), then copies it over the target with the same API. Stop
//! the server before restoring: a running server would keep serving from
//! its open connections.

use std::path::Path;

use infusion_store::{StoreError, StoreResult};
use rusqlite::{Connection, MAIN_DB, OpenFlags};

use crate::migrate::LATEST;
use crate::writer::backend;

/// What a backup or restore copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupInfo {
    /// Size of the copy, bytes.
    pub bytes: u64,
    /// Schema version of the copy.
    pub schema_version: i64,
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Checks that `path` holds an intact database of a known schema version.
fn verify(path: &Path) -> StoreResult<i64> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError::Invalid(format!("cannot open {}: {e}", path.display())))?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| StoreError::Invalid(format!("{} is not a database: {e}", path.display())))?;
    if check != "ok" {
        return Err(StoreError::Invalid(format!(
            "{} fails its integrity check: {check}",
            path.display()
        )));
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
    if version < 1 || version > LATEST as i64 {
        return Err(StoreError::Invalid(format!(
            "{} has schema version {version}; this program knows 1..={LATEST}",
            path.display()
        )));
    }
    Ok(version)
}

/// Copies the live database at `db` to a new file `dest` (refused if it
/// exists) and verifies the copy.
pub fn backup(db: &Path, dest: &Path) -> StoreResult<BackupInfo> {
    if dest.exists() {
        return Err(StoreError::Conflict(format!(
            "{} exists already; choose a new file",
            dest.display()
        )));
    }
    // Made before SQLite opens it: the backup holds the keys and hashes.
    crate::private_file::create_private(dest)?;
    let src = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", db.display())))?;
    src.backup(MAIN_DB, dest, None).map_err(backend)?;
    let schema_version = verify(dest)?;
    Ok(BackupInfo {
        bytes: file_size(dest),
        schema_version,
    })
}

/// Replaces the database at `db` (created if missing) with the verified
/// backup `from`. Run with the server stopped.
pub fn restore(from: &Path, db: &Path) -> StoreResult<BackupInfo> {
    let schema_version = verify(from)?;
    crate::private_file::create_private(db)?;
    let mut dst = Connection::open(db)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", db.display())))?;
    dst.restore(MAIN_DB, from, None::<fn(rusqlite::backup::Progress)>)
        .map_err(backend)?;
    drop(dst);
    verify(db)?;
    Ok(BackupInfo {
        bytes: file_size(db),
        schema_version,
    })
}
