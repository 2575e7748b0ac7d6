//! Events a pump reports: progress, state changes, alarms and vitals.
//!
//! On the wire an event is one flat object with a `kind` and the fields of
//! that kind ([`WireEvent`]); inside the program it is the typed [`Event`],
//! in which a progress event cannot lack `delivered_ul` or carry an `alarm`.
//! Converting between the two is where shape and ranges are checked.

use core::fmt;

use crate::limits::{
    MAX_HEART_RATE_BPM, MAX_RATE_UL_H, MAX_SPO2_PCT, MAX_TREMOR_SCORE, MAX_UPTIME_MS,
};

/// One numbered thing that happened on the pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "WireEvent", into = "WireEvent")]
pub struct Event {
    /// Per-device sequence number, increasing; the server stores each
    /// (device, seq) once, which makes resending a batch harmless.
    pub seq: u32,
    /// Milliseconds since the pump started, at the time of the event.
    pub uptime_ms: u64,
    /// What happened.
    pub body: EventBody,
}

/// What an event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventBody {
    /// How much has been delivered under which index.
    Progress(Progress),
    /// The infusion changed state.
    State(StateChange),
    /// Something needs a clinician's attention.
    Alarm(Alarm),
    /// The patient's vital signs as measured by the wearable.
    Vitals(Vitals),
}

/// Cumulative delivery of the running infusion.
///
/// An infusion starts with the first `run` index after the pump was idle or
/// completed; later index versions adjust it (rate and total volume) and
/// `delivered_ul` keeps counting across them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Volume delivered so far in this infusion, µL.
    pub delivered_ul: u32,
    /// Rate the motor runs at now, µL/h (0 when stopped).
    pub rate_ul_h: u32,
    /// The index version being delivered.
    pub index_version: u32,
}

/// Vital signs from the wearable's sensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vitals {
    /// Heart rate, beats per minute.
    pub heart_rate_bpm: u16,
    /// Oxygen saturation, percent.
    pub spo2_pct: u8,
    /// Tremor score from the motion sensor, 0 (none) to 100.
    pub tremor_score: u8,
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant,)* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The value as it appears on the wire and in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// The inverse of [`Self::as_str`].
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }
    };
}

wire_enum!(
    /// The four kinds of event.
    EventKind {
        /// See [`Progress`].
        Progress => "progress",
        /// See [`StateChange`].
        State => "state",
        /// See [`Alarm`].
        Alarm => "alarm",
        /// See [`Vitals`].
        Vitals => "vitals",
    }
);

wire_enum!(
    /// A change of the infusion's state.
    StateChange {
        /// Infusion began under a new index.
        Started => "started",
        /// Rate or volume changed mid-infusion after a new index version.
        Adjusted => "adjusted",
        /// The motor stopped on `hold` or an alarm.
        Paused => "paused",
        /// The motor restarted after a pause.
        Resumed => "resumed",
        /// The prescribed volume has been delivered.
        Completed => "completed",
    }
);

wire_enum!(
    /// Conditions that need attention.
    Alarm {
        /// Motor stall or over-current: the line is blocked.
        Occlusion => "occlusion",
        /// The plunger reached the end of travel.
        SyringeEmpty => "syringe_empty",
        /// Battery voltage under its threshold.
        BatteryLow => "battery_low",
        /// The motor driver reports a fault.
        MotorFault => "motor_fault",
        /// The server could not be reached for a while.
        CommLost => "comm_lost",
        /// The pump refused an index outside its or the patient's limits.
        LimitsRefused => "limits_refused",
        /// The pump refused an index answer whose signature did not verify
        /// (tampered, wrong key, another device's) or whose version was
        /// older than one already applied: someone on the network path.
        IndexUnverified => "index_unverified",
        /// The pump restarted (power loss, reset) after it had applied an
        /// order: it does not run that order again, so whatever of it was
        /// left waits for a clinician's new version.
        Restarted => "restarted",
    }
);

