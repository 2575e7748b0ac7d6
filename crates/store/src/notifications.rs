//! The outbox's deliveries: each notification (written with the alarm or
//! step that caused it, see [`crate::escalation`]) is delivered on every
//! channel at least once. A sender claims what is due on its channel for
//! a lease (another instance, or this one restarted after a crash, takes
//! it over when the lease runs out), delivers, and records the outcome; a
//! failure is retried with back-off. Every delivery of one notification
//! carries its id, so that a receiver drops repeats.

use async_trait::async_trait;
use infusion_protocol::PatientId;

use crate::{NoticeEvent, Priority, Role, Step, StoreError, StoreResult};

/// How far back a channel looks for notifications it has not delivered:
/// a channel added today does not page about last week, and one that
/// fails for a day stops retrying what is a day old.
pub const LOOKBACK_MS: i64 = 24 * 3_600_000;

/// How long a claim holds a delivery before another sender may take it.
pub const LEASE_MS: i64 = 30_000;

/// The longest wait between two attempts.
pub const MAX_BACKOFF_MS: i64 = 300_000;

/// When a delivery that failed its `attempts`-th attempt is tried again:
/// after 1 s, doubling each time, at most [`MAX_BACKOFF_MS`].
pub fn retry_at(attempts: u32, now_ms: i64) -> i64 {
    let doublings = attempts.saturating_sub(1).min(20);
    now_ms + (1_000_i64 << doublings).min(MAX_BACKOFF_MS)
}

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Every notification, to one webhook URL.
    Webhook(String),
    /// Each notification to each of its recipients with an email address.
    Email,
}

impl Channel {
    /// The webhook channel's name as stored: `webhook:<url>`. Email
    /// deliveries are stored per address, `email:<address>`.
    pub fn webhook_name(url: &str) -> String {
        format!("webhook:{url}")
    }
}

/// Someone a notification is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Where email goes, if anywhere.
    pub email: Option<String>,
}

/// A notification claimed for delivery on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The notification: its stable id.
    pub id: i64,
    /// The channel it is claimed on (`webhook:<url>`, `email:<address>`).
    pub channel: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// What happened.
    pub event: NoticeEvent,
    /// Whom it tells.
    pub step: Step,
    /// The escalation.
    pub escalation: i64,
    /// Whose alarm.
    pub patient: PatientId,
    /// The patient's username.
    pub username: String,
    /// The patient's name, as staff read it.
    pub patient_name: String,
    /// The alarm's code (`occlusion`, `pump_silent`).
    pub alarm: String,
    /// Its priority.
    pub priority: Priority,
    /// When the alarm was raised, ms since the epoch.
    pub raised_at_ms: i64,
    /// When this notification was written.
    pub created_at_ms: i64,
    /// Whom it is for.
    pub recipients: Vec<Recipient>,
}

impl Outgoing {
    /// The select list of a notification's details, over `notifications
    /// n`, `alarm_escalations x`, `patients p` and `accounts a` (the
    /// patient's), after the claim's `notification_id, channel, attempts`.
    pub const COLUMNS: &'static str = "n.event, n.step, x.id, x.patient_id, a.username,
        a.first_name, a.last_name, x.alarm, x.priority, x.raised_at_ms, n.created_at_ms";

    /// The joins of [`Self::COLUMNS`], after `FROM notifications n`.
    pub const JOINS: &'static str = "JOIN alarm_escalations x ON x.id = n.escalation_id
        JOIN patients p ON p.id = x.patient_id JOIN accounts a ON a.id = p.account_id";

    /// A claimed delivery (`id`, `channel`, `attempt`) with its details
    /// selected with [`Self::COLUMNS`]; recipients are added after.
    pub fn from_row(
        (id, channel, attempt): (i64, String, u32),
        c: &impl crate::Columns,
    ) -> StoreResult<Outgoing> {
        let bad = |what: &str, v: String| StoreError::Backend(format!("bad stored {what} {v:?}"));
        let event = c.string(0)?;
        let step = c.string(1)?;
        let priority = c.string(8)?;
        Ok(Outgoing {
            id,
            channel,
            attempt,
            event: NoticeEvent::parse(&event).ok_or_else(|| bad("event", event.clone()))?,
            step: Step::parse(&step).ok_or_else(|| bad("step", step.clone()))?,
            escalation: c.i64(2)?,
            patient: crate::patient_at(c, 3)?,
            username: c.string(4)?,
            patient_name: format!("{} {}", c.string(5)?, c.string(6)?),
            alarm: c.string(7)?,
            priority: Priority::parse(&priority)
                .ok_or_else(|| bad("priority", priority.clone()))?,
            raised_at_ms: c.i64(9)?,
            created_at_ms: c.i64(10)?,
            recipients: Vec::new(),
        })
    }
}

/// One delivery as the administrator's page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The notification.
    pub id: i64,
    /// The channel.
    pub channel: String,
    /// What happened, to whose alarm.
    pub event: NoticeEvent,
    /// The patient's username.
    pub username: String,
    /// The alarm's code.
    pub alarm: String,
    /// When the notification was written.
    pub created_at_ms: i64,
    /// Attempts so far.
    pub attempts: u32,
    /// When it was delivered, if it was.
    pub delivered_at_ms: Option<i64>,
    /// The last attempt's failure, if it failed.
    pub last_error: Option<String>,
    /// When it is tried next (undelivered).
    pub next_attempt_at_ms: i64,
}

