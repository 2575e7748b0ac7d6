//! A few read-only connections for queries that need no write.
//!
//! In WAL mode readers never wait for the writer, so reads for pages, the
//! CLI and login lookups do not queue behind group commits.

use std::sync::{Arc, Mutex};

use infusion_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::Semaphore;

/// A fixed set of read-only connections used on the blocking thread pool.
#[derive(Clone)]
pub(crate) struct Readers {
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// Wraps already-opened read-only connections.
    pub fn new(conns: Vec<Connection>) -> Readers {
        let n = conns.len();
        Readers {
            idle: Arc::new(Mutex::new(conns)),
            permits: Arc::new(Semaphore::new(n)),
        }
    }

    /// Runs `f` on an idle reader connection, off the async threads.
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("reader pool closed".into()))?;
        let conn = self
            .idle
            .lock()
            .map_err(|_| StoreError::Backend("reader pool poisoned".into()))?
            .pop()
            .ok_or_else(|| StoreError::Backend("no idle reader despite a permit".into()))?;
        let idle = self.idle.clone();
        tokio::task::spawn_blocking(move || {
            let result = f(&conn);
            if let Ok(mut pool) = idle.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("reader task failed: {e}")))?
    }
}
