//! Login throttling: how login attempts against a key (a username, a
//! device, a client address) are limited, shared by both backends so that
//! every instance on one database applies one count. The backends only
//! read and write the `login_throttle` rows; what a row means and what it
//! becomes is decided here.
//!
//! Every attempt is counted *before* its password is checked, against all
//! its keys, so a burst of concurrent guesses cannot slip past the count
//! while the hashes run. Two rules then apply:
//!
//! - a username or a device is **locked out**: five attempts, then 1 s,
//!   2 s, 4 s ... up to 15 minutes, and a success clears the count. The
//!   lockout holds up one account only;
//! - an address is **paced**, never locked: after twenty attempts, its
//!   attempts take turns, one per second at first (up to one per 8 s),
//!   each waiting for its turn up to 5 s and refused with a short
//!   `Retry-After` beyond that. Many people may share one address (a ward
//!   behind one NAT or TLS proxy), so an attack from it slows everyone
//!   behind it a little and locks no one out: a clinician whose own
//!   password is right gets in, at most a few seconds later. A success
//!   gives back its own attempt only (an attacker with an account of their
//!   own could otherwise reset the count between guesses), and the count
//!   forgets one attempt every three minutes.
//!
//! An attempt refused by either rule costs no hashing and is not counted.

use std::net::IpAddr;

use async_trait::async_trait;

use crate::{Effects, NewAudit, StoreResult};

/// How a username's or a device's attempts lock it out: the first `free`
/// attempts within the window are free; each further one locks the key
/// for twice as long as the one before, from one second up to `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts allowed before any lockout.
    pub free: u32,
    /// The longest lockout, ms.
    pub max_ms: i64,
}

impl Backoff {
    /// A username or a device: five attempts, then 1 s, 2 s, 4 s ... up to
    /// 15 minutes.
    pub const ACCOUNT: Backoff = Backoff {
        free: 5,
        max_ms: 15 * 60 * 1000,
    };

    /// The lockout after the `attempts`-th attempt of the window, ms.
    pub fn lockout_ms(&self, attempts: u32) -> i64 {
        if attempts <= self.free {
            return 0;
        }
        seconds_doubled(attempts - self.free - 1, self.max_ms)
    }
}

/// How an address's attempts are paced once it has made `free` of them:
/// each further attempt takes the next turn, turns `interval_ms` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Attempts that need no turn.
    pub free: u32,
    /// One counted attempt is forgotten this often, ms.
    pub forget_ms: i64,
    /// The longest an attempt waits for its turn, ms; a later turn is
    /// refused (`Retry-After`), so that waiting requests stay few.
    pub max_wait_ms: i64,
    /// The interval between turns doubles every this many attempts over
    /// `free`, from one second up to `max_interval_ms`.
    pub doubling_every: u32,
    /// The longest interval between turns, ms.
    pub max_interval_ms: i64,
}

impl Pacing {
    /// A client address: twenty attempts, then one per second, slowing to
    /// one per 8 s as attempts go on; an attempt waits its turn up to 5 s.
    pub const ADDRESS: Pacing = Pacing {
        free: 20,
        forget_ms: 3 * 60 * 1000,
        max_wait_ms: 5_000,
        doubling_every: 10,
        max_interval_ms: 8_000,
    };

    /// The interval between turns once `attempts` were counted, ms (0
    /// while they are free).
    pub fn interval_ms(&self, attempts: u32) -> i64 {
        if attempts <= self.free {
            return 0;
        }
        let doublings = (attempts - self.free - 1) / self.doubling_every.max(1);
        seconds_doubled(doublings, self.max_interval_ms)
    }
}

/// One second doubled `doublings` times, at most `max_ms`.
fn seconds_doubled(doublings: u32, max_ms: i64) -> i64 {
    (1_000i64 << doublings.min(30)).min(max_ms)
}

/// The rule a key's attempts are held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Locked out after a few attempts; a success clears the count.
    Lockout(Backoff),
    /// Paced after many attempts, never locked out; a success gives back
    /// its own attempt.
    Pace(Pacing),
}

/// A key untouched this long is forgotten: its count restarts (and its
/// row may be pruned).
pub const WINDOW_MS: i64 = 60 * 60 * 1000;

/// One thing attempts are counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKey {
    /// `user:NAME`, `device:ID` or `addr:IP`.
    pub key: String,
    /// Its rule.
    pub rule: Rule,
}

impl ThrottleKey {
    /// The key of a username, as typed (lower-cased, so that case does not
    /// give an attacker more attempts).
    pub fn account(username: &str) -> ThrottleKey {
        ThrottleKey {
            key: format!("user:{}", username.to_lowercase()),
            rule: Rule::Lockout(Backoff::ACCOUNT),
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
            rule: Rule::Lockout(Backoff::ACCOUNT),
        }
    }

    /// The key of a client address: an IPv6 address counts by its /64
    /// (see [`address_network`]).
    pub fn address(ip: IpAddr) -> ThrottleKey {
        ThrottleKey {
            key: format!("addr:{}", address_network(ip)),
            rule: Rule::Pace(Pacing::ADDRESS),
        }
    }
}

/// What a client address is counted as: an IPv4 address (also when
/// written as IPv4-mapped IPv6), or an IPv6 address's /64, since one
/// subscriber is usually given a whole /64 and picks addresses in it at
/// will. Login throttling and connection caps count alike.
pub fn address_network(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

/// An IPv4-mapped IPv6 address (what a dual-stack socket reports for an
/// IPv4 client) as the IPv4 address it is, so one client is one address
/// whichever way it arrived.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// A key's `login_throttle` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Attempts counted.
    pub attempts: i64,
    /// The last one, ms.
    pub last_attempt_ms: i64,
    /// A lockout's end, or an address's next turn, ms.
    pub until_ms: i64,
}