/// An event exactly as it is written in JSON: a flat object whose `kind`
/// says which of the optional fields must be present.
///
/// `progress` carries `delivered_ul`, `rate_ul_h`, `index_version`; `state`
/// carries `state`; `alarm` carries `alarm`; `vitals` carries
/// `heart_rate_bpm`, `spo2_pct`, `tremor_score`. Fields of another kind are
/// refused, and so is any unknown field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WireEvent {
    /// Per-device sequence number, increasing.
    pub seq: u32,
    /// Milliseconds since the pump started (at most 2^53 - 1).
    pub uptime_ms: u64,
    /// Which kind of event this is.
    pub kind: EventKind,
    /// `progress`: µL delivered so far in this infusion (across index versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_ul: Option<u32>,
    /// `progress`: current rate, µL/h, at most 200,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_ul_h: Option<u32>,
    /// `progress`: the index version being delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_version: Option<u32>,
    /// `state`: the new state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateChange>,
    /// `alarm`: the alarm raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<Alarm>,
    /// `vitals`: heart rate, 1 to 350 bpm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heart_rate_bpm: Option<u16>,
    /// `vitals`: SpO2, 0 to 100 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spo2_pct: Option<u8>,
    /// `vitals`: tremor score, 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tremor_score: Option<u8>,
}

/// Why a [`WireEvent`] is not a valid [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventError {
    /// A field this kind needs is absent.
    MissingField(&'static str),
    /// A field of another kind is present.
    UnexpectedField(&'static str),
    /// A number is outside its documented range.
    OutOfRange(&'static str),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::MissingField(n) => write!(f, "event field `{n}` is required for this kind"),
            EventError::UnexpectedField(n) => {
                write!(f, "event field `{n}` does not belong to this kind")
            }
            EventError::OutOfRange(n) => write!(f, "event field `{n}` is out of range"),
        }
    }
}

fn need<T>(v: Option<T>, name: &'static str) -> Result<T, EventError> {
    v.ok_or(EventError::MissingField(name))
}

impl TryFrom<WireEvent> for Event {
    type Error = EventError;

