//! `GET /api/v1/health`: is the process up and answering (liveness), and
//! `GET /api/v1/ready`: can it serve, that is, does its database answer
//! (readiness, for a load balancer in front of several instances).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use infusion_protocol::ErrorBody;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;

/// The health answer. Deliberately does no database work: it is the
/// baseline the load benchmark compares every other endpoint against.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers at all.
    pub status: &'static str,
    /// The server's version.
    pub version: &'static str,
}

/// The readiness answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: &'static str,
    /// The store backend: `sqlite` or `postgres`.
    pub backend: &'static str,
}

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/ready", get(ready))
}

/// Liveness check.
#[utoipa::path(get, path = "/api/v1/health", tag = "health",
    responses((status = 200, description = "The server is up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Readiness check: one round trip to the database.
#[utoipa::path(get, path = "/api/v1/ready", tag = "health",
    responses(
        (status = 200, description = "The database answers; this instance can serve", body = Ready),
        (status = 503, description = "`database_unavailable`: route requests elsewhere", body = ErrorBody),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    state.store.ping().await?;
    Ok(Json(Ready {
        status: "ready",
        backend: state.store.backend_name(),
    }))
}