impl Count {
    /// The attempts that still count now, under `rule`.
    fn current(&self, rule: &Rule, now_ms: i64) -> u32 {
        let since = now_ms.saturating_sub(self.last_attempt_ms);
        if since > WINDOW_MS {
            return 0;
        }
        let forgotten = match rule {
            Rule::Lockout(_) => 0,
            Rule::Pace(p) => since / p.forget_ms.max(1),
        };
        u32::try_from(self.attempts.saturating_sub(forgotten).max(0)).unwrap_or(u32::MAX)
    }
}

/// What counting an attempt decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Check the password, after waiting this long for the address's turn.
    Allowed {
        /// ms to wait first (0 unless the address is paced).
        wait_ms: i64,
    },
    /// Refused without checking: try again in this many ms.
    Locked {
        /// Until the lockout ends, or the address has a turn within reach.
        retry_after_ms: i64,
    },
}

/// An attempt decided: the answer, the rows to write and what to audit.
/// A refused attempt writes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The answer.
    pub attempt: Attempt,
    /// The new row of each key, in the order of the keys.
    pub rows: Vec<(String, Count)>,
    /// The security event of a key's first lockout of a window, or of an
    /// address's first pacing within an hour.
    pub effects: Effects,
}

/// Decides an attempt against `keys`, given each key's stored row (in the
/// same order; `None`: no row).
pub fn decide(keys: &[ThrottleKey], stored: &[Option<Count>], now_ms: i64) -> Decided {
    let mut retry_after_ms = 0i64;
    let mut wait_ms = 0i64;
    let mut rows = Vec::with_capacity(keys.len());
    let mut effects = Effects::none();
    for (k, count) in keys
        .iter()
        .zip(stored.iter().chain(std::iter::repeat(&None)))
    {
        let attempts = count
            .map_or(0, |c| c.current(&k.rule, now_ms))
            .saturating_add(1);
        let until = count.map_or(0, |c| c.until_ms);
        let next = match k.rule {
            Rule::Lockout(b) => {
                retry_after_ms = retry_after_ms.max(until.saturating_sub(now_ms));
                let lock = b.lockout_ms(attempts);
                if attempts == b.free + 1 {
                    effects
                        .audit
                        .push(NewAudit::locked_out(now_ms, &k.key, attempts, lock));
                }
                if lock > 0 {
                    now_ms.saturating_add(lock)
                } else {
                    until
                }
            }
            Rule::Pace(p) => {
                let interval = p.interval_ms(attempts);
                if interval == 0 {
                    until
                } else {
                    let turn = until.max(now_ms);
                    let wait = turn - now_ms;
                    if wait > p.max_wait_ms {
                        retry_after_ms = retry_after_ms.max(wait - p.max_wait_ms);
                    }
                    wait_ms = wait_ms.max(wait);
                    // Once an hour at most: a count that hovers at the
                    // threshold (it forgets) must not write a row each time.
                    if attempts == p.free + 1
                        && (until == 0 || until < now_ms.saturating_sub(WINDOW_MS))
                    {
                        effects
                            .audit
                            .push(NewAudit::slowed(now_ms, &k.key, attempts, interval));
                    }
                    turn.saturating_add(interval)
                }
            }
        };
        let row = Count {
            attempts: i64::from(attempts),
            last_attempt_ms: now_ms,
            until_ms: next,
        };
        rows.push((k.key.clone(), row));
    }
    if retry_after_ms > 0 {
        return Decided {
            attempt: Attempt::Locked { retry_after_ms },
            rows: Vec::new(),
            effects: Effects::none(),
        };
    }
    Decided {
        attempt: Attempt::Allowed { wait_ms },
        rows,
        effects,
    }
}

/// How an allowed attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The password (or the device's proof) was wrong: the count stands.
    Failed,
    /// The login succeeded.
    Succeeded,
    /// The attempt was never judged (the server was too busy to check
    /// it, or refused it for a reason that is no guess): as if it had not
    /// been made.
    Unjudged,
}

/// What settling an attempt does to one key's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Leave it.
    Keep,
    /// Take the attempt back: one fewer.
    GiveBack,
    /// Delete the row: the count starts again.
    Clear,
}

/// Decides what an attempt's `outcome` does to `key`.
pub fn settle(key: &ThrottleKey, outcome: Outcome) -> Settle {
    match (outcome, key.rule) {
        (Outcome::Failed, _) => Settle::Keep,
        (Outcome::Succeeded, Rule::Lockout(_)) => Settle::Clear,
        (Outcome::Succeeded, Rule::Pace(_)) | (Outcome::Unjudged, _) => Settle::GiveBack,
    }
}

/// The login throttle's counts, one transaction per method.
#[async_trait]
pub trait Throttle: Send + Sync {
    /// A login attempt, before its password is checked: decided by
    /// [`decide`] on the keys' rows, which a refused attempt leaves as
    /// they were and an allowed one updates.
    async fn login_attempt(&self, keys: Vec<ThrottleKey>, now_ms: i64) -> StoreResult<Attempt>;

    /// How an allowed attempt ended ([`settle`] on each key).
    async fn login_settled(&self, keys: Vec<ThrottleKey>, outcome: Outcome) -> StoreResult<()>;

    /// Deletes the rows of keys untouched for [`WINDOW_MS`] before `now_ms`
    /// whose lockout or turn has passed; returns how many.
    async fn prune_throttle(&self, now_ms: i64) -> StoreResult<u64>;
}

#[cfg(test)]
mod tests;
