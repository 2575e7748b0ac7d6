//! Opening the store a `--database-url` names.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Context, bail};
use infusion_store::Store;
use infusion_store_postgres::{PgConfig, PgStore};
use infusion_store_sqlite::SqliteStore;

/// Which backend and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file: the embedded default for one machine.
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://user:pass@host:port/db`), shared
    /// by any number of server instances.
    Postgres(String),
}

impl DatabaseUrl {
    /// `postgres://…` or `postgresql://…`; `sqlite://PATH`, `sqlite:PATH`
    /// or a bare path.
    pub fn parse(url: &str) -> crate::BenchResult<DatabaseUrl> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            bail!("the database URL names no file");
        }
        if path.contains("://") {
            bail!("unknown database URL scheme in {url:?}: use sqlite://PATH or postgres://…");
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    /// The URL for logs and messages: a PostgreSQL password is replaced by
    /// `***`.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => redact_password(url),
        }
    }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let slash = if rest.contains('/') { "/" } else { "" };
            format!("{scheme}://{user}:***@{host}{slash}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// A database and how to connect to it.
#[derive(Debug, Clone)]
pub struct Database {
    /// Where.
    pub url: DatabaseUrl,
    /// Pool settings, used by PostgreSQL.
    pub pg: PgConfig,
}

impl Database {
    /// Opens the store, applying migrations.
    pub async fn open(&self) -> crate::BenchResult<Arc<dyn Store>> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                Ok(Arc::new(SqliteStore::open(path).with_context(|| {
                    format!("opening the SQLite database {}", path.display())
                })?))
            }
            DatabaseUrl::Postgres(url) => Ok(Arc::new(
                PgStore::connect(url, self.pg.clone())
                    .await
                    .with_context(|| format!("connecting to {}", self.url.redacted()))?,
            )),
        }
    }

    /// Applies pending migrations; returns how many.
    pub async fn migrate(&self) -> crate::BenchResult<usize> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => Ok(SqliteStore::migrate(path)
                .with_context(|| format!("migrating {}", path.display()))?),
            DatabaseUrl::Postgres(url) => Ok(PgStore::migrate(url)
                .await
                .with_context(|| format!("migrating {}", self.url.redacted()))?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sqlite_forms() {
        for url in ["sqlite://a/b.db", "sqlite:a/b.db", "a/b.db"] {
            assert_eq!(
                DatabaseUrl::parse(url).unwrap(),
                DatabaseUrl::Sqlite("a/b.db".into())
            );
        }
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("mysql://x/y").is_err());
    }

    #[test]
    fn parses_postgres_and_hides_its_password() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db.local:5432/infusion").unwrap();
        assert_eq!(
            url,
            DatabaseUrl::Postgres("postgres://app:s3cret@db.local:5432/infusion".into())
        );
        assert_eq!(url.redacted(), "postgres://app:***@db.local:5432/infusion");
        let bare = DatabaseUrl::parse("postgresql://db.local/infusion").unwrap();
        assert_eq!(bare.redacted(), "postgresql://db.local/infusion");
    }
}
