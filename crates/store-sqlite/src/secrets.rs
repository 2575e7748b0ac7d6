//! The SQL of the server secrets.

use async_trait::async_trait;
use infusion_store::{ServerSecrets, StoreResult, removed, stored_secret};
use rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::writer::{Cached, backend};

#[async_trait]
impl ServerSecrets for SqliteStore {
    async fn server_secret(
        &self,
        name: &str,
        fresh: [u8; 32],
        now_ms: i64,
    ) -> StoreResult<[u8; 32]> {
        let name = name.to_owned();
        self.writer
            .write(move |cx| {
                cx.conn
                    .exec(
                        "INSERT INTO server_secrets (name, secret, created_at_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name) DO NOTHING",
                        params![name, &fresh[..], now_ms],
                    )
                    .map_err(backend)?;
                let stored: Vec<u8> = cx
                    .conn
                    .row(
                        "SELECT secret FROM server_secrets WHERE name = ?1",
                        [&name],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                stored_secret(&name, stored)
            })
            .await
    }

    async fn find_server_secret(&self, name: &str) -> StoreResult<Option<[u8; 32]>> {
        let name = name.to_owned();
        self.readers
            .read(move |conn| {
                let stored: Option<Vec<u8>> = conn
                    .row(
                        "SELECT secret FROM server_secrets WHERE name = ?1",
                        [&name],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(backend)?;
                stored.map(|s| stored_secret(&name, s)).transpose()
            })
            .await
    }

    async fn remove_server_secrets(
        &self,
        names: &[&str],
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| {
                let mut count = 0u64;
                for name in &names {
                    count += cx
                        .conn
                        .exec("DELETE FROM server_secrets WHERE name = ?1", [name])
                        .map_err(backend)? as u64;
                }
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                cx.apply(removed(count, &names, &actor, now_ms))?;
                Ok(count)
            })
            .await
    }
}
