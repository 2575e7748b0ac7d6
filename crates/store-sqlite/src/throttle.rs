//! The SQL of the login throttle (the rules are the store crate's
//! `throttle` module).

use async_trait::async_trait;
use infusion_store::StoreResult;
use infusion_store::throttle::{
    self, Attempt, Count, Outcome, Settle, Throttle, ThrottleKey, decide, settle,
};
use rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::writer::{Cached, WriteCtx, backend};

/// Decides an attempt on the keys' rows and writes what was decided; the
/// single writer orders concurrent attempts.
fn login_attempt(cx: &mut WriteCtx<'_>, keys: &[ThrottleKey], now_ms: i64) -> StoreResult<Attempt> {
    let mut stored = Vec::with_capacity(keys.len());
    for k in keys {
        let count = cx
            .conn
            .row(
                "SELECT attempts, last_attempt_ms, locked_until_ms FROM login_throttle WHERE key = ?1",
                [&k.key],
                |r| {
                    Ok(Count {
                        attempts: r.get(0)?,
                        last_attempt_ms: r.get(1)?,
                        until_ms: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(backend)?;
        stored.push(count);
    }
    let decided = decide(keys, &stored, now_ms);
    for (key, c) in &decided.rows {
        cx.conn
            .exec(
                "INSERT INTO login_throttle (key, attempts, last_attempt_ms, locked_until_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET attempts = ?2, last_attempt_ms = ?3,
                     locked_until_ms = ?4",
                params![key, c.attempts, c.last_attempt_ms, c.until_ms],
            )
            .map_err(backend)?;
    }
    cx.apply(decided.effects)?;
    Ok(decided.attempt)
}

#[async_trait]
impl Throttle for SqliteStore {
    async fn login_attempt(&self, keys: Vec<ThrottleKey>, now_ms: i64) -> StoreResult<Attempt> {
        self.writer
            .write(move |cx| login_attempt(cx, &keys, now_ms))
            .await
    }

    async fn login_settled(&self, keys: Vec<ThrottleKey>, outcome: Outcome) -> StoreResult<()> {
        if keys.iter().all(|k| settle(k, outcome) == Settle::Keep) {
            return Ok(());
        }
        self.writer
            .write(move |cx| {
                for k in &keys {
                    let sql = match settle(k, outcome) {
                        Settle::Keep => continue,
                        Settle::GiveBack => {
                            "UPDATE login_throttle SET attempts = max(attempts - 1, 0) WHERE key = ?1"
                        }
                        Settle::Clear => "DELETE FROM login_throttle WHERE key = ?1",
                    };
                    cx.conn.exec(sql, [&k.key]).map_err(backend)?;
                }
                Ok(())
            })
            .await
    }

    async fn prune_throttle(&self, now_ms: i64) -> StoreResult<u64> {
        self.writer
            .write(move |cx| {
                let n = cx
                    .conn
                    .exec(
                        "DELETE FROM login_throttle
                         WHERE last_attempt_ms < ?1 AND locked_until_ms <= ?2",
                        params![now_ms.saturating_sub(throttle::WINDOW_MS), now_ms],
                    )
                    .map_err(backend)?;
                Ok(n as u64)
            })
            .await
    }
}
