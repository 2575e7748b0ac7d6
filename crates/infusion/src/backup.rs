//! `infusion admin backup` and `restore` for both backends.
//!
//! SQLite uses its online backup API (in the store crate). PostgreSQL uses
//! its own tools, `pg_dump` and `pg_restore` (from PATH, of a version at
//! least the server's), in the custom format: one file, compressed,
//! restorable in one transaction. The password from the URL is handed to
//! them in `PGPASSWORD`, never on their command line where `ps` shows it.

use std::path::Path;

use anyhow::{Context, bail};
use infusion_store_postgres::PgStore;
use infusion_store_sqlite::backup as sqlite_backup;

use infusion_bench::database::{Database, DatabaseUrl};

/// Writes a backup of `db` to the new file `to`; returns its size.
pub async fn backup(db: &Database, to: &Path) -> anyhow::Result<u64> {
    if to.exists() {
        bail!("{} exists already; choose a new file", to.display());
    }
    match &db.url {
        DatabaseUrl::Sqlite(path) => {
            let (path, to) = (path.clone(), to.to_path_buf());
            let info = tokio::task::spawn_blocking(move || sqlite_backup::backup(&path, &to))
                .await
                .context("backup task")??;
            Ok(info.bytes)
        }
        DatabaseUrl::Postgres(url) => {
            let (dbname, password) = split_password(url);
            // pg_dump keeps the mode of the file it writes into: owner only.
            infusion_store_sqlite::private_file::create_private(to)
                .with_context(|| format!("creating {}", to.display()))?;
            let mut cmd = tokio::process::Command::new("pg_dump");
            cmd.args(["--format=custom", "--no-owner", "--file"])
                .arg(to)
                .arg("--dbname")
                .arg(&dbname);
            run(cmd, password, "pg_dump").await?;
            Ok(std::fs::metadata(to).map(|m| m.len()).unwrap_or(0))
        }
    }
}

/// Replaces the contents of `db` with the backup `from`.
pub async fn restore(db: &Database, from: &Path) -> anyhow::Result<()> {
    if !from.is_file() {
        bail!("no backup file at {}", from.display());
    }
    match &db.url {
        DatabaseUrl::Sqlite(path) => {
            let (path, from) = (path.clone(), from.to_path_buf());
            tokio::task::spawn_blocking(move || sqlite_backup::restore(&from, &path))
                .await
                .context("restore task")??;
            Ok(())
        }
        DatabaseUrl::Postgres(url) => {
            let (dbname, password) = split_password(url);
            let mut cmd = tokio::process::Command::new("pg_restore");
            cmd.args([
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--exit-on-error",
                "--dbname",
            ])
            .arg(&dbname)
            .arg(from);
            run(cmd, password, "pg_restore").await?;
            // A backup from an older version gets this version's schema.
            PgStore::migrate(url)
                .await
                .with_context(|| format!("migrating the restored {}", db.url.redacted()))?;
            Ok(())
        }
    }
}

async fn run(
    mut cmd: tokio::process::Command,
    password: Option<String>,
    tool: &str,
) -> anyhow::Result<()> {
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = cmd
        .output()
        .await
        .with_context(|| format!("running {tool} (is PostgreSQL's client installed?)"))?;
    if !out.status.success() {
        bail!(
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Splits the password out of a `postgres://user:password@host/db` URL:
/// the URL without it, and the password percent-decoded.
fn split_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    let Some((user, password)) = userinfo.split_once(':') else {
        return (url.to_owned(), None);
    };
    (
        format!("{scheme}://{user}@{host}{tail}"),
        Some(percent_decode(password)),
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::split_password;

    #[test]
    fn password_leaves_the_url() {
        assert_eq!(
            split_password("postgres://app:p%40ss@db:5432/infusion?sslmode=require"),
            (
                "postgres://app@db:5432/infusion?sslmode=require".to_owned(),
                Some("p@ss".to_owned())
            )
        );
        assert_eq!(
            split_password("postgres://db/infusion"),
            ("postgres://db/infusion".to_owned(), None)
        );
    }
}
