//! Schema migrations, embedded in the binary and tracked by `user_version`.

use rusqlite::{Connection, OptionalExtension};

use infusion_store::{StoreError, StoreResult};

use crate::writer::backend;

/// Every migration, in order. Append only: a landed migration is never edited.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial",
        include_str!("../migrations/0001_initial.sql"),
    ),
    (
        "0002_web_sessions",
        include_str!("../migrations/0002_web_sessions.sql"),
    ),
    (
        "0003_alarm_acks",
        include_str!("../migrations/0003_alarm_acks.sql"),
    ),
    (
        "0004_suggestions",
        include_str!("../migrations/0004_suggestions.sql"),
    ),
    (
        "0005_fetched",
        include_str!("../migrations/0005_fetched.sql"),
    ),
    (
        "0006_token_revocation",
        include_str!("../migrations/0006_token_revocation.sql"),
    ),
    (
        "0007_audit_chain",
        include_str!("../migrations/0007_audit_chain.sql"),
    ),
    (
        "0008_login_throttle",
        include_str!("../migrations/0008_login_throttle.sql"),
    ),
    (
        "0009_device_identity",
        include_str!("../migrations/0009_device_identity.sql"),
    ),
    (
        "0010_token_refusals",
        include_str!("../migrations/0010_token_refusals.sql"),
    ),
    (
        "0011_username_case",
        include_str!("../migrations/0011_username_case.sql"),
    ),
    (
        "0012_soft_limits",
        include_str!("../migrations/0012_soft_limits.sql"),
    ),
    (
        "0013_account_lifecycle",
        include_str!("../migrations/0013_account_lifecycle.sql"),
    ),
    (
        "0014_second_factor",
        include_str!("../migrations/0014_second_factor.sql"),
    ),
    (
        "0015_drug_library",
        include_str!("../migrations/0015_drug_library.sql"),
    ),
    (
        "0016_time_zone",
        include_str!("../migrations/0016_time_zone.sql"),
    ),
    (
        "0017_patient_note",
        include_str!("../migrations/0017_patient_note.sql"),
    ),
    (
        "0018_server_alarms",
        include_str!("../migrations/0018_server_alarms.sql"),
    ),
    (
        "0019_care_team",
        include_str!("../migrations/0019_care_team.sql"),
    ),
    (
        "0020_alarm_notifications",
        include_str!("../migrations/0020_alarm_notifications.sql"),
    ),
];

/// The schema version this program creates and knows.
pub(crate) const LATEST: usize = MIGRATIONS.len();

/// Applies the migrations this database lacks, each in its own transaction.
/// Returns how many were applied. Refuses a database newer than this program.
/// Applies the migrations after `current`, one transaction each.
fn apply(conn: &mut Connection, current: usize) -> StoreResult<()> {
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Backend(format!("migration {name}: {e}")))?;
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        if let Some(table) = broken {
            return Err(StoreError::Backend(format!(
                "migration {name} leaves rows of {table} whose references are gone"
            )));
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        tracing::info!(migration = name, "applied");
    }
    Ok(())
}

pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<usize> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
    let current = usize::try_from(current).unwrap_or(usize::MAX);
    if current > MIGRATIONS.len() {
        return Err(StoreError::Invalid(format!(
            "the database has schema version {current}, newer than this program's {}",
            MIGRATIONS.len()
        )));
    }
    // SQLite's way to change a table's constraints is to rebuild it
    // (<https://sqlite.org/lang_altertable.html#otheralter>): foreign keys
    // off (a pragma that does nothing inside a transaction), the new table
    // copied and renamed, `foreign_key_check` before the commit.
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(backend)?;
    let applied = apply(conn, current);
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(backend)?;
    applied?;
    let tx = conn.transaction().map_err(backend)?;
    let sealed = crate::audit::seal_legacy_audit(&tx)?;
    tx.commit().map_err(backend)?;
    if sealed > 0 {
        tracing::info!(
            rows = sealed,
            "sealed the audit rows from before the hash chain"
        );
    }
    Ok(MIGRATIONS.len() - current)
}
