//! The pump's firmware application, written once for every board.
//!
//! A board (the ESP32-C3, the host, a Cortex-M under test) hands [`run`]
//! its parts through the traits of [`board`]: a network that joins and
//! opens TCP sockets, the DRV8834's pins, the sensor inputs, a flash range,
//! a watchdog and a console. `run` then composes the pump's loops, each a
//! thin edge around the sans-IO [`infusion_pump_core::Pump`]:
//!
//! - [`network`]: joins, then runs the session (challenge, login with the
//!   device proof, index polls, reports) over reqwless ([`api`]), each
//!   request bounded by a timeout, with the core's back-off;
//! - [`motor`]: pulses the driver at `next_step_at_us` with `take_steps`,
//!   never past what the flash already says was given;
//! - [`control`]: reads the sensors, advances the pump and feeds the
//!   watchdog, which is fed nowhere else;
//! - [`keep`]: saves what a restart needs ([`infusion_pump_persist`]);
//! - [`status`]: one console line per change a bench engineer would watch.
//!
//! They run as one task, joined: the pump's state is a `RefCell` that no
//! loop holds across an `.await`, so nothing else guards it and the board
//! chooses the executor. `#![no_std]`, no heap, integers only.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod api;
pub mod board;
pub mod control;
pub mod keep;
pub mod motor;
pub mod network;
pub mod provision;
mod run;
pub mod shared;
pub mod status;

pub use board::{Inputs, Motor, Network, Reading, Watchdog};
pub use run::{Halt, Parts, run};

/// Outbox capacity, in events: about twenty minutes of progress and alarms
/// with the server out of reach.
pub const OUTBOX: usize = 128;
