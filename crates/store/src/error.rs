//! The store's error type.

/// Why a store operation did not happen. Every variant but `Unavailable` and
/// `Backend` is a refusal decided by the data, after which nothing changed
/// (except, for token refusals, an audit entry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The presented token is not one the server issued (or it was pruned).
    #[error("unknown token")]
    TokenInvalid,
    /// The presented token was used before.
    #[error("token already used")]
    TokenUsed,
    /// The presented token outlived its lifetime.
    #[error("token expired")]
    TokenExpired,
    /// The presented token's chain has ended: an earlier token of it was
    /// presented twice, or the device logged in again or was bound again.
    #[error("token revoked: its chain has ended")]
    TokenRevoked,
    /// A login nonce that is not newer than the last one this device used:
    /// a captured login replayed.
    #[error("login nonce already used")]
    NonceReplayed,
    /// The token is valid but belongs to another patient.
    #[error("that patient is not this account's")]
    Forbidden,
    /// A reported event reuses a sequence number this device's events
    /// already hold, with other content (a pump whose counter restarted).
    /// The whole report is refused; the pump logs in again and learns
    /// where to continue numbering.
    #[error("event {seq} is stored already with other content")]
    SeqConflict {
        /// The sequence number.
        seq: u32,
    },
    /// A named record does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A unique name or address is taken already.
    #[error("{0}")]
    Conflict(String),
    /// A prescription or limits outside what is allowed.
    #[error("{0}")]
    OutsideLimits(String),
    /// An order that crosses soft limits (each named, in words) and came
    /// without a reason: the prescriber confirms it, with one, or changes
    /// it. Nothing was written.
    #[error("this order needs a reason to be given: {}", .0.join("; "))]
    NeedsConfirmation(Vec<String>),
    /// Input that is well-formed but not acceptable (for example min > max).
    #[error("{0}")]
    Invalid(String),
    /// The database cannot be reached now; retrying later may work.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database failure. Logged, never shown to clients.
    #[error("database error: {0}")]
    Backend(String),
}

/// Shorthand for results of store operations.
pub type StoreResult<T> = Result<T, StoreError>;
