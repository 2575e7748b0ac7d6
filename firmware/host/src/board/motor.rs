//! The DRV8834's pins and the delay its pulses are timed with.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use infusion_firmware_app::board::Drive;
use infusion_pump_core::Microsteps;
use infusion_pump_core::drv8834::Drv8834;

use super::Bench;

/// One of the DRV8834's output pins. The steps pulsed are counted by the
/// application (`pulsed=` on the console).
#[derive(Default)]
pub struct Pin;

/// The DRV8834's nFAULT pin: low while the bench says the driver faults.
pub struct FaultPin(Arc<Bench>);

impl ErrorType for Pin {
    type Error = Infallible;
}

impl OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl ErrorType for FaultPin {
    type Error = Infallible;
}

impl InputPin for FaultPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(!self.0.read().driver_fault)
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|h| !h)
    }
}

/// Pulse timing by spinning on the clock, as a microcontroller's
/// cycle-counted delay does (a sleep would take the thread away for far
/// longer than the DRV8834's 2 µs).
pub struct Spin;

impl DelayNs for Spin {
    fn delay_ns(&mut self, ns: u32) {
        let until = Instant::now() + Duration::from_nanos(u64::from(ns));
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

/// The motor edge of the host board.
pub type HostMotor = Drive<Drv8834<Pin, Pin, Pin, Pin, Pin, FaultPin>, Spin>;

/// The DRV8834 on host pins at 1/16 microsteps (the paper's drive), its
/// nFAULT read from `bench`.
pub fn motor(bench: Arc<Bench>) -> Option<HostMotor> {
    let mut driver = Drv8834::new(Pin, Pin, Pin, Pin, Pin, FaultPin(bench)).ok()?;
    driver.set_microsteps(Microsteps::X16, &mut Spin).ok()?;
    Some(Drive {
        driver,
        delay: Spin,
    })
}
