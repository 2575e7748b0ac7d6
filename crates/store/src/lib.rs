//! The storage contract of the infusion server.
//!
//! Handlers speak to a [`Store`], never to a database: the embedded SQLite
//! backend and the PostgreSQL backend implement the same trait with the same
//! behaviour, proven by one integration suite run against both. Each trait
//! method is one transaction; the types that cross it are domain types
//! (parsed, typed, in integer units), never raw rows.

pub mod audit_chain;
mod change;
mod error;
mod model;
pub mod throttle;
mod wording;

pub use audit_chain::{AuditHead, ChainedAudit};
pub use change::{CHANGE_BACKLOG, Change};
pub use error::{StoreError, StoreResult};
pub use model::*;
pub use wording::{device_actor, user_actor};

use async_trait::async_trait;
use infusion_protocol::{Event, PatientId, PatientLimits};

/// Everything the server persists, one transaction per method.
///
/// Times are passed in (`now_ms`, milliseconds since the Unix epoch) rather
/// than read from a clock, so that expiry is testable and every row written
/// by one request carries one time.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a physician account, and its institution if that name is new.
    async fn create_physician(
        &self,
        new: NewPhysician,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId>;

    /// Creates an administrator account at an institution (the same fields
    /// as a physician's): accounts, institutions and devices, no clinical
    /// data.
    async fn create_admin(
        &self,
        new: NewPhysician,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId>;

    /// Every physician and administrator account, and every patient, for
    /// the administrator's overview: (account, role, physician of a
    /// patient, bound device of a patient), by role then username.
    async fn accounts(&self) -> StoreResult<Vec<AccountOverview>>;

    /// Creates a patient account bound to an existing physician, with limits
    /// equal to the pump's hard limits and no prescription (index version 0,
    /// `hold`).
    async fn create_patient(
        &self,
        new: NewPatient,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<PatientId>;

    /// Binds a device and the public half of its secret to a patient
    /// account, replacing (and retiring) the device bound before. A MAC
    /// address serves one account at a time. Binding the same MAC to the
    /// same account again keeps the registration (and its event series)
    /// and replaces the key: the old secret stops working.
    async fn bind_device(
        &self,
        patient_username: &str,
        mac: infusion_protocol::MacAddress,
        public_key: infusion_protocol::PublicKey,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<DeviceId>;

    /// Replaces a patient's limits. Refused with
    /// [`StoreError::OutsideLimits`] when the current prescription would fall
    /// outside them: change the prescription first.
    async fn set_limits(
        &self,
        patient_username: &str,
        limits: PatientLimits,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Writes a new prescription version and returns its number. Refused
    /// with [`StoreError::OutsideLimits`] outside the patient's limits.
    async fn set_prescription(
        &self,
        patient_username: &str,
        prescription: NewPrescription,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u32>;

    /// What a device login needs to know about a username: its password
    /// hash, names, and the device bound to it. `None` for an unknown user
    /// or an account that is not a patient's.
    async fn device_login_record(&self, username: &str) -> StoreResult<Option<LoginRecord>>;

    /// Records a successful device login: stores the first token's hash and
    /// writes the audit entry. With a `nonce` (the first 16 bytes of the
    /// login challenge: its time and randomness), the login is taken only
    /// if the nonce is newer than the last one this device used, and
    /// becomes the last one; otherwise [`StoreError::NonceReplayed`] and
    /// nothing changes.
    async fn start_device_session(
        &self,
        record: &LoginRecord,
        device: DeviceId,
        nonce: Option<[u8; 16]>,
        token: NewToken,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// The index transaction: consumes the presented token (atomically: of
    /// many concurrent requests with one token exactly one succeeds), reads
    /// the patient's index and stores the next token. A refusal (token
    /// unknown, used, expired, or for another patient) changes nothing but
    /// the audit log.
    async fn poll_index(
        &self,
        presented: TokenHash,
        patient_id: PatientId,
        next: NewToken,
        now_ms: i64,
    ) -> StoreResult<PolledIndex>;

    /// The report transaction: consumes the presented token, stores each
    /// event not stored before (by device and `seq`), audits alarms and
    /// stores the next token. Durable when it returns `Ok`.
    async fn report(
        &self,
        presented: TokenHash,
        patient_id: PatientId,
        events: Vec<Event>,
        next: NewToken,
        now_ms: i64,
    ) -> StoreResult<ReportOutcome>;

    /// Appends one entry to the audit log (for refusals decided outside a
    /// store transaction, such as a wrong password).
    async fn append_audit(&self, entry: NewAudit) -> StoreResult<()>;

    /// Deletes tokens that expired before `before_ms`, so the token table
    /// does not grow without end. Returns how many were removed.
    async fn prune_tokens(&self, before_ms: i64) -> StoreResult<u64>;

    /// A patient's account, device and current prescription, by username.
    async fn patient(&self, username: &str) -> StoreResult<PatientSummary>;

    /// Every prescription version of a patient, oldest first.
    async fn prescriptions(&self, patient_id: PatientId) -> StoreResult<Vec<Prescription>>;

    /// A patient's stored events, oldest first, after the stored id
    /// `after_id` (0 for all), at most `limit`.
    async fn events(
        &self,
        patient_id: PatientId,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>>;

    /// A patient's newest events, newest first, at most `limit`: what a
    /// dashboard shows (the current rate, delivered volume, state).
    async fn recent_events(
        &self,
        patient_id: PatientId,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>>;

    /// A patient's alarms not yet acknowledged, newest first.
    async fn open_alarms(&self, patient_id: PatientId) -> StoreResult<Vec<StoredEvent>>;

    /// Acknowledges the alarm stored as event `event_id` of patient
    /// `patient_username`: audited, announced, and closed for good. Refused
    /// with `NotFound` when that event is not an alarm of this patient;
    /// acknowledging twice keeps the first acknowledgement and returns
    /// false.
    async fn acknowledge_alarm(
        &self,
        patient_username: &str,
        event_id: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool>;

    /// The username of a patient record (`NotFound` if none).
    async fn username_of(&self, patient_id: PatientId) -> StoreResult<String>;

    /// Stores a suggestion of the decision algorithm, unless one for the
    /// current prescription is pending already (then `None`). A pending
    /// suggestion for an older version is superseded. Refused with
    /// `Conflict` when `based_on_version` is no longer current and with
    /// `OutsideLimits` outside the patient's limits.
    async fn suggest(
        &self,
        patient_id: PatientId,
        suggestion: NewSuggestion,
        now_ms: i64,
    ) -> StoreResult<Option<i64>>;

    /// A patient's pending suggestions (at most one), newest first.
    async fn pending_suggestions(&self, patient_id: PatientId) -> StoreResult<Vec<Suggestion>>;

    /// A physician's decision on pending suggestion `id` of patient
    /// `patient_username`. Approval writes a new prescription version
    /// (refused with `Conflict` when the suggestion is stale, a newer
    /// version having been written since, and with `OutsideLimits` when the
    /// limits changed since); rejection closes it. Both are audited with
    /// who and when; `NotFound` unless it is a pending suggestion of that
    /// patient.
    async fn decide_suggestion(
        &self,
        patient_username: &str,
        id: i64,
        approve: bool,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<Decision>;

    /// The usernames of a physician's patients, by last then first name.
    async fn patient_usernames_of(&self, physician_username: &str) -> StoreResult<Vec<String>>;

    /// Summaries of a physician's patients, by last then first name.
    async fn patients_of(&self, physician_username: &str) -> StoreResult<Vec<PatientSummary>> {
        let mut out = Vec::new();
        for username in self.patient_usernames_of(physician_username).await? {
            out.push(self.patient(&username).await?);
        }
        Ok(out)
    }

    /// The newest audit entries, newest first, of one patient or of all.
    async fn audit_log(
        &self,
        patient_id: Option<PatientId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>>;

    /// The newest security events (replayed tokens), newest first, of one
    /// patient or of all: what the patient's physician and administrators
    /// are shown.
    async fn security_events(
        &self,
        patient_id: Option<PatientId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>>;

    /// A login attempt, before its password is checked (see [`throttle`]):
    /// refused while any key is locked out (nothing is counted then),
    /// otherwise counted against the keys counted up front, and allowed.
    /// The count that sets a key's first lockout of a window is audited
    /// as a security event.
    async fn login_attempt(
        &self,
        keys: Vec<throttle::ThrottleKey>,
        now_ms: i64,
    ) -> StoreResult<throttle::Attempt>;

    /// A login attempt failed its check: counted against the other keys.
    async fn login_failed(&self, keys: Vec<throttle::ThrottleKey>, now_ms: i64) -> StoreResult<()>;

    /// A login attempt succeeded: clears the keys counted up front.
    async fn login_succeeded(&self, keys: Vec<throttle::ThrottleKey>) -> StoreResult<()>;

    /// Audit rows with their chain columns, in id order, after `after_id`,
    /// at most `limit`: what `audit_chain::verify_audit` walks.
    async fn audit_chain(&self, after_id: i64, limit: u32) -> StoreResult<Vec<ChainedAudit>>;

    /// The audit chain's head, as the last insert left it.
    async fn audit_head(&self) -> StoreResult<AuditHead>;

    /// The state of one token, for diagnostics and tests: `None` when no
    /// such token is stored.
    async fn token_status(&self, hash: TokenHash) -> StoreResult<Option<TokenStatus>>;

    /// Subscribes to the change feed: every change committed from now on,
    /// through any server instance on this database (with PostgreSQL,
    /// changes committed just before subscribing may arrive too: the feed
    /// tells what to reread, it is not a log). A subscriber that
    /// falls more than [`CHANGE_BACKLOG`] behind gets `Lagged` and should
    /// treat it like [`Change::Resync`].
    fn changes(&self) -> tokio::sync::broadcast::Receiver<Change>;

    /// Any account, by username, for a web login. `None` when unknown.
    async fn account(&self, username: &str) -> StoreResult<Option<AccountRecord>>;

    /// Stores a new web session for `account` (after its password was
    /// verified) and audits the login.
    async fn start_web_session(
        &self,
        account: AccountId,
        session: NewWebSession,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// The live session with this id hash, touched as used now; `None` when
    /// unknown, ended, past its absolute expiry, or idle for
    /// `idle_timeout_ms` or longer. Stored in the database, so a session
    /// started through one instance works at every other, and one ended
    /// anywhere is dead everywhere at once.
    async fn web_session(
        &self,
        hash: TokenHash,
        idle_timeout_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Option<WebSession>>;

    /// Ends a session (logout); true when it was live. Audited.
    async fn end_web_session(&self, hash: TokenHash, now_ms: i64) -> StoreResult<bool>;

    /// The server secret named `name`, shared by every instance on this
    /// database: `fresh` is stored and returned if there is none yet,
    /// otherwise the stored one is returned and `fresh` is dropped.
    async fn server_secret(
        &self,
        name: &str,
        fresh: [u8; 32],
        now_ms: i64,
    ) -> StoreResult<[u8; 32]>;

    /// The server secret named `name` if the database holds one. Never
    /// creates it: for reading a public value, or for moving the secrets
    /// out ([`Store::remove_server_secrets`]).
    async fn find_server_secret(&self, name: &str) -> StoreResult<Option<[u8; 32]>>;

    /// Deletes the named server secrets once they are kept elsewhere (a
    /// key file), in one transaction with a `server_keys_moved` audit
    /// entry by `actor`; the number deleted.
    async fn remove_server_secrets(
        &self,
        names: &[&str],
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u64>;

    /// Checks that the database answers a query now: the readiness check a
    /// load balancer uses to route around an instance that cannot serve.
    async fn ping(&self) -> StoreResult<()>;

    /// Which backend this is (`sqlite` or `postgres`), for the health check
    /// and logs.
    fn backend_name(&self) -> &'static str;
}
