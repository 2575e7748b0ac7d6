//! Login throttling at the HTTP edge: every device and web login attempt
//! is counted against its username and its client address before any
//! password is checked (the rules are the store's `throttle` module, the
//! counts live in the database so that every instance shares them). A
//! locked-out attempt is answered 429 with `Retry-After` at once, without
//! hashing: whatever an attacker sends, the hashing threads stay free for
//! everyone else's logins. The answer is the same for a username that
//! exists and one that does not.

use std::net::SocketAddr;

use infusion_store::DeviceId;
use infusion_store::throttle::{Attempt, ThrottleKey};

use crate::AppState;
use crate::error::ApiError;

/// The keys an attempt counts against: the username, then the address
/// (always in this order, so concurrent attempts lock rows alike); or,
/// for a device login that proved the secret of device `proven`, that
/// device alone. The username and address are what an attacker without
/// the secret can lock out; the pump that proves its secret is not held
/// up by them, and a holder of a stolen secret is counted on the device.
pub fn keys(username: &str, peer: SocketAddr, proven: Option<DeviceId>) -> Vec<ThrottleKey> {
    match proven {
        Some(device) => vec![ThrottleKey::device(device)],
        None => vec![
            ThrottleKey::account(username),
            ThrottleKey::address(peer.ip()),
        ],
    }
}

/// Counts the attempt; `Err(429)` while any key is locked out.
pub async fn admit(app: &AppState, keys: &[ThrottleKey], now_ms: i64) -> Result<(), ApiError> {
    match app.store.login_attempt(keys.to_vec(), now_ms).await? {
        Attempt::Allowed => Ok(()),
        Attempt::Locked { retry_after_ms } => Err(ApiError::throttled(retry_after_ms)),
    }
}
