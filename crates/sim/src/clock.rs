//! The simulator's clock: real time, optionally sped up.

use std::time::{Duration, Instant};

/// Pump time in milliseconds since the pump started, running `scale` times
/// faster than real time. The core takes time as an input, so speeding the
/// clock up is all it takes to infuse an hour in a minute.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    scale: u32,
}

impl Clock {
    /// A clock starting now; `scale` 1 is real time (0 is taken as 1).
    pub fn new(scale: u32) -> Clock {
        Clock {
            start: Instant::now(),
            scale: scale.max(1),
        }
    }

    /// Pump time now.
    pub fn now_ms(&self) -> u64 {
        let real = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        real.saturating_mul(u64::from(self.scale))
    }

    /// How long to sleep in real time until pump time `at_ms`.
    pub fn until(&self, at_ms: u64) -> Duration {
        let now = self.now_ms();
        Duration::from_millis(at_ms.saturating_sub(now) / u64::from(self.scale))
    }
}
