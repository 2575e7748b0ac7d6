//! Server secrets: the index signing key and the challenge key, shared by
//! every instance on one database until they are moved to a key file.

use async_trait::async_trait;

use crate::{Effects, NewAudit, StoreError, StoreResult};

/// The server secrets kept in the database, one transaction per method.
#[async_trait]
pub trait ServerSecrets: Send + Sync {
    /// The server secret named `name`, shared by every instance on this
    /// database: `fresh` is stored and returned if there is none yet,
    /// otherwise the stored one is returned and `fresh` is dropped.
    async fn server_secret(
        &self,
        name: &str,
        fresh: [u8; 32],
        now_ms: i64,
    ) -> StoreResult<[u8; 32]>;

    /// The server secret named `name` if the database holds one. Never
    /// creates it: for reading a public value, or for moving the secrets
    /// out ([`ServerSecrets::remove_server_secrets`]).
    async fn find_server_secret(&self, name: &str) -> StoreResult<Option<[u8; 32]>>;

    /// Deletes the named server secrets once they are kept elsewhere (a
    /// key file), in one transaction with a `server_keys_moved` audit
    /// entry by `actor`; the number deleted.
    async fn remove_server_secrets(
        &self,
        names: &[&str],
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u64>;
}

/// What removing `removed` of the secrets `names` leaves: an audit entry
/// when any was there to remove.
pub fn removed(removed: u64, names: &[&str], actor: &str, now_ms: i64) -> Effects {
    if removed == 0 {
        return Effects::none();
    }
    Effects::audit(NewAudit::server_keys_moved(now_ms, actor, names))
}

/// A stored secret as the 32 bytes every one of them is.
pub fn stored_secret(name: &str, stored: Vec<u8>) -> StoreResult<[u8; 32]> {
    stored
        .try_into()
        .map_err(|_| StoreError::Backend(format!("server secret {name:?} is not 32 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditAction;

    #[test]
    fn moving_keys_is_audited_only_when_some_were_there() {
        let e = removed(2, &["index", "challenge"], "admin-cli", 1);
        assert_eq!(e.audit[0].action, AuditAction::ServerKeysMoved);
        assert!(e.audit[0].detail.starts_with("index, challenge moved"));
        assert_eq!(removed(0, &["index"], "admin-cli", 1), Effects::none());
        assert!(stored_secret("index", vec![0; 31]).is_err());
        assert_eq!(stored_secret("index", vec![7; 32]), Ok([7; 32]));
    }
}
