//! The SQL of an institution's settings.

use async_trait::async_trait;
use infusion_store::{Institutions, StoreResult, time_zone_set};

use crate::audit::apply;
use crate::{PgStore, db_error};

#[async_trait]
impl Institutions for PgStore {
    async fn set_time_zone(
        &self,
        institution: &str,
        zone: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let old: Option<String> =
            sqlx::query_scalar("SELECT time_zone FROM institutions WHERE name = $1 FOR UPDATE")
                .bind(institution)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
        let (name, effects) = time_zone_set(old.as_deref(), institution, zone, actor, now_ms)?;
        sqlx::query("UPDATE institutions SET time_zone = $2 WHERE name = $1")
            .bind(institution)
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }
}
