//! Schema migrations, embedded in the binary from `migrations/`.
//!
//! sqlx's migrator records each applied file (with its checksum, so an
//! edited migration is refused) in `_sqlx_migrations`, and holds a
//! PostgreSQL advisory lock while it runs, so several instances starting at
//! once apply each migration exactly once.

use infusion_store::StoreResult;
use sqlx::PgPool;

use crate::db_error;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

async fn applied(pool: &PgPool) -> StoreResult<i64> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(db_error)?;
    if !exists {
        return Ok(0);
    }
    sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map_err(db_error)
}

/// Applies pending migrations; returns how many were applied now.
pub(crate) async fn run(pool: &PgPool) -> StoreResult<usize> {
    let before = applied(pool).await?;
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(inner) => db_error(inner),
        other => infusion_store::StoreError::Backend(format!("migration failed: {other}")),
    })?;
    let after = applied(pool).await?;
    let sealed = crate::audit::seal_legacy_audit(pool).await?;
    if sealed > 0 {
        tracing::info!(
            rows = sealed,
            "sealed the audit rows from before the hash chain"
        );
    }
    Ok(usize::try_from(after - before).unwrap_or(0))
}
