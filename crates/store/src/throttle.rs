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

use async_trait::async_trait;

use crate::{Effects, NewAudit, StoreResult};

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

/// The login throttle's counts, one transaction per method.
#[async_trait]
pub trait Throttle: Send + Sync {
    /// A login attempt, before its password is checked: refused while any
    /// key is locked out (nothing is counted then), otherwise counted
    /// against the keys counted up front, and allowed. The count that sets
    /// a key's first lockout of a window is audited as a security event.
    async fn login_attempt(&self, keys: Vec<ThrottleKey>, now_ms: i64) -> StoreResult<Attempt>;

    /// A login attempt failed its check: counted against the other keys.
    async fn login_failed(&self, keys: Vec<ThrottleKey>, now_ms: i64) -> StoreResult<()>;

    /// A login attempt succeeded: clears the keys counted up front.
    async fn login_succeeded(&self, keys: Vec<ThrottleKey>) -> StoreResult<()>;
}

/// Decides an attempt from the latest lockout end among its keys (`None`
/// when none of them has a row): refused while it lies ahead.
pub fn attempt(locked_until_ms: Option<i64>, now_ms: i64) -> Attempt {
    let left = locked_until_ms.map_or(0, |u| u.saturating_sub(now_ms));
    if left > 0 {
        Attempt::Locked {
            retry_after_ms: left,
        }
    } else {
        Attempt::Allowed
    }
}

/// What one more attempt against `key` does, its count in the window now
/// being `attempts`: the lockout to set, if any, and the audit entry of
/// the first lockout of a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// Lock the key until then.
    pub locked_until_ms: Option<i64>,
    /// The security event of a first lockout.
    pub effects: Effects,
}

/// Decides the lockout after the `attempts`-th attempt against `key` now.
pub fn counted(key: &ThrottleKey, attempts: i64, now_ms: i64) -> Counted {
    let attempts = u32::try_from(attempts.max(0)).unwrap_or(u32::MAX);
    let lock = key.backoff.lockout_ms(attempts);
    if lock == 0 {
        return Counted {
            locked_until_ms: None,
            effects: Effects::none(),
        };
    }
    let effects = if attempts == key.backoff.free + 1 {
        Effects::audit(NewAudit::locked_out(now_ms, &key.key, attempts, lock))
    } else {
        Effects::none()
    };
    Counted {
        locked_until_ms: Some(now_ms + lock),
        effects,
    }
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

    #[test]
    fn an_attempt_is_refused_only_while_a_lockout_lies_ahead() {
        assert_eq!(attempt(None, 10), Attempt::Allowed);
        assert_eq!(attempt(Some(10), 10), Attempt::Allowed);
        assert_eq!(attempt(Some(0), 10), Attempt::Allowed);
        assert_eq!(
            attempt(Some(1_010), 10),
            Attempt::Locked {
                retry_after_ms: 1_000
            }
        );
    }

    #[test]
    fn only_the_first_lockout_of_a_window_is_audited() {
        let k = ThrottleKey::account("alice");
        let at = |n| counted(&k, n, 100);
        assert_eq!(
            at(5),
            Counted {
                locked_until_ms: None,
                effects: Effects::none()
            }
        );
        let first = at(6);
        assert_eq!(first.locked_until_ms, Some(1_100));
        assert_eq!(first.effects.audit[0].actor, "user:alice");
        assert_eq!(
            first.effects.audit[0].action,
            crate::AuditAction::LoginLockedOut
        );
        let second = at(7);
        assert_eq!(
            (second.locked_until_ms, second.effects),
            (Some(2_100), Effects::none())
        );
        assert_eq!(
            counted(&k, i64::MAX, 0).locked_until_ms,
            Some(15 * 60 * 1000)
        );
    }
}
