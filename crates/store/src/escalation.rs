//! How an alarm reaches people: it is told first to the patient's nurse
//! (or, without one, to every nurse of the ward; without a ward, to the
//! physician), and while no one acknowledges it, it escalates along the
//! ward's policy: after `to_ward_after` to every nurse of the ward, after
//! `to_physician_after` more to the physician. A silence holds the next
//! step back for [`SILENCE_MS`] without ending the alarm; an
//! acknowledgement ends the escalation; an alarm that happens again after
//! its acknowledgement is a new alarm (a new event, a new silence), with
//! an escalation of its own. The patient's caregivers are told of every
//! raise. Each step is a notification in the outbox, written in the
//! transaction of the alarm or the step, and audited.

use async_trait::async_trait;
use infusion_protocol::PatientId;

use crate::{
    AccountId, AuditAction, Change, DeviceId, Effects, Member, NewAudit, POLICY_RANGE_MS, Policy,
    Priority, StoreError, StoreResult, Team, names,
};

/// How long a silence holds an alarm's next step back: two minutes, as
/// infusion pumps' own audio pause.
pub const SILENCE_MS: i64 = 120_000;

/// Who one step of an escalation tells, in the order they are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// The nurse looking after the patient now.
    PatientNurse,
    /// Every nurse of the patient's ward.
    WardNurses,
    /// The patient's physician.
    Physician,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 3] = [Step::PatientNurse, Step::WardNurses, Step::Physician];

    /// The step as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::PatientNurse => "patient_nurse",
            Step::WardNurses => "ward_nurses",
            Step::Physician => "physician",
        }
    }

    /// The inverse of [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Step> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Who it tells, in words.
    pub fn words(self) -> &'static str {
        match self {
            Step::PatientNurse => "the patient's nurse",
            Step::WardNurses => "every nurse of the ward",
            Step::Physician => "the physician",
        }
    }
}

/// Everyone escalation `?1` has told, as SQL: whom its end is told to.
pub const TOLD_SQL: &str = "SELECT DISTINCT r.account_id AS account_id
    FROM notification_recipients r JOIN notifications n ON n.id = r.notification_id
    WHERE n.escalation_id = ?1";

/// What an alarm of an escalation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmRef {
    /// A pump's alarm event being stored now: its device and number.
    Reported {
        /// The reporting device.
        device: DeviceId,
        /// The event's number.
        seq: u32,
    },
    /// A stored pump alarm event, by id.
    Event(i64),
    /// A server alarm (`pump_silent`), by id.
    Server(i64),
    /// The escalation itself, by id.
    Escalation(i64),
}

/// What happened to an escalation, as a notification says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeEvent {
    /// The alarm was raised: its first step is told.
    Raised,
    /// No one acknowledged it: the next step is told.
    Escalated,
    /// Someone acknowledged it: the escalation ends.
    Acknowledged,
    /// Its condition is gone (a silent pump heard again).
    Cleared,
}

