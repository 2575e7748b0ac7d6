use super::*;

const DAY: i64 = 24 * 3_600_000;

fn ward(id: i64, institution: i64) -> WardFound {
    WardFound {
        id: WardId(id),
        name: "4B".into(),
        institution,
        institution_name: "General".into(),
    }
}

fn caregiver_account(role: Role) -> AccountRecord {
    AccountRecord {
        account_id: AccountId(9),
        username: "carla".into(),
        role,
        first_name: "Carla".into(),
        last_name: "Diaz".into(),
        password_hash: "$argon2id$x".into(),
        disabled: false,
        must_change_password: false,
        has_second_factor: false,
        time_zone: "UTC".into(),
        ward: None,
    }
}

fn grant(ends_at_ms: i64, revoked_at_ms: Option<i64>) -> CaregiverGrant {
    CaregiverGrant {
        id: 1,
        patient: PatientId(3),
        account: AccountId(9),
        username: "carla".into(),
        first_name: "Carla".into(),
        last_name: "Diaz".into(),
        granted_by: "user:doc".into(),
        granted_at_ms: 0,
        ends_at_ms,
        revoked_at_ms,
    }
}

fn new_caregiver(ends_at_ms: i64, password: bool) -> NewCaregiver {
    NewCaregiver {
        patient: PatientId(3),
        username: "carla".into(),
        first_name: "Carla".into(),
        last_name: "Diaz".into(),
        password_hash: password.then(|| "$argon2id$x".to_owned()),
        ends_at_ms,
    }
}

