//! The SQL of an institution's settings.

use async_trait::async_trait;
use infusion_store::{Institutions, StoreResult, time_zone_set};
use rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::writer::{Cached, WriteCtx, backend};

fn set_time_zone(
    cx: &mut WriteCtx<'_>,
    institution: &str,
    zone: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let conn = cx.conn;
    let old: Option<String> = conn
        .row(
            "SELECT time_zone FROM institutions WHERE name = ?1",
            [institution],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    let (name, effects) = time_zone_set(old.as_deref(), institution, zone, actor, now_ms)?;
    conn.exec(
        "UPDATE institutions SET time_zone = ?2 WHERE name = ?1",
        params![institution, name],
    )
    .map_err(backend)?;
    cx.apply(effects)
}

#[async_trait]
impl Institutions for SqliteStore {
    async fn set_time_zone(
        &self,
        institution: &str,
        zone: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (institution, zone, actor) =
            (institution.to_owned(), zone.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| set_time_zone(cx, &institution, &zone, &actor, now_ms))
            .await
    }
}
