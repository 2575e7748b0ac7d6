//! The server's own alarm, `pump_silent`: raised when a pump that should
//! be polling has not been heard from for a configurable time, cleared
//! when it is heard from again (or unbound). A network fault never stops
//! therapy (the pump carries on, or stops, as its loss-of-link policy
//! says), but it must be seen. A sweep is one transaction; with several
//! server instances a unique index on the open alarm lets each raise and
//! each clear happen once, whichever instance sweeps first.

use async_trait::async_trait;
use infusion_protocol::PatientId;

use crate::{
    AlarmEffect, AlarmRef, AuditAction, Change, DeviceId, Effects, NewAudit, NoticeEvent, Priority,
    StoreResult, Team, raise,
};

/// The code of the server's alarm, beside the pump's own.
pub const PUMP_SILENT: &str = "pump_silent";

/// Which pumps should be polling, over `devices d` and the patient's
/// `accounts a`: bound, heard from at least once (a pump never switched on
/// is not silent), of an enabled account. Written once for both backends'
/// sweeps.
pub const SHOULD_POLL: &str =
    "d.retired_at_ms IS NULL AND d.last_seen_ms IS NOT NULL AND a.disabled_at_ms IS NULL";

/// Sweeping for silent pumps.
#[async_trait]
pub trait Watchdog: Send + Sync {
    /// In one transaction: raises `pump_silent` for every pump that should
    /// be polling ([`SHOULD_POLL`]), was last heard from before `now_ms -
    /// silent_after_ms` and has none open; clears every open one whose pump
    /// was heard from since (or was unbound). Returns what changed, as
    /// [`swept`] records it.
    async fn sweep_silent(&self, now_ms: i64, silent_after_ms: i64) -> StoreResult<Swept>;
}

/// One pump's silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    /// Whose pump.
    pub patient: PatientId,
    /// Which registration.
    pub device: DeviceId,
    /// When it was last heard from before the silence.
    pub last_heard_ms: i64,
    /// The server alarm's row.
    pub alarm: i64,
    /// The patient's team, which a raise is told to (read by the backend
    /// for a raise; [`Team::NONE`] for a clear).
    pub team: Team,
}

/// What one sweep changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Silences raised by this sweep.
    pub raised: Vec<Silence>,
    /// Silences cleared by this sweep.
    pub cleared: Vec<Silence>,
}

/// Decides what a sweep leaves besides its rows: an audit entry for each
/// silence raised and cleared (by `server`, the watchdog), and the
/// announcements that refresh the pages showing those patients.
pub fn swept(s: &Swept, now_ms: i64) -> Effects {
    let mut effects = Effects::none();
    for r in &s.raised {
        let secs = (now_ms - r.last_heard_ms).max(0) / 1000;
        effects = effects
            .and_audit(NewAudit::of(
                now_ms,
                "server",
                AuditAction::PumpSilent,
                Some(r.patient),
                format!("{PUMP_SILENT}: no word from the pump for {secs} s"),
            ))
            .then(raise(
                r.patient,
                AlarmRef::Server(r.alarm),
                PUMP_SILENT,
                Priority::SILENT,
                &r.team,
                now_ms,
            ))
            .and_announce(Change::Events { patient: r.patient });
    }
    for c in &s.cleared {
        effects = effects
            .and_audit(NewAudit::of(
                now_ms,
                "server",
                AuditAction::PumpHeardAgain,
                Some(c.patient),
                format!("{PUMP_SILENT} cleared: the pump was heard from again or unbound"),
            ))
            .and_alarm(AlarmEffect::End {
                source: AlarmRef::Server(c.alarm),
                event: NoticeEvent::Cleared,
                by: None,
                at_ms: now_ms,
            })
            .and_announce(Change::Events { patient: c.patient });
    }
    effects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_raise_and_clear_is_audited_and_announced() {
        let one = Silence {
            patient: PatientId(3),
            device: DeviceId(9),
            last_heard_ms: 1_000,
            alarm: 8,
            team: Team::NONE,
        };
        let s = Swept {
            raised: vec![one.clone()],
            cleared: vec![one],
        };
        let e = swept(&s, 18_500);
        assert_eq!(
            e.audit.len(),
            3,
            "the silence, whom it was sent to, the clear"
        );
        assert_eq!(
            e.audit[0].detail,
            "pump_silent: no word from the pump for 17 s"
        );
        assert_eq!(e.audit[1].action, AuditAction::AlarmSent);
        assert_eq!(e.audit[2].action, AuditAction::PumpHeardAgain);
        assert_eq!(e.changes.len(), 2);
        // The raise starts an escalation; the clear ends it.
        assert!(matches!(
            e.alarms[..],
            [
                AlarmEffect::Raise {
                    source: AlarmRef::Server(8),
                    ..
                },
                AlarmEffect::End {
                    source: AlarmRef::Server(8),
                    event: NoticeEvent::Cleared,
                    ..
                }
            ]
        ));
        assert!(swept(&Swept::default(), 0).audit.is_empty());
    }
}