    fn try_from(w: WireEvent) -> Result<Self, EventError> {
        if w.uptime_ms > MAX_UPTIME_MS {
            return Err(EventError::OutOfRange("uptime_ms"));
        }
        // Which optional fields this kind owns; every other one must be absent.
        let owned: &[&str] = match w.kind {
            EventKind::Progress => &["delivered_ul", "rate_ul_h", "index_version"],
            EventKind::State => &["state"],
            EventKind::Alarm => &["alarm"],
            EventKind::Vitals => &["heart_rate_bpm", "spo2_pct", "tremor_score"],
        };
        let present: [(&'static str, bool); 8] = [
            ("delivered_ul", w.delivered_ul.is_some()),
            ("rate_ul_h", w.rate_ul_h.is_some()),
            ("index_version", w.index_version.is_some()),
            ("state", w.state.is_some()),
            ("alarm", w.alarm.is_some()),
            ("heart_rate_bpm", w.heart_rate_bpm.is_some()),
            ("spo2_pct", w.spo2_pct.is_some()),
            ("tremor_score", w.tremor_score.is_some()),
        ];
        if let Some((name, _)) = present
            .iter()
            .find(|(name, is)| *is && !owned.contains(name))
        {
            return Err(EventError::UnexpectedField(name));
        }
        let body = match w.kind {
            EventKind::Progress => {
                let rate_ul_h = need(w.rate_ul_h, "rate_ul_h")?;
                if rate_ul_h > MAX_RATE_UL_H {
                    return Err(EventError::OutOfRange("rate_ul_h"));
                }
                EventBody::Progress(Progress {
                    delivered_ul: need(w.delivered_ul, "delivered_ul")?,
                    rate_ul_h,
                    index_version: need(w.index_version, "index_version")?,
                })
            }
            EventKind::State => EventBody::State(need(w.state, "state")?),
            EventKind::Alarm => EventBody::Alarm(need(w.alarm, "alarm")?),
            EventKind::Vitals => {
                let v = Vitals {
                    heart_rate_bpm: need(w.heart_rate_bpm, "heart_rate_bpm")?,
                    spo2_pct: need(w.spo2_pct, "spo2_pct")?,
                    tremor_score: need(w.tremor_score, "tremor_score")?,
                };
                if v.heart_rate_bpm == 0 || v.heart_rate_bpm > MAX_HEART_RATE_BPM {
                    return Err(EventError::OutOfRange("heart_rate_bpm"));
                }
                if v.spo2_pct > MAX_SPO2_PCT {
                    return Err(EventError::OutOfRange("spo2_pct"));
                }
                if v.tremor_score > MAX_TREMOR_SCORE {
                    return Err(EventError::OutOfRange("tremor_score"));
                }
                EventBody::Vitals(v)
            }
        };
        Ok(Event {
            seq: w.seq,
            uptime_ms: w.uptime_ms,
            body,
        })
    }
}

impl From<Event> for WireEvent {
    fn from(e: Event) -> Self {
        let mut w = WireEvent {
            seq: e.seq,
            uptime_ms: e.uptime_ms,
            kind: e.body.kind(),
            delivered_ul: None,
            rate_ul_h: None,
            index_version: None,
            state: None,
            alarm: None,
            heart_rate_bpm: None,
            spo2_pct: None,
            tremor_score: None,
        };
        match e.body {
            EventBody::Progress(p) => {
                w.delivered_ul = Some(p.delivered_ul);
                w.rate_ul_h = Some(p.rate_ul_h);
                w.index_version = Some(p.index_version);
            }
            EventBody::State(s) => w.state = Some(s),
            EventBody::Alarm(a) => w.alarm = Some(a),
            EventBody::Vitals(v) => {
                w.heart_rate_bpm = Some(v.heart_rate_bpm);
                w.spo2_pct = Some(v.spo2_pct);
                w.tremor_score = Some(v.tremor_score);
            }
        }
        w
    }
}

impl EventBody {
    /// The `kind` this body is written with.
    pub fn kind(&self) -> EventKind {
        match self {
            EventBody::Progress(_) => EventKind::Progress,
            EventBody::State(_) => EventKind::State,
            EventBody::Alarm(_) => EventKind::Alarm,
            EventBody::Vitals(_) => EventKind::Vitals,
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Event {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <WireEvent as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Event {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Event")
    }

    /// The schemas the wire form refers to (`Alarm`, `StateChange`, the
    /// kind): without them the document has references that resolve to
    /// nothing, and clients generated from it cannot read an alarm.
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <WireEvent as utoipa::ToSchema>::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn each_kind_round_trips() {
        for json in [
            r#"{"seq":1,"uptime_ms":10,"kind":"progress","delivered_ul":5,"rate_ul_h":4000,"index_version":2}"#,
            r#"{"seq":2,"uptime_ms":11,"kind":"state","state":"adjusted"}"#,
            r#"{"seq":3,"uptime_ms":12,"kind":"alarm","alarm":"limits_refused"}"#,
            r#"{"seq":4,"uptime_ms":13,"kind":"vitals","heart_rate_bpm":72,"spo2_pct":98,"tremor_score":12}"#,
        ] {
            let e = parse(json).unwrap();
            assert_eq!(serde_json::to_string(&e).unwrap(), json);
        }
    }

    #[test]
    fn refuses_missing_foreign_and_unknown_fields() {
        assert!(parse(r#"{"seq":1,"uptime_ms":10,"kind":"progress","delivered_ul":5}"#).is_err());
        assert!(
            parse(
                r#"{"seq":2,"uptime_ms":11,"kind":"state","state":"paused","alarm":"occlusion"}"#
            )
            .is_err()
        );
        assert!(
            parse(r#"{"seq":2,"uptime_ms":11,"kind":"state","state":"paused","x":1}"#).is_err()
        );
        assert!(parse(r#"{"seq":2,"uptime_ms":11,"kind":"nap"}"#).is_err());
        assert!(parse(r#"{"seq":2,"uptime_ms":11,"kind":"alarm","alarm":"fire"}"#).is_err());
    }

    #[test]
    fn refuses_out_of_range_numbers() {
        assert!(parse(r#"{"seq":-1,"uptime_ms":10,"kind":"state","state":"paused"}"#).is_err());
        assert!(
            parse(r#"{"seq":4294967296,"uptime_ms":10,"kind":"state","state":"paused"}"#).is_err()
        );
        assert!(
            parse(r#"{"seq":1,"uptime_ms":9007199254740992,"kind":"state","state":"paused"}"#)
                .is_err()
        );
        assert!(parse(r#"{"seq":1,"uptime_ms":1,"kind":"progress","delivered_ul":5,"rate_ul_h":200001,"index_version":1}"#).is_err());
        assert!(parse(r#"{"seq":1,"uptime_ms":1,"kind":"vitals","heart_rate_bpm":0,"spo2_pct":98,"tremor_score":1}"#).is_err());
        assert!(parse(r#"{"seq":1,"uptime_ms":1,"kind":"vitals","heart_rate_bpm":60,"spo2_pct":101,"tremor_score":1}"#).is_err());
        assert!(parse(r#"{"seq":1,"uptime_ms":1,"kind":"vitals","heart_rate_bpm":60,"spo2_pct":98,"tremor_score":101}"#).is_err());
    }
}
