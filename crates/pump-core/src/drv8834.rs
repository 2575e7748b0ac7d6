//! The hardware edge for the motor: a Texas Instruments DRV8834 stepper
//! driver in STEP/DIR mode (as on Pololu's carrier board), over
//! embedded-hal 1.0 pins and a delay. It is small on purpose: the
//! schedule decides when to step ([`crate::dose::Schedule`]); this module
//! only makes each step a valid pulse and reads the fault line.
//!
//! Timing from the DRV8834 datasheet (SLVSB19, "Timing requirements"):
//! STEP high and low at least 1.9 µs each (we hold 2 µs), DIR and the
//! microstep pins set at least 650 ns before a STEP rising edge (we wait
//! 1 µs), and outputs ready at most 1 ms after nSLEEP goes high.
//!
//! Microsteps are set by M1 (low/high) and M0 (low/high/floating): full,
//! 1/2, 1/8 and 1/16 need only push-pull pins; 1/4 and 1/32 need M0
//! floating, which an `OutputPin` cannot do, so they are refused here (wire
//! M0 to a tri-state pin and extend this if a design needs them).

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};

use crate::dose::Microsteps;

/// STEP pulse high and low time, ns (datasheet minimum 1.9 µs).
pub const STEP_PULSE_NS: u32 = 2_000;
/// Setup time of DIR and M0/M1 before a STEP edge, ns (minimum 650 ns).
pub const SETUP_NS: u32 = 1_000;
/// Wake-up time after nSLEEP goes high, µs (maximum 1 ms).
pub const WAKE_US: u32 = 1_000;

/// Why the driver did not do what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverError<E> {
    /// A pin operation failed.
    Pin(E),
    /// 1/4 and 1/32 microsteps need M0 floating.
    MicrostepsNeedFloatingM0,
    /// The driver is asleep: wake it first.
    Asleep,
    /// nFAULT is low: over-current or over-temperature; the motor is off.
    Fault,
}

/// Which way the plunger moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Towards empty: infusing.
    Infuse,
    /// Back towards full: retracting (loading a syringe).
    Retract,
}

/// A DRV8834 on five output pins (STEP, DIR, nSLEEP, M0, M1) and the
/// nFAULT input, all with one pin error type `E`.
pub struct Drv8834<Step, Dir, Sleep, M0, M1, Fault> {
    step: Step,
    dir: Dir,
    sleep: Sleep,
    m0: M0,
    m1: M1,
    fault: Fault,
    awake: bool,
}

impl<E, Step, Dir, Sleep, M0, M1, Fault> Drv8834<Step, Dir, Sleep, M0, M1, Fault>
where
    Step: OutputPin<Error = E>,
    Dir: OutputPin<Error = E>,
    Sleep: OutputPin<Error = E>,
    M0: OutputPin<Error = E>,
    M1: OutputPin<Error = E>,
    Fault: InputPin<Error = E>,
{
    /// Takes the pins; the driver is put to sleep with STEP low.
    pub fn new(
        step: Step,
        dir: Dir,
        sleep: Sleep,
        m0: M0,
        m1: M1,
        fault: Fault,
    ) -> Result<Self, DriverError<E>> {
        let mut d = Drv8834 {
            step,
            dir,
            sleep,
            m0,
            m1,
            fault,
            awake: true,
        };
        d.step.set_low().map_err(DriverError::Pin)?;
        d.go_to_sleep()?;
        Ok(d)
    }

    /// Sets the microstep pins.
    pub fn set_microsteps(
        &mut self,
        m: Microsteps,
        delay: &mut impl DelayNs,
    ) -> Result<(), DriverError<E>> {
        let (m1, m0) = match m {
            Microsteps::X1 => (false, false),
            Microsteps::X2 => (false, true),
            Microsteps::X8 => (true, false),
            Microsteps::X16 => (true, true),
            Microsteps::X4 | Microsteps::X32 => return Err(DriverError::MicrostepsNeedFloatingM0),
        };
        set(&mut self.m1, m1)?;
        set(&mut self.m0, m0)?;
        delay.delay_ns(SETUP_NS);
        Ok(())
    }

    /// Sets the direction.
    pub fn set_direction(
        &mut self,
        d: Direction,
        delay: &mut impl DelayNs,
    ) -> Result<(), DriverError<E>> {
        set(&mut self.dir, d == Direction::Infuse)?;
        delay.delay_ns(SETUP_NS);
        Ok(())
    }

    /// Wakes the driver (energizes the motor) and waits until it is ready.
    pub fn wake(&mut self, delay: &mut impl DelayNs) -> Result<(), DriverError<E>> {
        self.sleep.set_high().map_err(DriverError::Pin)?;
        delay.delay_us(WAKE_US);
        self.awake = true;
        Ok(())
    }

    /// Puts the driver to sleep: the motor is not energized (between
    /// infusions, to save the battery).
    pub fn go_to_sleep(&mut self) -> Result<(), DriverError<E>> {
        self.sleep.set_low().map_err(DriverError::Pin)?;
        self.awake = false;
        Ok(())
    }

    /// True when nFAULT is asserted (low).
    pub fn faulted(&mut self) -> Result<bool, DriverError<E>> {
        self.fault.is_low().map_err(DriverError::Pin)
    }

    /// One microstep: a STEP pulse of the datasheet's width. Refused when
    /// asleep or faulted, so a fault becomes a `motor_fault` alarm rather
    /// than silently missed steps.
    pub fn step(&mut self, delay: &mut impl DelayNs) -> Result<(), DriverError<E>> {
        if !self.awake {
            return Err(DriverError::Asleep);
        }
        if self.faulted()? {
            return Err(DriverError::Fault);
        }
        self.step.set_high().map_err(DriverError::Pin)?;
        delay.delay_ns(STEP_PULSE_NS);
        self.step.set_low().map_err(DriverError::Pin)?;
        delay.delay_ns(STEP_PULSE_NS);
        Ok(())
    }

    /// Gives the pins back.
    pub fn release(self) -> (Step, Dir, Sleep, M0, M1, Fault) {
        (
            self.step, self.dir, self.sleep, self.m0, self.m1, self.fault,
        )
    }
}

