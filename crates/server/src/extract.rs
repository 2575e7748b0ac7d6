//! Extractors that refuse bad input in the API's own error format.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use infusion_protocol::{ErrorCode, Token};

use crate::error::ApiError;

/// `axum::Json`, but a rejection answers with our error body: 400
/// `malformed_json`, 422 `invalid_body`, 413 `payload_too_large` or 415
/// `unsupported_media_type`, never a plain-text error.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(r: &JsonRejection) -> ApiError {
    if let Some(slow) = ApiError::body_too_slow(r) {
        return slow;
    }
    let code = match r.status() {
        StatusCode::BAD_REQUEST => ErrorCode::MalformedJson,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        _ => ErrorCode::InvalidBody,
    };
    // serde's own words name the field and the problem; they hold no secret.
    let message = match r {
        JsonRejection::JsonDataError(e) => e.body_text(),
        JsonRejection::JsonSyntaxError(e) => e.body_text(),
        JsonRejection::MissingJsonContentType(_) => {
            "send the body as Content-Type: application/json".to_owned()
        }
        _ => r.body_text(),
    };
    ApiError::new(code, message)
}

/// The bearer token of a device request. A missing header, another scheme,
/// or text that cannot be a token all answer 401 `token_invalid`.
pub struct Bearer(pub Token);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::new(
                ErrorCode::TokenInvalid,
                "send the token as Authorization: Bearer <token>",
            )
        };
        let value = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(invalid)?
            .to_str()
            .map_err(|_| invalid())?;
        let (scheme, token) = value.split_once(' ').ok_or_else(invalid)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(invalid());
        }
        Token::parse(token.trim())
            .map(Bearer)
            .map_err(|_| invalid())
    }
}