impl NoticeEvent {
    /// The event as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeEvent::Raised => "raised",
            NoticeEvent::Escalated => "escalated",
            NoticeEvent::Acknowledged => "acknowledged",
            NoticeEvent::Cleared => "cleared",
        }
    }

    /// The inverse of [`Self::as_str`].
    pub fn parse(s: &str) -> Option<NoticeEvent> {
        [
            Self::Raised,
            Self::Escalated,
            Self::Acknowledged,
            Self::Cleared,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// What a decision leaves for the alarm tables: each backend writes it,
/// with its notification and recipients, in the decision's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmEffect {
    /// An alarm raised: its escalation starts at `step`, the next due at
    /// `next_step_at_ms`; notification `raised` to the step and the
    /// caregivers. Nothing when the alarm has an escalation already.
    Raise {
        /// Whose alarm.
        patient: PatientId,
        /// Which alarm.
        source: AlarmRef,
        /// Its code.
        alarm: String,
        /// Its priority.
        priority: Priority,
        /// When.
        at_ms: i64,
        /// The first step.
        step: Step,
        /// When the next is due.
        next_step_at_ms: Option<i64>,
        /// Whom it tells: the step's people and the caregivers.
        recipients: Vec<AccountId>,
    },
    /// An open escalation ends (`Acknowledged` or `Cleared`): notification
    /// to everyone it told. Nothing when it ended already.
    End {
        /// Which alarm.
        source: AlarmRef,
        /// How.
        event: NoticeEvent,
        /// Who acknowledged it (an audit actor), if someone did.
        by: Option<String>,
        /// When.
        at_ms: i64,
    },
    /// The escalation `escalation` told `step` now: notification
    /// `escalated` to it.
    Step {
        /// Which escalation.
        escalation: i64,
        /// The step told.
        step: Step,
        /// When the next is due.
        next_step_at_ms: Option<i64>,
        /// When.
        at_ms: i64,
        /// Whom it tells.
        recipients: Vec<AccountId>,
    },
    /// The next step of `escalation` waits until `next_step_at_ms`
    /// (silenced until `silenced_until_ms` by `by`, when given).
    Postpone {
        /// Which escalation.
        escalation: i64,
        /// When the next step is due now.
        next_step_at_ms: Option<i64>,
        /// The silence, if this is one: until when, and by whom.
        silenced: Option<(i64, String)>,
    },
}

/// An escalation as the tables hold it, with the patient's team now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationRow {
    /// The row.
    pub id: i64,
    /// Whose.
    pub patient: PatientId,
    /// The patient's username, for the audit.
    pub username: String,
    /// The alarm's code.
    pub alarm: String,
    /// Its priority.
    pub priority: Priority,
    /// The pump's alarm event, if it is one (else a server alarm).
    pub event_id: Option<i64>,
    /// When it was raised.
    pub raised_at_ms: i64,
    /// The step told last.
    pub step: Step,
    /// When the next step is due.
    pub next_step_at_ms: Option<i64>,
    /// Silenced until.
    pub silenced_until_ms: Option<i64>,
    /// Acknowledged: when and by whom.
    pub acknowledged: Option<(i64, String)>,
    /// When its condition was gone.
    pub cleared_at_ms: Option<i64>,
    /// The patient's team now (read after the row, [`Team::NONE`] until
    /// then).
    pub team: Team,
}

impl EscalationRow {
    /// The select list, over `alarm_escalations x`, `patients p` and
    /// `accounts a` (the patient's).
    pub const COLUMNS: &'static str = "x.id, x.patient_id, a.username, x.alarm, x.priority,
        x.event_id, x.raised_at_ms, x.step, x.next_step_at_ms, x.silenced_until_ms,
        x.acknowledged_at_ms, x.acknowledged_by, x.cleared_at_ms";

    /// The joins [`Self::COLUMNS`] reads over, after `FROM alarm_escalations x`.
    pub const JOINS: &'static str = "JOIN patients p ON p.id = x.patient_id
        JOIN accounts a ON a.id = p.account_id";

    /// A row selected with [`Self::COLUMNS`].
    pub fn from_row(c: &impl crate::Columns) -> StoreResult<EscalationRow> {
        let bad = |what: &str, v: &str| StoreError::Backend(format!("bad stored {what} {v:?}"));
        let priority = c.string(4)?;
        let step = c.string(7)?;
        Ok(EscalationRow {
            id: c.i64(0)?,
            patient: crate::patient_at(c, 1)?,
            username: c.string(2)?,
            alarm: c.string(3)?,
            priority: Priority::parse(&priority).ok_or_else(|| bad("priority", &priority))?,
            event_id: c.int(5)?,
            raised_at_ms: c.i64(6)?,
            step: Step::parse(&step).ok_or_else(|| bad("step", &step))?,
            next_step_at_ms: c.int(8)?,
            silenced_until_ms: c.int(9)?,
            acknowledged: match (c.int(10)?, c.text(11)?) {
                (Some(t), Some(by)) => Some((t, by)),
                _ => None,
            },
            cleared_at_ms: c.int(12)?,
            team: Team::NONE,
        })
    }

    /// Still escalating or silenced: neither acknowledged nor cleared.
    pub fn open(&self) -> bool {
        self.acknowledged.is_none() && self.cleared_at_ms.is_none()
    }
}

/// Escalating alarms, silencing and acknowledging them; one transaction
/// per method.
#[async_trait]
pub trait Escalations: Send + Sync {
    /// Tells the next step of every escalation due at `now_ms`, as
    /// [`step_due`] decides. With several instances each due escalation is
    /// stepped by one. Returns how many were stepped or postponed.
    async fn escalate_due(&self, now_ms: i64) -> StoreResult<usize>;

