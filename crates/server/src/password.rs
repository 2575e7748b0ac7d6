//! Password hashing with Argon2id, off the async threads and bounded.
//!
//! Hashes run on a few dedicated threads (one per core), never on the
//! shared blocking pool, and at a lower scheduling priority than the
//! threads answering pumps, so a burst of logins cannot delay a running
//! infusion's index poll.
//!
//! Each Argon2id hash needs 19 MiB of working memory. Allocated per hash,
//! that memory stayed with the process: glibc raises its mmap threshold
//! after the first such block is freed, so later ones come from heap
//! arenas that are never trimmed (a server held 380 MB after 25 logins).
//! Each hashing thread therefore owns one buffer of Argon2 blocks, grown
//! to the largest cost it has seen and reused for every hash.

use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::error::ApiError;
pub use crate::hash_queue::Lane;
use crate::hash_queue::{QueueCaps, Queues};

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

    /// Hashes a password into a PHC string. Blocking: call from a blocking
    /// context (the CLI) or through [`Passwords::hash`].
    pub fn hash_blocking(&self, password: &str) -> Result<String, ApiError> {
        self.hash_with(&mut Vec::new(), password)
    }

    /// Hashes with a fresh 16-byte salt, working in `blocks`.
    fn hash_with(&self, blocks: &mut Vec<Block>, password: &str) -> Result<String, ApiError> {
        let params = Params::new(self.m_cost, self.t_cost, self.p_cost, None).map_err(internal)?;
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)
            .map_err(|e| ApiError::internal(format!("OS random source failed: {e}")))?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        run(
            &argon2,
            &params,
            blocks,
            password.as_bytes(),
            &salt,
            &mut out,
        )?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(internal)?,
            salt: Some(Salt::new(&salt).map_err(internal)?),
            hash: Some(Output::new(&out).map_err(internal)?),
        };
        Ok(phc.to_string())
    }
}

/// Maps a hashing library error, which only our own parameters or a
/// corrupt stored hash can cause, to an internal error.
fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("argon2: {e}"))
}

/// Runs Argon2 in `blocks`, growing the buffer if this cost needs more.
/// Argon2 writes every block before reading it, so a reused buffer needs
/// no clearing.
fn run(
    argon2: &Argon2<'_>,
    params: &Params,
    blocks: &mut Vec<Block>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), ApiError> {
    let needed = params.block_count();
    if blocks.len() < needed {
        blocks.resize(needed, Block::new());
    }
    argon2
        .hash_password_into_with_memory(password, salt, out, &mut blocks[..needed])
        .map_err(internal)
}

/// Checks `password` against a stored PHC string, working in `blocks`.
/// The algorithm, version and cost come from the stored string, so hashes
/// made under older parameters still verify; the comparison of outputs is
/// constant-time (`Output`'s equality).
fn verify_with(blocks: &mut Vec<Block>, password: &str, stored: &str) -> Result<bool, ApiError> {
    let hash = PasswordHash::new(stored).map_err(internal)?;
    let algorithm = Algorithm::try_from(hash.algorithm.as_str()).map_err(internal)?;
    let version = match hash.version {
        Some(v) => Version::try_from(v).map_err(internal)?,
        None => Version::default(),
    };
    let params = Params::try_from(&hash).map_err(internal)?;
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return Err(internal("stored hash has no salt or output"));
    };
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let out = buffer
        .get_mut(..expected.len())
        .ok_or_else(|| internal("stored hash output too long"))?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    run(&argon2, &params, blocks, password.as_bytes(), salt, out)?;
    Ok(Output::new(out).map_err(internal)? == *expected)
}

/// Verifies passwords without letting hashing starve the server: at most
/// one hash per core runs at once (each holds m_cost of memory), on
/// dedicated hashing threads, fed from bounded queues (see
/// [`crate::hash_queue`]).
/// An unknown user is verified against a dummy hash of the same cost, so
/// that a wrong username and a wrong password take equally long and
/// cannot be told apart.
#[derive(Clone)]
pub struct Passwords {
    params: PasswordParams,
    pool: HashPool,
    dummy_hash: Arc<str>,
}

/// A job for the hashing threads, given the thread's own block buffer.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// What the hashing threads share with the handles.
#[derive(Default)]
struct Shared {
    queues: Mutex<Queues<Job>>,
    ready: Condvar,
}

/// Closes the queues when the last pool handle is dropped, so that the
/// threads end.
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        if let Ok(mut q) = self.0.queues.lock() {
            q.closed = true;
        }
        self.0.ready.notify_all();
    }
}

/// The dedicated hashing threads and their queues.
#[derive(Clone)]
struct HashPool {
    shared: Arc<Shared>,
    caps: QueueCaps,
    _closer: Arc<Closer>,
}

