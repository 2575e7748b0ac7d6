//! The PostgreSQL store: one database behind several stateless server
//! instances.
//!
//! Shape: a sqlx connection pool for every operation ([`ops`]), migrations
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

mod error;
mod feed;
mod migrate;
mod ops;
pub mod scratch;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use infusion_protocol::{Event, MacAddress, PatientId, PatientLimits};
use infusion_store::throttle::{Attempt, ThrottleKey};
use infusion_store::{
    AccountId, AccountOverview, AccountRecord, AuditHead, AuditRecord, CHANGE_BACKLOG,
    ChainedAudit, Change, Decision, DeviceId, LoginRecord, NewAudit, NewPatient, NewPhysician,
    NewPrescription, NewSuggestion, NewToken, NewWebSession, PatientSummary, Prescription,
    ReportOutcome, Role, Store, StoreError, StoreResult, StoredEvent, Suggestion, TokenHash,
    TokenStatus, WebSession,
};
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
    async fn create_physician(
        &self,
        new: NewPhysician,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        ops::create_staff(&self.pool, new, Role::Physician, actor, now_ms).await
    }

    async fn create_admin(
        &self,
        new: NewPhysician,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        ops::create_staff(&self.pool, new, Role::Admin, actor, now_ms).await
    }

    async fn accounts(&self) -> StoreResult<Vec<AccountOverview>> {
        ops::accounts(&self.pool).await
    }

    async fn create_patient(
        &self,
        new: NewPatient,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<PatientId> {
        ops::create_patient(&self.pool, new, actor, now_ms).await
    }

    async fn bind_device(
        &self,
        patient_username: &str,
        mac: MacAddress,
        public_key: infusion_protocol::PublicKey,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<DeviceId> {
        ops::bind_device(&self.pool, patient_username, mac, public_key, actor, now_ms).await
    }

    async fn set_limits(
        &self,
        patient_username: &str,
        limits: PatientLimits,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        ops::set_limits(&self.pool, patient_username, limits, actor, now_ms).await
    }

    async fn set_prescription(
        &self,
        patient_username: &str,
        prescription: NewPrescription,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u32> {
        ops::set_prescription(&self.pool, patient_username, prescription, actor, now_ms).await
    }

    async fn device_login_record(&self, username: &str) -> StoreResult<Option<LoginRecord>> {
        ops::login_record(&self.pool, username).await
    }

    async fn start_device_session(
        &self,
        record: &LoginRecord,
        device: DeviceId,
        nonce: Option<[u8; 16]>,
        token: NewToken,
        now_ms: i64,
    ) -> StoreResult<()> {
        ops::start_device_session(&self.pool, record, device, nonce, token, now_ms).await
    }

    async fn poll_index(
        &self,
        presented: TokenHash,
        patient_id: PatientId,
        next: NewToken,
        now_ms: i64,
    ) -> StoreResult<infusion_store::PolledIndex> {
        ops::poll_index(&self.pool, presented, patient_id, next, now_ms).await
    }

    async fn report(
        &self,
        presented: TokenHash,
        patient_id: PatientId,
        events: Vec<Event>,
        next: NewToken,
        now_ms: i64,
    ) -> StoreResult<ReportOutcome> {
        ops::report(&self.pool, presented, patient_id, &events, next, now_ms).await
    }

    async fn append_audit(&self, entry: NewAudit) -> StoreResult<()> {
        ops::insert_audit(&self.pool, &entry).await
    }

    async fn prune_tokens(&self, before_ms: i64) -> StoreResult<u64> {
        ops::prune_tokens(&self.pool, before_ms).await
    }

    async fn patient(&self, username: &str) -> StoreResult<PatientSummary> {
        ops::patient_summary(&self.pool, username).await
    }

    async fn prescriptions(&self, patient_id: PatientId) -> StoreResult<Vec<Prescription>> {
        ops::prescriptions(&self.pool, patient_id).await
    }

    async fn events(
        &self,
        patient_id: PatientId,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        ops::events(&self.pool, patient_id, after_id, limit, false).await
    }

    async fn recent_events(
        &self,
        patient_id: PatientId,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        ops::events(&self.pool, patient_id, 0, limit, true).await
    }

    async fn open_alarms(&self, patient_id: PatientId) -> StoreResult<Vec<StoredEvent>> {
        ops::open_alarms(&self.pool, patient_id).await
    }

    async fn acknowledge_alarm(
        &self,
        patient_username: &str,
        event_id: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        ops::acknowledge_alarm(&self.pool, patient_username, event_id, actor, now_ms).await
    }

    async fn username_of(&self, patient_id: PatientId) -> StoreResult<String> {
        ops::username_of(&self.pool, patient_id).await
    }

    async fn suggest(
        &self,
        patient_id: PatientId,
        suggestion: NewSuggestion,
        now_ms: i64,
    ) -> StoreResult<Option<i64>> {
        ops::suggest(&self.pool, patient_id, suggestion, now_ms).await
    }

    async fn pending_suggestions(&self, patient_id: PatientId) -> StoreResult<Vec<Suggestion>> {
        ops::pending_suggestions(&self.pool, patient_id).await
    }

    async fn decide_suggestion(
        &self,
        patient_username: &str,
        id: i64,
        approve: bool,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<Decision> {
        ops::decide_suggestion(&self.pool, patient_username, id, approve, actor, now_ms).await
    }

    async fn patient_usernames_of(&self, physician_username: &str) -> StoreResult<Vec<String>> {
        ops::patient_usernames_of(&self.pool, physician_username).await
    }

    async fn audit_log(
        &self,
        patient_id: Option<PatientId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        ops::audit_log(&self.pool, patient_id, limit, false).await
    }

    async fn security_events(
        &self,
        patient_id: Option<PatientId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        ops::audit_log(&self.pool, patient_id, limit, true).await
    }

    async fn login_attempt(&self, keys: Vec<ThrottleKey>, now_ms: i64) -> StoreResult<Attempt> {
        ops::login_attempt(&self.pool, &keys, now_ms).await
    }

    async fn login_failed(&self, keys: Vec<ThrottleKey>, now_ms: i64) -> StoreResult<()> {
        ops::login_failed(&self.pool, &keys, now_ms).await
    }

    async fn login_succeeded(&self, keys: Vec<ThrottleKey>) -> StoreResult<()> {
        ops::login_succeeded(&self.pool, &keys).await
    }

    async fn audit_chain(&self, after_id: i64, limit: u32) -> StoreResult<Vec<ChainedAudit>> {
        ops::audit_chain(&self.pool, after_id, limit).await
    }

    async fn audit_head(&self) -> StoreResult<AuditHead> {
        ops::audit_head(&self.pool).await
    }

    async fn token_status(&self, hash: TokenHash) -> StoreResult<Option<TokenStatus>> {
        ops::token_status(&self.pool, hash).await
    }

    async fn account(&self, username: &str) -> StoreResult<Option<AccountRecord>> {
        ops::account(&self.pool, username).await
    }

    async fn start_web_session(
        &self,
        account: AccountId,
        session: NewWebSession,
        now_ms: i64,
    ) -> StoreResult<()> {
        ops::start_web_session(&self.pool, account, session, now_ms).await
    }

    async fn web_session(
        &self,
        hash: TokenHash,
        idle_timeout_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Option<WebSession>> {
        ops::web_session(&self.pool, hash, idle_timeout_ms, now_ms).await
    }

    async fn end_web_session(&self, hash: TokenHash, now_ms: i64) -> StoreResult<bool> {
        ops::end_web_session(&self.pool, hash, now_ms).await
    }

    async fn server_secret(
        &self,
        name: &str,
        fresh: [u8; 32],
        now_ms: i64,
    ) -> StoreResult<[u8; 32]> {
        ops::server_secret(&self.pool, name, fresh, now_ms).await
    }

    async fn find_server_secret(&self, name: &str) -> StoreResult<Option<[u8; 32]>> {
        ops::find_server_secret(&self.pool, name).await
    }

    async fn remove_server_secrets(
        &self,
        names: &[&str],
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        ops::remove_server_secrets(&self.pool, names, actor, now_ms).await
    }

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
