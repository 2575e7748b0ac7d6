//! The change feed: what a store tells every server instance after a commit.
//!
//! A pump polls, so it needs no push; but a physician's live dashboard, an
//! alarm banner or a web session revoked on another instance must learn of
//! a change made anywhere. The SQLite store announces its own commits in
//! process; the PostgreSQL store sends each change with `NOTIFY` inside the
//! committing transaction, so every instance on the database hears it
//! exactly when (and only if) it commits. The payload is a short text, so a
//! change is small and parsing it back is total.

use infusion_protocol::{Alarm, PatientId};

use crate::AccountId;

/// One committed change, as announced to every subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new prescription version for a patient.
    Prescription {
        /// Whose prescription.
        patient: PatientId,
        /// The new version.
        version: u32,
    },
    /// A patient's limits changed.
    Limits {
        /// Whose limits.
        patient: PatientId,
    },
    /// New events (progress, state, vitals) were stored for a patient.
    Events {
        /// Whose events.
        patient: PatientId,
    },
    /// A device raised an alarm.
    Alarm {
        /// Whose pump.
        patient: PatientId,
        /// Which alarm.
        alarm: Alarm,
    },
    /// A physician acknowledged one of a patient's alarms.
    AlarmAcknowledged {
        /// Whose alarm.
        patient: PatientId,
    },
    /// A suggestion was made, approved or rejected for a patient.
    Suggestion {
        /// Whose.
        patient: PatientId,
    },
    /// A web session of this account ended (logout; later, a disabled
    /// account): its open live streams check their session at once and
    /// end if it was theirs, rather than at their next periodic check.
    SessionEnded {
        /// Whose session.
        account: AccountId,
    },
    /// Changes may have been missed (the notification connection was lost
    /// or a subscriber fell behind), or whom a page reaches changed (a
    /// patient put on a ward, a caregiver's access granted or revoked):
    /// reread whatever is shown.
    Resync,
}

impl Change {
    /// The change as a `NOTIFY` payload: `kind:patient[:detail]`.
    pub fn to_payload(&self) -> String {
        match self {
            Change::Prescription { patient, version } => {
                format!("prescription:{}:{version}", patient.0)
            }
            Change::Limits { patient } => format!("limits:{}", patient.0),
            Change::Events { patient } => format!("events:{}", patient.0),
            Change::Alarm { patient, alarm } => format!("alarm:{}:{}", patient.0, alarm.as_str()),
            Change::AlarmAcknowledged { patient } => format!("alarm_ack:{}", patient.0),
            Change::Suggestion { patient } => format!("suggestion:{}", patient.0),
            Change::SessionEnded { account } => format!("session_ended:{}", account.0),
            Change::Resync => "resync".to_owned(),
        }
    }

    /// Parses a payload made by [`Change::to_payload`]; `None` for anything
    /// else (a payload from a newer server version, say).
    pub fn from_payload(s: &str) -> Option<Change> {
        let mut parts = s.split(':');
        let kind = parts.next()?;
        if kind == "resync" {
            return parts.next().is_none().then_some(Change::Resync);
        }
        if kind == "session_ended" {
            let account = AccountId(parts.next()?.parse().ok()?);
            return parts
                .next()
                .is_none()
                .then_some(Change::SessionEnded { account });
        }
        let patient = PatientId(parts.next()?.parse().ok()?);
        let detail = parts.next();
        if parts.next().is_some() {
            return None;
        }
        match (kind, detail) {
            ("prescription", Some(v)) => Some(Change::Prescription {
                patient,
                version: v.parse().ok()?,
            }),
            ("limits", None) => Some(Change::Limits { patient }),
            ("events", None) => Some(Change::Events { patient }),
            ("alarm_ack", None) => Some(Change::AlarmAcknowledged { patient }),
            ("suggestion", None) => Some(Change::Suggestion { patient }),
            ("alarm", Some(a)) => Some(Change::Alarm {
                patient,
                alarm: Alarm::parse(a)?,
            }),
            _ => None,
        }
    }

    /// The patient a change concerns, if any.
    pub fn patient(&self) -> Option<PatientId> {
        match self {
            Change::Prescription { patient, .. }
            | Change::Limits { patient }
            | Change::Events { patient }
            | Change::Alarm { patient, .. }
            | Change::AlarmAcknowledged { patient }
            | Change::Suggestion { patient } => Some(*patient),
            Change::SessionEnded { .. } | Change::Resync => None,
        }
    }
}

/// How many changes a slow subscriber may fall behind before it is told to
/// resync instead.
pub const CHANGE_BACKLOG: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let p = PatientId(42);
        let all = [
            Change::Prescription {
                patient: p,
                version: 7,
            },
            Change::Limits { patient: p },
            Change::Events { patient: p },
            Change::Alarm {
                patient: p,
                alarm: Alarm::Occlusion,
            },
            Change::AlarmAcknowledged { patient: p },
            Change::Suggestion { patient: p },
            Change::SessionEnded {
                account: AccountId(9),
            },
            Change::Resync,
        ];
        for c in all {
            assert_eq!(Change::from_payload(&c.to_payload()), Some(c));
        }
    }

    #[test]
    fn foreign_payloads_are_refused() {
        for s in [
            "",
            "resync:1",
            "limits",
            "limits:x",
            "limits:1:2",
            "prescription:1",
            "prescription:1:-3",
            "alarm:1:meltdown",
            "future:1",
        ] {
            assert_eq!(Change::from_payload(s), None, "{s:?}");
        }
    }
}
