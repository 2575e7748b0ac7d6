//! The embedded SQLite store: the default for one machine.
//!
//! Shape: one writer connection on a dedicated thread that group-commits
//! ([`writer`]), and a few read-only connections for queries ([`readers`]).
//! The database runs in WAL mode with `synchronous=FULL`, so every commit is
//! on disk before the writer answers: a 200 on a report survives a power cut
//! right after it. rusqlite (not sqlx) because a prototype of the index
//! transaction took ~70 µs through rusqlite against ~500 µs through sqlx's
//! SQLite driver, which hands every statement to a worker thread.

pub mod backup;
mod migrate;
mod ops;
mod readers;
mod writer;

use std::path::{Path, PathBuf};
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
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
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
    async fn create_physician(
        &self,
        new: NewPhysician,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| ops::create_staff(cx, new, Role::Physician, &actor, now_ms))
            .await
    }

    async fn create_admin(
        &self,
        new: NewPhysician,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| ops::create_staff(cx, new, Role::Admin, &actor, now_ms))
            .await
    }

    async fn accounts(&self) -> StoreResult<Vec<AccountOverview>> {
        self.readers.read(ops::accounts).await
    }

    async fn create_patient(
        &self,
        new: NewPatient,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<PatientId> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| ops::create_patient(cx, new, &actor, now_ms))
            .await
    }

    async fn bind_device(
        &self,
        patient_username: &str,
        mac: MacAddress,
        public_key: infusion_protocol::PublicKey,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<DeviceId> {
        let (user, actor) = (patient_username.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| ops::bind_device(cx, &user, mac, public_key, &actor, now_ms))
            .await
    }

    async fn set_limits(
        &self,
        patient_username: &str,
        limits: PatientLimits,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (user, actor) = (patient_username.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| ops::set_limits(cx, &user, limits, &actor, now_ms))
            .await
    }

    async fn set_prescription(
        &self,
        patient_username: &str,
        prescription: NewPrescription,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u32> {
        let (user, actor) = (patient_username.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| ops::set_prescription(cx, &user, prescription, &actor, now_ms))
            .await
    }

    async fn device_login_record(&self, username: &str) -> StoreResult<Option<LoginRecord>> {
        let user = username.to_owned();
        self.readers
            .read(move |conn| ops::login_record(conn, &user))
            .await
    }

    async fn start_device_session(
        &self,
        record: &LoginRecord,
        device: DeviceId,
        nonce: Option<[u8; 16]>,
        token: NewToken,
        now_ms: i64,
    ) -> StoreResult<()> {
        let record = record.clone();
        self.writer
            .write(move |cx| ops::start_device_session(cx, &record, device, nonce, token, now_ms))
            .await
    }

    async fn poll_index(
        &self,
        presented: TokenHash,
        patient_id: PatientId,
        next: NewToken,
        now_ms: i64,
    ) -> StoreResult<infusion_store::PolledIndex> {
        self.writer
            .write(move |cx| ops::poll_index(cx, presented, patient_id, next, now_ms))
            .await
    }

    async fn report(
        &self,
        presented: TokenHash,
        patient_id: PatientId,
        events: Vec<Event>,
        next: NewToken,
        now_ms: i64,
    ) -> StoreResult<ReportOutcome> {
        self.writer
            .write(move |cx| ops::report(cx, presented, patient_id, &events, next, now_ms))
            .await
    }

    async fn append_audit(&self, entry: NewAudit) -> StoreResult<()> {
        self.writer
            .write(move |cx| ops::insert_audit(cx.conn, &entry))
            .await
    }

    async fn prune_tokens(&self, before_ms: i64) -> StoreResult<u64> {
        self.writer
            .write(move |cx| ops::prune_tokens(cx, before_ms))
            .await
    }

    async fn patient(&self, username: &str) -> StoreResult<PatientSummary> {
        let user = username.to_owned();
        self.readers
            .read(move |conn| ops::patient_summary(conn, &user))
            .await
    }

    async fn prescriptions(&self, patient_id: PatientId) -> StoreResult<Vec<Prescription>> {
        self.readers
            .read(move |conn| ops::prescriptions(conn, patient_id))
            .await
    }

    async fn events(
        &self,
        patient_id: PatientId,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.readers
            .read(move |conn| ops::events(conn, patient_id, after_id, limit, false))
            .await
    }

    async fn recent_events(
        &self,
        patient_id: PatientId,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.readers
            .read(move |conn| ops::events(conn, patient_id, 0, limit, true))
            .await
    }

    async fn open_alarms(&self, patient_id: PatientId) -> StoreResult<Vec<StoredEvent>> {
        self.readers
            .read(move |conn| ops::open_alarms(conn, patient_id))
            .await
    }

    async fn acknowledge_alarm(
        &self,
        patient_username: &str,
        event_id: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let (user, actor) = (patient_username.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| ops::acknowledge_alarm(cx, &user, event_id, &actor, now_ms))
            .await
    }

    async fn username_of(&self, patient_id: PatientId) -> StoreResult<String> {
        self.readers
            .read(move |conn| ops::username_of(conn, patient_id))
            .await
    }

    async fn suggest(
        &self,
        patient_id: PatientId,
        suggestion: NewSuggestion,
        now_ms: i64,
    ) -> StoreResult<Option<i64>> {
        self.writer
            .write(move |cx| ops::suggest(cx, patient_id, suggestion, now_ms))
            .await
    }

    async fn pending_suggestions(&self, patient_id: PatientId) -> StoreResult<Vec<Suggestion>> {
        self.readers
            .read(move |conn| ops::pending_suggestions(conn, patient_id))
            .await
    }

    async fn decide_suggestion(
        &self,
        patient_username: &str,
        id: i64,
        approve: bool,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<Decision> {
        let (user, actor) = (patient_username.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| ops::decide_suggestion(cx, &user, id, approve, &actor, now_ms))
            .await
    }

    async fn patient_usernames_of(&self, physician_username: &str) -> StoreResult<Vec<String>> {
        let user = physician_username.to_owned();
        self.readers
            .read(move |conn| ops::patient_usernames_of(conn, &user))
            .await
    }

    async fn audit_log(
        &self,
        patient_id: Option<PatientId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.readers
            .read(move |conn| ops::audit_log(conn, patient_id, limit, false))
            .await
    }

    async fn security_events(
        &self,
        patient_id: Option<PatientId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.readers
            .read(move |conn| ops::audit_log(conn, patient_id, limit, true))
            .await
    }

    async fn login_attempt(&self, keys: Vec<ThrottleKey>, now_ms: i64) -> StoreResult<Attempt> {
        self.writer
            .write(move |cx| ops::login_attempt(cx.conn, &keys, now_ms))
            .await
    }

    async fn login_failed(&self, keys: Vec<ThrottleKey>, now_ms: i64) -> StoreResult<()> {
        self.writer
            .write(move |cx| ops::login_failed(cx.conn, &keys, now_ms))
            .await
    }

    async fn login_succeeded(&self, keys: Vec<ThrottleKey>) -> StoreResult<()> {
        self.writer
            .write(move |cx| ops::login_succeeded(cx.conn, &keys))
            .await
    }

    async fn audit_chain(&self, after_id: i64, limit: u32) -> StoreResult<Vec<ChainedAudit>> {
        self.readers
            .read(move |conn| ops::audit_chain(conn, after_id, limit))
            .await
    }

    async fn audit_head(&self) -> StoreResult<AuditHead> {
        self.readers.read(ops::audit_head).await
    }

    async fn token_status(&self, hash: TokenHash) -> StoreResult<Option<TokenStatus>> {
        self.readers
            .read(move |conn| ops::token_status(conn, hash))
            .await
    }

    async fn account(&self, username: &str) -> StoreResult<Option<AccountRecord>> {
        let user = username.to_owned();
        self.readers
            .read(move |conn| ops::account(conn, &user))
            .await
    }

    async fn start_web_session(
        &self,
        account: AccountId,
        session: NewWebSession,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.writer
            .write(move |cx| ops::start_web_session(cx, account, session, now_ms))
            .await
    }

    async fn web_session(
        &self,
        hash: TokenHash,
        idle_timeout_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Option<WebSession>> {
        self.writer
            .write(move |cx| ops::web_session(cx, hash, idle_timeout_ms, now_ms))
            .await
    }

    async fn end_web_session(&self, hash: TokenHash, now_ms: i64) -> StoreResult<bool> {
        self.writer
            .write(move |cx| ops::end_web_session(cx, hash, now_ms))
            .await
    }

    async fn server_secret(
        &self,
        name: &str,
        fresh: [u8; 32],
        now_ms: i64,
    ) -> StoreResult<[u8; 32]> {
        let name = name.to_owned();
        self.writer
            .write(move |cx| ops::server_secret(cx, &name, fresh, now_ms))
            .await
    }

    async fn find_server_secret(&self, name: &str) -> StoreResult<Option<[u8; 32]>> {
        let name = name.to_owned();
        self.readers
            .read(move |conn| ops::find_server_secret(conn, &name))
            .await
    }

    async fn remove_server_secrets(
        &self,
        names: &[&str],
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| ops::remove_server_secrets(cx, &names, &actor, now_ms))
            .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.readers
            .read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(backend))
            .await
    }

    fn changes(&self) -> broadcast::Receiver<Change> {
        self.feed.subscribe()
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}