#[test]
fn a_ward_needs_a_name_an_institution_and_no_twin() {
    let one = [(1, "General".to_owned())];
    let two = [(1, "General".to_owned()), (2, "North".to_owned())];
    let (id, e) = ward_created("4B", None, &one, false, "admin-cli", 5).unwrap();
    assert_eq!(id, 1);
    assert_eq!(e.audit[0].action, AuditAction::WardCreated);
    assert_eq!(e.audit[0].detail, "ward 4B created at General");
    assert_eq!(
        ward_created("4B", Some("North"), &two, false, "x", 0)
            .unwrap()
            .0,
        2
    );
    let several = ward_created("4B", None, &two, false, "x", 0).unwrap_err();
    assert!(several.to_string().contains("--institution"), "{several}");
    assert!(matches!(
        ward_created("4B", None, &[], false, "x", 0),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        ward_created("4B", Some("South"), &two, false, "x", 0),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        ward_created("4B", None, &one, true, "x", 0),
        Err(StoreError::Conflict(_))
    ));
    for bad in ["", " 4B", "4\u{200b}B", "42"] {
        assert!(
            matches!(
                ward_created(bad, None, &one, false, "x", 0),
                Err(StoreError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn a_nurse_joins_an_existing_ward_with_a_free_username() {
    let new = NewNurse {
        username: "nina".into(),
        first_name: "Nina".into(),
        last_name: "Berg".into(),
        ward: "4B".into(),
        password_hash: "$argon2id$x".into(),
        must_change_password: true,
    };
    let e = nurse_created(&new, Some(&ward(1, 1)), false, "admin-cli", 5).unwrap();
    assert_eq!(e.audit[0].action, AuditAction::AccountCreated);
    assert_eq!(e.audit[0].detail, "nurse nina at General, ward 4B");
    assert!(matches!(
        nurse_created(&new, None, false, "x", 0),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        nurse_created(&new, Some(&ward(1, 1)), true, "x", 0),
        Err(StoreError::Conflict(_))
    ));
    let bad = NewNurse {
        first_name: "N\u{202e}ina".into(),
        ..new
    };
    assert!(matches!(
        nurse_created(&bad, Some(&ward(1, 1)), false, "x", 0),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn a_patient_goes_on_a_ward_of_its_own_institution_once() {
    let p = WardPatient {
        patient: PatientId(3),
        username: "alice".into(),
        institution: Some(1),
        ward: None,
    };
    let e = ward_assigned(&p, Some(&ward(7, 1)), "4B", "admin-cli", 5).unwrap();
    assert_eq!(e.audit[0].action, AuditAction::WardAssigned);
    assert_eq!(e.audit[0].patient_id, Some(PatientId(3)));
    assert_eq!(e.changes, vec![Change::Resync]);
    // Another institution's ward is as unknown as none.
    assert!(matches!(
        ward_assigned(&p, Some(&ward(7, 2)), "4B", "x", 0),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        ward_assigned(&p, None, "4B", "x", 0),
        Err(StoreError::NotFound(_))
    ));
    let there = WardPatient {
        ward: Some(WardId(7)),
        ..p
    };
    assert!(matches!(
        ward_assigned(&there, Some(&ward(7, 1)), "4B", "x", 0),
        Err(StoreError::Conflict(_))
    ));
}

#[test]
fn a_caregiver_grant_ends_within_a_year_and_never_overlaps() {
    let now = 1_000 * DAY;
    let fine = new_caregiver(now + 30 * DAY, true);
    let e = caregiver_granted(&fine, None, None, "alice", "user:doc", now).unwrap();
    assert_eq!(e.audit[0].action, AuditAction::CaregiverGranted);
    assert!(
        e.audit[0]
            .detail
            .contains("carla may follow alice, read only, until")
    );
    for ends in [now, now - 1, now + GRANT_MAX_MS + 1] {
        assert!(matches!(
            caregiver_granted(&new_caregiver(ends, true), None, None, "alice", "x", now),
            Err(StoreError::Invalid(_))
        ));
    }
    // A new account needs its first password; an existing caregiver none.
    assert!(matches!(
        caregiver_granted(
            &new_caregiver(now + DAY, false),
            None,
            None,
            "alice",
            "x",
            now
        ),
        Err(StoreError::Invalid(_))
    ));
    let carla = caregiver_account(Role::Caregiver);
    let again = new_caregiver(now + DAY, false);
    let _ = caregiver_granted(&again, Some(&carla), None, "alice", "x", now).unwrap();
    // An ended or revoked grant may be followed by a new one; a current
    // one may not.
    let _ = caregiver_granted(
        &again,
        Some(&carla),
        Some(&grant(now, None)),
        "alice",
        "x",
        now,
    )
    .unwrap();
    let _ = caregiver_granted(
        &again,
        Some(&carla),
        Some(&grant(now + DAY, Some(now - 1))),
        "alice",
        "x",
        now,
    )
    .unwrap();
    assert!(matches!(
        caregiver_granted(
            &again,
            Some(&carla),
            Some(&grant(now + DAY, None)),
            "alice",
            "x",
            now
        ),
        Err(StoreError::Conflict(_))
    ));
    // A staff member's or a patient's username is not a caregiver's.
    for role in [Role::Physician, Role::Patient, Role::Nurse, Role::Admin] {
        assert!(matches!(
            caregiver_granted(
                &again,
                Some(&caregiver_account(role)),
                None,
                "alice",
                "x",
                now
            ),
            Err(StoreError::Conflict(_))
        ));
    }
}

#[test]
fn only_a_current_grant_is_revoked() {
    let now = 1_000 * DAY;
    let e =
        caregiver_revoked(Some(&grant(now + DAY, None)), PatientId(3), "user:doc", now).unwrap();
    assert_eq!(e.audit[0].action, AuditAction::CaregiverRevoked);
    assert_eq!(e.changes, vec![Change::Resync]);
    assert!(matches!(
        caregiver_revoked(None, PatientId(3), "x", now),
        Err(StoreError::NotFound(_))
    ));
    for ended in [grant(now, None), grant(now + DAY, Some(now - 5))] {
        assert!(matches!(
            caregiver_revoked(Some(&ended), PatientId(3), "x", now),
            Err(StoreError::Conflict(_))
        ));
    }
    assert!(grant(now + 1, None).active(now));
    assert!(!grant(now, None).active(now));
}
