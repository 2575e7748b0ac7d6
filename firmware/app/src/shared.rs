//! What the pump's loops share: the core, the motor edge and the signals
//! that wake one loop when another changed something it waits on.

use core::cell::{Cell, RefCell};

use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::Instant;
use infusion_pump_core::{Failure, Pump};

use crate::OUTBOX;

/// How far the flash says an order has given: the motor never pulses a
/// step of `version` past `steps` (see [`crate::keep`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reserved {
    /// The order version.
    pub version: u32,
    /// Microsteps of it the flash already counts as given.
    pub steps: u64,
}

/// The state of one pump, shared by its loops inside one task.
pub struct Shared<M> {
    /// The core. Borrowed only between `.await`s.
    pub pump: RefCell<Pump<OUTBOX>>,
    /// The motor edge, shared by the motor loop (steps) and the control
    /// loop (nFAULT).
    pub motor: RefCell<M>,
    /// What the flash says was given.
    pub reserved: Cell<Reserved>,
    /// Steps the motor edge has pulsed since boot.
    pub pulsed: Cell<u64>,
    /// Why the newest request that failed failed (for the console).
    pub last_failure: Cell<Option<Failure>>,
    /// The infusion changed: the motor loop looks again.
    pub motor_wake: Signal<NoopRawMutex, ()>,
    /// Something urgent waits for the server: the network loop looks again.
    pub net_wake: Signal<NoopRawMutex, ()>,
    /// The motor waits for a save: the keep loop saves now.
    pub keep_wake: Signal<NoopRawMutex, ()>,
    /// A save finished.
    pub saved: Signal<NoopRawMutex, ()>,
}

impl<M> Shared<M> {
    /// The shared state of `pump` driving `motor`, with `reserved` from the
    /// flash.
    pub fn new(pump: Pump<OUTBOX>, motor: M, reserved: Reserved) -> Self {
        Shared {
            pump: RefCell::new(pump),
            motor: RefCell::new(motor),
            reserved: Cell::new(reserved),
            pulsed: Cell::new(0),
            last_failure: Cell::new(None),
            motor_wake: Signal::new(),
            net_wake: Signal::new(),
            keep_wake: Signal::new(),
            saved: Signal::new(),
        }
    }
}

/// The pump's clock: microseconds since boot.
pub fn now_us() -> u64 {
    Instant::now().as_micros()
}

/// The pump's clock: milliseconds since boot.
pub fn now_ms() -> u64 {
    Instant::now().as_millis()
}
