//! The host's stand-ins for the pump's hardware, one module each.

mod bench;
mod console;
mod flash;
mod motor;
mod net;
mod watchdog;

pub use bench::{Bench, HostInputs};
pub use console::Console;
pub use flash::{FLASH_BYTES, FileFlash};
pub use motor::{HostMotor, motor};
pub use net::{HostNet, random};
pub use watchdog::HostWatchdog;
