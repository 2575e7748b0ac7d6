//! Events and alarms: what pumps report, stored exactly once per device
//! and sequence number, and the acknowledgement that closes an alarm.

use async_trait::async_trait;
use infusion_protocol::{Alarm, Event, EventBody, EventKind, PatientId, StateChange, WireEvent};

use crate::{
    AlarmEffect, AlarmRef, Change, DeviceId, Effects, NewAudit, NewToken, NoticeEvent, Priority,
    StoreError, StoreResult, Team, TokenHash, raise,
};

/// Reports, the event history and alarm acknowledgement, one transaction
/// per method.
#[async_trait]
pub trait Events: Send + Sync {
    /// The report transaction: consumes the presented token, stores each
    /// event not stored before (by device and `seq`), audits alarms and
    /// stores the next token. Durable when it returns `Ok`.
    async fn report(
        &self,
        presented: TokenHash,
        patient_id: PatientId,
        events: Vec<Event>,
        next: NewToken,
        now_ms: i64,
    ) -> StoreResult<ReportOutcome>;

    /// A patient's stored events, oldest first, after the stored id
    /// `after_id` (0 for all), at most `limit`.
    async fn events(
        &self,
        patient_id: PatientId,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>>;

    /// A patient's newest events, newest first, at most `limit`: what a
    /// dashboard shows (the current rate, delivered volume, state).
    async fn recent_events(
        &self,
        patient_id: PatientId,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>>;

    /// A patient's alarms not yet acknowledged (the newest 100), most
    /// urgent first and newest first within a priority
    /// ([`crate::by_priority`]).
    async fn open_alarms(&self, patient_id: PatientId) -> StoreResult<Vec<StoredEvent>>;

    /// Acknowledges the alarm stored as event `event_id` of `patient`:
    /// audited, announced, and closed for good. Refused with `NotFound`
    /// when that event is not an alarm of this patient; acknowledging
    /// twice keeps the first acknowledgement and returns false.
    async fn acknowledge_alarm(
        &self,
        patient: PatientId,
        event_id: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool>;
}

/// How a report batch was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportOutcome {
    /// Events stored now.
    pub accepted: u32,
    /// Events that were stored already.
    pub duplicates: u32,
}

/// An event as stored, with the server's receipt time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredEvent {
    /// Row id, increasing in order of arrival.
    pub id: i64,
    /// The device that sent it.
    pub device_id: DeviceId,
    /// The device's sequence number.
    pub seq: u32,
    /// The device's uptime at the event.
    pub uptime_ms: u64,
    /// When the server stored it, ms since the epoch.
    pub received_at_ms: i64,
    /// What happened.
    pub body: EventBody,
}

impl StoredEvent {
    /// The event as the pump sent it.
    pub fn event(&self) -> Event {
        Event {
            seq: self.seq,
            uptime_ms: self.uptime_ms,
            body: self.body,
        }
    }
}

/// The sequence number a device's next event may take: one past the
/// `highest` its stored events hold (0 with none), saturating at the
/// counter's end rather than wrapping onto stored numbers.
pub fn next_seq(highest: Option<i64>) -> u32 {
    highest.map_or(0, |h| {
        u32::try_from(h.saturating_add(1).max(0)).unwrap_or(u32::MAX)
    })
}

/// The alarm, if this event is one (alarms are audited as well as stored).
pub fn alarm_of(body: &EventBody) -> Option<Alarm> {
    match body {
        EventBody::Alarm(a) => Some(*a),
        _ => None,
    }
}

/// A stored event's columns as both backends keep them (the flat wire
/// form plus the row's id, device and receipt time), decoded in one place
/// through the protocol's own checks, so that a row neither backend could
/// have written is a fault and not an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Row id.
    pub id: i64,
    /// The device registration that sent it.
    pub device_id: i64,
    /// The device's sequence number.
    pub seq: i64,
    /// The device's uptime at the event, ms.
    pub uptime_ms: i64,
    /// When the server stored it, ms since the epoch.
    pub received_at_ms: i64,
    /// `progress`, `state`, `alarm` or `vitals`.
    pub kind: String,
    /// Progress: delivered volume, µL.
    pub delivered_ul: Option<i64>,
    /// Progress: rate, µL/h.
    pub rate_ul_h: Option<i64>,
    /// Progress: the index version being delivered.
    pub index_version: Option<i64>,
    /// State: the new state.
    pub state: Option<String>,
    /// Alarm: which.
    pub alarm: Option<String>,
    /// Vitals: heart rate, bpm.
    pub heart_rate_bpm: Option<i64>,
    /// Vitals: SpO2, %.
    pub spo2_pct: Option<i64>,
    /// Vitals: tremor score.
    pub tremor_score: Option<i64>,
}

