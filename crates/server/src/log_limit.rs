//! A log line for events an attacker can cause at will: written at most
//! once per interval with the count since the last one, so that a flood
//! shows in the log without becoming one.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Counts occurrences and says when one should be logged.
#[derive(Debug)]
pub struct LogLimit {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogLimit {
    /// At most one line per `every`.
    pub const fn new(every: Duration) -> LogLimit {
        LogLimit {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// Counts one occurrence at `now`; returns how many occurred since the
    /// last line (this one included) when a line is due, else `None`.
    pub fn hit(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (last, count) = &mut *state;
        *count += 1;
        if last.is_some_and(|t| now.duration_since(t) < self.every) {
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count() {
        let limit = LogLimit::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(limit.hit(t0), Some(1));
        for i in 1..=99 {
            assert_eq!(limit.hit(t0 + Duration::from_millis(i * 50)), None);
        }
        assert_eq!(limit.hit(t0 + Duration::from_secs(10)), Some(100));
    }
}
