//! Assembling the router and running it on a listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use infusion_protocol::ErrorCode;
use infusion_store::Store;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::api;
use crate::clock::now_ms;
use crate::config::ServerConfig;
use crate::conn_limit::{Caps, ConnectionLimits};
use crate::error::ApiError;
use crate::identity::{KeyError, ServerKeys};
use crate::log_limit::LogLimit;
use crate::pace::{PaceLimits, Paced};
use crate::password::Passwords;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database, behind the backend-neutral trait.
    pub store: Arc<dyn Store>,
    /// Settings.
    pub config: Arc<ServerConfig>,
    /// Password verification, bounded and off the async threads.
    pub passwords: Passwords,
    /// Turns vitals into suggested prescription changes.
    pub decision: Arc<dyn crate::decision::DecisionAlgorithm>,
    /// The index signing key and the login challenge key.
    pub keys: Arc<ServerKeys>,
    /// Refusals counted instead of audited.
    pub refusals: Arc<crate::refusals::RefusalCounts>,
    /// Live streams open per web session.
    pub live_slots: Arc<crate::web::live_slots::LiveSlots>,
    /// Which reader's views of which record were audited last.
    pub record_views: Arc<crate::web::record_views::RecordViews>,
}

/// Why a server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its keys cannot be had, or are not the ones its pumps trust.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The password hashing threads cannot start.
    #[error("password hashing: {0}")]
    Passwords(#[from] ApiError),
}

impl AppState {
    /// Builds the state: computes the dummy password hash once and loads
    /// (on first start, creates) the server's keys, from the key file if
    /// the configuration names one.
    pub async fn new(store: Arc<dyn Store>, config: ServerConfig) -> Result<AppState, StartError> {
        let keys = ServerKeys::load(store.as_ref(), now_ms(), config.key_file.as_deref()).await?;
        Ok(AppState {
            keys: Arc::new(keys),
            passwords: Passwords::new(config.password)?,
            decision: Arc::new(crate::decision::TremorRule),
            store,
            config: Arc::new(config),
            refusals: Arc::default(),
            live_slots: Arc::default(),
            record_views: Arc::default(),
        })
    }
}

impl AppState {
    /// A device request's store error, a token that is not stored counted
    /// (the store audits only stored ones: see [`crate::refusals`]).
    pub fn token_refused(&self, e: infusion_store::StoreError) -> infusion_store::StoreError {
        if e == infusion_store::StoreError::TokenInvalid {
            self.refusals
                .count(crate::refusals::Unrecorded::UnknownToken);
        }
        e
    }
}

/// The whole HTTP surface. Unknown routes and methods answer in the API's
/// error format like everything else.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    Router::new()
        .merge(api::device::router())
        .merge(api::health::router())
        .merge(api::openapi::router())
        .merge(crate::web::router())
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::oversized::refuse_oversized,
        ))
        .layer(axum::middleware::from_fn(crate::headers::added))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// How long a TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head (request line and headers) read, bytes; a