    /// Silences `patient`'s escalation `escalation`, as [`silenced`]
    /// decides.
    async fn silence_alarm(
        &self,
        patient: PatientId,
        escalation: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Acknowledges `patient`'s escalation `escalation`, as
    /// [`acknowledged`] decides; a pump's alarm leaves the open alarms
    /// with it. False when it was acknowledged already.
    async fn acknowledge_escalation(
        &self,
        patient: PatientId,
        escalation: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool>;

    /// `patient`'s newest escalations (at most `limit`), open first, each
    /// with its notifications in order.
    async fn escalations(&self, patient: PatientId, limit: u32) -> StoreResult<Vec<Escalation>>;

    /// Makes `nurse` (an account of the patient's ward, or `None`) the
    /// nurse looking after `patient`, as [`nurse_set`] decides.
    async fn set_patient_nurse(
        &self,
        patient: PatientId,
        nurse: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Sets the ward `ward`'s escalation policy, as [`policy_set`] decides.
    async fn set_escalation_policy(
        &self,
        ward: &str,
        policy: Policy,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;
}

/// One escalation and its notifications, for the patient page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// The escalation.
    pub row: EscalationRow,
    /// Its notifications in order: event, step, when, and whom they told
    /// (usernames).
    pub notices: Vec<(NoticeEvent, Step, i64, Vec<String>)>,
}

/// Decides the raise of `alarm` for a patient with `team`: the first step
/// and its people, the caregivers, when the next step is due, and the
/// audit entry naming whom it was sent to.
pub fn raise(
    patient: PatientId,
    source: AlarmRef,
    alarm: &str,
    priority: Priority,
    team: &Team,
    at_ms: i64,
) -> Effects {
    let step = team.first();
    let told = team.told(step);
    let carers: Vec<&Member> = team.caregivers.iter().collect();
    let mut detail = format!(
        "{alarm} alarm ({} priority) sent to {} ({})",
        priority.as_str(),
        step.words(),
        names(&told)
    );
    if !carers.is_empty() {
        detail.push_str(&format!(" and the caregivers ({})", names(&carers)));
    }
    let recipients = told
        .iter()
        .chain(carers.iter())
        .map(|m| m.account)
        .collect();
    Effects::audit(NewAudit::of(
        at_ms,
        "server",
        AuditAction::AlarmSent,
        Some(patient),
        detail,
    ))
    .and_alarm(AlarmEffect::Raise {
        patient,
        source,
        alarm: alarm.to_owned(),
        priority,
        at_ms,
        step,
        next_step_at_ms: team.due_after(step, at_ms),
        recipients,
    })
}

/// Decides what a due escalation does at `now_ms`: nothing once it ended;
/// wait out a silence; else tell the next step of the team it has now,
/// audited with whom and why.
pub fn step_due(row: &EscalationRow, now_ms: i64) -> Effects {
    if !row.open() {
        return Effects::none().and_alarm(AlarmEffect::Postpone {
            escalation: row.id,
            next_step_at_ms: None,
            silenced: None,
        });
    }
    if let Some(until) = row.silenced_until_ms.filter(|u| *u > now_ms) {
        return Effects::none().and_alarm(AlarmEffect::Postpone {
            escalation: row.id,
            next_step_at_ms: Some(until),
            silenced: None,
        });
    }
    let Some((next, _)) = row.team.after(row.step) else {
        return Effects::none().and_alarm(AlarmEffect::Postpone {
            escalation: row.id,
            next_step_at_ms: None,
            silenced: None,
        });
    };
    let waited = (now_ms - row.raised_at_ms).max(0) / 1000;
    let told = row.team.told(next);
    let audit = NewAudit::of(
        now_ms,
        "server",
        AuditAction::AlarmEscalated,
        Some(row.patient),
        format!(
            "{} alarm of {} ({} priority) told to {} ({}): not acknowledged {} s after it was \
             raised",
            row.alarm,
            row.username,
            row.priority.as_str(),
            next.words(),
            names(&told),
            waited
        ),
    );
    Effects::audit(audit)
        .and_alarm(AlarmEffect::Step {
            escalation: row.id,
            step: next,
            next_step_at_ms: row.team.due_after(next, now_ms),
            at_ms: now_ms,
            recipients: told.iter().map(|m| m.account).collect(),
        })
        .and_announce(Change::Events {
            patient: row.patient,
        })
}

/// Decides silencing `row` (`None`: no such escalation of this patient)
/// by `actor`: for [`SILENCE_MS`] from now, holding the next step back
/// until then; an ended alarm has nothing to silence.
pub fn silenced(row: Option<&EscalationRow>, actor: &str, now_ms: i64) -> StoreResult<Effects> {
    let row = row.ok_or_else(|| StoreError::NotFound("no such alarm".into()))?;
    if !row.open() {
        return Err(StoreError::Conflict(
            "this alarm was acknowledged or has cleared: there is nothing to silence".into(),
        ));
    }
    let until = now_ms + SILENCE_MS;
    let next = row.next_step_at_ms.map(|n| n.max(until));
    let audit = NewAudit::of(
        now_ms,
        actor,
        AuditAction::AlarmSilenced,
        Some(row.patient),
        format!(
            "{} alarm of {} silenced for {} min: no one more is told before {}",
            row.alarm,
            row.username,
            SILENCE_MS / 60_000,
            crate::utc_time(until)
        ),
    );
    Ok(Effects::audit(audit)
        .and_alarm(AlarmEffect::Postpone {
            escalation: row.id,
            next_step_at_ms: next,
            silenced: Some((until, actor.to_owned())),
        })
        .and_announce(Change::Events {
            patient: row.patient,
        }))
}

/// Decides acknowledging `row` (`None`: no such escalation of this
/// patient) by `actor`: `Ok(None)` when it was acknowledged already (the
/// first acknowledgement stands); a cleared alarm is a conflict.
pub fn acknowledged(
    row: Option<&EscalationRow>,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Option<Effects>> {
    let row = row.ok_or_else(|| StoreError::NotFound("no such alarm".into()))?;
    if row.acknowledged.is_some() {
        return Ok(None);
    }
    if row.cleared_at_ms.is_some() {
        return Err(StoreError::Conflict(
            "this alarm has cleared already: there is nothing to acknowledge".into(),
        ));
    }
    let audit = NewAudit::of(
        now_ms,
        actor,
        AuditAction::AlarmAcknowledged,
        Some(row.patient),
        format!(
            "{} alarm of {} acknowledged: its escalation ends",
            row.alarm, row.username
        ),
    );
    Ok(Some(
        Effects::audit(audit)
            .and_alarm(AlarmEffect::End {
                source: AlarmRef::Escalation(row.id),
                event: NoticeEvent::Acknowledged,
                by: Some(actor.to_owned()),
                at_ms: now_ms,
            })
            .and_announce(Change::AlarmAcknowledged {
                patient: row.patient,
            }),
    ))
}

/// Decides the nurse looking after a patient: `found` is the named
/// account's role and ward as read (`None`: no such account), `ward` the
/// patient's ward. Only a nurse of the patient's ward.
pub fn nurse_set(
    wanted: Option<&str>,
    found: Option<(crate::Role, Option<crate::WardId>)>,
    ward: Option<crate::WardId>,
    patient: PatientId,
    username: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Effects> {
    let detail = match wanted {
        None => format!("no nurse looks after {username} now"),
        Some(nurse) => {
            let of_ward = matches!(found, Some((crate::Role::Nurse, Some(w))) if Some(w) == ward);
            if !of_ward {
                return Err(StoreError::NotFound(format!(
                    "no nurse named {nurse:?} on {username}'s ward"
                )));
            }
            format!("{nurse} looks after {username} now, and is told of alarms first")
        }
    };
    let audit = NewAudit::of(
        now_ms,
        actor,
        AuditAction::PatientNurseSet,
        Some(patient),
        detail,
    );
    Ok(Effects::audit(audit).and_announce(Change::Events { patient }))
}

/// Decides a ward's escalation policy: each wait within
/// [`POLICY_RANGE_MS`].
pub fn policy_set(
    ward: &str,
    found: bool,
    p: &Policy,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Effects> {
    if !found {
        return Err(StoreError::NotFound(format!("no ward named {ward:?}")));
    }
    let (lo, hi) = POLICY_RANGE_MS;
    for (what, ms) in [
        ("to every nurse of the ward", p.to_ward_after_ms),
        ("to the physician", p.to_physician_after_ms),
    ] {
        if !(lo..=hi).contains(&ms) {
            return Err(StoreError::Invalid(format!(
                "the wait before an alarm goes {what} is {} s to {} s",
                lo / 1000,
                hi / 1000
            )));
        }
    }
    let audit = NewAudit::of(
        now_ms,
        actor,
        AuditAction::EscalationPolicySet,
        None,
        format!(
            "ward {ward}: an unacknowledged alarm goes to every nurse of the ward after {} s, to \
             the physician {} s later",
            p.to_ward_after_ms / 1000,
            p.to_physician_after_ms / 1000
        ),
    );
    Ok(Effects::audit(audit))
}

#[cfg(test)]
mod tests;
