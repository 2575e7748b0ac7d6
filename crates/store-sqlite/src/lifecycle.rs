//! The SQL of the account lifecycle: a password change, disabling and
//! enabling. The rules are the store's (`password_changed`, `enabling`).

use infusion_store::{
    AccountId, AccountRecord, Columns, StoreError, StoreResult, TokenHash, enabling,
    password_changed, password_reset,
};
use rusqlite::params;

use crate::rows::one;
use crate::writer::{Cached, WriteCtx, backend};

/// Ends the live web sessions of `account` but `keep`; how many.
fn end_sessions(
    cx: &WriteCtx<'_>,
    account: AccountId,
    keep: Option<TokenHash>,
    now_ms: i64,
) -> StoreResult<u64> {
    let keep: Vec<u8> = keep.map_or_else(Vec::new, |k| k.0.to_vec());
    cx.conn
        .exec(
            "UPDATE web_sessions SET ended_at_ms = ?2
             WHERE account_id = ?1 AND ended_at_ms IS NULL AND hash != ?3",
            params![account.0, now_ms, keep],
        )
        .map(|n| n as u64)
        .map_err(backend)
}

pub(crate) fn change_password(
    cx: &mut WriteCtx<'_>,
    account: AccountId,
    password_hash: &str,
    keep: Option<TokenHash>,
    actor: &str,
    now_ms: i64,
) -> StoreResult<u64> {
    let username: String = one(
        cx.conn,
        "UPDATE accounts SET password_hash = ?2, must_change_password = 0 WHERE id = ?1
         RETURNING username",
        params![account.0, password_hash],
        |r| r.string(0),
    )?
    .ok_or_else(|| StoreError::NotFound("no such account".into()))?;
    let ended = end_sessions(cx, account, keep, now_ms)?;
    cx.apply(password_changed(account, &username, actor, now_ms))?;
    Ok(ended)
}

pub(crate) fn set_enabled(
    cx: &mut WriteCtx<'_>,
    username: &str,
    enabled: bool,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let sql = format!(
        "SELECT {} FROM accounts a WHERE a.username = ?1",
        AccountRecord::COLUMNS
    );
    let target = one(cx.conn, &sql, [username], |r| AccountRecord::at(r, 0))?;
    let Some(effects) = enabling(target.as_ref(), username, enabled, actor, now_ms)? else {
        return Ok(());
    };
    let Some(a) = target else {
        return Ok(());
    };
    let disabled_at: Option<i64> = (!enabled).then_some(now_ms);
    cx.conn
        .exec(
            "UPDATE accounts SET disabled_at_ms = ?2 WHERE id = ?1",
            params![a.account_id.0, disabled_at],
        )
        .map_err(backend)?;
    if !enabled {
        end_sessions(cx, a.account_id, None, now_ms)?;
        // The pump's chain ends with the account: its tokens are of an
        // older generation from now on.
        cx.conn
            .exec(
                "UPDATE devices SET token_generation = token_generation + 1
                 WHERE retired_at_ms IS NULL
                   AND patient_id IN (SELECT id FROM patients WHERE account_id = ?1)",
                [a.account_id.0],
            )
            .map_err(backend)?;
    }
    cx.apply(effects)
}

pub(crate) fn reset_password(
    cx: &mut WriteCtx<'_>,
    username: &str,
    password_hash: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let sql = format!(
        "SELECT {} FROM accounts a WHERE a.username = ?1",
        AccountRecord::COLUMNS
    );
    let target = one(cx.conn, &sql, [username], |r| AccountRecord::at(r, 0))?;
    let (account, effects) = password_reset(target.as_ref(), username, actor, now_ms)?;
    cx.conn
        .exec(
            "UPDATE accounts SET password_hash = ?2, must_change_password = 1 WHERE id = ?1",
            params![account.0, password_hash],
        )
        .map_err(backend)?;
    end_sessions(cx, account, None, now_ms)?;
    cx.apply(effects)
}