impl HashPool {
    fn new(threads: usize) -> Result<HashPool, ApiError> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared::default());
        for i in 0..threads {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    let mut blocks = Vec::new();
                    while let Some(job) = shared.next() {
                        job(&mut blocks);
                    }
                })
                .map_err(|e| ApiError::internal(format!("starting a hashing thread: {e}")))?;
        }
        Ok(HashPool {
            caps: QueueCaps::PER_THREAD.times(threads),
            _closer: Arc::new(Closer(Arc::clone(&shared))),
            shared,
        })
    }

    /// Runs `f` on a hashing thread and waits for its answer; 429 at once
    /// when `lane` is full. A job whose caller has gone (the client
    /// closed the connection) is skipped unhashed.
    async fn run<T: Send + 'static>(
        &self,
        lane: Lane,
        f: impl FnOnce(&mut Vec<Block>) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |blocks: &mut Vec<Block>| {
            if !tx.is_closed() {
                let _ = tx.send(f(blocks));
            }
        });
        {
            let mut q = self
                .shared
                .queues
                .lock()
                .map_err(|_| ApiError::internal("password threads stopped"))?;
            if q.push(lane, job, self.caps).is_err() {
                return Err(ApiError::busy());
            }
        }
        self.shared.ready.notify_one();
        rx.await
            .map_err(|_| ApiError::internal("password task failed"))?
    }
}

impl Shared {
    /// The next job (see [`Queues::pop`]); `None` once closed and empty.
    fn next(&self) -> Option<Job> {
        let mut q = self.queues.lock().ok()?;
        loop {
            if let Some(job) = q.pop() {
                return Some(job);
            }
            if q.closed {
                return None;
            }
            q = self.ready.wait(q).ok()?;
        }
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
    /// spends the same work on the dummy hash and answers false. Waits in
    /// `lane`; 429 (`too_many_requests`, retry in 1 s) when it is full.
    pub async fn verify(
        &self,
        password: &str,
        hash: Option<&str>,
        lane: Lane,
    ) -> Result<bool, ApiError> {
        let known = hash.is_some();
        let hash: Arc<str> = hash.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let password = password.to_owned();
        let matched = self
            .pool
            .run(lane, move |blocks| verify_with(blocks, &password, &hash))
            .await?;
        Ok(known && matched)
    }

    /// Hashes a password on a hashing thread.
    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let password = password.to_owned();
        let params = self.params;
        self.pool
            .run(Lane::Other(IpAddr::from([0, 0, 0, 0])), move |blocks| {
                params.hash_with(blocks, &password)
            })
            .await
    }
}

/// Lowers the calling thread's scheduling priority (nice 10), so that a
/// core busy hashing yields at once to a thread answering a pump. Linux
/// applies `setpriority` on a thread id to that thread alone; elsewhere
/// this does nothing.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        // A failure only leaves the priority unchanged.
        let _ = rustix::process::setpriority_process(Some(tid), 10);
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
        let verify = |pw, h| p.verify(pw, h, Lane::Other([127, 0, 0, 1].into()));
        assert!(verify("correct horse", Some(&h)).await.unwrap());
        assert!(!verify("wrong", Some(&h)).await.unwrap());
        assert!(!verify("correct horse", None).await.unwrap());
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_verify_in_a_reused_buffer() {
        use argon2::password_hash::PasswordHasher;
        // Stored hashes from before this module hashed in its own buffer,
        // and at other costs, must keep verifying; one buffer serves all.
        let mut blocks = Vec::new();
        for (m, t) in [(64, 3), (8, 1), (256, 2)] {
            let params = Params::new(m, t, 1, None).unwrap();
            let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            let stored = a.hash_password(b"pump-secret").unwrap().to_string();
            assert!(verify_with(&mut blocks, "pump-secret", &stored).unwrap());
            assert!(!verify_with(&mut blocks, "pump-secreT", &stored).unwrap());
        }
        assert_eq!(blocks.len(), 256, "grown to the largest cost, not beyond");
        // And ours verify through the crate's own verifier.
        let ours = PasswordParams::INSECURE_FAST
            .hash_with(&mut blocks, "x")
            .unwrap();
        use argon2::password_hash::PasswordVerifier;
        assert!(
            Argon2::default()
                .verify_password(b"x", ours.as_str())
                .is_ok()
        );
    }

    #[test]
    fn a_corrupt_stored_hash_is_an_error_not_a_match() {
        let mut blocks = Vec::new();
        for bad in ["", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ", "plain"] {
            assert!(verify_with(&mut blocks, "x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_cost_is_owasp() {
        let d = PasswordParams::default();
        assert_eq!((d.m_cost, d.t_cost, d.p_cost), (19_456, 2, 1));
    }
}
