//! The watchdog: a thread that ends the process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use infusion_firmware_app::Watchdog;

/// The watchdog: a thread that ends the process, as the chip's watchdog
/// resets it, when the control loop has not fed it in time.
#[derive(Default)]
pub struct HostWatchdog {
    fed: Arc<AtomicU64>,
    started: Option<Instant>,
}

impl Watchdog for HostWatchdog {
    fn start(&mut self, timeout_ms: u32) {
        let epoch = Instant::now();
        self.started = Some(epoch);
        let fed = self.fed.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(50));
                let now = epoch.elapsed().as_millis() as u64;
                let last = fed.load(Ordering::Relaxed);
                if now.saturating_sub(last) > u64::from(timeout_ms) {
                    eprintln!(
                        "infusion-pump-host: watchdog: not fed for {} ms: reset",
                        now - last
                    );
                    std::process::exit(3);
                }
            }
        });
    }
    fn feed(&mut self) {
        if let Some(epoch) = self.started {
            self.fed
                .store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
    }
}
