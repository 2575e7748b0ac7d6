//! The pump's control logic, sans-IO: the same code runs on the
//! microcontroller, in the simulator and in tests.
//!
//! The core never reads a clock and never touches a socket or a pin. Time
//! (`now_ms`, a monotonic millisecond count) and server answers go in;
//! requests to send, and the delivered volume to drive the motor to, come
//! out. The caller's loop is:
//!
//! 1. [`Pump::tick`] with the current time, to advance the infusion;
//! 2. [`Pump::poll_request`]: send what it returns (if anything) and hand
//!    the answer to [`Pump::handle_login`], [`Pump::handle_index`] or
//!    [`Pump::handle_report`];
//! 3. sleep until [`Pump::poll_timeout`] or until an answer arrives.
//!
//! `#![no_std]`, no heap, integer arithmetic only.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod dose;
pub mod drv8834;
pub mod infusion;
pub mod outbox;
pub mod pump;
#[cfg(any(test, feature = "scenarios"))]
pub mod scenarios;
pub mod sensors;
pub mod session;

pub use dose::{DosePlan, Drive, Microsteps, PlanError, Schedule, Syringe};
pub use infusion::{Infusion, Phase};
pub use outbox::Outbox;
pub use pump::{CommLossPolicy, Pump, PumpConfig, Request, Resume};
pub use sensors::Sensors;
pub use session::{Failure, Session};
