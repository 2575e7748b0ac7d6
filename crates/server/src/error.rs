//! The one error type of the HTTP layer and its one mapping to a response.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use infusion_protocol::{ErrorBody, ErrorCode};
use infusion_store::StoreError;

/// A refused or failed request: a stable code, its HTTP status, and a
/// message for humans. Server faults are logged in full and answered with a
/// generic message: no SQL, paths or stack traces reach a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The stable code clients branch on.
    pub code: ErrorCode,
    /// The message sent to the client.
    pub message: String,
    /// Seconds a throttled client must wait (`Retry-After`).
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    /// An error with a code and a client-facing message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// Too many login attempts: locked for `retry_after_ms` more.
    pub fn throttled(retry_after_ms: i64) -> ApiError {
        let secs = u64::try_from(retry_after_ms.max(0))
            .unwrap_or(0)
            .div_ceil(1_000)
            .max(1);
        ApiError {
            retry_after_s: Some(secs),
            ..ApiError::new(
                ErrorCode::TooManyRequests,
                format!("too many login attempts; try again in {secs} s"),
            )
        }
    }

    /// The hashing queue is full: 429, come back in a second.
    pub fn busy() -> ApiError {
        ApiError {
            retry_after_s: Some(1),
            ..ApiError::new(
                ErrorCode::TooManyRequests,
                "the server is busy checking other logins; try again in 1 s",
            )
        }
    }

    /// 408 `request_timeout` when an extractor's rejection `r` came from a
    /// body cut off by [`crate::pace`].
    pub fn body_too_slow(r: &(dyn std::error::Error + 'static)) -> Option<ApiError> {
        crate::pace::cut_off(r).then(|| {
            ApiError::new(
                ErrorCode::RequestTimeout,
                "the request body came too slowly; send the request again",
            )
        })
    }

    /// A server fault: `detail` goes to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(%detail, "internal error");
        ApiError::new(ErrorCode::Internal, "internal server error")
    }

    /// The HTTP status of each code. 401 for every token problem (log in
    /// again), 403 for a valid identity asking for what is not its own.
    pub fn status(&self) -> StatusCode {
        match self.code {
            ErrorCode::InvalidCredentials
            | ErrorCode::TokenUsed
            | ErrorCode::TokenExpired
            | ErrorCode::TokenInvalid
            | ErrorCode::TokenRevoked
            | ErrorCode::DeviceProofRequired
            | ErrorCode::ChallengeInvalid => StatusCode::UNAUTHORIZED,
            ErrorCode::DeviceNotRegistered | ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::MalformedJson => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidBody | ErrorCode::OutsideLimits => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict | ErrorCode::SeqConflict => StatusCode::CONFLICT,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal | ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::TokenInvalid => {
                ApiError::new(ErrorCode::TokenInvalid, "unknown token; log in again")
            }
            StoreError::TokenUsed => ApiError::new(
                ErrorCode::TokenUsed,
                "this token was used already; log in again",
            ),
            StoreError::TokenExpired => ApiError::new(
                ErrorCode::TokenExpired,
                "this token has expired; log in again",
            ),
            StoreError::NonceReplayed => ApiError::new(
                ErrorCode::ChallengeInvalid,
                "this login challenge was already used: ask for a new one",
            ),
            StoreError::TokenRevoked => ApiError::new(
                ErrorCode::TokenRevoked,
                "this token's chain has ended (a replay, a newer login or a new binding of this pump); log in again",
            ),
            StoreError::Forbidden => {
                ApiError::new(ErrorCode::Forbidden, "that patient is not this account's")
            }
            StoreError::NotFound(m) => ApiError::new(ErrorCode::NotFound, m),
            StoreError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            StoreError::SeqConflict { seq } => ApiError::new(
                ErrorCode::SeqConflict,
                format!(
                    "event {seq} is stored already with other content; nothing was stored: log in \
                     again and number new events from next_seq"
                ),
            ),
            StoreError::OutsideLimits(m) => ApiError::new(ErrorCode::OutsideLimits, m),
            e @ StoreError::NeedsConfirmation(_) => {
                ApiError::new(ErrorCode::OutsideLimits, e.to_string())
            }
            StoreError::Invalid(m) => ApiError::new(ErrorCode::InvalidBody, m),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                ApiError::new(
                    ErrorCode::DatabaseUnavailable,
                    "the database is unavailable; try again shortly",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(ErrorBody::new(self.code, &self.message))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if self.code == ErrorCode::RequestTimeout {
            // The rest of the body is never read: end the connection.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        if let Some(secs) = self.retry_after_s {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
