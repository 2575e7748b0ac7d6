//! The SQL of second login factors. The rules are the store's
//! (`enrolled`, `step_taken`, `recovery_used`).

use async_trait::async_trait;
use infusion_store::{
    AccountId, Authenticator, SecondFactors, StoreError, StoreResult, TokenHash, enrolled,
    recovery_used, reset, step_taken,
};
use sqlx::PgConnection;

use crate::audit::apply;
use crate::rows::Cols;
use crate::{PgStore, db_error};

/// The account's authenticator; `lock` takes its row for this transaction.
async fn authenticator(
    conn: &mut PgConnection,
    account: AccountId,
    lock: bool,
) -> StoreResult<Option<Authenticator>> {
    let tail = if lock { " FOR UPDATE" } else { "" };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM second_factors f WHERE f.account_id = $1{tail}",
        Authenticator::COLUMNS
    )))
    .bind(account.0)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?
    .as_ref()
    .map(|r| Authenticator::from_row(&Cols(r)))
    .transpose()
}

async fn username(conn: &mut PgConnection, account: AccountId) -> StoreResult<String> {
    sqlx::query_scalar("SELECT username FROM accounts WHERE id = $1 FOR UPDATE")
        .bind(account.0)
        .fetch_optional(conn)
        .await
        .map_err(db_error)?
        .ok_or_else(|| StoreError::NotFound("no such account".into()))
}

#[async_trait]
impl SecondFactors for PgStore {
    async fn reset_second_factor(
        &self,
        username: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let account: Option<i64> =
            sqlx::query_scalar("SELECT id FROM accounts WHERE username = $1 FOR UPDATE")
                .bind(username)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
        let account = account.map(AccountId);
        let had = match account {
            Some(a) => authenticator(&mut tx, a, true).await?.is_some(),
            None => false,
        };
        let Some(effects) = reset(account, had, username, actor, now_ms)? else {
            return Ok(false);
        };
        if let Some(a) = account {
            for sql in [
                "DELETE FROM recovery_codes WHERE account_id = $1",
                "DELETE FROM second_factors WHERE account_id = $1",
            ] {
                sqlx::query(sql)
                    .bind(a.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
            }
        }
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn second_factor(&self, account: AccountId) -> StoreResult<Option<Authenticator>> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        authenticator(&mut conn, account, false).await
    }

    async fn enable_second_factor(
        &self,
        account: AccountId,
        secret: Vec<u8>,
        recovery: Vec<TokenHash>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // The account row first: two enrolments at once take turns.
        let name = username(&mut tx, account).await?;
        let existing = authenticator(&mut tx, account, true).await?.is_some();
        let effects = enrolled(existing, &name, &recovery, actor, now_ms)?;
        sqlx::query(
            "INSERT INTO second_factors (account_id, totp_secret, enabled_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(account.0)
        .bind(&secret)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        for h in &recovery {
            sqlx::query("INSERT INTO recovery_codes (account_id, hash) VALUES ($1, $2)")
                .bind(account.0)
                .bind(&h.0[..])
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn take_step(&self, account: AccountId, step: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let Some(a) = authenticator(&mut tx, account, true).await? else {
            return Ok(false);
        };
        if !step_taken(a.last_step, step) {
            return Ok(false);
        }
        sqlx::query("UPDATE second_factors SET last_step = $2 WHERE account_id = $1")
            .bind(account.0)
            .bind(step)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn use_recovery_code(
        &self,
        account: AccountId,
        hash: TokenHash,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let used = sqlx::query(
            "UPDATE recovery_codes SET used_at_ms = $3
             WHERE account_id = $1 AND hash = $2 AND used_at_ms IS NULL",
        )
        .bind(account.0)
        .bind(&hash.0[..])
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        if used == 0 {
            return Ok(false);
        }
        let name = username(&mut tx, account).await?;
        let left = authenticator(&mut tx, account, false)
            .await?
            .map_or(0, |a| a.recovery_left);
        apply(&mut tx, recovery_used(&name, left, actor, now_ms)).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }
}
