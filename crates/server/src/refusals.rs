//! Refusals that leave no audit entry: requests that name no stored token
//! and logins that name no account. Anyone can send those at any rate, and
//! the audit log is append-only, so each one writing a chained row let one
//! client grow it by gigabytes a day (red team round 2, finding 5). They
//! are counted here instead, per server instance since it started, and
//! logged once a minute at most with the counts, so that a flood shows in
//! the log without becoming one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::log_limit::LogLimit;

/// What was refused without an audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrecorded {
    /// An index or report with a token that is not stored (garbage, or
    /// pruned an hour after it expired), or of a retired device.
    UnknownToken,
    /// A device or web login for a username no account has.
    UnknownUsername,
    /// A web login whose username is longer than any account's may be, or
    /// holds control characters: refused before anything is stored.
    InvalidUsername,
}

impl Unrecorded {
    const ALL: [Unrecorded; 3] = [
        Unrecorded::UnknownToken,
        Unrecorded::UnknownUsername,
        Unrecorded::InvalidUsername,
    ];

    /// The name in the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Unrecorded::UnknownToken => "unknown_token",
            Unrecorded::UnknownUsername => "unknown_username",
            Unrecorded::InvalidUsername => "invalid_username",
        }
    }
}

/// The counts of one server instance.
#[derive(Debug)]
pub struct RefusalCounts {
    counts: [AtomicU64; 3],
    log: LogLimit,
}

impl Default for RefusalCounts {
    fn default() -> Self {
        RefusalCounts {
            counts: Default::default(),
            log: LogLimit::new(Duration::from_secs(60)),
        }
    }
}

impl RefusalCounts {
    /// Counts one refusal; logs the counts when a line is due.
    pub fn count(&self, what: Unrecorded) {
        self.counts[what as usize].fetch_add(1, Ordering::Relaxed);
        if let Some(since) = self.log.hit(Instant::now()) {
            let [tokens, names, invalid] = self.totals().map(|(_, n)| n);
            tracing::warn!(
                since_last_line = since,
                unknown_token = tokens,
                unknown_username = names,
                invalid_username = invalid,
                "requests refused that name no stored token or account (counted since start, not audited)"
            );
        }
    }

    /// Every count since the server started.
    pub fn totals(&self) -> [(Unrecorded, u64); 3] {
        Unrecorded::ALL.map(|u| (u, self.counts[u as usize].load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_counted_on_its_own() {
        let c = RefusalCounts::default();
        c.count(Unrecorded::UnknownToken);
        c.count(Unrecorded::UnknownToken);
        c.count(Unrecorded::InvalidUsername);
        assert_eq!(
            c.totals(),
            [
                (Unrecorded::UnknownToken, 2),
                (Unrecorded::UnknownUsername, 0),
                (Unrecorded::InvalidUsername, 1)
            ]
        );
    }
}
