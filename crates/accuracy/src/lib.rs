//! Gravimetric accuracy of an infusion pump, from a scale log.
//!
//! The input is what a bench gives: a list of (time in seconds, mass in
//! grams) readings of a beaker on a scale, from the start of the infusion.
//! The same code analyses the simulator's logs and a real bench's.
//!
//! - [`log`]: reading and writing the log (CSV: `time_s,mass_g`).
//! - [`analysis`]: the paper's Table III figures for one run (infused
//!   volume, mean rate and their errors) and the IEC 60601-2-24 method
//!   (flow per sampling interval, start-up curve, trumpet curves).
//! - [`plot`]: SVG figures of both, with plotters.
//!
//! This is measurement, not control: floating point is fine here.

pub mod analysis;
pub mod log;
pub mod plot;

pub use analysis::{Iec, RunResult, Setting, TrumpetPoint};
pub use log::{LogError, Sample};
