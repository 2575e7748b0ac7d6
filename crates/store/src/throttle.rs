//! Login throttling: how failed logins lock a key (a username, a client
//! address) out for longer and longer, shared by both backends so that
//! every instance on one database applies one count.
//!
//! A username counts every attempt *before* its password is checked, so a
//! burst of concurrent guesses at one account cannot slip past the count
//! while the hashes run; a success clears it. An address counts failures
//! only, after the check: a ward of pumps behind one NAT address may log
//! in by the hundred at once after a server restart, and no success
//! resets an address's count (an attacker with an account of their own
//! would otherwise reset it between guesses). A locked-out attempt is
//! refused before it costs any hashing, so an attack on one account
//! cannot slow the logins of others.

/// How a key's attempts lock it out: the first `free` attempts within the
/// window are free; each further one locks the key for twice as long as
/// the one before, from one second up to `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts allowed before any lockout.
    pub free: u32,
    /// The longest lockout, ms.
    pub max_ms: i64,
}

impl Backoff {
    /// A username (device or web account): five attempts, then 1 s, 2 s,
    /// 4 s ... up to 15 minutes.
    pub const ACCOUNT: Backoff = Backoff {
        free: 5,
        max_ms: 15 * 60 * 1000,
    };
    /// A client address: more room, since many people may share one
    /// (a ward behind one NAT), up to the same 15 minutes.
    pub const ADDRESS: Backoff = Backoff {
        free: 20,
        max_ms: 15 * 60 * 1000,
    };

    /// The lockout after the `attempts`-th attempt of the window, ms.
    pub fn lockout_ms(&self, attempts: u32) -> i64 {
        if attempts <= self.free {
            return 0;
        }
        let doublings = (attempts - self.free - 1).min(30);
        (1_000i64 << doublings).min(self.max_ms)
    }
}

/// Attempts older than this are forgotten: the count restarts.
pub const WINDOW_MS: i64 = 60 * 60 * 1000;

/// One thing attempts are counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKey {
    /// `user:NAME` or `addr:IP`.
    pub key: String,
    /// Its lockout schedule.
    pub backoff: Backoff,
    /// Counted before the password check and cleared by a success (a
    /// username), or counted only when the check fails (an address).
    pub up_front: bool,
}

impl ThrottleKey {
    /// The key of a username, as typed (lower-cased, so that case does not
    /// give an attacker more attempts).
    pub fn account(username: &str) -> ThrottleKey {
        ThrottleKey {
            key: format!("user:{}", username.to_lowercase()),
            backoff: Backoff::ACCOUNT,
            up_front: true,
        }
    }

    /// The key of a device, for logins that prove its secret: counted
    /// like a username, but only such logins reach it, so whoever merely
    /// knows the username (and locks that out) cannot lock the real pump
    /// out, while a holder of a stolen secret guessing the password is
    /// still throttled.
    pub fn device(id: crate::DeviceId) -> ThrottleKey {
        ThrottleKey {
            key: format!("device:{}", id.0),
            backoff: Backoff::ACCOUNT,
            up_front: true,
        }
    }

    /// The key of a client address.
    pub fn address(ip: std::net::IpAddr) -> ThrottleKey {
        ThrottleKey {
            key: format!("addr:{ip}"),
            backoff: Backoff::ADDRESS,
            up_front: false,
        }
    }
}

/// What counting an attempt decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Go on and check the password.
    Allowed,
    /// Refused without checking: locked for this many more ms.
    Locked {
        /// Until the lockout ends, ms.
        retry_after_ms: i64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_double_after_the_free_attempts_up_to_the_cap() {
        let b = Backoff::ACCOUNT;
        let locks: Vec<i64> = (1..=8).map(|n| b.lockout_ms(n)).collect();
        assert_eq!(locks, [0, 0, 0, 0, 0, 1_000, 2_000, 4_000]);
        assert_eq!(b.lockout_ms(16), 15 * 60 * 1000);
        assert_eq!(b.lockout_ms(u32::MAX), 15 * 60 * 1000);
    }

    #[test]
    fn usernames_are_counted_whatever_their_case() {
        assert_eq!(ThrottleKey::account("Alice"), ThrottleKey::account("alice"));
    }
}
