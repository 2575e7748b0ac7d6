//! The PostgreSQL store: one database behind several stateless server
//! instances.
//!
//! Shape: a sqlx connection pool for every operation, one module per
//! aggregate of the store crate (`accounts`, `devices`, `tokens`,
//! `treatment`, `events`, `suggestions`, `web_sessions`, `throttle`,
//! `audit`, `secrets`), each reading what its decision needs, calling it
//! and writing what it returns in one transaction; migrations
//! embedded in the binary and applied under an advisory lock so that
//! instances starting together do not race ([`migrate`]), and one listening
//! connection that turns `NOTIFY` into the change feed ([`feed`]).
//!
//! Guarantees, and what gives them:
//! - **Single-use tokens across instances**: a token is consumed by one
//!   `UPDATE … WHERE used_at_ms IS NULL`; PostgreSQL row locks make a
//!   concurrent second `UPDATE` of that row wait and then re-check the
//!   condition, so of any number of instances presenting one token, exactly
//!   one succeeds (tested with two server processes, not assumed).
//! - **Durability**: every connection runs with `synchronous_commit = on`
//!   (set by us, whatever the server's default), so a 200 on a report means
//!   the events are in the WAL on disk.
//! - **Outages**: every statement has a timeout, acquiring a connection has
//!   a timeout, and connection failures map to
//!   [`StoreError::Unavailable`] (503 `database_unavailable`). The pool opens
//!   new connections when the database is back: no restart needed.

mod accounts;
mod alarms;
mod audit;
mod board;
mod care;
mod care_team;
mod devices;
mod drugs;
mod error;
mod events;
mod feed;
mod institutions;
mod lifecycle;
mod migrate;
mod notifications;
mod rows;
pub mod scratch;
mod second_factor;
mod secrets;
mod suggestions;
mod throttle;
mod tokens;
mod treatment;
mod watchdog;
mod web_sessions;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use infusion_store::{CHANGE_BACKLOG, Change, Store, StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::broadcast;

pub use error::db_error;

/// How the pool talks to the database. The defaults suit one server
/// instance on a small machine; with several instances, keep the sum of
/// their `max_connections` (plus one listener each) under the database's
/// `max_connections`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// Most connections in the pool. Beyond a few per database core more
    /// connections only add contention.
    pub max_connections: u32,
    /// How long a request waits for a free connection (or for a new one to
    /// open) before it is answered 503. Short, so that an outage is reported
    /// quickly rather than piling requests up.
    pub acquire_timeout: Duration,
    /// `statement_timeout` of every connection: a statement running longer
    /// is cancelled and answered 503, so a stuck lock cannot hold requests
    /// (and pool connections) forever.
    pub statement_timeout: Duration,
}

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// A [`Store`] on a PostgreSQL database. Cloning shares the pool and feed.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    feed: broadcast::Sender<Change>,
    _listener: Arc<feed::ListenerTask>,
}

fn connect_options(url: &str, config: &PgConfig) -> StoreResult<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))?;
    Ok(options.application_name("infusion").options([
        // A 200 on a report promises durability: never inherit `off` from
        // a server or role default.
        ("synchronous_commit", "on".to_owned()),
        (
            "statement_timeout",
            config.statement_timeout.as_millis().to_string(),
        ),
        (
            "lock_timeout",
            config.statement_timeout.as_millis().to_string(),
        ),
    ]))
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:pass@host/db`),
    /// applies pending migrations and starts the change listener.
    pub async fn connect(url: &str, config: PgConfig) -> StoreResult<PgStore> {
        let options = connect_options(url, &config)?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(2))
            .acquire_timeout(config.acquire_timeout)
            // A ping before every acquire would add a round trip to every
            // request; sqlx already pings on release and a dead connection
            // fails its statement with `Unavailable` and is dropped.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        migrate::run(&pool).await?;
        let (feed, _) = broadcast::channel(CHANGE_BACKLOG);
        let listener = feed::ListenerTask::spawn(pool.clone(), feed.clone());
        Ok(PgStore {
            pool,
            feed,
            _listener: Arc::new(listener),
        })
    }

    /// Applies pending migrations and returns how many were applied. For
    /// `infusion admin migrate`.
    pub async fn migrate(url: &str) -> StoreResult<usize> {
        let options = connect_options(url, &PgConfig::default())?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        let applied = migrate::run(&pool).await;
        pool.close().await;
        applied
    }

    /// The connection pool, for diagnostics.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection; later operations fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db_error)
    }

    fn changes(&self) -> broadcast::Receiver<Change> {
        self.feed.subscribe()
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}