/// larger one is answered 431 and the connection closed.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Connections the kernel may queue before they are accepted (capped by
/// `net.core.somaxconn`, 4,096 on current Linux). A client refused at the
/// caps reconnects at once; a short queue would then overflow and drop
/// honest clients' connection attempts, which retry only after a second.
pub const LISTEN_BACKLOG: u32 = 4096;
/// How long shutdown waits for open connections (live streams included).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound, not yet running server. Binding first lets a caller learn the
/// port (port 0 picks a free one) before serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Application {
    /// Binds `addr`, with a listen backlog of [`LISTEN_BACKLOG`].
    pub async fn bind(addr: SocketAddr, state: AppState) -> std::io::Result<Application> {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(LISTEN_BACKLOG)?;
        Ok(Application {
            listener,
            state,
            tls: None,
        })
    }

    /// Serves HTTPS with `config` instead of plain HTTP.
    pub fn with_tls(mut self, config: Arc<rustls::ServerConfig>) -> Application {
        self.tls = Some(tokio_rustls::TlsAcceptor::from(config));
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets the open connections
    /// finish (at most [`DRAIN_TIMEOUT`]). Also prunes expired tokens in
    /// the background.
    ///
    /// Each connection is HTTP/1.1 through hyper with the limits above, or
    /// over TLS when configured HTTP/2 if the client offers it, with its peer address given to handlers
    /// as `ConnectInfo` and the [`crate::client::Client`] it speaks for
    /// (login throttling counts per client address). A
    /// connection past the caps of [`crate::conn_limit`] is closed as soon
    /// as it is accepted; every request body is paced ([`crate::pace`]).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let pruner = tokio::spawn(prune_tokens(self.state.clone()));
        let watchdog = tokio::spawn(crate::watchdog::watch_silent(self.state.clone()));
        let mut alarms = vec![tokio::spawn(crate::notify::escalate(self.state.clone()))];
        match crate::notify::senders(&self.state.config.notify) {
            Ok(senders) => {
                for s in senders {
                    alarms.push(tokio::spawn(crate::notify::deliver(self.state.clone(), s)));
                }
            }
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)),
        }
        let config = Arc::clone(&self.state.config);
        let limits = ConnectionLimits::new(Caps::fitted(
            config.connections,
            crate::conn_limit::open_file_limit(),
        ));
        let caps = limits.caps();
        tracing::info!(
            total = caps.total,
            per_address = caps.per_address,
            "connection caps"
        );
        let app = router(self.state);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(MAX_HEAD_BYTES);
        let h2 = http2_builder();
        let over_cap = LogLimit::new(Duration::from_secs(10));
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, go on.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let permit = match limits.admit(peer.ip()) {
                Ok(permit) => permit,
                Err(refused) => {
                    if let Some(n) = over_cap.hit(std::time::Instant::now()) {
                        tracing::warn!(%peer, ?refused, closed = n, held = limits.held(),
                            "connections over the cap closed on accept");
                    }
                    continue;
                }
            };
            let config = Arc::clone(&config);
            let service = hyper_util::service::TowerToHyperService::new(
                tower::ServiceExt::map_request(app.clone(), move |req: Request<Incoming>| {
                    let mut req = req.map(|body| paced(body, config.body_pace));
                    let client = config.trusted_proxies.client(
                        peer.ip(),
                        req.headers(),
                        config.secure_cookies,
                    );
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req.extensions_mut().insert(client);
                    req
                }),
            );
            let conn = Connection {
                http: http.clone(),
                h2: h2.clone(),
                tls: self.tls.clone(),
                watcher: graceful.watcher(),
                peer,
            };
            tokio::spawn(async move {
                conn.serve(stream, service).await;
                drop(permit);
            });
        }
        drop(self.listener);
        pruner.abort();
        watchdog.abort();
        for a in &alarms {
            a.abort();
        }
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the drain timeout; closing them");
        }
        Ok(())
    }
}

/// A request body held to `limits`; a body that is already complete (no
/// body at all, as in every GET) is taken as it is.
fn paced(body: Incoming, limits: PaceLimits) -> axum::body::Body {
    use hyper::body::Body as _;
    if body.is_end_stream() {
        axum::body::Body::new(body)
    } else {
        axum::body::Body::new(Paced::new(body, limits))
    }
}

/// HTTP/2, which browsers speak over TLS (ALPN `h2`): the head limit as
/// the header list's, a bounded number of streams per connection (every
/// open page's live stream is one), and pings that close a connection
/// whose peer has gone away.
fn http2_builder() -> hyper::server::conn::http2::Builder<hyper_util::rt::TokioExecutor> {
    let mut h2 = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    h2.timer(hyper_util::rt::TokioTimer::new())
        .max_header_list_size(u32::try_from(MAX_HEAD_BYTES).unwrap_or(u32::MAX))
        .max_concurrent_streams(H2_STREAMS)
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    h2
}

/// Streams one HTTP/2 connection may have open at once.
const H2_STREAMS: u32 = 64;

/// What serving one accepted connection needs.
struct Connection {
    http: hyper::server::conn::http1::Builder,
    h2: hyper::server::conn::http2::Builder<hyper_util::rt::TokioExecutor>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    watcher: hyper_util::server::graceful::Watcher,
    peer: SocketAddr,
}

impl Connection {
    /// Serves `stream` (after the TLS handshake, if any) until it ends.
    async fn serve<S>(self, stream: tokio::net::TcpStream, service: S)
    where
        S: hyper::service::Service<Request<Incoming>, Response = axum::response::Response>
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Connection {
            http,
            h2,
            tls,
            watcher,
            peer,
        } = self;
        let Some(acceptor) = tls else {
            let conn = http.serve_connection(TokioIo::new(stream), service);
            let _ = watcher.watch(conn).await;
            return;
        };
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(stream)) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
                let conn = h2.serve_connection(TokioIo::new(stream), service);
                let _ = watcher.watch(conn).await;
            }
            Ok(Ok(stream)) => {
                let conn = http.serve_connection(TokioIo::new(stream), service);
                let _ = watcher.watch(conn).await;
            }
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }
}

/// Deletes tokens that expired more than an hour ago, and login throttle
/// counts that are forgotten, every `prune_interval`. The hour keeps
/// "used" and "expired" answers accurate for a while after expiry, for
/// diagnosis.
async fn prune_tokens(state: AppState) {
    let mut tick = tokio::time::interval(state.config.prune_interval);
    loop {
        tick.tick().await;
        let now = now_ms();
        match state.store.prune_tokens(now - 3_600_000).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "pruned expired tokens"),
            Err(e) => tracing::warn!(error = %e, "token pruning failed"),
        }
        match state.store.prune_throttle(now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "pruned login throttle counts"),
            Err(e) => tracing::warn!(error = %e, "throttle pruning failed"),
        }
    }
}
