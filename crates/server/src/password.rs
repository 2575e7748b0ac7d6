//! Password hashing with Argon2id, off the async threads and bounded.
//!
//! Hashes run on a few dedicated threads (one per core), never on the
//! shared blocking pool. Each Argon2id hash needs 19 MiB; the allocator
//! keeps freed memory in a per-thread arena, so hashes spread over the
//! blocking pool's many threads once held a gigabyte after a burst of
//! logins. On a fixed set of threads each reuses its own buffer.

use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

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
/// one hash per core runs at once (each holds m_cost of memory), on
/// dedicated hashing threads. An unknown user is verified against a dummy hash of the
/// same cost, so that a wrong username and a wrong password take equally
/// long and cannot be told apart.
#[derive(Clone)]
pub struct Passwords {
    params: PasswordParams,
    pool: HashPool,
    dummy_hash: Arc<str>,
}

/// A job for the hashing threads.
type Job = Box<dyn FnOnce() + Send>;

/// The dedicated hashing threads; they end when the last handle is
/// dropped.
#[derive(Clone)]
struct HashPool {
    jobs: mpsc::Sender<Job>,
}

impl HashPool {
    fn new(threads: usize) -> Result<HashPool, ApiError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only to take the next job.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| ApiError::internal(format!("starting a hashing thread: {e}")))?;
        }
        Ok(HashPool { jobs })
    }

    /// Runs `f` on a hashing thread and waits for its answer.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| ApiError::internal("password threads stopped"))?;
        rx.await
            .map_err(|_| ApiError::internal("password task failed"))?
    }
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
            pool: HashPool::new(cores)?,
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
        let known = hash.is_some();
        let hash: Arc<str> = hash.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let password = password.to_owned();
        let params = self.params;
        let matched = self
            .pool
            .run(move || {
                params
                    .argon2()
                    .map(|a| a.verify_password(password.as_bytes(), &*hash).is_ok())
            })
            .await?;
        Ok(known && matched)
    }

    /// Hashes a password on a hashing thread.
    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let password = password.to_owned();
        let params = self.params;
        self.pool.run(move || params.hash_blocking(&password)).await
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
