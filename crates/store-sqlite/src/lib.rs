//! The embedded SQLite store: the default for one machine.
//!
//! Shape: one writer connection on a dedicated thread that group-commits
//! ([`writer`]), and a few read-only connections for queries ([`readers`]).
//! One module per aggregate of the store crate (`accounts`, `devices`,
//! `tokens`, `treatment`, `events`, `suggestions`, `web_sessions`,
//! `throttle`, `audit`, `secrets`) implements its trait: it reads what the
//! aggregate's decision needs, calls it, and writes what it returns; the
//! rules themselves live in `infusion-store`.
//! The database runs in WAL mode with `synchronous=FULL`, so every commit is
//! on disk before the writer answers: a 200 on a report survives a power cut
//! right after it. rusqlite (not sqlx) because a prototype of the index
//! transaction took ~70 µs through rusqlite against ~500 µs through sqlx's
//! SQLite driver, which hands every statement to a worker thread.

mod accounts;
mod alarms;
mod audit;
pub mod backup;
mod board;
mod care;
mod care_team;
mod devices;
mod drugs;
mod events;
mod institutions;
mod lifecycle;
mod migrate;
mod notifications;
pub mod private_file;
mod readers;
mod rows;
mod second_factor;
mod secrets;
mod suggestions;
mod throttle;
mod tokens;
mod treatment;
mod watchdog;
mod web_sessions;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use infusion_store::{CHANGE_BACKLOG, Change, Store, StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::broadcast;

use readers::Readers;
use writer::{Writer, backend};

/// Read-only connections kept open beside the writer.
const READERS: usize = 4;

/// How long a connection waits for a lock held by another process (a backup,
/// the admin CLI) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`] on one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Readers,
    feed: broadcast::Sender<Change>,
}

fn configure(conn: &Connection) -> StoreResult<()> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(backend)?;
    // FULL: in WAL mode, fsync the log on every commit. NORMAL would be
    // faster but may lose the last commits on power loss, and a 200 on a
    // report promises the events are durable.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(backend)?;
    // Every statement of the store stays prepared: rusqlite's default of
    // 16 made the writer re-parse SQL on most jobs (10 % of the server's
    // CPU in a closed-loop profile).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Prepared statements kept per connection: more than the store has.
const STATEMENT_CACHE: usize = 256;

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies pending
    /// migrations and starts the writer thread.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let cannot = |e: &dyn std::fmt::Display| {
            StoreError::Unavailable(format!("cannot open {}: {e}", path.display()))
        };
        private_file::create_private(&path)?;
        private_file::warn_if_exposed(&path);
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| cannot(&e))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "{} cannot use WAL mode (got {mode})",
                path.display()
            )));
        }
        configure(&conn)?;
        migrate::migrate(&mut conn)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(backend)?;
            configure(&r)?;
            readers.push(r);
        }
        let (feed, _) = broadcast::channel(CHANGE_BACKLOG);
        let writer = Writer::spawn(conn, feed.clone())
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            path,
            writer,
            readers: Readers::new(readers),
            feed,
        })
    }

    /// Applies pending migrations without starting a store; returns how many
    /// were applied. For `infusion admin migrate`.
    pub fn migrate(path: impl AsRef<Path>) -> StoreResult<usize> {
        private_file::create_private(path.as_ref())?;
        let mut conn = Connection::open(path.as_ref()).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        configure(&conn)?;
        migrate::migrate(&mut conn)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.readers
            .read(|conn| {
                conn.prepare_cached("SELECT 1")
                    .and_then(|mut st| st.query_row([], |_| Ok(())))
                    .map_err(backend)
            })
            .await
    }

    fn changes(&self) -> broadcast::Receiver<Change> {
        self.feed.subscribe()
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}
