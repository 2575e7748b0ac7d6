//! `GET /api/v1/health`: is the process up and answering.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::AppState;

/// The health answer. Deliberately does no database work: it is the
/// baseline the load benchmark compares every other endpoint against.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers at all.
    pub status: &'static str,
    /// The server's version.
    pub version: &'static str,
}

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/health", get(health))
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
