//! Assembling the router and running it on a listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use infusion_protocol::ErrorCode;
use infusion_store::Store;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::api;
use crate::clock::now_ms;
use crate::config::ServerConfig;
use crate::error::ApiError;
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
}

impl AppState {
    /// Builds the state; computes the dummy password hash once.
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Result<AppState, ApiError> {
        Ok(AppState {
            passwords: Passwords::new(config.password)?,
            decision: Arc::new(crate::decision::TremorRule),
            store,
            config: Arc::new(config),
        })
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
        .layer(axum::middleware::map_response(crate::headers::add))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A bound, not yet running server. Binding first lets a caller learn the
/// port (port 0 picks a free one) before serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Binds `addr`.
    pub async fn bind(addr: SocketAddr, state: AppState) -> std::io::Result<Application> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Application { listener, state })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes the requests in
    /// flight. Also prunes expired tokens in the background.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let pruner = tokio::spawn(prune_tokens(self.state.clone()));
        let app = router(self.state);
        // The peer address reaches handlers (login throttling per address).
        let result = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        pruner.abort();
        result
    }
}

/// Deletes tokens that expired more than an hour ago, every
/// `prune_interval`. The hour keeps "used" and "expired" answers accurate
/// for a while after expiry, for diagnosis.
async fn prune_tokens(state: AppState) {
    let mut tick = tokio::time::interval(state.config.prune_interval);
    loop {
        tick.tick().await;
        match state.store.prune_tokens(now_ms() - 3_600_000).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "pruned expired tokens"),
            Err(e) => tracing::warn!(error = %e, "token pruning failed"),
        }
    }
}
