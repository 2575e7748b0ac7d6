//! The SQL of the account lifecycle: a password change, disabling and
//! enabling. The rules are the store's (`password_changed`, `enabling`).

use infusion_store::{
    AccountId, AccountRecord, StoreError, StoreResult, TokenHash, enabling, password_changed,
    password_reset,
};
use sqlx::PgConnection;

use crate::audit::apply;
use crate::rows::Cols;
use crate::{PgStore, db_error};

/// Ends the live web sessions of `account` but `keep`; how many.
async fn end_sessions(
    conn: &mut PgConnection,
    account: AccountId,
    keep: Option<TokenHash>,
    now_ms: i64,
) -> StoreResult<u64> {
    let keep: Vec<u8> = keep.map_or_else(Vec::new, |k| k.0.to_vec());
    sqlx::query(
        "UPDATE web_sessions SET ended_at_ms = $2
         WHERE account_id = $1 AND ended_at_ms IS NULL AND hash <> $3",
    )
    .bind(account.0)
    .bind(now_ms)
    .bind(keep)
    .execute(conn)
    .await
    .map(|r| r.rows_affected())
    .map_err(db_error)
}

pub(crate) async fn change_password(
    store: &PgStore,
    account: AccountId,
    password_hash: &str,
    keep: Option<TokenHash>,
    actor: &str,
    now_ms: i64,
) -> StoreResult<u64> {
    let mut tx = store.pool.begin().await.map_err(db_error)?;
    let username: String = sqlx::query_scalar(
        "UPDATE accounts SET password_hash = $2, must_change_password = FALSE WHERE id = $1
         RETURNING username",
    )
    .bind(account.0)
    .bind(password_hash)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?
    .ok_or_else(|| StoreError::NotFound("no such account".into()))?;
    let ended = end_sessions(&mut tx, account, keep, now_ms).await?;
    apply(&mut tx, password_changed(account, &username, actor, now_ms)).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(ended)
}

/// The account `username`, locked for this transaction.
async fn account_for_update(
    conn: &mut PgConnection,
    username: &str,
) -> StoreResult<Option<AccountRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM accounts a WHERE a.username = $1 FOR UPDATE",
        AccountRecord::COLUMNS
    )))
    .bind(username)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?
    .as_ref()
    .map(|r| AccountRecord::at(&Cols(r), 0))
    .transpose()
}

pub(crate) async fn reset_password(
    store: &PgStore,
    username: &str,
    password_hash: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let mut tx = store.pool.begin().await.map_err(db_error)?;
    let target = account_for_update(&mut tx, username).await?;
    let (account, effects) = password_reset(target.as_ref(), username, actor, now_ms)?;
    sqlx::query(
        "UPDATE accounts SET password_hash = $2, must_change_password = TRUE WHERE id = $1",
    )
    .bind(account.0)
    .bind(password_hash)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    end_sessions(&mut tx, account, None, now_ms).await?;
    apply(&mut tx, effects).await?;
    tx.commit().await.map_err(db_error)
}

pub(crate) async fn set_enabled(
    store: &PgStore,
    username: &str,
    enabled: bool,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let mut tx = store.pool.begin().await.map_err(db_error)?;
    let target = account_for_update(&mut tx, username).await?;
    let Some(effects) = enabling(target.as_ref(), username, enabled, actor, now_ms)? else {
        return Ok(());
    };
    let Some(a) = target else {
        return Ok(());
    };
    sqlx::query("UPDATE accounts SET disabled_at_ms = $2 WHERE id = $1")
        .bind(a.account_id.0)
        .bind((!enabled).then_some(now_ms))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    if !enabled {
        end_sessions(&mut tx, a.account_id, None, now_ms).await?;
        // The pump's chain ends with the account: its tokens are of an
        // older generation from now on.
        sqlx::query(
            "UPDATE devices SET token_generation = token_generation + 1
             WHERE retired_at_ms IS NULL
               AND patient_id IN (SELECT id FROM patients WHERE account_id = $1)",
        )
        .bind(a.account_id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    }
    apply(&mut tx, effects).await?;
    tx.commit().await.map_err(db_error)
}
