//! The change feed over `LISTEN`/`NOTIFY`.
//!
//! Every store operation that changes something a live view shows calls
//! `pg_notify` inside its transaction; PostgreSQL delivers the notification
//! to every listening connection when (and only if) that transaction
//! commits. Each instance keeps one listening connection and re-broadcasts
//! what it hears to its local subscribers, its own changes included, so
//! there is one path for all of them. Notifications sent while the listener
//! was disconnected are lost; after reconnecting it announces
//! [`Change::Resync`] so that subscribers reread.

use std::time::Duration;

use infusion_store::Change;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// The notification channel every instance listens on.
pub(crate) const CHANNEL: &str = "infusion_changes";

/// The listening task; stops when dropped (with the last store clone).
pub(crate) struct ListenerTask(JoinHandle<()>);

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ListenerTask {
    /// Starts listening on `pool`'s database and sending what arrives on
    /// `feed`.
    pub fn spawn(pool: PgPool, feed: broadcast::Sender<Change>) -> ListenerTask {
        ListenerTask(tokio::spawn(listen(pool, feed)))
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

async fn listen(pool: PgPool, feed: broadcast::Sender<Change>) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    while !pool.is_closed() {
        let mut listener = match connect(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "change listener cannot connect; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if !first {
            tracing::info!("change listener reconnected");
            let _ = feed.send(Change::Resync);
        }
        first = false;
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => match Change::from_payload(n.payload()) {
                    Some(change) => {
                        let _ = feed.send(change);
                    }
                    None => tracing::debug!(payload = n.payload(), "unknown change ignored"),
                },
                // The connection dropped and sqlx reconnected it (and its
                // LISTEN): whatever was sent in between is lost.
                Ok(None) => {
                    tracing::info!("change listener lost its connection; resyncing");
                    let _ = feed.send(Change::Resync);
                }
                Err(e) => {
                    if !pool.is_closed() {
                        tracing::warn!(error = %e, "change listener failed; reconnecting");
                    }
                    break;
                }
            }
        }
    }
}
