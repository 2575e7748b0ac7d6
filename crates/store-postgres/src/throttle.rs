//! The SQL of the login throttle (the rules are the store crate's
//! `throttle` module).

use async_trait::async_trait;
use infusion_store::StoreResult;
use infusion_store::throttle::{
    self, Attempt, Count, Outcome, Settle, Throttle, ThrottleKey, decide, settle,
};
use sqlx::Row;

use crate::audit::apply;
use crate::{PgStore, db_error};

#[async_trait]
impl Throttle for PgStore {
    /// Every key gets a row first (an empty one counts as none), then the
    /// rows are locked in key order: concurrent attempts on a key, from
    /// any instance, are decided one after another and never deadlock.
    async fn login_attempt(&self, keys: Vec<ThrottleKey>, now_ms: i64) -> StoreResult<Attempt> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let mut names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
        names.sort_unstable();
        for name in &names {
            sqlx::query(
                "INSERT INTO login_throttle (key, attempts, last_attempt_ms, locked_until_ms)
                 VALUES ($1, 0, 0, 0) ON CONFLICT (key) DO NOTHING",
            )
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        let rows = sqlx::query(
            "SELECT key, attempts, last_attempt_ms, locked_until_ms FROM login_throttle
             WHERE key = ANY($1) ORDER BY key FOR UPDATE",
        )
        .bind(&names)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let mut stored = vec![None; keys.len()];
        for row in rows {
            let key: String = row.try_get(0).map_err(db_error)?;
            let count = Count {
                attempts: row.try_get(1).map_err(db_error)?,
                last_attempt_ms: row.try_get(2).map_err(db_error)?,
                until_ms: row.try_get(3).map_err(db_error)?,
            };
            for (slot, k) in stored.iter_mut().zip(&keys) {
                if k.key == key {
                    *slot = Some(count);
                }
            }
        }
        let decided = decide(&keys, &stored, now_ms);
        for (key, c) in &decided.rows {
            sqlx::query(
                "UPDATE login_throttle SET attempts = $2, last_attempt_ms = $3,
                     locked_until_ms = $4 WHERE key = $1",
            )
            .bind(key)
            .bind(c.attempts)
            .bind(c.last_attempt_ms)
            .bind(c.until_ms)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        apply(&mut tx, decided.effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(decided.attempt)
    }

    async fn login_settled(&self, keys: Vec<ThrottleKey>, outcome: Outcome) -> StoreResult<()> {
        let of = |wanted: Settle| -> Vec<&str> {
            keys.iter()
                .filter(|k| settle(k, outcome) == wanted)
                .map(|k| k.key.as_str())
                .collect()
        };
        let (give_back, clear) = (of(Settle::GiveBack), of(Settle::Clear));
        if give_back.is_empty() && clear.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        for (sql, names) in [
            (
                "UPDATE login_throttle SET attempts = greatest(attempts - 1, 0) WHERE key = ANY($1)",
                give_back,
            ),
            ("DELETE FROM login_throttle WHERE key = ANY($1)", clear),
        ] {
            if !names.is_empty() {
                sqlx::query(sql)
                    .bind(&names)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
            }
        }
        tx.commit().await.map_err(db_error)
    }

    async fn prune_throttle(&self, now_ms: i64) -> StoreResult<u64> {
        sqlx::query(
            "DELETE FROM login_throttle WHERE last_attempt_ms < $1 AND locked_until_ms <= $2",
        )
        .bind(now_ms.saturating_sub(throttle::WINDOW_MS))
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
        .map_err(db_error)
    }
}
