//! Throwaway databases, for tests and benchmarks that need a fresh,
//! empty PostgreSQL database of their own on a shared server.

use std::sync::atomic::{AtomicU32, Ordering};

use infusion_store::{StoreError, StoreResult};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::db_error;

/// A database created for one test or benchmark run, dropped (with
/// `WITH (FORCE)`, ending its connections) by [`ScratchDatabase::remove`] or,
/// failing that, when this value is dropped.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin: Box<PgConnectOptions>,
    name: String,
    url: String,
    removed: bool,
}

fn options(url: &str) -> StoreResult<PgConnectOptions> {
    url.parse::<PgConnectOptions>()
        .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))
}

async fn admin_connection(admin: &PgConnectOptions) -> StoreResult<PgConnection> {
    admin.connect().await.map_err(db_error)
}

impl ScratchDatabase {
    /// Creates a database with a fresh name on the server `admin_url`
    /// points at (whose role may create databases), named after `purpose`.
    pub async fn create(admin_url: &str, purpose: &str) -> StoreResult<ScratchDatabase> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin = options(admin_url)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let purpose: String = purpose
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(24)
            .collect::<String>()
            .to_ascii_lowercase();
        let name = format!(
            "infusion_{purpose}_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = admin_connection(&admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        let _ = conn.close().await;
        let url = replace_database(admin_url, &name);
        Ok(ScratchDatabase {
            admin: Box::new(admin),
            name,
            url,
            removed: false,
        })
    }

    /// The URL of the new database (the admin URL with its name swapped).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, ending any connection still open to it.
    pub async fn remove(mut self) -> StoreResult<()> {
        self.removed = true;
        drop_database(&self.admin, &self.name).await
    }
}

async fn drop_database(admin: &PgConnectOptions, name: &str) -> StoreResult<()> {
    let mut conn = admin_connection(admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .map_err(db_error)?;
    let _ = conn.close().await;
    Ok(())
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        // No async drop: a short-lived thread with its own runtime does it.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            if let Err(e) = rt.block_on(drop_database(&admin, &name)) {
                tracing::warn!(database = name, error = %e, "scratch database left behind");
            }
        });
        let _ = done.join();
    }
}

/// `url` with its database name replaced by `name` (query kept).
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn database_name_is_swapped() {
        assert_eq!(
            replace_database("postgres://u:p@h:5432/postgres", "x"),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(replace_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            replace_database("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }
}
