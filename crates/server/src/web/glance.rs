//! What is happening, at a glance: the infusion's state in words (a
//! refused order says so until a new one runs), how much is left and when
//! it ends at the current rate, and how far it has come. Read from the
//! current order and the pump's newest reports; integers only (µL, µL/h,
//! minutes).

use infusion_protocol::{Alarm, EventBody, InfusionState, StateChange};
use infusion_store::{Prescription, StoredEvent, state_change_words};

/// The glance at one pump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glance {
    /// The state in words: "running", "on hold by the physician",
    /// "stopped: the pump refused this order…".
    pub state: String,
    /// True when the pump refused the current order.
    pub refused: bool,
    /// Volume still to give of the current order, µL.
    pub remaining_ul: Option<u32>,
    /// Minutes until it is given at the rate the pump reports, rounded up.
    pub minutes_left: Option<u64>,
    /// How much of the order was given, in whole percent.
    pub percent: Option<u32>,
    /// When the pump last warned of a low battery, if it did among the
    /// reports read (the pump reports no level, only this warning).
    pub battery_low_ms: Option<i64>,
    /// The pump restarted in the middle of the current order and waits,
    /// stopped, for it to be continued (a new version of it, which the
    /// pump counts against what it already gave).
    pub restarted: bool,
}

/// True when the pump's newest word is that it restarted while running
/// `rx` (or an earlier version of it): no state but its own pause since,
/// and nothing newer sent. `events` newest first.
pub fn restarted_in(rx: &Prescription, events: &[StoredEvent]) -> bool {
    let Some(at) = events.iter().position(|e| {
        matches!(
            e.body,
            EventBody::Alarm(Alarm::Restarted) | EventBody::State(_)
        ) && !matches!(e.body, EventBody::State(StateChange::Paused))
    }) else {
        return false;
    };
    if !matches!(events[at].body, EventBody::Alarm(Alarm::Restarted)) {
        return false;
    }
    // The restart's own progress (newer than its alarm) names the order
    // the pump had applied: a version sent since is already on its way.
    let applied = events[..at].iter().rev().find_map(|e| match e.body {
        EventBody::Progress(p) => Some(p.index_version),
        _ => None,
    });
    applied.is_none_or(|v| rx.version <= v)
}

/// The alarm with which the pump refused `rx` (after fetching it, with no
/// delivery of it since), if it did. `events` newest first.
pub fn refusal_of(rx: &Prescription, events: &[StoredEvent]) -> Option<Alarm> {
    let fetched = rx.fetched_at_ms?;
    let ran = events
        .iter()
        .any(|e| matches!(e.body, EventBody::Progress(p) if p.index_version == rx.version));
    if ran {
        return None;
    }
    events.iter().find_map(|e| match e.body {
        EventBody::Alarm(a @ (Alarm::LimitsRefused | Alarm::IndexUnverified))
            if e.received_at_ms >= fetched =>
        {
            Some(a)
        }
        _ => None,
    })
}

/// The glance at a pump whose current order is `rx`, from `events`
/// (newest first).
pub fn glance(rx: Option<&Prescription>, events: &[StoredEvent]) -> Glance {
    let last_state = events.iter().find_map(|e| match e.body {
        EventBody::State(s) => Some(s),
        _ => None,
    });
    let progress = events.iter().find_map(|e| match e.body {
        EventBody::Progress(p) => Some(p),
        _ => None,
    });
    let battery_low_ms = events
        .iter()
        .find(|e| matches!(e.body, EventBody::Alarm(Alarm::BatteryLow)))
        .map(|e| e.received_at_ms);
    let Some(rx) = rx else {
        return Glance {
            state: "no order yet".into(),
            refused: false,
            remaining_ul: None,
            minutes_left: None,
            percent: None,
            battery_low_ms,
            restarted: false,
        };
    };
    let refused = refusal_of(rx, events);
    let restarted = refused.is_none() && rx.state == InfusionState::Run && restarted_in(rx, events);
    let state = match (refused, rx.state, last_state) {
        (None, InfusionState::Run, _) if restarted => {
            "stopped: the pump restarted; continue the order to give the rest of it".into()
        }
        (Some(Alarm::IndexUnverified), _, _) => {
            "stopped: the pump refused this order because it could not verify that this server \
             sent it"
                .into()
        }
        (Some(_), _, _) => {
            "stopped: the pump refused this order because it is outside the pump's limits".into()
        }
        (None, InfusionState::Hold, Some(StateChange::Paused)) => "on hold by the physician".into(),
        (None, InfusionState::Hold, _) => "hold sent: waiting for the pump to pause".into(),
        (None, _, Some(s)) => state_change_words(s).into(),
        (None, _, None) => "no report yet".into(),
    };
    // Only reports of this order measure it.
    let progress = progress.filter(|p| p.index_version == rx.version);
    let delivered = progress.map(|p| p.delivered_ul.min(rx.volume_ul));
    let remaining_ul = delivered.map(|d| rx.volume_ul - d);
    let minutes_left = match (remaining_ul, progress.map(|p| p.rate_ul_h)) {
        (Some(left), Some(rate)) if rate > 0 => {
            Some((u64::from(left) * 60).div_ceil(u64::from(rate)))
        }
        _ => None,
    };
    let percent = delivered
        .filter(|_| rx.volume_ul > 0)
        .map(|d| u32::try_from(u64::from(d) * 100 / u64::from(rx.volume_ul)).unwrap_or(100));
    Glance {
        state,
        refused: refused.is_some(),
        remaining_ul,
        minutes_left,
        percent,
        battery_low_ms,
        restarted,
    }
}

