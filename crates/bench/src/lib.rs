//! The benches of the paper's evaluation and their figures, as a library
//! the `infusion` binary calls:
//!
//! - [`load`]: the paper's load test (Table II, Figs. 7 and 8) in paper,
//!   closed-loop and open-loop fleet modes, against a server in a child
//!   process, each beside a health-check baseline measured in the same run;
//! - [`index`]: a quick closed-loop measure of the index chain, in process;
//! - [`alarms`]: how long an alarm takes from the pump's report to a
//!   webhook receiver and a mailbox;
//! - [`accuracy`]: the gravimetric accuracy bench (Table III and the IEC
//!   60601-2-24 curves) on the simulated bench, and the analysis of a
//!   scale log from a real one;
//! - [`seed`] and [`database`]: the accounts and stores they run on, which
//!   the binary's demo and commands use too.

pub mod accuracy;
pub mod alarms;
pub mod args;
pub mod database;
mod error;
pub mod index;
pub mod load;
pub mod seed;

pub use error::{BenchError, BenchResult, Context};
