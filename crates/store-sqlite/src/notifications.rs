//! The SQL of the outbox's deliveries.

use async_trait::async_trait;
use infusion_store::{
    AccountRecord, Channel, Columns, DeliveryRecord, LEASE_MS, LOOKBACK_MS, Notifications,
    Outgoing, Recipient, StoreResult, email_set, retry_at, stored_error, stored_role,
};
use rusqlite::{Connection, params};

use crate::SqliteStore;
use crate::rows::{all, one};
use crate::writer::{Cached, WriteCtx, backend};

/// The deliveries a channel is due: each webhook delivers every
/// notification, email each one to each recipient with an address.
fn enqueue(conn: &Connection, channel: &Channel, since: i64) -> StoreResult<()> {
    match channel {
        Channel::Webhook(url) => conn.exec(
            "INSERT INTO notification_deliveries (notification_id, channel, next_attempt_at_ms)
             SELECT n.id, ?1, n.created_at_ms FROM notifications n WHERE n.created_at_ms >= ?2
             ON CONFLICT DO NOTHING",
            params![Channel::webhook_name(url), since],
        ),
        Channel::Email => conn.exec(
            "INSERT INTO notification_deliveries (notification_id, channel, next_attempt_at_ms)
             SELECT n.id, 'email:' || a.email, n.created_at_ms FROM notifications n
             JOIN notification_recipients r ON r.notification_id = n.id
             JOIN accounts a ON a.id = r.account_id
             WHERE n.created_at_ms >= ?1 AND a.email IS NOT NULL
             ON CONFLICT DO NOTHING",
            params![since],
        ),
    }
    .map(|_| ())
    .map_err(backend)
}

fn claim(
    cx: &mut WriteCtx<'_>,
    channel: &Channel,
    now_ms: i64,
    limit: u32,
) -> StoreResult<Vec<Outgoing>> {
    let conn = cx.conn;
    let since = now_ms - LOOKBACK_MS;
    enqueue(conn, channel, since)?;
    let (filter, name) = match channel {
        Channel::Webhook(url) => ("d.channel = ?4", Channel::webhook_name(url)),
        Channel::Email => ("d.channel LIKE ?4", "email:%".to_owned()),
    };
    let sql = format!(
        "UPDATE notification_deliveries SET attempts = attempts + 1, next_attempt_at_ms = ?1 + ?2
         WHERE (notification_id, channel) IN (
             SELECT d.notification_id, d.channel FROM notification_deliveries d
             JOIN notifications n ON n.id = d.notification_id
             WHERE {filter} AND d.delivered_at_ms IS NULL AND d.next_attempt_at_ms <= ?1
               AND n.created_at_ms >= ?3
             ORDER BY d.next_attempt_at_ms LIMIT ?5)
         RETURNING notification_id, channel, attempts"
    );
    let claimed = all(
        conn,
        &sql,
        params![now_ms, LEASE_MS, since, name, limit],
        |r| Ok((r.i64(0)?, r.string(1)?, r.u32(2)?)),
    )?;
    let details = format!(
        "SELECT {} FROM notifications n {} WHERE n.id = ?1",
        Outgoing::COLUMNS,
        Outgoing::JOINS
    );
    let mut out = Vec::with_capacity(claimed.len());
    for c in claimed {
        let id = c.0;
        let Some(mut o) = one(conn, &details, [id], |r| Outgoing::from_row(c.clone(), r))? else {
            continue;
        };
        o.recipients = all(
            conn,
            "SELECT a.username, a.role, a.email FROM notification_recipients r
             JOIN accounts a ON a.id = r.account_id WHERE r.notification_id = ?1
             ORDER BY a.username",
            [id],
            |r| {
                Ok(Recipient {
                    username: r.string(0)?,
                    role: stored_role(&r.string(1)?)?,
                    email: r.text(2)?,
                })
            },
        )?;
        out.push(o);
    }
    Ok(out)
}

#[async_trait]
impl Notifications for SqliteStore {
    async fn claim_deliveries(
        &self,
        channel: &Channel,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Outgoing>> {
        let channel = channel.clone();
        self.writer
            .write(move |cx| claim(cx, &channel, now_ms, limit))
            .await
    }

    async fn delivery_done(
        &self,
        notification: i64,
        channel: &str,
        outcome: Result<(), String>,
        attempt: u32,
        now_ms: i64,
    ) -> StoreResult<()> {
        let channel = channel.to_owned();
        self.writer
            .write(move |cx| {
                let (delivered, error, next) = match &outcome {
                    Ok(()) => (Some(now_ms), None, now_ms),
                    Err(e) => (None, Some(stored_error(e)), retry_at(attempt, now_ms)),
                };
                cx.conn
                    .exec(
                        "UPDATE notification_deliveries
                         SET delivered_at_ms = ?3, last_error = ?4, next_attempt_at_ms = ?5
                         WHERE notification_id = ?1 AND channel = ?2 AND delivered_at_ms IS NULL",
                        params![notification, channel, delivered, error, next],
                    )
                    .map(|_| ())
                    .map_err(backend)
            })
            .await
    }

    async fn set_email(
        &self,
        username: &str,
        email: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (username, email, actor) = (
            username.to_owned(),
            email.map(str::to_owned),
            actor.to_owned(),
        );
        self.writer
            .write(move |cx| {
                let sql = format!(
                    "SELECT {} FROM accounts a WHERE a.username = ?1",
                    AccountRecord::COLUMNS
                );
                let found = one(cx.conn, &sql, [&username], |r| AccountRecord::at(r, 0))?;
                let (account, effects) =
                    email_set(found.as_ref(), &username, email.as_deref(), &actor, now_ms)?;
                cx.conn
                    .exec(
                        "UPDATE accounts SET email = ?2 WHERE id = ?1",
                        params![account.0, email],
                    )
                    .map_err(backend)?;
                cx.apply(effects)
            })
            .await
    }

    async fn deliveries(&self, limit: u32) -> StoreResult<Vec<DeliveryRecord>> {
        self.readers
            .read(move |conn| {
                all(conn, DeliveryRecord::QUERY, [limit], |r| {
                    DeliveryRecord::from_row(r)
                })
            })
            .await
    }
}
