//! Password hashing with Argon2id, off the async threads and bounded.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Argon2id cost. The default is OWASP's password storage recommendation
/// (m = 19 MiB, t = 2, p = 1); tests lower it to keep suites fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory, KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for PasswordParams {
    fn default() -> Self {
        PasswordParams {
            m_cost: 19_456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl PasswordParams {
    /// The cheapest parameters Argon2 accepts: for tests only.
    pub const INSECURE_FAST: PasswordParams = PasswordParams {
        m_cost: 8,
        t_cost: 1,
        p_cost: 1,
    };

    fn argon2(&self) -> Result<Argon2<'static>, ApiError> {
        let params = Params::new(self.m_cost, self.t_cost, self.p_cost, None)
            .map_err(|e| ApiError::internal(format!("argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Hashes a password into a PHC string. Blocking: call from a blocking
    /// context (the CLI) or through [`Passwords::hash`].
    pub fn hash_blocking(&self, password: &str) -> Result<String, ApiError> {
        let hash = self
            .argon2()?
            .hash_password(password.as_bytes())
            .map_err(|e| ApiError::internal(format!("argon2 hash: {e}")))?;
        Ok(hash.to_string())
    }
}

/// Verifies passwords without letting hashing starve the server: at most
/// one hash per core runs at once (each holds m_cost of memory), on the
/// blocking pool. An unknown user is verified against a dummy hash of the
/// same cost, so that a wrong username and a wrong password take equally
/// long and cannot be told apart.
#[derive(Clone)]
pub struct Passwords {
    params: PasswordParams,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
}

impl Passwords {
    /// Prepares the verifier; computes the dummy hash once.
    pub fn new(params: PasswordParams) -> Result<Passwords, ApiError> {
        let mut seed = [0u8; 16];
        getrandom::fill(&mut seed)
            .map_err(|e| ApiError::internal(format!("OS random source failed: {e}")))?;
        let dummy: String = seed.iter().map(|b| format!("{b:02x}")).collect();
        let dummy_hash = params.hash_blocking(&dummy)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Passwords {
            params,
            permits: Arc::new(Semaphore::new(cores)),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// The parameters new hashes are made with.
    pub fn params(&self) -> PasswordParams {
        self.params
    }

    /// True when `password` matches `hash`; with no hash (unknown user) it
    /// spends the same work on the dummy hash and answers false.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal("password verifier closed"))?;
        let known = hash.is_some();
        let hash: Arc<str> = hash.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let password = password.to_owned();
        let params = self.params;
        let matched = tokio::task::spawn_blocking(move || {
            params
                .argon2()
                .map(|a| a.verify_password(password.as_bytes(), &*hash).is_ok())
        })
        .await
        .map_err(|e| ApiError::internal(format!("password task failed: {e}")))??;
        Ok(known && matched)
    }

    /// Hashes a password on the blocking pool.
    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal("password hasher closed"))?;
        let password = password.to_owned();
        let params = self.params;
        tokio::task::spawn_blocking(move || params.hash_blocking(&password))
            .await
            .map_err(|e| ApiError::internal(format!("password task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_right_and_refuses_wrong_and_unknown() {
        let p = Passwords::new(PasswordParams::INSECURE_FAST).unwrap();
        let h = p.hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(p.verify("correct horse", Some(&h)).await.unwrap());
        assert!(!p.verify("wrong", Some(&h)).await.unwrap());
        assert!(!p.verify("correct horse", None).await.unwrap());
    }

    #[test]
    fn default_cost_is_owasp() {
        let d = PasswordParams::default();
        assert_eq!((d.m_cost, d.t_cost, d.p_cost), (19_456, 2, 1));
    }
}
