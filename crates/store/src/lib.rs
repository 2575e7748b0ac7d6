//! The storage contract of the infusion server.
//!
//! Handlers speak to a [`Store`], never to a database: the embedded SQLite
//! backend and the PostgreSQL backend implement the same traits with the
//! same behaviour, proven by one integration suite run against both. Each
//! trait method is one transaction; the types that cross it are domain
//! types (parsed, typed, in integer units), never raw rows.
//!
//! One aggregate, one module: each holds its types, its trait, and the
//! **decision functions** of its rules, sans-IO in the way `quinn-proto`
//! is: a backend reads what a decision needs, calls it, and writes what it
//! returns, applying its [`Effects`] (audit entries, change
//! announcements). A rule is written and tested once, here; a backend
//! holds only its SQL.

mod accounts;
mod audit;
pub mod audit_chain;
mod board;
mod care;
mod care_team;
mod change;
mod columns;
mod devices;
mod drugs;
mod effects;
mod error;
mod escalation;
mod events;
mod identifiers;
mod institutions;
mod notifications;
mod patient_note;
mod priority;
mod second_factor;
mod secrets;
pub mod soft_limits;
mod suggestions;
mod team;
pub mod throttle;
mod tokens;
mod treatment;
pub mod units;
mod watchdog;
mod web_sessions;
mod wording;
mod words;

pub use accounts::*;
pub use audit::*;
pub use audit_chain::{AuditHead, ChainedAudit};
pub use board::*;
pub use care::*;
pub use care_team::*;
pub use change::{CHANGE_BACKLOG, Change};
pub use columns::{Columns, limits_at, patient_at, patient_filter, stored_patient, ward_at};
pub use devices::*;
pub use drugs::*;
pub use effects::Effects;
pub use error::{StoreError, StoreResult};
pub use escalation::*;
pub use events::*;
pub use identifiers::*;
pub use institutions::*;
pub use notifications::*;
pub use patient_note::*;
pub use priority::{Priority, by_priority, highest};
pub use second_factor::*;
pub use secrets::*;
pub use soft_limits::{Confirmation, Limits, RateStep};
pub use suggestions::*;
pub use team::*;
pub use throttle::Throttle;
pub use tokens::*;
pub use treatment::*;
pub use watchdog::*;
pub use web_sessions::*;
pub use wording::{capitalised, device_actor, sentence, uncapitalised, user_actor, utc_time};
pub use words::{alarm_code_words, alarm_words, order_words, state_change_words};

use async_trait::async_trait;

/// Every aggregate trait, for `use infusion_store::prelude::*` where a
/// [`Store`]'s methods are called.
pub mod prelude {
    pub use crate::{
        Accounts, AuditLog, Boards, Care, CareTeam, Devices, Drugs, Escalations, Events,
        Institutions, SecondFactors, ServerSecrets, Store, Suggestions, Throttle, Tokens,
        Treatment, Watchdog, WebSessions,
    };
}

/// Everything the server persists: the sum of the aggregates, and what
/// concerns the database as a whole.
///
/// Times are passed in (`now_ms`, milliseconds since the Unix epoch) rather
/// than read from a clock, so that expiry is testable and every row written
/// by one request carries one time.
#[async_trait]
pub trait Store:
    Accounts
    + Boards
    + Care
    + CareTeam
    + Escalations
    + Notifications
    + Devices
    + Drugs
    + Institutions
    + Tokens
    + Treatment
    + Events
    + Suggestions
    + WebSessions
    + Watchdog
    + Throttle
    + AuditLog
    + ServerSecrets
    + SecondFactors
    + 'static
{
    /// Subscribes to the change feed: every change committed from now on,
    /// through any server instance on this database (with PostgreSQL,
    /// changes committed just before subscribing may arrive too: the feed
    /// tells what to reread, it is not a log). A subscriber that
    /// falls more than [`CHANGE_BACKLOG`] behind gets `Lagged` and should
    /// treat it like [`Change::Resync`].
    fn changes(&self) -> tokio::sync::broadcast::Receiver<Change>;

    /// Checks that the database answers a query now: the readiness check a
    /// load balancer uses to route around an instance that cannot serve.
    async fn ping(&self) -> StoreResult<()>;

    /// Which backend this is (`sqlite` or `postgres`), for the health check
    /// and logs.
    fn backend_name(&self) -> &'static str;
}
