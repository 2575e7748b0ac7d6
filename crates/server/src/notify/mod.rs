//! The edges of alarms that reach people ([`infusion_store::escalation`]
//! holds the rules): the escalation clock, which tells each due step, and
//! one sender per channel, which delivers the outbox. Every instance runs
//! both; the store makes each step happen once and leases each delivery
//! to one sender at a time. A sender wakes when the change feed says an
//! alarm moved, and every second besides (a notification written by
//! another instance, a retry falling due).

mod email;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use infusion_store::{Change, Channel, Outgoing};
use tokio::sync::broadcast::error::RecvError;

pub use email::{Email, SmtpConfig};
pub use webhook::{Webhook, sign};

use crate::AppState;
use crate::clock::now_ms;

/// Where notifications go, as `serve` configures it.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// Webhook URLs (`--webhook-url`), each sent every notification.
    pub webhooks: Vec<String>,
    /// The webhooks' signing secret (`INFUSION_WEBHOOK_SECRET`).
    pub webhook_secret: Option<Vec<u8>>,
    /// The mail relay, for the recipients with an email address.
    pub smtp: Option<SmtpConfig>,
    /// How often the escalation clock looks for due steps.
    pub escalate_every: Duration,
}

/// A channel's sender: one delivery attempt of one notification.
#[async_trait]
pub trait Sender: Send + Sync {
    /// The channel it claims from.
    fn channel(&self) -> Channel;
    /// Delivers `o`; the error says why not, in words for the
    /// administrator.
    async fn deliver(&self, o: &Outgoing) -> Result<(), String>;
}

/// How many notifications a sender claims at once.
const BATCH: u32 = 20;

/// The senders `config` asks for.
pub fn senders(config: &NotifyConfig) -> Result<Vec<Arc<dyn Sender>>, String> {
    let mut out: Vec<Arc<dyn Sender>> = Vec::new();
    if !config.webhooks.is_empty() {
        let secret = config.webhook_secret.clone().ok_or(
            "--webhook-url needs the signing secret in INFUSION_WEBHOOK_SECRET: receivers must be \
             able to tell our notifications from forged ones",
        )?;
        for url in &config.webhooks {
            out.push(Arc::new(Webhook::new(url, secret.clone())?));
        }
    }
    if let Some(smtp) = &config.smtp {
        out.push(Arc::new(Email::new(smtp)?));
    }
    Ok(out)
}

/// Tells every due escalation step, until aborted.
pub async fn escalate(state: AppState) {
    let mut tick = tokio::time::interval(state.config.notify.escalate_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = state.store.escalate_due(now_ms()).await {
            tracing::warn!(error = %e, "escalation sweep failed");
        }
    }
}

/// Delivers `sender`'s channel until aborted.
pub async fn deliver(state: AppState, sender: Arc<dyn Sender>) {
    let channel = sender.channel();
    let mut feed = state.store.changes();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let claimed = match state
            .store
            .claim_deliveries(&channel, now_ms(), BATCH)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "claiming notifications failed");
                Vec::new()
            }
        };
        let full = claimed.len() == BATCH as usize;
        for o in claimed {
            let outcome = sender.deliver(&o).await;
            if let Err(e) = &outcome {
                tracing::warn!(notification = o.id, channel = %o.channel, attempt = o.attempt,
                               error = %e, "notification not delivered");
            }
            let done = state
                .store
                .delivery_done(o.id, &o.channel, outcome, o.attempt, now_ms())
                .await;
            if let Err(e) = done {
                tracing::warn!(error = %e, "recording a delivery failed");
            }
        }
        if full {
            continue;
        }
        // Wait for an alarm to move, or a second.
        loop {
            tokio::select! {
                _ = tick.tick() => break,
                c = feed.recv() => match c {
                    Ok(Change::Alarm { .. } | Change::AlarmAcknowledged { .. } | Change::Events { .. })
                    | Err(RecvError::Lagged(_)) => break,
                    Ok(_) => {}
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }
}
