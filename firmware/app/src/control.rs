//! The control loop: sensors in, the pump advanced, the watchdog fed.

use embassy_time::{Duration, Ticker};

use crate::board::{Inputs, Motor, Watchdog};
use crate::shared::{Shared, now_ms};

/// How often the inputs are read. An occlusion stops the motor within
/// this (the core's `sense` takes the motor off at once).
pub const PERIOD: Duration = Duration::from_millis(50);

/// The watchdog's timeout: forty missed periods. Only this loop feeds it,
/// so a pump whose loops stop being run (a task that never yields, a
/// hang in a driver) resets, and comes back as a restarted pump.
pub const WATCHDOG_TIMEOUT_MS: u32 = 2_000;

/// Runs the control loop. Never returns.
pub async fn run<I: Inputs, W: Watchdog, M: Motor>(
    inputs: &mut I,
    watchdog: &mut W,
    shared: &Shared<M>,
) -> ! {
    watchdog.start(WATCHDOG_TIMEOUT_MS);
    let mut ticker = Ticker::every(PERIOD);
    let mut queued = shared.pump.borrow().outbox().next_seq();
    loop {
        let mut reading = inputs.read();
        reading.sensors.driver_fault = shared.motor.borrow_mut().faulted();
        let (before, after, urgent) = {
            let mut pump = shared.pump.borrow_mut();
            let now = now_ms();
            let before = pump.infusion().phase();
            if reading.syringe_loaded {
                pump.load_syringe(now);
            }
            pump.sense(now, reading.sensors);
            if reading.confirm {
                pump.clear_alarm(now);
            }
            let seq = pump.outbox().next_seq();
            let urgent = seq != queued && pump.outbox().has_urgent();
            queued = seq;
            (before, pump.infusion().phase(), urgent)
        };
        if before != after {
            shared.motor_wake.signal(());
        }
        if urgent {
            // An alarm or a stop was queued: tell the server now.
            shared.net_wake.signal(());
        }
        watchdog.feed();
        ticker.next().await;
    }
}
