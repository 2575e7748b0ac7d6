//! The SQL of second login factors. The rules are the store's
//! (`enrolled`, `step_taken`, `recovery_used`).

use async_trait::async_trait;
use infusion_store::{
    AccountId, Authenticator, SecondFactors, StoreError, StoreResult, TokenHash, enrolled,
    recovery_used, reset, step_taken,
};
use rusqlite::{Connection, params};

use crate::SqliteStore;
use crate::rows::one;
use crate::writer::{Cached, WriteCtx, backend};

fn authenticator(conn: &Connection, account: AccountId) -> StoreResult<Option<Authenticator>> {
    let sql = format!(
        "SELECT {} FROM second_factors f WHERE f.account_id = ?1",
        Authenticator::COLUMNS
    );
    one(conn, &sql, [account.0], |r| Authenticator::from_row(r))
}

fn username(conn: &Connection, account: AccountId) -> StoreResult<String> {
    one(
        conn,
        "SELECT username FROM accounts WHERE id = ?1",
        [account.0],
        |r| infusion_store::Columns::string(r, 0),
    )?
    .ok_or_else(|| StoreError::NotFound("no such account".into()))
}

fn enable(
    cx: &mut WriteCtx<'_>,
    account: AccountId,
    secret: &[u8],
    recovery: &[TokenHash],
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let existing = authenticator(cx.conn, account)?.is_some();
    let effects = enrolled(
        existing,
        &username(cx.conn, account)?,
        recovery,
        actor,
        now_ms,
    )?;
    cx.conn
        .exec(
            "INSERT INTO second_factors (account_id, totp_secret, enabled_at_ms) VALUES (?1, ?2, ?3)",
            params![account.0, secret, now_ms],
        )
        .map_err(backend)?;
    cx.conn
        .exec(
            "DELETE FROM recovery_codes WHERE account_id = ?1",
            [account.0],
        )
        .map_err(backend)?;
    for h in recovery {
        cx.conn
            .exec(
                "INSERT INTO recovery_codes (account_id, hash) VALUES (?1, ?2)",
                params![account.0, &h.0[..]],
            )
            .map_err(backend)?;
    }
    cx.apply(effects)
}

fn use_recovery(
    cx: &mut WriteCtx<'_>,
    account: AccountId,
    hash: TokenHash,
    actor: &str,
    now_ms: i64,
) -> StoreResult<bool> {
    let used = cx
        .conn
        .exec(
            "UPDATE recovery_codes SET used_at_ms = ?3
             WHERE account_id = ?1 AND hash = ?2 AND used_at_ms IS NULL",
            params![account.0, &hash.0[..], now_ms],
        )
        .map_err(backend)?;
    if used == 0 {
        return Ok(false);
    }
    let left = authenticator(cx.conn, account)?.map_or(0, |a| a.recovery_left);
    cx.apply(recovery_used(
        &username(cx.conn, account)?,
        left,
        actor,
        now_ms,
    ))?;
    Ok(true)
}

fn reset_of(cx: &mut WriteCtx<'_>, username: &str, actor: &str, now_ms: i64) -> StoreResult<bool> {
    let account = one(
        cx.conn,
        "SELECT id FROM accounts WHERE username = ?1",
        [username],
        |r| infusion_store::Columns::i64(r, 0),
    )?
    .map(AccountId);
    let had = match account {
        Some(a) => authenticator(cx.conn, a)?.is_some(),
        None => false,
    };
    let Some(effects) = reset(account, had, username, actor, now_ms)? else {
        return Ok(false);
    };
    if let Some(a) = account {
        cx.conn
            .exec("DELETE FROM recovery_codes WHERE account_id = ?1", [a.0])
            .map_err(backend)?;
        cx.conn
            .exec("DELETE FROM second_factors WHERE account_id = ?1", [a.0])
            .map_err(backend)?;
    }
    cx.apply(effects)?;
    Ok(true)
}

#[async_trait]
impl SecondFactors for SqliteStore {
    async fn reset_second_factor(
        &self,
        username: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let (username, actor) = (username.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| reset_of(cx, &username, &actor, now_ms))
            .await
    }

    async fn second_factor(&self, account: AccountId) -> StoreResult<Option<Authenticator>> {
        self.readers
            .read(move |conn| authenticator(conn, account))
            .await
    }

    async fn enable_second_factor(
        &self,
        account: AccountId,
        secret: Vec<u8>,
        recovery: Vec<TokenHash>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| enable(cx, account, &secret, &recovery, &actor, now_ms))
            .await
    }

    async fn take_step(&self, account: AccountId, step: i64) -> StoreResult<bool> {
        self.writer
            .write(move |cx| {
                let Some(a) = authenticator(cx.conn, account)? else {
                    return Ok(false);
                };
                if !step_taken(a.last_step, step) {
                    return Ok(false);
                }
                cx.conn
                    .exec(
                        "UPDATE second_factors SET last_step = ?2 WHERE account_id = ?1",
                        params![account.0, step],
                    )
                    .map_err(backend)?;
                Ok(true)
            })
            .await
    }

    async fn use_recovery_code(
        &self,
        account: AccountId,
        hash: TokenHash,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| use_recovery(cx, account, hash, &actor, now_ms))
            .await
    }
}
