//! Login throttling at the HTTP edge: every device and web login attempt
//! is counted against its keys before any password is checked (the rules
//! are the store's `throttle` module; the counts live in the database so
//! that every instance shares them). A refused attempt is answered 429
//! with `Retry-After` at once, without hashing; an attempt from a paced
//! address first waits its turn. The answer is the same for a username
//! that exists and one that does not.

use std::net::IpAddr;
use std::time::Duration;

use infusion_store::DeviceId;
use infusion_store::throttle::{Attempt, Outcome, ThrottleKey};

use crate::AppState;
use crate::error::ApiError;
use crate::password::Lane;

/// The keys an attempt counts against: the username, then the client
/// address; or, for a device login that proved the secret of device
/// `proven`, that device alone. The username and address are what an
/// attacker without the secret can slow or lock out; the pump that proves
/// its secret is not held up by them (a ward of pumps behind one address
/// may log in by the hundred after a server restart), and a holder of a
/// stolen secret is counted on the device.
pub fn keys(username: &str, client: IpAddr, proven: Option<DeviceId>) -> Vec<ThrottleKey> {
    match proven {
        Some(device) => vec![ThrottleKey::device(device)],
        None => vec![ThrottleKey::account(username), ThrottleKey::address(client)],
    }
}

/// Counts the attempt and waits for its turn if its address is paced;
/// `Err(429)` while a key refuses it.
pub async fn admit(app: &AppState, keys: &[ThrottleKey], now_ms: i64) -> Result<(), ApiError> {
    match app.store.login_attempt(keys.to_vec(), now_ms).await? {
        Attempt::Allowed { wait_ms } => {
            if let Ok(wait) = u64::try_from(wait_ms) {
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            Ok(())
        }
        Attempt::Locked { retry_after_ms } => Err(ApiError::throttled(retry_after_ms)),
    }
}

/// Checks an admitted attempt's password in `lane`. An attempt the server
/// was too busy to check (429) is given back: it was no guess.
pub async fn verify(
    app: &AppState,
    keys: &[ThrottleKey],
    password: &str,
    hash: Option<&str>,
    lane: Lane,
) -> Result<bool, ApiError> {
    let checked = app.passwords.verify(password, hash, lane).await;
    if checked.is_err() {
        settle(app, keys, Outcome::Unjudged).await?;
    }
    checked
}

/// Records how an admitted attempt ended.
pub async fn settle(
    app: &AppState,
    keys: &[ThrottleKey],
    outcome: Outcome,
) -> Result<(), ApiError> {
    Ok(app.store.login_settled(keys.to_vec(), outcome).await?)
}
