//! The SQL of the server secrets.

use async_trait::async_trait;
use infusion_store::{ServerSecrets, StoreResult, removed, stored_secret};

use crate::audit::apply;
use crate::{PgStore, db_error};

#[async_trait]
impl ServerSecrets for PgStore {
    async fn server_secret(
        &self,
        name: &str,
        fresh: [u8; 32],
        now_ms: i64,
    ) -> StoreResult<[u8; 32]> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO server_secrets (name, secret, created_at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&fresh[..])
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let stored: Vec<u8> =
            sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        stored_secret(name, stored)
    }

    async fn find_server_secret(&self, name: &str) -> StoreResult<Option<[u8; 32]>> {
        let stored: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        stored.map(|s| stored_secret(name, s)).transpose()
    }

    async fn remove_server_secrets(
        &self,
        names: &[&str],
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let count = sqlx::query("DELETE FROM server_secrets WHERE name = ANY($1)")
            .bind(names)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
        apply(&mut tx, removed(count, names, actor, now_ms)).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(count)
    }
}
