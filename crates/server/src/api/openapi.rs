//! `GET /api/v1/openapi.json`: the device API's contract, generated from the
//! handlers and wire types so that it cannot drift from them.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;
use crate::api::{device, health};

/// The OpenAPI 3 document of API v1.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Infusion pump device API",
        version = "1",
        description = "What pump firmware speaks: log in, poll the infusion index with \
single-use tokens, report events. All quantities are integers in the unit their name \
ends with: _ul microlitres, _ul_h microlitres per hour, _ms milliseconds, _s seconds. \
Every error is {\"error\": code, \"message\": text}."
    ),
    paths(device::challenge, device::login, device::index, device::report, health::health, health::ready),
    modifiers(&BearerToken),
    tags((name = "device", description = "The pump's API"), (name = "health"))
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
