//! Alarm priorities after IEC 60601-1-8: high (immediate response), medium
//! (prompt response), low (awareness). Each alarm kind's priority and the
//! hazard behind it are in the risk table of `docs/alarms.md`; this is
//! the one place the code assigns them. A priority is shown as a word and
//! a symbol, never by colour alone, and orders every list of alarms.

use infusion_protocol::{Alarm, EventBody};

use crate::StoredEvent;

/// How soon someone must act on an alarm. Ordered most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Therapy has stopped or cannot be trusted: act now.
    High,
    /// Therapy is at risk soon, or an order did not reach the pump: act
    /// promptly.
    Medium,
    /// Be aware.
    Low,
}

impl Priority {
    /// The priority of an alarm kind (see `docs/alarms.md`).
    pub fn of(a: Alarm) -> Priority {
        match a {
            // The line is blocked, or the motor cannot be trusted: no drug
            // reaches the patient, or an unknown amount does.
            Alarm::Occlusion | Alarm::MotorFault => Priority::High,
            // Someone on the network path sent an order that is not the
            // server's: the pump refused it, and it may be attacked again.
            Alarm::IndexUnverified => Priority::High,
            // The pump lost the server; under a stop-on-loss policy the
            // infusion has stopped.
            Alarm::CommLost => Priority::High,
            // The infusion stops or waits for a clinician: an interruption
            // of a continuous infusion (off periods in Parkinson's disease)
            // within the hour, not within minutes.
            Alarm::SyringeEmpty | Alarm::LimitsRefused | Alarm::Restarted => Priority::Medium,
            // Hours of running left, but it must be charged.
            Alarm::BatteryLow => Priority::Medium,
        }
    }

    /// The priority of the server's own `pump_silent`: therapy goes on (or
    /// stops, as the pump's loss-of-link policy says) but nobody sees it,
    /// and no new order reaches the pump.
    pub const SILENT: Priority = Priority::Medium;

    /// The priority of a stored alarm event; `Low` for anything else.
    pub fn of_event(e: &StoredEvent) -> Priority {
        match e.body {
            EventBody::Alarm(a) => Priority::of(a),
            _ => Priority::Low,
        }
    }

    /// The wire and export form: `high`, `medium`, `low`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
        }
    }

    /// The inverse of [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Priority> {
        [Priority::High, Priority::Medium, Priority::Low]
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    /// As a page says it.
    pub fn words(self) -> &'static str {
        match self {
            Priority::High => "High priority",
            Priority::Medium => "Medium priority",
            Priority::Low => "Low priority",
        }
    }

    /// The symbol beside the word, readable without colour: three, two or
    /// one exclamation marks, as patient monitors print them.
    pub fn symbol(self) -> &'static str {
        match self {
            Priority::High => "!!!",
            Priority::Medium => "!!",
            Priority::Low => "!",
        }
    }
}

/// Orders alarms most urgent first, and within one priority newest first:
/// the order of every alarm list (the stored row's id breaks a tie of
/// one report's alarms, received in the same millisecond).
pub fn by_priority(mut alarms: Vec<StoredEvent>) -> Vec<StoredEvent> {
    alarms.sort_by_key(|e| {
        let newest = std::cmp::Reverse((e.received_at_ms, e.id));
        (Priority::of_event(e), newest)
    });
    alarms
}

/// The most urgent priority among `alarms`, if any.
pub fn highest(alarms: &[StoredEvent]) -> Option<Priority> {
    alarms.iter().map(Priority::of_event).min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeviceId;

    fn alarm(at: i64, a: Alarm) -> StoredEvent {
        StoredEvent {
            id: at,
            device_id: DeviceId(1),
            seq: 1,
            uptime_ms: 1,
            received_at_ms: at,
            body: EventBody::Alarm(a),
        }
    }

    #[test]
    fn every_alarm_has_a_priority_and_the_urgent_come_first() {
        for a in Alarm::ALL {
            let p = Priority::of(*a);
            assert!(!p.words().is_empty() && !p.symbol().is_empty(), "{a:?}");
        }
        assert_eq!(Priority::of(Alarm::Occlusion), Priority::High);
        assert_eq!(Priority::of(Alarm::BatteryLow), Priority::Medium);
        let sorted = by_priority(vec![
            alarm(1, Alarm::BatteryLow),
            alarm(2, Alarm::Occlusion),
            alarm(3, Alarm::SyringeEmpty),
            alarm(4, Alarm::MotorFault),
        ]);
        let ids: Vec<i64> = sorted.iter().map(|e| e.id).collect();
        assert_eq!(ids, [4, 2, 3, 1], "high first, newest first within one");
        assert_eq!(highest(&sorted), Some(Priority::High));
        assert_eq!(highest(&[]), None);
    }
}