impl EventRow {
    /// The columns every event query selects, in [`EventRow`]'s order.
    pub const COLUMNS: &'static str =
        "id, device_id, seq, uptime_ms, received_at_ms, kind, delivered_ul, rate_ul_h,
    index_version, state, alarm, heart_rate_bpm, spo2_pct, tremor_score";

    /// The event this row holds, checked as an event from a pump is.
    pub fn decode(self) -> StoreResult<StoredEvent> {
        fn num<T: TryFrom<i64>>(v: Option<i64>, what: &str) -> StoreResult<Option<T>> {
            v.map(|v| T::try_from(v).map_err(|_| bad(what))).transpose()
        }
        fn bad(what: &str) -> StoreError {
            StoreError::Backend(format!("bad stored event {what}"))
        }
        let wire = WireEvent {
            seq: u32::try_from(self.seq).map_err(|_| bad("seq"))?,
            uptime_ms: u64::try_from(self.uptime_ms).map_err(|_| bad("uptime"))?,
            kind: EventKind::parse(&self.kind).ok_or_else(|| bad("kind"))?,
            delivered_ul: num(self.delivered_ul, "volume")?,
            rate_ul_h: num(self.rate_ul_h, "rate")?,
            index_version: num(self.index_version, "version")?,
            state: self
                .state
                .map(|s| StateChange::parse(&s).ok_or_else(|| bad("state")))
                .transpose()?,
            alarm: self
                .alarm
                .map(|s| Alarm::parse(&s).ok_or_else(|| bad("alarm")))
                .transpose()?,
            heart_rate_bpm: num(self.heart_rate_bpm, "heart rate")?,
            spo2_pct: num(self.spo2_pct, "SpO2")?,
            tremor_score: num(self.tremor_score, "tremor score")?,
        };
        let event = Event::try_from(wire).map_err(|_| bad("fields"))?;
        Ok(StoredEvent {
            id: self.id,
            device_id: DeviceId(self.device_id),
            seq: event.seq,
            uptime_ms: event.uptime_ms,
            received_at_ms: self.received_at_ms,
            body: event.body,
        })
    }
}

/// The sequence numbers of `events` that the insert did not store now
/// (`stored`, once each): each is a repeat of a stored event or a conflict
/// with one. The backend reads the stored events at these numbers, in the
/// same transaction, for [`reported`] to compare.
pub fn not_stored_now(events: &[Event], stored: &[u32]) -> Vec<u32> {
    let mut unclaimed = stored.to_vec();
    let mut repeats = Vec::new();
    for e in events {
        match unclaimed.iter().position(|&s| s == e.seq) {
            Some(at) => {
                unclaimed.swap_remove(at);
            }
            None => repeats.push(e.seq),
        }
    }
    repeats
}

/// Who reports: the patient, the device (`mac` for the audit) and the
/// patient's care team, which every new alarm is raised to (read by the
/// backend when the batch holds an alarm; [`Team::NONE`] otherwise).
#[derive(Debug, Clone, Copy)]
pub struct Reporter<'a> {
    /// Whose pump.
    pub patient: PatientId,
    /// The reporting device.
    pub device: DeviceId,
    /// Its MAC address, for the audit.
    pub mac: &'a str,
    /// The patient's team now.
    pub team: &'a Team,
}

/// Whether a batch holds an alarm: only then does a report need the
/// patient's [`Team`].
pub fn has_alarm(events: &[Event]) -> bool {
    events.iter().any(|e| alarm_of(&e.body).is_some())
}

/// What a report leaves once its new events are stored: the counts
/// answered to the pump, an audit entry, an escalation raised (its
/// notification in the outbox) and an announcement per new alarm,
/// and one announcement of new events. `stored` holds the sequence
/// numbers the insert stored now, once each: an event whose number is not
/// there (or was used up by an earlier event of the batch with the same
/// number) is a repeat, if `already` (the stored events at the numbers of
/// [`not_stored_now`]) holds it with the same content. One that differs is
/// a conflict ([`StoreError::SeqConflict`]), and the whole report is
/// refused: acknowledging it would let the pump delete an event, perhaps
/// an alarm, that was never stored. `mac` is the reporting device's, for
/// the audit.
pub fn reported(
    events: &[Event],
    stored: &[u32],
    already: &[Event],
    by: &Reporter<'_>,
    now_ms: i64,
) -> StoreResult<(ReportOutcome, Effects)> {
    let Reporter {
        patient,
        device,
        mac,
        team,
    } = *by;
    let mut unclaimed = stored.to_vec();
    let mut outcome = ReportOutcome::default();
    let mut effects = Effects::none();
    let mut alarms = Effects::none();
    for e in events {
        let Some(at) = unclaimed.iter().position(|&s| s == e.seq) else {
            if !already.contains(e) {
                return Err(StoreError::SeqConflict { seq: e.seq });
            }
            outcome.duplicates += 1;
            continue;
        };
        unclaimed.swap_remove(at);
        outcome.accepted += 1;
        if let Some(alarm) = alarm_of(&e.body) {
            let source = AlarmRef::Reported { device, seq: e.seq };
            let priority = Priority::of(alarm);
            alarms = alarms
                .and_audit(NewAudit::alarm(now_ms, mac, patient, alarm, e.seq))
                .then(raise(
                    patient,
                    source,
                    alarm.as_str(),
                    priority,
                    team,
                    now_ms,
                ))
                .and_announce(Change::Alarm { patient, alarm });
        }
    }
    if outcome.accepted > 0 {
        effects = effects.and_announce(Change::Events { patient });
    }
    Ok((outcome, effects.then(alarms)))
}