/// Minutes as "2 h 10 min" or "25 min".
pub fn duration(minutes: u64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use infusion_protocol::Progress;
    use infusion_store::DeviceId;

    use super::*;

    fn rx(version: u32, state: InfusionState, fetched: Option<i64>) -> Prescription {
        Prescription {
            version,
            volume_ul: 9_000,
            rate_ul_h: 4_000,
            state,
            created_at_ms: 0,
            created_by: "user:dr".into(),
            fetched_at_ms: fetched,
            drug: None,
        }
    }

    fn event(at: i64, body: EventBody) -> StoredEvent {
        StoredEvent {
            id: at,
            device_id: DeviceId(1),
            seq: 1,
            uptime_ms: 1,
            received_at_ms: at,
            body,
        }
    }

    fn progress(at: i64, version: u32, delivered: u32, rate: u32) -> StoredEvent {
        event(
            at,
            EventBody::Progress(Progress {
                delivered_ul: delivered,
                rate_ul_h: rate,
                index_version: version,
            }),
        )
    }

    #[test]
    fn a_running_order_says_what_is_left_and_when_it_ends() {
        let events = [
            progress(20, 2, 1_000, 4_000),
            event(10, EventBody::State(StateChange::Started)),
        ];
        let g = glance(Some(&rx(2, InfusionState::Run, Some(5))), &events);
        assert_eq!(g.state, "running");
        assert_eq!(g.remaining_ul, Some(8_000));
        // 8 mL at 4 mL/h: two hours.
        assert_eq!(g.minutes_left, Some(120));
        assert_eq!(g.percent, Some(11));
        assert_eq!(g.battery_low_ms, None);
        let mut low = vec![event(25, EventBody::Alarm(Alarm::BatteryLow))];
        low.extend(events);
        let g = glance(Some(&rx(2, InfusionState::Run, Some(5))), &low);
        assert_eq!(g.battery_low_ms, Some(25));
        assert_eq!(duration(130), "2 h 10 min");
        assert_eq!(duration(25), "25 min");
        assert_eq!(duration(60), "1 h");
    }

    #[test]
    fn a_refused_order_stays_refused_until_one_runs() {
        let events = [
            event(30, EventBody::Alarm(Alarm::LimitsRefused)),
            progress(20, 1, 1_000, 4_000),
        ];
        let g = glance(Some(&rx(2, InfusionState::Run, Some(25))), &events);
        assert!(g.refused);
        assert_eq!(
            g.state,
            "stopped: the pump refused this order because it is outside the pump's limits"
        );
        assert_eq!(
            g.remaining_ul, None,
            "reports of version 1 do not measure version 2"
        );
        // The pump then runs version 2: no longer refused.
        let mut later = vec![progress(40, 2, 0, 4_000)];
        later.extend(events);
        assert!(!glance(Some(&rx(2, InfusionState::Run, Some(25))), &later).refused);
    }

    #[test]
    fn a_hold_reads_as_the_physicians() {
        let paused = [event(30, EventBody::State(StateChange::Paused))];
        let g = glance(Some(&rx(3, InfusionState::Hold, Some(25))), &paused);
        assert_eq!(g.state, "on hold by the physician");
        let g = glance(Some(&rx(3, InfusionState::Hold, None)), &[]);
        assert_eq!(g.state, "hold sent: waiting for the pump to pause");
        assert_eq!(glance(None, &[]).state, "no order yet");
    }

    #[test]
    fn a_pump_that_restarted_mid_order_waits_to_be_continued_until_it_runs_again() {
        let restart = |v| {
            vec![
                progress(3, v, 1_200, 0),
                event(3, EventBody::State(StateChange::Paused)),
                event(3, EventBody::Alarm(Alarm::Restarted)),
                progress(2, v, 1_100, 4_000),
                event(1, EventBody::State(StateChange::Started)),
            ]
        };
        let events = restart(1);
        let g = glance(Some(&rx(1, InfusionState::Run, Some(1))), &events);
        assert!(g.restarted);
        assert!(
            g.state.starts_with("stopped: the pump restarted"),
            "{}",
            g.state
        );
        // A version sent since is on its way: nothing more to continue.
        assert!(!restarted_in(&rx(2, InfusionState::Run, None), &events));
        // A held order is resumed, not continued.
        assert!(!glance(Some(&rx(1, InfusionState::Hold, Some(1))), &events).restarted);
        // Once the pump runs the order again, it is no longer waiting.
        let mut running = vec![event(4, EventBody::State(StateChange::Resumed))];
        running.extend(restart(1));
        assert!(!restarted_in(&rx(2, InfusionState::Run, Some(4)), &running));
        assert!(!restarted_in(&rx(1, InfusionState::Run, Some(1)), &[]));
    }
}
