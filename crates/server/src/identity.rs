//! The server's side of device identity: issuing and checking login
//! challenges, and the key that signs every index.
//!
//! A challenge is stateless: 8 bytes of issue time, 8 random bytes, and a
//! 16-byte HMAC-SHA256 tag under a server secret. Any instance on the same
//! database can check it without a lookup, and an attacker cannot make
//! one. Single use comes from the device row: a login is taken only with a
//! nonce newer than the last one that device used (see
//! [`infusion_store::Store::start_device_session`]), so a captured login
//! replayed is refused even within the nonce's lifetime, without a table
//! of issued nonces that a flood of challenge requests could fill.

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use infusion_protocol::{DeviceSecret, HexBytes, IndexSigner, Nonce, PublicKey};
use infusion_store::{Store, StoreError};
use sha2::Sha256;

use crate::error::ApiError;
use crate::key_file::{CHALLENGE_KEY, INDEX_KEY, KeyFile, KeyFileError};

/// Name of the public half of the index key among the server secrets:
/// what every pump of this database was provisioned with. Recorded by the
/// first server to start, in either custody, so that a server with
/// another key refuses to start instead of signing indexes every pump
/// would refuse.
const INDEX_PUBLIC: &str = "index-public-ed25519";
/// A challenge issued by an instance whose clock runs this far ahead is
/// still taken.
const CLOCK_SLACK_MS: i64 = 5_000;

/// Why the server's keys cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file is missing, open to others or malformed.
    #[error(transparent)]
    File(#[from] KeyFileError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operating system's random source failed.
    #[error("server keys: {0}")]
    Random(String),
    /// This server would sign with another key than the one the pumps of
    /// this database were provisioned with: every index would be refused.
    #[error(
        "the pumps of this database trust index key {recorded}, but this server's key ({source_name}) is {found}: \
         start every server with the key file that holds {recorded}"
    )]
    Mismatch {
        /// The key recorded when the first server started.
        recorded: PublicKey,
        /// The key this server has.
        found: PublicKey,
        /// Where this server's key came from.
        source_name: String,
    },
    /// The keys were moved out of the database into a key file.
    #[error(
        "this database holds no server keys: they were moved to a key file; start with --key-file"
    )]
    NotInDatabase,
}

/// The server's keys, shared by every instance on one database.
#[derive(Clone)]
pub struct ServerKeys {
    /// Signs every index answer.
    pub index: IndexSigner,
    challenge: [u8; 32],
    /// Encrypts the web application's one-time notice cookie.
    notice: axum_extra::extract::cookie::Key,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeys")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl ServerKeys {
    /// Loads the keys from `key_file`, or without one from the database,
    /// where the first instance to start draws them and the others read
    /// the same ones. Either way the index key must be the one the pumps
    /// of this database trust.
    pub async fn load(
        store: &dyn Store,
        now_ms: i64,
        key_file: Option<&Path>,
    ) -> Result<ServerKeys, KeyError> {
        let (file, source_name) = match key_file {
            Some(path) => (KeyFile::read(path)?, path.display().to_string()),
            None => (
                Self::in_database(store, now_ms).await?,
                "the database".to_owned(),
            ),
        };
        Self::trusted(store, &file, source_name, now_ms).await
    }

    /// The secrets kept in the database, drawn on first use. Refused once
    /// they were moved out: drawing new ones would put a key no pump
    /// trusts back into the database.
    async fn in_database(store: &dyn Store, now_ms: i64) -> Result<KeyFile, KeyError> {
        if store.find_server_secret(INDEX_KEY).await?.is_none()
            && store.find_server_secret(INDEX_PUBLIC).await?.is_some()
        {
            return Err(KeyError::NotInDatabase);
        }
        Ok(KeyFile {
            index: store
                .server_secret(INDEX_KEY, random_key()?, now_ms)
                .await?,
            challenge: store
                .server_secret(CHALLENGE_KEY, random_key()?, now_ms)
                .await?,
        })
    }

    /// The keys of `file`, once its index key is the one recorded for the
    /// pumps of this database (recording it on first use).
    async fn trusted(
        store: &dyn Store,
        file: &KeyFile,
        source_name: String,
        now_ms: i64,
    ) -> Result<ServerKeys, KeyError> {
        let keys = ServerKeys::of(&file.index, file.challenge);
        let found = keys.index.public_key();
        let recorded = HexBytes(store.server_secret(INDEX_PUBLIC, found.0, now_ms).await?);
        if recorded != found {
            return Err(KeyError::Mismatch {
                recorded,
                found,
                source_name,
            });
        }
        Ok(keys)
    }

    /// The public half of the index key that the pumps of this database
    /// are provisioned with, wherever its secret half is kept. On a
    /// database no server has started on yet, the keys are drawn into the
    /// database, as the first server would.
    pub async fn public_key(store: &dyn Store, now_ms: i64) -> Result<PublicKey, KeyError> {
        match store.find_server_secret(INDEX_PUBLIC).await? {
            Some(key) => Ok(HexBytes(key)),
            None => Ok(Self::load(store, now_ms, None).await?.index.public_key()),
        }
    }

