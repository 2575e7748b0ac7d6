//! The single writer: one connection on its own thread, with group commit.
//!
//! SQLite allows one writer at a time, and a durable commit costs one fsync
//! (WAL with `synchronous=FULL`). Rather than one fsync per request, the
//! writer takes every job waiting in its queue, runs each inside its own
//! savepoint (so one refusal does not undo the others), commits them all
//! with one fsync, and only then answers any of them. Nobody is told "done"
//! before their data is on disk, and throughput grows with load instead of
//! being capped at the disk's fsync rate.

use infusion_store::{
    Change, DeviceId, Effects, NewAudit, Refusal, StoreError, StoreResult, TokenHash,
};
use rusqlite::Connection;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::audit::insert_audit;
use crate::tokens::revoke_chain;

/// Most jobs committed together. Bounds the latency one batch adds to the
/// first job in it.
const MAX_BATCH: usize = 256;

/// Requests waiting for the writer. Bounded, so that overload becomes
/// back-pressure on the handlers rather than unbounded memory.
const QUEUE_DEPTH: usize = 4096;

/// What a write job sees: the connection, inside the job's savepoint, a
/// place for audit entries that must be kept even when the job is refused,
/// and one for the changes to announce if it is kept.
pub(crate) struct WriteCtx<'c> {
    /// The writer connection, inside a transaction and the job's savepoint.
    pub conn: &'c Connection,
    kept_audit: Vec<NewAudit>,
    /// Devices whose token chain a refused job revokes (a replay), with
    /// the time: kept, like the audit, though the job is rolled back.
    kept_revocations: Vec<(DeviceId, i64)>,
    /// Stored tokens a refused job was refused for, to count on their row.
    kept_refused_tokens: Vec<TokenHash>,
    announced: Vec<Change>,
}

impl WriteCtx<'_> {
    /// Keeps what a refused token presentation leaves behind, though the
    /// job is rolled back: its audit entry and, for a replay, the
    /// revocation of the device's chain. A refused request changes nothing
    /// else.
    pub fn keep_refusal(&mut self, refusal: &Refusal, presented: TokenHash) {
        self.kept_audit.extend(refusal.audit.clone());
        if let Some(device) = refusal.revoke_chain_of {
            self.kept_revocations.push((device, refusal.at_ms));
        }
        if refusal.count_on_token {
            self.kept_refused_tokens.push(presented);
        }
    }

    /// Applies a decision's effects: appends its audit entries now, in
    /// the job's savepoint, and announces its changes once the batch is
    /// committed (never, if this job is refused or the commit fails).
    pub fn apply(&mut self, effects: Effects) -> StoreResult<()> {
        for alarm in &effects.alarms {
            crate::alarms::write(self.conn, alarm)?;
        }
        for entry in &effects.audit {
            insert_audit(self.conn, entry)?;
        }
        self.announced.extend(effects.changes);
        Ok(())
    }
}

trait Job: Send {
    /// Runs the job; true when its changes are to be kept.
    fn run(&mut self, cx: &mut WriteCtx<'_>) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

struct TypedJob<T, F> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send,
    F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send,
{
    fn run(&mut self, cx: &mut WriteCtx<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(cx);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        let answer = match (committed, self.result) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(r)) => r,
            (Ok(()), None) => Err(StoreError::Backend("write job did not run".into())),
        };
        // The caller may have gone away (a dropped request); nothing to do.
        let _ = self.reply.send(answer);
    }
}

/// Handle to the writer thread. Cloning shares the one queue.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread on `conn`, which must be set up already.
    /// Committed changes are sent on `feed`.
    pub fn spawn(conn: Connection, feed: broadcast::Sender<Change>) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx, feed))?;
        Ok(Writer { queue: tx })
    }

    /// Runs `work` in the next group commit and returns its result once the
    /// commit is durable. An `Err` from `work` rolls back its own changes
    /// only.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(TypedJob {
            work: Some(work),
            result: None,
            reply,
        });
        self.queue
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?
    }
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Box<dyn Job>>, feed: broadcast::Sender<Change>) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut changes = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        changes.clear();
        let outcome = commit_batch(&conn, &mut batch, &mut changes);
        match &outcome {
            // No subscriber is not an error: the feed is best-effort news.
            Ok(()) => changes.drain(..).for_each(|c| _ = feed.send(c)),
            Err(e) => tracing::error!(error = %e, jobs = batch.len(), "group commit failed"),
        }
        for job in batch.drain(..) {
            job.finish(outcome.clone());
        }
    }
}

fn commit_batch(
    conn: &Connection,
    batch: &mut [Box<dyn Job>],
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    control(conn, "BEGIN IMMEDIATE")?;
    let result = (|| {
        for job in batch.iter_mut() {
            control(conn, "SAVEPOINT job")?;
            let mut cx = WriteCtx {
                conn,
                kept_audit: Vec::new(),
                kept_revocations: Vec::new(),
                kept_refused_tokens: Vec::new(),
                announced: Vec::new(),
            };
            let keep = job.run(&mut cx);
            if keep {
                changes.append(&mut cx.announced);
            } else {
                control(conn, "ROLLBACK TO job")?;
            }
            for entry in &cx.kept_audit {
                insert_audit(conn, entry)?;
            }
            for &(device, at_ms) in &cx.kept_revocations {
                revoke_chain(conn, device, at_ms)?;
            }
            for hash in &cx.kept_refused_tokens {
                conn.exec(
                    "UPDATE tokens SET refused_count = refused_count + 1 WHERE hash = ?1",
                    [&hash.0[..]],
                )
                .map_err(backend)?;
            }
            control(conn, "RELEASE job")?;
        }
        control(conn, "COMMIT")
    })();
    if result.is_err() {
        // Leaves the connection usable for the next batch; if the rollback
        // itself fails there is nothing better to do than report the first error.
        let _ = control(conn, "ROLLBACK");
    }
    result
}

/// Runs one transaction-control statement from the statement cache: they
/// run several times per batch, and parsing them each time showed in the
/// profile.
fn control(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut st| st.execute([]))
        .map(|_| ())
        .map_err(backend)
}

/// Statements through the connection's statement cache (rusqlite's
/// `Connection::execute` and `query_row` prepare anew every time).
pub(crate) trait Cached {
    /// `execute`, prepared once.
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize>;
    /// `query_row`, prepared once.
    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Maps a SQLite failure to the store's error, naming "busy" or I/O
/// failures as unavailability (worth a retry) and anything else as a fault.
pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | CannotOpen) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}
