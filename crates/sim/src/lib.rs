//! The simulated pump: the firmware core ([`infusion_pump_core`]) driven
//! over real HTTP against a real server, on a clock that may run faster
//! than real time.
//!
//! Everything the pump decides comes from the core; this crate only moves
//! bytes ([`transport`]), reads the clock ([`clock`]) and invents vital
//! signs ([`vitals`]). That is the same split as on the device, where the
//! edges are the Wi-Fi stack, a hardware timer and the sensors.

pub mod clock;
pub mod physics;
pub mod pump;
pub mod transport;
pub mod vitals;

pub use clock::Clock;
pub use pump::{AckLog, Credentials, SimConfig, SimPump, Snapshot};
