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

use hmac::{Hmac, KeyInit, Mac};
use infusion_protocol::{DeviceSecret, HexBytes, IndexSigner, Nonce};
use infusion_store::Store;
use sha2::Sha256;

use crate::error::ApiError;

/// Name of the index signing key among the server secrets.
const INDEX_KEY: &str = "index-signing-ed25519";
/// Name of the challenge tagging key among the server secrets.
const CHALLENGE_KEY: &str = "login-challenge-hmac";
/// A challenge issued by an instance whose clock runs this far ahead is
/// still taken.
const CLOCK_SLACK_MS: i64 = 5_000;

/// The server's keys, shared by every instance on one database.
#[derive(Clone)]
pub struct ServerKeys {
    /// Signs every index answer.
    pub index: IndexSigner,
    challenge: [u8; 32],
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeys")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl ServerKeys {
    /// Loads the keys from the database, creating them on first use. The
    /// first instance to start draws them; the others read the same ones.
    pub async fn load(store: &dyn Store, now_ms: i64) -> Result<ServerKeys, ApiError> {
        let index = store.server_secret(INDEX_KEY, random()?, now_ms).await?;
        let challenge = store
            .server_secret(CHALLENGE_KEY, random()?, now_ms)
            .await?;
        Ok(ServerKeys {
            index: IndexSigner::from_bytes(&index),
            challenge,
        })
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

/// 32 bytes from the operating system's CSPRNG.
pub fn random() -> Result<[u8; 32], ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::internal(format!("OS random source failed: {e}")))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ServerKeys {
        ServerKeys {
            index: IndexSigner::from_bytes(&[1; 32]),
            challenge: [2; 32],
        }
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
        let other = ServerKeys {
            challenge: [3; 32],
            ..keys()
        };
        assert!(other.check(&n, 60_000, 1_000_000).is_none(), "other server");
        assert_ne!(n, k.challenge(1_000_000).unwrap(), "random part");
    }
}
