//! The SQL of the login throttle (the rules are the store crate's
//! `throttle` module).

use async_trait::async_trait;
use infusion_store::StoreResult;
use infusion_store::throttle::{self, Attempt, Throttle, ThrottleKey, attempt, counted};
use rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::writer::{Cached, WriteCtx, backend};

fn login_attempt(cx: &mut WriteCtx<'_>, keys: &[ThrottleKey], now_ms: i64) -> StoreResult<Attempt> {
    let mut until: Option<i64> = None;
    for k in keys {
        let locked: Option<i64> = cx
            .conn
            .row(
                "SELECT locked_until_ms FROM login_throttle WHERE key = ?1",
                [&k.key],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        until = until.max(locked);
    }
    let verdict = attempt(until, now_ms);
    if verdict == Attempt::Allowed {
        for k in keys.iter().filter(|k| k.up_front) {
            count_attempt(cx, k, now_ms)?;
        }
    }
    Ok(verdict)
}

/// Counts one attempt against `k` (restarting a count older than the
/// window) and applies what the count decides.
fn count_attempt(cx: &mut WriteCtx<'_>, k: &ThrottleKey, now_ms: i64) -> StoreResult<()> {
    let attempts: i64 = cx
        .conn
        .row(
            "INSERT INTO login_throttle (key, attempts, last_attempt_ms, locked_until_ms)
             VALUES (?1, 1, ?2, 0)
             ON CONFLICT (key) DO UPDATE SET
                 attempts = CASE WHEN ?2 - login_throttle.last_attempt_ms > ?3 THEN 1
                                 ELSE login_throttle.attempts + 1 END,
                 last_attempt_ms = ?2
             RETURNING attempts",
            params![k.key, now_ms, throttle::WINDOW_MS],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let count = counted(k, attempts, now_ms);
    if let Some(until) = count.locked_until_ms {
        cx.conn
            .exec(
                "UPDATE login_throttle SET locked_until_ms = ?2 WHERE key = ?1",
                params![k.key, until],
            )
            .map_err(backend)?;
    }
    cx.apply(count.effects)
}

#[async_trait]
impl Throttle for SqliteStore {
    async fn login_attempt(&self, keys: Vec<ThrottleKey>, now_ms: i64) -> StoreResult<Attempt> {
        self.writer
            .write(move |cx| login_attempt(cx, &keys, now_ms))
            .await
    }

    async fn login_failed(&self, keys: Vec<ThrottleKey>, now_ms: i64) -> StoreResult<()> {
        self.writer
            .write(move |cx| {
                for k in keys.iter().filter(|k| !k.up_front) {
                    count_attempt(cx, k, now_ms)?;
                }
                Ok(())
            })
            .await
    }

    async fn login_succeeded(&self, keys: Vec<ThrottleKey>) -> StoreResult<()> {
        self.writer
            .write(move |cx| {
                for k in keys.iter().filter(|k| k.up_front) {
                    cx.conn
                        .exec("DELETE FROM login_throttle WHERE key = ?1", [&k.key])
                        .map_err(backend)?;
                }
                Ok(())
            })
            .await
    }
}