fn set<E>(pin: &mut impl OutputPin<Error = E>, high: bool) -> Result<(), DriverError<E>> {
    if high { pin.set_high() } else { pin.set_low() }.map_err(DriverError::Pin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction as Wait};
    use embedded_hal_mock::eh1::digital::{Mock as Pin, State, Transaction as T};

    struct Pins {
        step: Pin,
        dir: Pin,
        sleep: Pin,
        m0: Pin,
        m1: Pin,
        fault: Pin,
    }

    fn done(d: Drv8834<Pin, Pin, Pin, Pin, Pin, Pin>) {
        let (mut a, mut b, mut c, mut e, mut f, mut g) = d.release();
        for p in [&mut a, &mut b, &mut c, &mut e, &mut f, &mut g] {
            p.done();
        }
    }

    fn driver(p: Pins) -> Drv8834<Pin, Pin, Pin, Pin, Pin, Pin> {
        Drv8834::new(p.step, p.dir, p.sleep, p.m0, p.m1, p.fault).unwrap()
    }

    #[test]
    fn configures_wakes_and_steps_with_datasheet_timing() {
        let p = Pins {
            step: Pin::new(&[
                T::set(State::Low),
                T::set(State::High),
                T::set(State::Low),
                T::set(State::High),
                T::set(State::Low),
            ]),
            dir: Pin::new(&[T::set(State::High)]),
            sleep: Pin::new(&[T::set(State::Low), T::set(State::High)]),
            m0: Pin::new(&[T::set(State::High)]),
            m1: Pin::new(&[T::set(State::High)]),
            fault: Pin::new(&[T::get(State::High), T::get(State::High)]),
        };
        let mut d = driver(p);
        let mut delay = CheckedDelay::new(&[
            Wait::delay_ns(SETUP_NS),
            Wait::delay_ns(SETUP_NS),
            Wait::delay_us(WAKE_US),
            Wait::delay_ns(STEP_PULSE_NS),
            Wait::delay_ns(STEP_PULSE_NS),
            Wait::delay_ns(STEP_PULSE_NS),
            Wait::delay_ns(STEP_PULSE_NS),
        ]);
        d.set_microsteps(Microsteps::X16, &mut delay).unwrap();
        d.set_direction(Direction::Infuse, &mut delay).unwrap();
        d.wake(&mut delay).unwrap();
        d.step(&mut delay).unwrap();
        d.step(&mut delay).unwrap();
        delay.done();
        done(d);
    }

    #[test]
    fn refuses_to_step_asleep_or_faulted_and_floating_microsteps() {
        let p = Pins {
            step: Pin::new(&[T::set(State::Low)]),
            dir: Pin::new(&[]),
            sleep: Pin::new(&[T::set(State::Low), T::set(State::High)]),
            m0: Pin::new(&[]),
            m1: Pin::new(&[]),
            fault: Pin::new(&[T::get(State::Low)]),
        };
        let mut d = driver(p);
        let mut delay = CheckedDelay::new(&[Wait::delay_us(WAKE_US)]);
        assert_eq!(d.step(&mut delay), Err(DriverError::Asleep));
        for m in [Microsteps::X4, Microsteps::X32] {
            assert_eq!(
                d.set_microsteps(m, &mut delay),
                Err(DriverError::MicrostepsNeedFloatingM0)
            );
        }
        d.wake(&mut delay).unwrap();
        // nFAULT low: no pulse is sent.
        assert_eq!(d.step(&mut delay), Err(DriverError::Fault));
        delay.done();
        done(d);
    }

    #[test]
    fn microstep_pin_table() {
        for (m, m1, m0) in [
            (Microsteps::X1, State::Low, State::Low),
            (Microsteps::X2, State::Low, State::High),
            (Microsteps::X8, State::High, State::Low),
            (Microsteps::X16, State::High, State::High),
        ] {
            let p = Pins {
                step: Pin::new(&[T::set(State::Low)]),
                dir: Pin::new(&[]),
                sleep: Pin::new(&[T::set(State::Low)]),
                m0: Pin::new(&[T::set(m0)]),
                m1: Pin::new(&[T::set(m1)]),
                fault: Pin::new(&[]),
            };
            let mut d = driver(p);
            let mut delay = CheckedDelay::new(&[Wait::delay_ns(SETUP_NS)]);
            d.set_microsteps(m, &mut delay).unwrap();
            delay.done();
            done(d);
        }
    }
}
