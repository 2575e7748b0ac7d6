//! The SQL of web sessions.

use async_trait::async_trait;
use infusion_store::{
    AccountId, AccountRecord, NewWebSession, SessionUse, StoreError, StoreResult, TokenHash,
    WebSession, WebSessions, ended, session_of, started,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::SqliteStore;
use crate::rows::one;
use crate::writer::{Cached, WriteCtx, backend};

fn start_web_session(
    cx: &mut WriteCtx<'_>,
    account: AccountId,
    session: NewWebSession,
    now_ms: i64,
) -> StoreResult<()> {
    let conn = cx.conn;
    let username: Option<String> = conn
        .row(
            "SELECT username FROM accounts WHERE id = ?1",
            [account.0],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    let effects = started(username.as_deref(), now_ms)?;
    conn.exec(
        "INSERT INTO web_sessions (hash, account_id, created_at_ms, last_seen_ms, expires_at_ms)
         VALUES (?1, ?2, ?3, ?3, ?4)",
        params![
            &session.hash.0[..],
            account.0,
            now_ms,
            session.expires_at_ms
        ],
    )
    .map_err(backend)?;
    cx.apply(effects)
}

/// The condition of a live session, over `?1` (hash), `?2` (now) and
/// `?3` (the idle timeout).
const LIVE: &str =
    "hash = ?1 AND ended_at_ms IS NULL AND expires_at_ms > ?2 AND last_seen_ms > ?2 - ?3";

fn web_session(
    conn: &Connection,
    hash: TokenHash,
    idle_timeout_ms: i64,
    now_ms: i64,
    used: SessionUse,
) -> StoreResult<Option<WebSession>> {
    let sql = match used {
        SessionUse::Active => format!(
            "UPDATE web_sessions SET last_seen_ms = ?2 WHERE {LIVE}
             RETURNING account_id, created_at_ms, expires_at_ms"
        ),
        SessionUse::Background => format!(
            "SELECT account_id, created_at_ms, expires_at_ms FROM web_sessions WHERE {LIVE}"
        ),
    };
    let live: Option<(i64, i64, i64)> = conn
        .row(&sql, params![&hash.0[..], now_ms, idle_timeout_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(backend)?;
    let Some((account_id, created_at_ms, expires_at_ms)) = live else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {} FROM accounts a WHERE a.id = ?1",
        AccountRecord::COLUMNS
    );
    let a = one(conn, &sql, [account_id], |r| AccountRecord::at(r, 0))?
        .ok_or_else(|| StoreError::NotFound("no such account".into()))?;
    Ok(session_of(a, created_at_ms, expires_at_ms))
}

fn end_web_session(cx: &mut WriteCtx<'_>, hash: TokenHash, now_ms: i64) -> StoreResult<bool> {
    let username: Option<(i64, String)> = cx
        .conn
        .row(
            "UPDATE web_sessions SET ended_at_ms = ?2 WHERE hash = ?1 AND ended_at_ms IS NULL
             RETURNING account_id, (SELECT username FROM accounts WHERE id = account_id)",
            params![&hash.0[..], now_ms],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    let account = username
        .as_ref()
        .map(|(id, name): &(i64, String)| (AccountId(*id), name.as_str()));
    let (live, effects) = ended(account, now_ms);
    cx.apply(effects)?;
    Ok(live)
}

#[async_trait]
impl WebSessions for SqliteStore {
    async fn start_web_session(
        &self,
        account: AccountId,
        session: NewWebSession,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.writer
            .write(move |cx| start_web_session(cx, account, session, now_ms))
            .await
    }

    async fn web_session(
        &self,
        hash: TokenHash,
        idle_timeout_ms: i64,
        now_ms: i64,
        used: SessionUse,
    ) -> StoreResult<Option<WebSession>> {
        match used {
            SessionUse::Active => {
                self.writer
                    .write(move |cx| web_session(cx.conn, hash, idle_timeout_ms, now_ms, used))
                    .await
            }
            SessionUse::Background => {
                self.readers
                    .read(move |conn| web_session(conn, hash, idle_timeout_ms, now_ms, used))
                    .await
            }
        }
    }

    async fn end_web_session(&self, hash: TokenHash, now_ms: i64) -> StoreResult<bool> {
        self.writer
            .write(move |cx| end_web_session(cx, hash, now_ms))
            .await
    }
}
