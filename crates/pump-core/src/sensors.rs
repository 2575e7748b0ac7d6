//! The hardware inputs that raise alarms: motor stall and over-current,
//! the driver's fault pin, the end-of-travel switch and the battery.

use infusion_protocol::Alarm;

/// One reading of the pump's inputs, taken by the hardware edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sensors {
    /// The motor did not move when stepped (stall detection).
    pub stalled: bool,
    /// Motor current above its limit: the line pushes back.
    pub over_current: bool,
    /// The DRV8834's nFAULT pin is low (over-temperature, over-current in
    /// the bridge, under-voltage).
    pub driver_fault: bool,
    /// The plunger's end-of-travel switch is closed.
    pub end_of_travel: bool,
    /// Battery voltage, mV.
    pub battery_mv: u16,
}

impl Default for Sensors {
    /// All clear, on a full single-cell battery.
    fn default() -> Self {
        Sensors {
            stalled: false,
            over_current: false,
            driver_fault: false,
            end_of_travel: false,
            battery_mv: 4_100,
        }
    }
}

impl Sensors {
    /// True while a condition that must keep the motor stopped is present.
    pub fn hazard(&self) -> bool {
        self.stalled || self.over_current || self.driver_fault || self.end_of_travel
    }
}

/// Battery hysteresis: once low, the alarm re-arms only when the voltage
/// is this far above the threshold again, so a voltage hovering at the
/// threshold does not raise an alarm at every reading.
pub const BATTERY_HYSTERESIS_MV: u16 = 100;

/// Turns readings into alarms, once per onset of each condition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmWatch {
    last: Sensors,
    battery_low: bool,
}

impl AlarmWatch {
    /// The latest reading.
    pub fn last(&self) -> &Sensors {
        &self.last
    }

    /// Takes a reading and returns the alarms whose condition began with
    /// it, in order of severity. `battery_low_mv` is the threshold.
    pub fn read(&mut self, now: Sensors, battery_low_mv: u16) -> heapless::Vec<Alarm, 4> {
        let was = self.last;
        self.last = now;
        let mut raised = heapless::Vec::new();
        let occluded = |s: &Sensors| s.stalled || s.over_current;
        let mut rise = |cond: bool, before: bool, alarm: Alarm| {
            if cond && !before {
                // Cannot overflow: four conditions, room for four.
                let _ = raised.push(alarm);
            }
        };
        rise(now.driver_fault, was.driver_fault, Alarm::MotorFault);
        rise(occluded(&now), occluded(&was), Alarm::Occlusion);
        rise(now.end_of_travel, was.end_of_travel, Alarm::SyringeEmpty);
        let low = now.battery_mv < battery_low_mv;
        rise(low, self.battery_low, Alarm::BatteryLow);
        if low {
            self.battery_low = true;
        } else if now.battery_mv >= battery_low_mv.saturating_add(BATTERY_HYSTERESIS_MV) {
            self.battery_low = false;
        }
        raised
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_condition_raises_once_per_onset() {
        let mut w = AlarmWatch::default();
        let clear = Sensors::default();
        assert!(w.read(clear, 3_500).is_empty());
        let stalled = Sensors {
            stalled: true,
            ..clear
        };
        assert_eq!(w.read(stalled, 3_500), [Alarm::Occlusion]);
        // Over-current on top of a stall is the same occlusion.
        let both = Sensors {
            over_current: true,
            ..stalled
        };
        assert!(w.read(both, 3_500).is_empty());
        assert!(w.last().hazard());
        assert!(w.read(clear, 3_500).is_empty());
        assert!(!w.last().hazard());
        assert_eq!(w.read(stalled, 3_500), [Alarm::Occlusion], "a new onset");
        let everything = Sensors {
            stalled: true,
            over_current: true,
            driver_fault: true,
            end_of_travel: true,
            battery_mv: 3_000,
        };
        assert_eq!(
            w.read(everything, 3_500),
            [Alarm::MotorFault, Alarm::SyringeEmpty, Alarm::BatteryLow]
        );
    }

    #[test]
    fn battery_low_rearms_only_above_the_hysteresis() {
        let mut w = AlarmWatch::default();
        let at = |mv| Sensors {
            battery_mv: mv,
            ..Sensors::default()
        };
        assert_eq!(w.read(at(3_499), 3_500), [Alarm::BatteryLow]);
        assert!(w.read(at(3_550), 3_500).is_empty());
        assert!(w.read(at(3_490), 3_500).is_empty(), "hovering");
        assert!(w.read(at(3_600), 3_500).is_empty());
        assert_eq!(w.read(at(3_400), 3_500), [Alarm::BatteryLow]);
    }
}
