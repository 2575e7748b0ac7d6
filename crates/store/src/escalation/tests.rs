use super::*;
use crate::{AccountId, Member, Role, WardId};

const POLICY: Policy = Policy {
    to_ward_after_ms: 60_000,
    to_physician_after_ms: 120_000,
};

fn member(id: i64, name: &str) -> Member {
    Member {
        account: AccountId(id),
        username: name.into(),
    }
}

/// Nina looks after the patient (when `nurse`); nell and nina are the
/// ward's nurses (when `ward`); dr.house is the physician; carla a
/// caregiver.
fn team(nurse: bool, ward: bool) -> Team {
    Team {
        nurse: nurse.then(|| member(1, "nina")),
        ward: ward.then_some(POLICY),
        ward_nurses: if ward {
            vec![member(2, "nell"), member(1, "nina")]
        } else {
            Vec::new()
        },
        physician: Some(member(3, "dr.house")),
        caregivers: vec![member(4, "carla")],
    }
}

fn row(step: Step, team: Team) -> EscalationRow {
    EscalationRow {
        id: 5,
        patient: PatientId(3),
        username: "alice".into(),
        alarm: "occlusion".into(),
        priority: Priority::High,
        event_id: Some(11),
        raised_at_ms: 1_000,
        step,
        next_step_at_ms: Some(61_000),
        silenced_until_ms: None,
        acknowledged: None,
        cleared_at_ms: None,
        team,
    }
}

#[test]
fn the_steps_go_from_the_patients_nurse_to_the_ward_to_the_physician() {
    assert_eq!(team(true, true).steps(), Step::ALL);
    assert_eq!(
        team(false, true).steps(),
        [Step::WardNurses, Step::Physician]
    );
    // Without a ward there is only the physician (a nurse without a ward
    // cannot be).
    assert_eq!(team(false, false).steps(), [Step::Physician]);
    let t = team(true, true);
    assert_eq!(
        t.after(Step::PatientNurse),
        Some((Step::WardNurses, 60_000))
    );
    assert_eq!(t.after(Step::WardNurses), Some((Step::Physician, 120_000)));
    assert_eq!(t.after(Step::Physician), None);
    assert_eq!(t.due_after(Step::PatientNurse, 5), Some(60_005));
    // A team that changed since: the next step is the first beyond.
    assert_eq!(
        team(false, true).after(Step::PatientNurse),
        Some((Step::WardNurses, 60_000))
    );
    for s in Step::ALL {
        assert_eq!(Step::parse(s.as_str()), Some(s));
    }
    let raised = raise(
        PatientId(3),
        AlarmRef::Event(1),
        "occlusion",
        Priority::High,
        &t,
        10,
    );
    assert!(matches!(
        &raised.alarms[0],
        AlarmEffect::Raise {
            step: Step::PatientNurse,
            next_step_at_ms: Some(60_010),
            recipients,
            ..
        } if recipients == &[AccountId(1), AccountId(4)]
    ));
    // The audit names whom it was sent to.
    assert_eq!(raised.audit[0].action, AuditAction::AlarmSent);
    assert_eq!(
        raised.audit[0].detail,
        "occlusion alarm (high priority) sent to the patient's nurse (nina) and the caregivers \
         (carla)"
    );
}

#[test]
fn a_due_alarm_tells_the_next_step_unless_silenced_or_ended() {
    let r = row(Step::PatientNurse, team(true, true));
    let e = step_due(&r, 61_000);
    assert_eq!(
        e.alarms,
        [AlarmEffect::Step {
            escalation: 5,
            step: Step::WardNurses,
            next_step_at_ms: Some(181_000),
            at_ms: 61_000,
            recipients: vec![AccountId(2), AccountId(1)],
        }]
    );
    assert_eq!(e.audit[0].action, AuditAction::AlarmEscalated);
    assert_eq!(
        e.audit[0].detail,
        "occlusion alarm of alice (high priority) told to every nurse of the ward (nell, nina): \
         not acknowledged 60 s after it was raised"
    );
    // Silenced: it waits for the silence to end, telling no one.
    let quiet = EscalationRow {
        silenced_until_ms: Some(90_000),
        ..r.clone()
    };
    let e = step_due(&quiet, 61_000);
    assert!(e.audit.is_empty());
    assert_eq!(
        e.alarms,
        [AlarmEffect::Postpone {
            escalation: 5,
            next_step_at_ms: Some(90_000),
            silenced: None
        }]
    );
    // After the silence it goes on.
    assert!(matches!(
        step_due(&quiet, 90_000).alarms[0],
        AlarmEffect::Step { .. }
    ));
    // Acknowledged or told to the last step: nothing more.
    for done in [
        EscalationRow {
            acknowledged: Some((50_000, "user:nina".into())),
            ..r.clone()
        },
        row(Step::Physician, team(true, true)),
    ] {
        let e = step_due(&done, 61_000);
        assert!(e.audit.is_empty());
        assert!(matches!(
            e.alarms[0],
            AlarmEffect::Postpone {
                next_step_at_ms: None,
                ..
            }
        ));
    }
}

