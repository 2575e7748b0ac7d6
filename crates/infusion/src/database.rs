//! Opening the store a `--database-url` names.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use infusion_store::Store;
use infusion_store_sqlite::SqliteStore;

/// Which backend and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file.
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// `sqlite://PATH`, `sqlite:PATH` or a bare path.
    pub fn parse(url: &str) -> anyhow::Result<DatabaseUrl> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            bail!("the PostgreSQL backend is not built into this version; use sqlite://PATH");
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            bail!("the database URL names no file");
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    /// Opens the store, applying migrations.
    pub fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        match self {
            DatabaseUrl::Sqlite(path) => {
                Ok(Arc::new(SqliteStore::open(path).with_context(|| {
                    format!("opening the SQLite database {}", path.display())
                })?))
            }
        }
    }

    /// Applies pending migrations; returns how many.
    pub fn migrate(&self) -> anyhow::Result<usize> {
        match self {
            DatabaseUrl::Sqlite(path) => Ok(SqliteStore::migrate(path)
                .with_context(|| format!("migrating {}", path.display()))?),
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
    }
}
