//! The simulator's clock: real time (optionally sped up), or virtual time
//! that jumps to the next thing due.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Pump time in microseconds since the pump started. The core takes time
/// as an input, so the clock is all that decides how fast an infusion
/// runs.
#[derive(Debug, Clone)]
pub enum Clock {
    /// Real time, `scale` times faster: for pumps that share a server with
    /// people and other pumps.
    Scaled {
        /// When pump time 0 was.
        start: Instant,
        /// Speed-up over real time (at least 1).
        scale: u32,
    },
    /// Virtual time: sleeping jumps straight to the wake-up time, and a
    /// request to the server takes no pump time. An hour of infusion takes
    /// as long as the server needs to answer its polls, and the same
    /// inputs give the same step times on every run.
    Virtual(Arc<AtomicU64>),
}

impl Clock {
    /// A scaled real-time clock starting now; `scale` 1 is real time (0 is
    /// taken as 1).
    pub fn new(scale: u32) -> Clock {
        Clock::Scaled {
            start: Instant::now(),
            scale: scale.max(1),
        }
    }

    /// A virtual clock at pump time 0.
    pub fn virtual_time() -> Clock {
        Clock::Virtual(Arc::new(AtomicU64::new(0)))
    }

    /// Pump time now, µs.
    pub fn now_us(&self) -> u64 {
        match self {
            Clock::Scaled { start, scale } => {
                let real = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                real.saturating_mul(u64::from(*scale))
            }
            Clock::Virtual(now) => now.load(Ordering::Acquire),
        }
    }

    /// Pump time now, ms.
    pub fn now_ms(&self) -> u64 {
        self.now_us() / 1_000
    }

    /// Waits until pump time `at_us`: real sleep on a scaled clock, a jump
    /// (after letting other tasks run) on a virtual one.
    pub async fn sleep_until(&self, at_us: u64) {
        match self {
            Clock::Scaled { scale, .. } => {
                let wait = at_us.saturating_sub(self.now_us()) / u64::from(*scale);
                // Never spin: at least a short real nap between wake-ups.
                tokio::time::sleep(Duration::from_micros(wait.max(2_000))).await;
            }
            Clock::Virtual(now) => {
                now.fetch_max(at_us, Ordering::AcqRel);
                tokio::task::yield_now().await;
            }
        }
    }
}