#[test]
fn a_silence_holds_the_next_step_back_for_two_minutes() {
    let r = row(Step::PatientNurse, team(true, true));
    let e = silenced(Some(&r), "user:nina", 30_000).unwrap();
    assert_eq!(
        e.alarms,
        [AlarmEffect::Postpone {
            escalation: 5,
            next_step_at_ms: Some(150_000),
            silenced: Some((150_000, "user:nina".into()))
        }]
    );
    assert_eq!(e.audit[0].action, AuditAction::AlarmSilenced);
    // A step due after the silence keeps its time.
    let later = EscalationRow {
        next_step_at_ms: Some(400_000),
        ..r.clone()
    };
    let e = silenced(Some(&later), "user:nina", 30_000).unwrap();
    assert!(matches!(
        e.alarms[0],
        AlarmEffect::Postpone {
            next_step_at_ms: Some(400_000),
            ..
        }
    ));
    let acked = EscalationRow {
        acknowledged: Some((1, "user:x".into())),
        ..r
    };
    assert!(matches!(
        silenced(Some(&acked), "x", 0),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        silenced(None, "x", 0),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn an_acknowledgement_ends_the_escalation_once() {
    let r = row(Step::WardNurses, team(true, true));
    let e = acknowledged(Some(&r), "user:nina", 70_000)
        .unwrap()
        .unwrap();
    assert_eq!(
        e.alarms,
        [AlarmEffect::End {
            source: AlarmRef::Escalation(5),
            event: NoticeEvent::Acknowledged,
            by: Some("user:nina".into()),
            at_ms: 70_000
        }]
    );
    let again = EscalationRow {
        acknowledged: Some((70_000, "user:nina".into())),
        ..r.clone()
    };
    assert_eq!(acknowledged(Some(&again), "user:dr", 80_000).unwrap(), None);
    let cleared = EscalationRow {
        cleared_at_ms: Some(65_000),
        ..r
    };
    assert!(matches!(
        acknowledged(Some(&cleared), "x", 0),
        Err(StoreError::Conflict(_))
    ));
}

#[test]
fn only_a_nurse_of_the_ward_looks_after_its_patient() {
    let ward = Some(WardId(7));
    let p = PatientId(3);
    let ok = nurse_set(
        Some("nina"),
        Some((Role::Nurse, ward)),
        ward,
        p,
        "alice",
        "user:nina",
        5,
    );
    assert_eq!(ok.unwrap().audit[0].action, AuditAction::PatientNurseSet);
    for found in [
        None,
        Some((Role::Nurse, Some(WardId(8)))),
        Some((Role::Physician, None)),
        Some((Role::Caregiver, ward)),
    ] {
        assert!(matches!(
            nurse_set(Some("x"), found, ward, p, "alice", "a", 5),
            Err(StoreError::NotFound(_))
        ));
    }
    assert!(nurse_set(None, None, ward, p, "alice", "a", 5).is_ok());
}

#[test]
fn a_policy_waits_between_ten_seconds_and_an_hour() {
    let e = policy_set("4B", true, &POLICY, "admin-cli", 0).unwrap();
    assert_eq!(e.audit[0].action, AuditAction::EscalationPolicySet);
    assert!(matches!(
        policy_set("9Z", false, &POLICY, "x", 0),
        Err(StoreError::NotFound(_))
    ));
    for bad in [
        Policy {
            to_ward_after_ms: 9_999,
            ..POLICY
        },
        Policy {
            to_physician_after_ms: 3_600_001,
            ..POLICY
        },
    ] {
        assert!(matches!(
            policy_set("4B", true, &bad, "x", 0),
            Err(StoreError::Invalid(_))
        ));
    }
}
