//! The SQL of the login throttle (the rules are the store crate's
//! `throttle` module).

use async_trait::async_trait;
use infusion_store::StoreResult;
use infusion_store::throttle::{self, Attempt, Throttle, ThrottleKey, attempt, counted};
use sqlx::PgConnection;

use crate::audit::apply;
use crate::{PgStore, db_error};

/// Counts one attempt against `k` and applies what the count decides. The
/// upsert's row lock orders concurrent attempts on a key, so a burst of
/// guesses is counted exactly.
async fn count_attempt(conn: &mut PgConnection, k: &ThrottleKey, now_ms: i64) -> StoreResult<()> {
    let attempts: i64 = sqlx::query_scalar(
        "INSERT INTO login_throttle (key, attempts, last_attempt_ms, locked_until_ms)
         VALUES ($1, 1, $2, 0)
         ON CONFLICT (key) DO UPDATE SET
             attempts = CASE WHEN $2 - login_throttle.last_attempt_ms > $3 THEN 1
                             ELSE login_throttle.attempts + 1 END,
             last_attempt_ms = $2
         RETURNING attempts",
    )
    .bind(&k.key)
    .bind(now_ms)
    .bind(throttle::WINDOW_MS)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)?;
    let count = counted(k, attempts, now_ms);
    if let Some(until) = count.locked_until_ms {
        sqlx::query("UPDATE login_throttle SET locked_until_ms = $2 WHERE key = $1")
            .bind(&k.key)
            .bind(until)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    apply(conn, count.effects).await
}

#[async_trait]
impl Throttle for PgStore {
    async fn login_attempt(&self, keys: Vec<ThrottleKey>, now_ms: i64) -> StoreResult<Attempt> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
        let until: Option<i64> = sqlx::query_scalar(
            "SELECT max(locked_until_ms) FROM login_throttle WHERE key = ANY($1)",
        )
        .bind(&names)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let verdict = attempt(until, now_ms);
        if verdict == Attempt::Allowed {
            for k in keys.iter().filter(|k| k.up_front) {
                count_attempt(&mut tx, k, now_ms).await?;
            }
            tx.commit().await.map_err(db_error)?;
        }
        Ok(verdict)
    }

    async fn login_failed(&self, keys: Vec<ThrottleKey>, now_ms: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        for k in keys.iter().filter(|k| !k.up_front) {
            count_attempt(&mut tx, k, now_ms).await?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn login_succeeded(&self, keys: Vec<ThrottleKey>) -> StoreResult<()> {
        let names: Vec<&str> = keys
            .iter()
            .filter(|k| k.up_front)
            .map(|k| k.key.as_str())
            .collect();
        sqlx::query("DELETE FROM login_throttle WHERE key = ANY($1)")
            .bind(&names)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db_error)
    }
}
