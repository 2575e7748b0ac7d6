//! The one error shape of the API: `{"error": "<code>", "message": "..."}`.

use crate::limits::MESSAGE_MAX;

/// Stable, machine-readable error codes.
///
/// Firmware branches on these (for example: log in again on the three token
/// codes), so a code is never renamed or reused for another meaning. The
/// `message` beside it is for humans and may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: unknown user or wrong password (one answer for both, so that
    /// accounts cannot be enumerated).
    InvalidCredentials,
    /// 403: the MAC address is not the device bound to this account.
    DeviceNotRegistered,
    /// 401: the token was already presented once. Log in again.
    TokenUsed,
    /// 401: the token outlived its lifetime. Log in again.
    TokenExpired,
    /// 401: no such token, or not a token at all. Log in again.
    TokenInvalid,
    /// 401: the token's chain has ended: an earlier token of it was
    /// presented twice (a replay), or the device logged in again or was
    /// bound again since the token was issued. Log in again.
    TokenRevoked,
    /// 401: the login carried no device proof (`nonce` and `proof`), and
    /// this server does not accept the paper's password-and-MAC login.
    DeviceProofRequired,
    /// 401: the login's `nonce` is not one this server issued, has
    /// expired, or was already used. Ask for a new challenge.
    ChallengeInvalid,
    /// 403: the patient is not this account's.
    Forbidden,
    /// 400: the body is not JSON.
    MalformedJson,
    /// 422: JSON, but not the expected shape: a missing or unknown field, a
    /// wrong type, a number out of range.
    InvalidBody,
    /// 413: the body is larger than the API accepts.
    PayloadTooLarge,
    /// 415: the body is not sent as `application/json`.
    UnsupportedMediaType,
    /// 408: the request's body came too slowly (below the minimum data
    /// rate, or not complete within the deadline); the connection is
    /// closed. Send the request again.
    RequestTimeout,
    /// 404: no such route or record.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 422: a prescription or limit outside the patient's or the pump's limits.
    OutsideLimits,
    /// 409: the request conflicts with the current state (for example a
    /// username or MAC address that is already taken).
    Conflict,
    /// 409: a reported event reuses a `seq` this device's stored events
    /// hold with other content (the pump's counter restarted). Nothing of
    /// the report was stored and the token was not consumed. Log in again
    /// and number new events from the login answer's `next_seq`.
    SeqConflict,
    /// 429: too many login attempts for this account or from this address;
    /// try again after the `Retry-After` header's seconds.
    TooManyRequests,
    /// 503: the database cannot be reached; try again later.
    DatabaseUnavailable,
    /// 500: a fault on the server; details are in its log, never in the body.
    Internal,
    /// Any code this firmware does not know yet (a newer server). Treated as
    /// a transient failure.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::DeviceNotRegistered => "device_not_registered",
            ErrorCode::TokenUsed => "token_used",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::TokenRevoked => "token_revoked",
            ErrorCode::DeviceProofRequired => "device_proof_required",
            ErrorCode::ChallengeInvalid => "challenge_invalid",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::OutsideLimits => "outside_limits",
            ErrorCode::Conflict => "conflict",
            ErrorCode::SeqConflict => "seq_conflict",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::DatabaseUnavailable => "database_unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }

    /// True for the codes after which a pump must log in again rather than
    /// retry with the same token.
    pub fn requires_login(self) -> bool {
        matches!(
            self,
            ErrorCode::TokenUsed
                | ErrorCode::TokenExpired
                | ErrorCode::TokenInvalid
                | ErrorCode::TokenRevoked
        )
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong, as a stable code.
    pub error: ErrorCode,
    /// What went wrong, for a human reading a log.
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 160))]
    #[serde(default)]
    pub message: heapless::String<MESSAGE_MAX>,
}

impl ErrorBody {
    /// Builds a body, cutting an over-long message at a character boundary
    /// rather than failing.
    pub fn new(error: ErrorCode, message: &str) -> Self {
        ErrorBody {
            error,
            message: crate::truncated(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_their_wire_names() {
        for code in [
            ErrorCode::InvalidCredentials,
            ErrorCode::DeviceNotRegistered,
            ErrorCode::TokenUsed,
            ErrorCode::TokenExpired,
            ErrorCode::TokenInvalid,
            ErrorCode::TokenRevoked,
            ErrorCode::DeviceProofRequired,
            ErrorCode::ChallengeInvalid,
            ErrorCode::Forbidden,
            ErrorCode::MalformedJson,
            ErrorCode::InvalidBody,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::RequestTimeout,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::OutsideLimits,
            ErrorCode::Conflict,
            ErrorCode::SeqConflict,
            ErrorCode::TooManyRequests,
            ErrorCode::DatabaseUnavailable,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, std::format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn unknown_codes_decode_as_unknown() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":"brand_new_code","message":"x"}"#).unwrap();
        assert_eq!(body.error, ErrorCode::Unknown);
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(200);
        let body = ErrorBody::new(ErrorCode::Internal, &long);
        assert!(body.message.len() <= MESSAGE_MAX);
        assert!(body.message.chars().all(|c| c == 'é'));
    }
}