impl DeliveryRecord {
    /// The newest deliveries, failures first (no parameters but the
    /// limit, `?1`; PostgreSQL with `$` for `?`).
    pub const QUERY: &'static str = "SELECT n.id, d.channel, n.event, a.username, x.alarm,
            n.created_at_ms, d.attempts, d.delivered_at_ms, d.last_error, d.next_attempt_at_ms
        FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
        JOIN alarm_escalations x ON x.id = n.escalation_id
        JOIN patients p ON p.id = x.patient_id JOIN accounts a ON a.id = p.account_id
        ORDER BY (d.delivered_at_ms IS NULL) DESC, n.created_at_ms DESC LIMIT ?1";

    /// A row of [`Self::QUERY`].
    pub fn from_row(c: &impl crate::Columns) -> StoreResult<DeliveryRecord> {
        let event = c.string(2)?;
        Ok(DeliveryRecord {
            id: c.i64(0)?,
            channel: c.string(1)?,
            event: NoticeEvent::parse(&event)
                .ok_or_else(|| StoreError::Backend(format!("bad stored event {event:?}")))?,
            username: c.string(3)?,
            alarm: c.string(4)?,
            created_at_ms: c.i64(5)?,
            attempts: c.u32(6)?,
            delivered_at_ms: c.int(7)?,
            last_error: c.text(8)?,
            next_attempt_at_ms: c.i64(9)?,
        })
    }
}

/// Longest failure text kept for a delivery.
pub const ERROR_MAX: usize = 300;

/// A failure's text as stored: one line, at most [`ERROR_MAX`] characters.
pub fn stored_error(e: &str) -> String {
    let line: String = e
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ERROR_MAX)
        .collect();
    line.trim().to_owned()
}

/// Longest email address kept (RFC 5321's path limit).
pub const EMAIL_MAX: usize = 254;

/// Checks an email address well enough to refuse a typing slip: one `@`
/// with text on both sides, a dot in the domain, no spaces or controls,
/// at most [`EMAIL_MAX`] bytes. The relay has the last word.
pub fn check_email(email: &str) -> StoreResult<()> {
    let bad = || {
        StoreError::Invalid(format!(
            "{email:?} is not an email address (write it like nina.berg@hospital.org)"
        ))
    };
    if email.len() > EMAIL_MAX || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.') =>
        {
            Ok(())
        }
        _ => Err(bad()),
    }
}

/// Decides setting `username`'s email address (`None`: removing it), the
/// account as found (`None`: no such account): a valid address, audited.
pub fn email_set(
    found: Option<&crate::AccountRecord>,
    username: &str,
    email: Option<&str>,
    actor: &str,
    now_ms: i64,
) -> StoreResult<(crate::AccountId, crate::Effects)> {
    let a = found.ok_or_else(|| StoreError::NotFound(format!("no account named {username:?}")))?;
    if let Some(e) = email {
        check_email(e)?;
    }
    let detail = match email {
        Some(e) => format!("alarm emails for {username} go to {e}"),
        None => format!("{username} gets no alarm emails"),
    };
    let audit = crate::NewAudit::of(now_ms, actor, crate::AuditAction::EmailSet, None, detail);
    Ok((a.account_id, crate::Effects::audit(audit)))
}

/// Delivering the outbox; one transaction per method.
#[async_trait]
pub trait Notifications: Send + Sync {
    /// Claims at most `limit` notifications due on `channel` at `now_ms`
    /// for [`LEASE_MS`], counting the attempt; each with its recipients.
    async fn claim_deliveries(
        &self,
        channel: &Channel,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Outgoing>>;

    /// Records an attempt's outcome: delivered, or failed with its error
    /// and retried at [`retry_at`].
    async fn delivery_done(
        &self,
        notification: i64,
        channel: &str,
        outcome: Result<(), String>,
        attempt: u32,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// The newest deliveries, undelivered first, for the administrator.
    async fn deliveries(&self, limit: u32) -> StoreResult<Vec<DeliveryRecord>>;

    /// Sets where `username`'s alarm emails go, as [`email_set`] decides.
    async fn set_email(
        &self,
        username: &str,
        email: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_a_second_to_five_minutes() {
        assert_eq!(retry_at(1, 0), 1_000);
        assert_eq!(retry_at(2, 0), 2_000);
        assert_eq!(retry_at(4, 10), 8_010);
        assert_eq!(retry_at(9, 0), 256_000);
        assert_eq!(retry_at(10, 0), MAX_BACKOFF_MS);
        assert_eq!(retry_at(u32::MAX, 0), MAX_BACKOFF_MS);
        assert_eq!(retry_at(0, 0), 1_000);
    }

    #[test]
    fn an_email_address_needs_a_local_part_and_a_domain() {
        for fine in ["nina@ward.example", "a.b+c@x.y.z"] {
            assert!(check_email(fine).is_ok(), "{fine}");
        }
        for bad in [
            "", "nina", "@x.y", "nina@", "nina@x", "a b@x.y", "a@b@c.d", "a@.x", "a@x.",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_stored_error_is_one_bounded_line() {
        assert_eq!(stored_error(" refused\r\nby peer "), "refused  by peer");
        assert_eq!(stored_error(&"x".repeat(1_000)).len(), ERROR_MAX);
    }
}
