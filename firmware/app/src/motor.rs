//! The motor loop: a step at each time the schedule says, never one the
//! flash has not already counted.

use embassy_futures::select::select;
use embassy_time::{Duration, Instant, Timer};

use crate::board::Motor;
use crate::keep::AHEAD_UL;
use crate::shared::{Shared, now_ms, now_us};

/// How long the motor loop sleeps while nothing runs, unless woken.
const IDLE_LOOK: Duration = Duration::from_millis(100);

/// Runs the motor. Never returns.
///
/// Each wake-up takes every step due (`take_steps`: none lost if a wake
/// is late, none given twice) and pulses them. Before it pulses a step
/// past what the flash says the order has given ([`Shared::reserved`]),
/// it has the keep loop save further ahead and waits for it: a power cut
/// can then make a restarted pump give a little less than its order,
/// never more.
pub async fn run<M: Motor>(shared: &Shared<M>) -> ! {
    let mut awake = false;
    // Past half the reserve, the keep loop saves further ahead at once
    // rather than at its next look, so that the motor rarely waits.
    let half = shared
        .pump
        .borrow()
        .infusion()
        .plan()
        .steps_for_ul(AHEAD_UL)
        / 2;
    loop {
        let next = shared.pump.borrow().next_step_at_us();
        let Some(at) = next else {
            if awake {
                shared.motor.borrow_mut().sleep();
                awake = false;
            }
            select(Timer::after(IDLE_LOOK), shared.motor_wake.wait()).await;
            continue;
        };
        if !awake {
            shared.motor.borrow_mut().wake();
            awake = true;
        }
        if Instant::from_micros(at) > Instant::now() {
            select(
                Timer::at(Instant::from_micros(at)),
                shared.motor_wake.wait(),
            )
            .await;
        }
        let (steps, version, given) = {
            let mut pump = shared.pump.borrow_mut();
            let steps = pump.take_steps(now_us());
            let i = pump.infusion();
            (steps, i.version(), i.delivered_steps())
        };
        if steps == 0 {
            continue;
        }
        let r = shared.reserved.get();
        if r.version != version || given + half >= r.steps {
            shared.keep_wake.signal(());
        }
        while !covered(shared, version, given) {
            shared.keep_wake.signal(());
            shared.saved.wait().await;
        }
        pulse(shared, steps);
    }
}

/// True when the flash counts at least `given` steps of `version`.
fn covered<M>(shared: &Shared<M>, version: u32, given: u64) -> bool {
    let r = shared.reserved.get();
    r.version == version && r.steps >= given
}

/// Pulses `steps`; a driver that refuses stops the infusion with its
/// alarm (the core counted the steps: a fault loses volume, it never adds
/// any).
fn pulse<M: Motor>(shared: &Shared<M>, steps: u64) {
    let mut motor = shared.motor.borrow_mut();
    for _ in 0..steps {
        if motor.step().is_err() {
            drop(motor);
            let mut pump = shared.pump.borrow_mut();
            let mut sensors = *pump.sensors();
            sensors.driver_fault = true;
            pump.sense(now_ms(), sensors);
            shared.net_wake.signal(());
            return;
        }
        shared.pulsed.set(shared.pulsed.get() + 1);
    }
}