/// An alarm event as an acknowledgement finds it: which alarm, and
/// whether it was acknowledged already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmFound {
    /// The alarm's name as stored.
    pub alarm: String,
    /// True when an acknowledgement is stored already.
    pub acknowledged: bool,
}

/// Decides an acknowledgement of event `event_id` (`found`: the alarm it
/// is, `None` when it is no alarm of this patient). `Ok(None)`: it was
/// acknowledged before, and the first acknowledgement stands; otherwise
/// the audit entry and announcement of this one.
pub fn acknowledge(
    found: Option<AlarmFound>,
    patient: PatientId,
    event_id: i64,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Option<Effects>> {
    let found = found.ok_or_else(|| StoreError::no_alarm(event_id))?;
    if found.acknowledged {
        return Ok(None);
    }
    Ok(Some(
        Effects::audit(NewAudit::alarm_acknowledged(
            now_ms,
            actor,
            patient,
            &found.alarm,
            event_id,
        ))
        .and_alarm(AlarmEffect::End {
            source: AlarmRef::Event(event_id),
            event: NoticeEvent::Acknowledged,
            by: Some(actor.to_owned()),
            at_ms: now_ms,
        })
        .and_announce(Change::AlarmAcknowledged { patient }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditAction;
    use infusion_protocol::{Progress, Vitals};
    use proptest::prelude::*;

    fn event(seq: u32, body: EventBody) -> Event {
        Event {
            seq,
            uptime_ms: u64::from(seq) * 1_000,
            body,
        }
    }

    fn row(e: &Event) -> EventRow {
        let w = WireEvent::from(*e);
        EventRow {
            id: 1,
            device_id: 2,
            seq: i64::from(w.seq),
            uptime_ms: w.uptime_ms as i64,
            received_at_ms: 3,
            kind: w.kind.as_str().into(),
            delivered_ul: w.delivered_ul.map(i64::from),
            rate_ul_h: w.rate_ul_h.map(i64::from),
            index_version: w.index_version.map(i64::from),
            state: w.state.map(|s| s.as_str().into()),
            alarm: w.alarm.map(|a| a.as_str().into()),
            heart_rate_bpm: w.heart_rate_bpm.map(i64::from),
            spo2_pct: w.spo2_pct.map(i64::from),
            tremor_score: w.tremor_score.map(i64::from),
        }
    }

    fn bodies() -> impl Strategy<Value = EventBody> {
        prop_oneof![
            (0u32..100_000, 0u32..100_000, 0u32..50).prop_map(|(d, r, v)| EventBody::Progress(
                Progress {
                    delivered_ul: d,
                    rate_ul_h: r,
                    index_version: v
                }
            )),
            (30u16..220, 50u8..=100, 0u8..=10).prop_map(|(h, s, t)| EventBody::Vitals(Vitals {
                heart_rate_bpm: h,
                spo2_pct: s,
                tremor_score: t
            })),
            Just(EventBody::Alarm(Alarm::Occlusion)),
            Just(EventBody::State(StateChange::Paused)),
        ]
    }

    proptest! {
        /// Every event a pump can send comes back from its row unchanged.
        #[test]
        fn rows_decode_to_the_events_stored(seq in 0u32..1_000_000, body in bodies()) {
            let e = event(seq, body);
            if Event::try_from(WireEvent::from(e)).is_ok() {
                let stored = row(&e).decode().unwrap();
                prop_assert_eq!((stored.seq, stored.uptime_ms, stored.body), (e.seq, e.uptime_ms, e.body));
            }
        }
    }

    #[test]
    fn rows_no_pump_could_send_are_faults() {
        let mut r = row(&event(1, EventBody::Alarm(Alarm::Occlusion)));
        r.alarm = Some("meltdown".into());
        assert!(matches!(r.clone().decode(), Err(StoreError::Backend(_))));
        r.alarm = None;
        assert!(r.decode().is_err());
        let mut r = row(&event(1, EventBody::State(StateChange::Paused)));
        r.seq = -1;
        assert!(r.decode().is_err());
    }

    static NO_TEAM: Team = Team::NONE;

    fn by(patient: PatientId, mac: &str) -> Reporter<'_> {
        Reporter {
            patient,
            device: DeviceId(4),
            mac,
            team: &NO_TEAM,
        }
    }

    #[test]
    fn a_report_counts_repeats_and_audits_only_new_alarms() {
        let p = PatientId(5);
        let events = [
            event(1, EventBody::Alarm(Alarm::Occlusion)),
            event(2, EventBody::Alarm(Alarm::Occlusion)),
            event(3, EventBody::State(StateChange::Paused)),
        ];
        let (outcome, e) = reported(
            &events,
            &[3, 2],
            &events[..1],
            &by(p, "AA:BB:CC:DD:EE:01"),
            9,
        )
        .unwrap();
        assert_eq!(not_stored_now(&events, &[3, 2]), [1]);
        assert_eq!((outcome.accepted, outcome.duplicates), (2, 1));
        // The alarm, and whom it was sent to.
        assert_eq!(e.audit.len(), 2);
        assert_eq!(e.audit[1].action, AuditAction::AlarmSent);
        // The new alarm is raised to the team (here, with no ward, the
        // physician), with nothing after.
        assert_eq!(
            e.alarms,
            [AlarmEffect::Raise {
                patient: p,
                source: AlarmRef::Reported {
                    device: DeviceId(4),
                    seq: 2
                },
                alarm: "occlusion".into(),
                priority: Priority::High,
                at_ms: 9,
                step: crate::Step::Physician,
                next_step_at_ms: None,
                recipients: Vec::new(),
            }]
        );
        assert_eq!(
            e.audit[0].detail,
            "Occlusion: the line is blocked (event 2)"
        );
        assert_eq!(
            e.changes,
            [
                Change::Events { patient: p },
                Change::Alarm {
                    patient: p,
                    alarm: Alarm::Occlusion
                }
            ]
        );
        let (outcome, e) = reported(&events, &[], &events, &by(p, "x"), 9).unwrap();
        assert_eq!((outcome.accepted, outcome.duplicates), (0, 3));
        assert_eq!(e, Effects::none());
        // One number twice in a batch is stored once, and counted once.
        let twice = [events[0], events[0]];
        assert_eq!(not_stored_now(&twice, &[1]), [1]);
        let (outcome, e) = reported(&twice, &[1], &twice[..1], &by(p, "x"), 9).unwrap();
        assert_eq!(
            (outcome.accepted, outcome.duplicates, e.audit.len()),
            (1, 1, 2)
        );
    }

    #[test]
    fn a_number_stored_with_other_content_refuses_the_report() {
        let p = PatientId(5);
        let stored_before = event(7, EventBody::State(StateChange::Paused));
        let fault = event(7, EventBody::Alarm(Alarm::MotorFault));
        let batch = [event(6, EventBody::State(StateChange::Paused)), fault];
        assert_eq!(not_stored_now(&batch, &[6]), [7]);
        assert_eq!(
            reported(&batch, &[6], &[stored_before], &by(p, "x"), 9),
            Err(StoreError::SeqConflict { seq: 7 })
        );
        // The same kind at another uptime is another event too.
        let later = Event {
            uptime_ms: 99_000,
            ..stored_before
        };
        assert_eq!(
            reported(&[later], &[], &[stored_before], &by(p, "x"), 9),
            Err(StoreError::SeqConflict { seq: 7 })
        );
        // And a number the store has nothing for is never taken as a repeat.
        assert_eq!(
            reported(&[fault], &[], &[], &by(p, "x"), 9),
            Err(StoreError::SeqConflict { seq: 7 })
        );
    }

    #[test]
    fn the_next_number_follows_the_highest_stored() {
        assert_eq!(next_seq(None), 0);
        assert_eq!(next_seq(Some(41)), 42);
        assert_eq!(next_seq(Some(i64::from(u32::MAX))), u32::MAX);
    }

    #[test]
    fn an_alarm_is_acknowledged_once() {
        let p = PatientId(5);
        assert!(matches!(
            acknowledge(None, p, 4, "user:doc", 0),
            Err(StoreError::NotFound(_))
        ));
        let found = |acknowledged| {
            Some(AlarmFound {
                alarm: "occlusion".into(),
                acknowledged,
            })
        };
        assert_eq!(acknowledge(found(true), p, 4, "user:doc", 0), Ok(None));
        let e = acknowledge(found(false), p, 4, "user:doc", 0)
            .unwrap()
            .unwrap();
        assert_eq!(e.audit[0].action, AuditAction::AlarmAcknowledged);
        assert_eq!(e.changes, [Change::AlarmAcknowledged { patient: p }]);
    }
}
