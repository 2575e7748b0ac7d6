//! The SQL of web sessions.

use async_trait::async_trait;
use infusion_store::{
    AccountId, AccountRecord, NewWebSession, SessionUse, StoreResult, TokenHash, WebSession,
    WebSessions, ended, session_of, started,
};

use crate::audit::apply;
use crate::rows::{Cols, get};
use crate::{PgStore, db_error};

#[async_trait]
impl WebSessions for PgStore {
    async fn start_web_session(
        &self,
        account: AccountId,
        session: NewWebSession,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let username: Option<String> = sqlx::query_scalar(
            "WITH s AS (
                 INSERT INTO web_sessions (hash, account_id, created_at_ms, last_seen_ms, expires_at_ms)
                 SELECT $1, id, $3, $3, $4 FROM accounts WHERE id = $2
                 RETURNING account_id
             )
             SELECT a.username FROM s JOIN accounts a ON a.id = s.account_id",
        )
        .bind(&session.hash.0[..])
        .bind(account.0)
        .bind(now_ms)
        .bind(session.expires_at_ms)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        apply(&mut tx, started(username.as_deref(), now_ms)?).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn web_session(
        &self,
        hash: TokenHash,
        idle_timeout_ms: i64,
        now_ms: i64,
        used: SessionUse,
    ) -> StoreResult<Option<WebSession>> {
        let live =
            "hash = $1 AND ended_at_ms IS NULL AND expires_at_ms > $2 AND last_seen_ms > $2 - $3";
        let found = match used {
            SessionUse::Active => format!(
                "UPDATE web_sessions SET last_seen_ms = $2 WHERE {live}
                 RETURNING account_id, created_at_ms, expires_at_ms"
            ),
            SessionUse::Background => format!(
                "SELECT account_id, created_at_ms, expires_at_ms FROM web_sessions WHERE {live}"
            ),
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH s AS ({found})
             SELECT {}, s.created_at_ms, s.expires_at_ms
             FROM s JOIN accounts a ON a.id = s.account_id",
            AccountRecord::COLUMNS
        )))
        .bind(&hash.0[..])
        .bind(now_ms)
        .bind(idle_timeout_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(r) = row else {
            return Ok(None);
        };
        let a = AccountRecord::at(&Cols(&r), 0)?;
        // After the account's columns.
        let at = AccountRecord::WIDTH;
        Ok(session_of(a, get(&r, at)?, get(&r, at + 1)?))
    }

    async fn end_web_session(&self, hash: TokenHash, now_ms: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let account: Option<(i64, String)> = sqlx::query_as(
            "WITH s AS (
                 UPDATE web_sessions SET ended_at_ms = $2 WHERE hash = $1 AND ended_at_ms IS NULL
                 RETURNING account_id
             )
             SELECT a.id, a.username FROM s JOIN accounts a ON a.id = s.account_id",
        )
        .bind(&hash.0[..])
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let account = account
            .as_ref()
            .map(|(id, name)| (AccountId(*id), name.as_str()));
        let (live, effects) = ended(account, now_ms);
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(live)
    }
}
