//! What a board gives the application: one trait per piece of hardware.

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_nal_async::{Dns, TcpConnect};
use infusion_protocol::MacAddress;
use infusion_pump_core::Sensors;
use infusion_pump_core::drv8834::Drv8834;

/// Why the network could not be joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// No access point with that name answered, or it refused the
    /// passphrase.
    Refused,
    /// No address came (DHCP).
    NoAddress,
}

/// The network: Wi-Fi on the ESP32-C3, the host's own on the host board.
#[allow(async_fn_in_trait)]
pub trait Network {
    /// TCP sockets on the joined network.
    type Tcp: TcpConnect;
    /// Name resolution on it.
    type Dns: Dns;
    /// Joins `ssid` with `password` and waits for an address. A board
    /// keeps the link up by itself afterwards (reconnecting when it
    /// drops); a request made while it is down fails and is retried by the
    /// core's back-off.
    async fn join(&mut self, ssid: &str, password: &str) -> Result<(), JoinError>;
    /// The sockets and the resolver, once joined.
    fn sockets(&self) -> (&Self::Tcp, &Self::Dns);
    /// The station's MAC address: the pump's identity at login.
    fn mac(&self) -> MacAddress;
}

/// The driver refused a step: nFAULT is low (over-current, over-heating,
/// under-voltage), it is asleep, or a pin failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MotorFault;

/// The motor edge.
pub trait Motor {
    /// Powers the driver up before steps (the DRV8834 needs 1 ms).
    fn wake(&mut self);
    /// Powers it down while nothing runs.
    fn sleep(&mut self);
    /// One microstep towards empty; `Err` when the driver refuses.
    fn step(&mut self) -> Result<(), MotorFault>;
    /// True while the driver reports a fault.
    fn faulted(&mut self) -> bool;
}

/// A DRV8834 on its pins with a delay for its pulse timing: the motor of
/// the paper's pump.
pub struct Drive<D, Delay> {
    /// The driver.
    pub driver: D,
    /// The delay its pulses and wake-up are timed with.
    pub delay: Delay,
}

impl<E, S, Dr, Sl, M0, M1, F, Delay> Motor for Drive<Drv8834<S, Dr, Sl, M0, M1, F>, Delay>
where
    S: OutputPin<Error = E>,
    Dr: OutputPin<Error = E>,
    Sl: OutputPin<Error = E>,
    M0: OutputPin<Error = E>,
    M1: OutputPin<Error = E>,
    F: InputPin<Error = E>,
    Delay: DelayNs,
{
    fn wake(&mut self) {
        let _ = self.driver.wake(&mut self.delay);
    }
    fn sleep(&mut self) {
        let _ = self.driver.go_to_sleep();
    }
    fn step(&mut self) -> Result<(), MotorFault> {
        self.driver.step(&mut self.delay).map_err(|_| MotorFault)
    }
    fn faulted(&mut self) -> bool {
        // A pin that cannot be read is a fault too: the motor must stop.
        self.driver.faulted().unwrap_or(true)
    }
}

/// One reading of the pump's inputs besides the driver's nFAULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    /// Stall, over-current, end of travel and battery (the driver's fault
    /// is read from the motor edge and filled in by the control loop).
    pub sensors: Sensors,
    /// The confirm button was pressed since the last reading: the
    /// operator at the bedside acknowledges an alarm whose cause is gone.
    pub confirm: bool,
    /// A full syringe was loaded since the last reading.
    pub syringe_loaded: bool,
}

/// The sensor inputs.
pub trait Inputs {
    /// Reads them now.
    fn read(&mut self) -> Reading;
}

/// The hardware watchdog.
pub trait Watchdog {
    /// Starts it: from now on the chip resets unless fed within
    /// `timeout_ms`.
    fn start(&mut self, timeout_ms: u32);
    /// Feeds it.
    fn feed(&mut self);
}
