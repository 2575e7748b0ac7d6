//! The SQL of the outbox's deliveries. Instances claim concurrently: a
//! claimed delivery is locked (`FOR UPDATE SKIP LOCKED`) and leased, so
//! that one instance delivers it at a time.

use async_trait::async_trait;
use infusion_store::{
    AccountRecord, Channel, DeliveryRecord, LEASE_MS, LOOKBACK_MS, Notifications, Outgoing,
    Recipient, StoreResult, email_set, retry_at, stored_error, stored_role,
};

use crate::audit::apply;
use crate::rows::Cols;
use crate::{PgStore, db_error};

#[async_trait]
impl Notifications for PgStore {
    async fn claim_deliveries(
        &self,
        channel: &Channel,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Outgoing>> {
        let since = now_ms - LOOKBACK_MS;
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let (filter, name) = match channel {
            Channel::Webhook(url) => {
                sqlx::query(
                    "INSERT INTO notification_deliveries (notification_id, channel, next_attempt_at_ms)
                     SELECT n.id, $1, n.created_at_ms FROM notifications n WHERE n.created_at_ms >= $2
                     ON CONFLICT DO NOTHING",
                )
                .bind(Channel::webhook_name(url))
                .bind(since)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                ("d.channel = $4", Channel::webhook_name(url))
            }
            Channel::Email => {
                sqlx::query(
                    "INSERT INTO notification_deliveries (notification_id, channel, next_attempt_at_ms)
                     SELECT n.id, 'email:' || a.email, n.created_at_ms FROM notifications n
                     JOIN notification_recipients r ON r.notification_id = n.id
                     JOIN accounts a ON a.id = r.account_id
                     WHERE n.created_at_ms >= $1 AND a.email IS NOT NULL
                     ON CONFLICT DO NOTHING",
                )
                .bind(since)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                ("d.channel LIKE $4", "email:%".to_owned())
            }
        };
        let claimed: Vec<(i64, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE notification_deliveries SET attempts = attempts + 1,
                 next_attempt_at_ms = $1 + $2
             WHERE (notification_id, channel) IN (
                 SELECT d.notification_id, d.channel FROM notification_deliveries d
                 JOIN notifications n ON n.id = d.notification_id
                 WHERE {filter} AND d.delivered_at_ms IS NULL AND d.next_attempt_at_ms <= $1
                   AND n.created_at_ms >= $3
                 ORDER BY d.next_attempt_at_ms LIMIT $5
                 FOR UPDATE OF d SKIP LOCKED)
             RETURNING notification_id, channel, attempts"
        )))
        .bind(now_ms)
        .bind(LEASE_MS)
        .bind(since)
        .bind(name)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let details = format!(
            "SELECT {} FROM notifications n {} WHERE n.id = $1",
            Outgoing::COLUMNS,
            Outgoing::JOINS
        );
        let mut out = Vec::with_capacity(claimed.len());
        for (id, channel, attempts) in claimed {
            let row = sqlx::query(sqlx::AssertSqlSafe(details.as_str()))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
            let Some(row) = row else { continue };
            let attempt = u32::try_from(attempts).unwrap_or(u32::MAX);
            let mut o = Outgoing::from_row((id, channel, attempt), &Cols(&row))?;
            let who: Vec<(String, String, Option<String>)> = sqlx::query_as(
                "SELECT a.username, a.role, a.email FROM notification_recipients r
                 JOIN accounts a ON a.id = r.account_id WHERE r.notification_id = $1
                 ORDER BY a.username",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
            for (username, role, email) in who {
                o.recipients.push(Recipient {
                    username,
                    role: stored_role(&role)?,
                    email,
                });
            }
            out.push(o);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(out)
    }

    async fn delivery_done(
        &self,
        notification: i64,
        channel: &str,
        outcome: Result<(), String>,
        attempt: u32,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (delivered, error, next) = match &outcome {
            Ok(()) => (Some(now_ms), None, now_ms),
            Err(e) => (None, Some(stored_error(e)), retry_at(attempt, now_ms)),
        };
        sqlx::query(
            "UPDATE notification_deliveries
             SET delivered_at_ms = $3, last_error = $4, next_attempt_at_ms = $5
             WHERE notification_id = $1 AND channel = $2 AND delivered_at_ms IS NULL",
        )
        .bind(notification)
        .bind(channel)
        .bind(delivered)
        .bind(error)
        .bind(next)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(db_error)
    }

    async fn set_email(
        &self,
        username: &str,
        email: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let found = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM accounts a WHERE a.username = $1 FOR UPDATE OF a",
            AccountRecord::COLUMNS
        )))
        .bind(username)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .as_ref()
        .map(|r| AccountRecord::at(&Cols(r), 0))
        .transpose()?;
        let (account, effects) = email_set(found.as_ref(), username, email, actor, now_ms)?;
        sqlx::query("UPDATE accounts SET email = $2 WHERE id = $1")
            .bind(account.0)
            .bind(email)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn deliveries(&self, limit: u32) -> StoreResult<Vec<DeliveryRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(DeliveryRecord::QUERY.replace('?', "$")))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| DeliveryRecord::from_row(&Cols(r)))
            .collect()
    }
}
