//! How many connections the server holds: overall, bounded by the open
//! file limit, and per client address.
//!
//! Without a cap, one client opening connections faster than they end
//! takes every file descriptor, and then nothing else is accepted (the
//! red team's 1,100 slow connections against a 1,024 limit). A connection
//! over a cap is accepted and closed at once: leaving it in the listen
//! backlog would stall the honest clients queued behind it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// File descriptors kept back from the connection cap for the database
/// (SQLite's file, WAL and shared memory, or a PostgreSQL pool), key and
/// certificate files, backups and logs.
pub const RESERVED_FDS: u64 = 128;

/// The caps in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Connections held at once, from everyone.
    pub total: usize,
    /// Connections held at once from one client address (IPv6: one /64).
    pub per_address: usize,
}

impl Caps {
    /// `configured`, with the total lowered to fit the open file limit
    /// `nofile` (the soft limit after [`raise_open_file_limit`]).
    pub fn fitted(configured: Caps, nofile: Option<u64>) -> Caps {
        let fits = nofile.map_or(usize::MAX, |n| {
            usize::try_from(n.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX)
        });
        Caps {
            total: configured.total.min(fits),
            per_address: configured.per_address.min(configured.total.min(fits)),
        }
    }
}

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The server holds [`Caps::total`] connections.
    Total,
    /// This address holds [`Caps::per_address`].
    Address,
}

/// The key a client address is counted under: the same network as the
/// login throttle's (an IPv6 address's /64).
pub use infusion_store::throttle::address_network as address_key;

#[derive(Debug, Default)]
struct Held {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// The counts of held connections. Cheap to clone; each admitted
/// connection holds a [`Permit`] until it ends.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    caps: Caps,
    held: Arc<Mutex<Held>>,
}

impl ConnectionLimits {
    /// Limits with `caps`.
    pub fn new(caps: Caps) -> ConnectionLimits {
        ConnectionLimits {
            caps,
            held: Arc::default(),
        }
    }

    /// The caps in force.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// Takes a connection from `peer`, or says which cap it would pass.
    pub fn admit(&self, peer: IpAddr) -> Result<Permit, Refused> {
        let key = address_key(peer);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.total >= self.caps.total {
            return Err(Refused::Total);
        }
        let of_address = held.per_address.entry(key).or_insert(0);
        if *of_address >= self.caps.per_address {
            return Err(Refused::Address);
        }
        *of_address += 1;
        held.total += 1;
        Ok(Permit {
            key,
            held: Arc::clone(&self.held),
        })
    }

    /// Connections held now.
    pub fn held(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    key: IpAddr,
    held: Arc<Mutex<Held>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.per_address.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.per_address.remove(&self.key);
            }
        }
    }
}

/// The open file limit before and after raising it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit the process started with.
    pub was: Option<u64>,
    /// The soft limit now.
    pub soft: Option<u64>,
    /// The hard limit, the most the soft one can be raised to.
    pub hard: Option<u64>,
}

/// Raises the soft open file limit to the hard one (the common soft
/// default, 1,024, is far below what a server needs, and the hard limit is
/// what the administrator allowed). `None` stands for unlimited.
#[cfg(target_os = "linux")]
pub fn raise_open_file_limit() -> OpenFileLimit {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let start = getrlimit(Resource::Nofile);
    if start.current != start.maximum {
        let mut raised = start;
        raised.current = start.maximum;
        // Refused only under an unusual security policy; then the limit
        // stays as it was, which the caller logs.
        let _ = setrlimit(Resource::Nofile, raised);
    }
    let now = getrlimit(Resource::Nofile);
    OpenFileLimit {
        was: start.current,
        soft: now.current,
        hard: now.maximum,
    }
}

/// Elsewhere the limit is left as it is and not known.
#[cfg(not(target_os = "linux"))]
pub fn raise_open_file_limit() -> OpenFileLimit {
    OpenFileLimit {
        was: None,
        soft: None,
        hard: None,
    }
}

/// The soft open file limit now, if known and finite.
#[cfg(target_os = "linux")]
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Elsewhere not known.
#[cfg(not(target_os = "linux"))]
pub fn open_file_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| unreachable!("test address"))
    }

    #[test]
    fn an_address_holds_its_cap_and_frees_it() {
        let limits = ConnectionLimits::new(Caps {
            total: 5,
            per_address: 2,
        });
        let a = [limits.admit(ip("10.0.0.1")), limits.admit(ip("10.0.0.1"))];
        assert!(a.iter().all(Result::is_ok));
        assert_eq!(limits.admit(ip("10.0.0.1")).err(), Some(Refused::Address));
        let b = limits.admit(ip("10.0.0.2"));
        assert!(b.is_ok());
        drop(a);
        assert!(limits.admit(ip("10.0.0.1")).is_ok());
        assert_eq!(limits.held(), 1);
    }

    #[test]
    fn the_total_cap_holds_across_addresses() {
        let limits = ConnectionLimits::new(Caps {
            total: 3,
            per_address: 3,
        });
        let held: Vec<_> = (1..=3)
            .map(|i| limits.admit(ip(&format!("10.0.0.{i}"))))
            .collect();
        assert!(held.iter().all(Result::is_ok));
        assert_eq!(limits.admit(ip("10.0.0.9")).err(), Some(Refused::Total));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn the_total_fits_the_open_file_limit() {
        let configured = Caps {
            total: 10_000,
            per_address: 256,
        };
        let fitted = Caps::fitted(configured, Some(1024));
        assert_eq!(fitted.total, 1024 - RESERVED_FDS as usize);
        assert_eq!(fitted.per_address, 256);
        assert_eq!(Caps::fitted(configured, None), configured);
        assert_eq!(Caps::fitted(configured, Some(10)).total, 1);
    }
}
