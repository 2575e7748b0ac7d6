//! The queues in front of the password hashing threads: bounded, proven
//! device logins first, and everything else taken from its client
//! addresses in turn.
//!
//! A hash takes about 1/15 s of a core at the production cost, so a queue
//! of a few per core is a fraction of a second of work; a login that does
//! not fit is told to come back in a second (429) rather than wait behind
//! a flood. Taking addresses in turn means a burst from one address (its
//! twenty free attempts at once) delays a login from anywhere else by one
//! hash per busy address, not by the whole burst.

use std::collections::VecDeque;
use std::net::IpAddr;

/// Which queue a hash waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A device login that proved its device secret: a real pump, taken
    /// before anything else, so that a flood of guesses (which cannot
    /// prove a secret) never keeps a running infusion's pump from logging
    /// in again.
    Proven,
    /// Everything else (web logins, unproven device logins, new hashes),
    /// by the client address (network) it came from.
    Other(IpAddr),
}

/// How many hashes may wait, per hashing thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCaps {
    /// Proven device logins.
    pub proven: usize,
    /// All other hashes together.
    pub other: usize,
    /// Other hashes from one address.
    pub per_address: usize,
}

impl QueueCaps {
    /// The caps of a pool of `threads` threads.
    pub const PER_THREAD: QueueCaps = QueueCaps {
        proven: 64,
        other: 8,
        per_address: 2,
    };

    /// These caps for `threads` hashing threads.
    pub fn times(self, threads: usize) -> QueueCaps {
        QueueCaps {
            proven: self.proven * threads,
            other: self.other * threads,
            per_address: self.per_address * threads,
        }
    }
}

/// The queued jobs.
#[derive(Debug)]
pub struct Queues<J> {
    proven: VecDeque<J>,
    /// Each address with waiting jobs, the next to be served first.
    other: VecDeque<(IpAddr, VecDeque<J>)>,
    other_len: usize,
    /// The pool was dropped: the threads end once the queues are empty.
    pub closed: bool,
}

impl<J> Default for Queues<J> {
    fn default() -> Self {
        Queues {
            proven: VecDeque::new(),
            other: VecDeque::new(),
            other_len: 0,
            closed: false,
        }
    }
}

impl<J> Queues<J> {
    /// Queues `job` in `lane`, or gives it back when that is full.
    pub fn push(&mut self, lane: Lane, job: J, caps: QueueCaps) -> Result<(), J> {
        let from = match lane {
            Lane::Proven if self.proven.len() < caps.proven => {
                self.proven.push_back(job);
                return Ok(());
            }
            Lane::Proven => return Err(job),
            Lane::Other(from) => from,
        };
        if self.other_len >= caps.other {
            return Err(job);
        }
        match self.other.iter_mut().find(|(a, _)| *a == from) {
            Some((_, waiting)) if waiting.len() >= caps.per_address => return Err(job),
            Some((_, waiting)) => waiting.push_back(job),
            None => self.other.push_back((from, VecDeque::from([job]))),
        }
        self.other_len += 1;
        Ok(())
    }

    /// The next job: a proven one, else the next address's oldest.
    pub fn pop(&mut self) -> Option<J> {
        if let Some(job) = self.proven.pop_front() {
            return Some(job);
        }
        let (from, mut waiting) = self.other.pop_front()?;
        let job = waiting.pop_front();
        if !waiting.is_empty() {
            self.other.push_back((from, waiting));
        }
        self.other_len -= usize::from(job.is_some());
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: QueueCaps = QueueCaps {
        proven: 2,
        other: 5,
        per_address: 3,
    };

    fn at(last: u8) -> Lane {
        Lane::Other(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn proven_logins_go_first_and_addresses_take_turns() {
        let mut q = Queues::default();
        for job in ["a1", "a2", "a3"] {
            q.push(at(1), job, CAPS).unwrap();
        }
        q.push(at(2), "b1", CAPS).unwrap();
        q.push(Lane::Proven, "pump", CAPS).unwrap();
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, ["pump", "a1", "b1", "a2", "a3"]);
    }

    #[test]
    fn each_lane_and_address_is_bounded() {
        let mut q = Queues::default();
        for job in 0..3 {
            q.push(at(1), job, CAPS).unwrap();
        }
        assert_eq!(q.push(at(1), 3, CAPS), Err(3), "one address's share");
        q.push(at(2), 4, CAPS).unwrap();
        q.push(at(3), 5, CAPS).unwrap();
        assert_eq!(q.push(at(4), 6, CAPS), Err(6), "all others together");
        q.push(Lane::Proven, 7, CAPS).unwrap();
        q.push(Lane::Proven, 8, CAPS).unwrap();
        assert_eq!(q.push(Lane::Proven, 9, CAPS), Err(9));
        assert_eq!(q.pop(), Some(7));
        assert_eq!(q.pop(), Some(8));
        assert_eq!(q.pop(), Some(0));
        q.push(at(4), 6, CAPS).unwrap();
    }
}