    /// Moves the keys out of the database into a new key file at `path`:
    /// the file is written and made durable first, then the secrets are
    /// deleted from the database with an audit entry by `actor`. The
    /// public key stays, so that pumps keep their provisioning and a
    /// server with another key still refuses to start. Returns that key.
    pub async fn export(
        store: &dyn Store,
        path: &Path,
        actor: &str,
        now_ms: i64,
    ) -> Result<PublicKey, KeyError> {
        // Draws the keys on a new database, refuses when they were moved
        // already, and records the public key before anything is written.
        let file = Self::in_database(store, now_ms).await?;
        let keys = Self::trusted(store, &file, "the database".to_owned(), now_ms).await?;
        file.write_new(path)?;
        store
            .remove_server_secrets(&[INDEX_KEY, CHALLENGE_KEY], actor, now_ms)
            .await?;
        Ok(keys.index.public_key())
    }

    /// The keys of an index signing secret and a challenge secret. The
    /// notice key is derived here, once, from the challenge secret.
    fn of(index: &[u8; 32], challenge: [u8; 32]) -> ServerKeys {
        use sha2::Digest;
        let mut h = sha2::Sha512::new();
        h.update(b"infusion-notice-key\0");
        h.update(challenge);
        ServerKeys {
            index: IndexSigner::from_bytes(index),
            challenge,
            notice: axum_extra::extract::cookie::Key::from(h.finalize().as_slice()),
        }
    }

    /// The key that encrypts the web application's one-time notice cookie
    /// (what a form's redirect carries to the page it lands on), derived
    /// from the challenge secret, so that every instance on this database
    /// (or with this key file) reads what another wrote, and no key more
    /// has to be kept.
    pub fn notice_key(&self) -> axum_extra::extract::cookie::Key {
        self.notice.clone()
    }

    /// A new login challenge issued at `now_ms`.
    pub fn challenge(&self, now_ms: i64) -> Result<Nonce, ApiError> {
        let mut nonce = [0u8; 32];
        nonce[..8].copy_from_slice(&now_ms.to_be_bytes());
        getrandom::fill(&mut nonce[8..16])
            .map_err(|e| ApiError::internal(format!("OS random source failed: {e}")))?;
        let tag = self.tag(&nonce[..16]).finalize().into_bytes();
        nonce[16..].copy_from_slice(&tag[..16]);
        Ok(HexBytes(nonce))
    }

    /// The nonce's time and randomness when this server issued it and it
    /// is younger than `ttl_ms`; `None` otherwise.
    pub fn check(&self, nonce: &Nonce, ttl_ms: i64, now_ms: i64) -> Option<[u8; 16]> {
        let (stamp, tag) = nonce.0.split_at(16);
        // Constant-time comparison of the truncated tag.
        self.tag(stamp).verify_truncated_left(tag).ok()?;
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&stamp[..8]);
        let issued = i64::from_be_bytes(issued);
        let age = now_ms.saturating_sub(issued);
        if !(-CLOCK_SLACK_MS..=ttl_ms).contains(&age) {
            return None;
        }
        let mut out = [0u8; 16];
        out.copy_from_slice(stamp);
        Some(out)
    }

    fn tag(&self, stamp: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.challenge)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(stamp);
        mac
    }
}

/// A new device secret, drawn when a pump is bound. Its seed is shown
/// once, to be provisioned into the pump; the server keeps only the
/// public half.
pub fn new_device_secret() -> Result<DeviceSecret, ApiError> {
    Ok(DeviceSecret::from_bytes(&random()?))
}

/// A key drawn from the operating system's CSPRNG.
fn random_key() -> Result<[u8; 32], KeyError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| KeyError::Random(format!("OS random source failed: {e}")))?;
    Ok(bytes)
}

/// 32 bytes from the operating system's CSPRNG.
pub fn random() -> Result<[u8; 32], ApiError> {
    random_key().map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ServerKeys {
        ServerKeys::of(&[1; 32], [2; 32])
    }

    #[test]
    fn a_challenge_is_taken_while_fresh_and_only_if_ours() {
        let k = keys();
        let n = k.challenge(1_000_000).unwrap();
        assert!(k.check(&n, 60_000, 1_000_000).is_some());
        assert!(k.check(&n, 60_000, 1_060_000).is_some());
        assert!(k.check(&n, 60_000, 1_060_001).is_none(), "expired");
        assert!(k.check(&n, 60_000, 994_999).is_none(), "from the future");
        let mut forged = n;
        forged.0[0] ^= 1;
        assert!(
            k.check(&forged, 60_000, 1_000_000).is_none(),
            "time changed"
        );
        let other = ServerKeys::of(&[1; 32], [3; 32]);
        assert!(other.check(&n, 60_000, 1_000_000).is_none(), "other server");
        assert_ne!(n, k.challenge(1_000_000).unwrap(), "random part");
    }
}
