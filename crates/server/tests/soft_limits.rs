//! Limits that fail closed, soft limits and the rate step, against the real
//! server on both backends (red team round 2, finding 7; threat T19 of
//! `docs/threat-model.md`): no order before a physician has set a new
//! patient's limits; an order beyond a soft limit, or one that moves the
//! rate by more than the configured factor, is written only with a
//! reason, which is audited; beyond a hard limit it is refused whatever
//! the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::browser::{Browser, Page};
use common::{Backend, TestApp};
use infusion_protocol::InfusionState;
use infusion_store::{AuditAction, NewPatient, NewPrescription, RateStep, StoreError};
use infusion_testkit::{patient_id, test_config};

infusion_testkit::backend_tests!(
    a_new_patient_gets_no_order_until_limits_are_set,
    an_order_beyond_a_soft_limit_needs_a_reason_and_beyond_a_hard_one_is_refused,
    a_big_rate_step_needs_a_reason,
);

/// The newest prescription version of `username`.
async fn version(app: &TestApp, username: &str) -> u32 {
    let id = patient_id(&*app.store, username).await;
    app.store
        .patient(id)
        .await
        .unwrap()
        .prescription
        .map_or(0, |p| p.version)
}

/// Posts an order for `username` as typed, with a reason when given.
async fn order(
    doctor: &Browser,
    username: &str,
    ml: &str,
    ml_h: &str,
    reason: Option<&str>,
) -> Page {
    let csrf = doctor.csrf(&format!("/patients/{username}")).await;
    let mut f = vec![
        ("csrf", csrf.as_str()),
        ("volume_ml", ml),
        ("rate_ml_h", ml_h),
        ("state", "run"),
    ];
    if let Some(r) = reason {
        f.extend([("reason", r), ("reviewed", "1")]);
    }
    doctor
        .post(&format!("/patients/{username}/prescription"), &f)
        .await
}

/// Sets `username`'s limits through the physician's form.
async fn limits(doctor: &Browser, username: &str, fields: &[(&str, &str)]) -> Page {
    let csrf = doctor.csrf(&format!("/patients/{username}")).await;
    let mut f = vec![("csrf", csrf.as_str())];
    f.extend_from_slice(fields);
    doctor
        .post(&format!("/patients/{username}/limits"), &f)
        .await
}

/// Finding 7: a new patient had the whole hardware range and a first
/// order of 1,000 mL at 200 mL/h was accepted with no limits ever set.
/// Now no order is written until a physician sets the limits, and the
/// page says so.
async fn a_new_patient_gets_no_order_until_limits_are_set(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.store
        .create_patient(
            NewPatient {
                username: "carol".into(),
                first_name: "Carol".into(),
                last_name: "New".into(),
                physician_username: "dr.house".into(),
                password_hash: "$argon2id$unused".into(),
                identifiers: Default::default(),
            },
            "test",
            0,
        )
        .await
        .unwrap();
    let doctor = Browser::logged_in(&app, "dr.house").await;
    let page = doctor.get("/patients/carol").await;
    assert!(
        page.body.contains("limits have not been set"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("name=\"volume_ml\""),
        "no order form yet"
    );

    let r = order(&doctor, "carol", "1000", "200", Some("urgent")).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("limits have not been set yet"),
        "{}",
        r.body
    );
    // The store refuses it whoever calls, a hold included.
    let carol = patient_id(&*app.store, "carol").await;
    let hold = NewPrescription {
        volume_ul: 1_000,
        rate_ul_h: 1_000,
        state: InfusionState::Hold,
        drug: None,
    };
    assert!(matches!(
        app.store.set_prescription(carol, hold, "test", 0).await,
        Err(StoreError::OutsideLimits(_))
    ));
    assert_eq!(version(&app, "carol").await, 0);

    let r = limits(
        &doctor,
        "carol",
        &[
            ("min_rate_ml_h", "0.5"),
            ("max_rate_ml_h", "10"),
            ("max_volume_ml", "20"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // Every order is reviewed before it is sent: the first shows what
    // it replaces (nothing) and that it is inside the usual range.
    let r = order(&doctor, "carol", "10", "4", None).await;
    assert_eq!(r.status, 422, "{}", r.body);
    for says in [
        "Check this order before it is sent.",
        "<td>None</td>",
        "<td>10 mL at 4 mL/h, run</td>",
        "It is inside this patient",
        "Reason for this order.",
    ] {
        assert!(r.body.contains(says), "{says}: {}", r.body);
    }
    assert_eq!(version(&app, "carol").await, 0, "a review writes nothing");
    let r = order(&doctor, "carol", "10", "4", Some("first bag")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(version(&app, "carol").await, 1);
    let id = patient_id(&*app.store, "carol").await;
    let audit = app.store.audit_log(Some(id), 10).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.entry.detail == "version 1: 10 mL at 4 mL/h, run; reason: first bag"),
        "the reason is audited with the order: {audit:?}"
    );
}

/// Soft limits 1 to 8 mL/h and 15 mL inside hard ones of 0.5 to 10 mL/h
/// and 20 mL: 9 mL/h is offered for confirmation, as typed, and written
/// with the reason audited; 10.5 mL/h is refused even with a reason.
async fn an_order_beyond_a_soft_limit_needs_a_reason_and_beyond_a_hard_one_is_refused(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let doctor = Browser::logged_in(&app, "dr.house").await;
    let r = limits(
        &doctor,
        "alice",
        &[
            ("min_rate_ml_h", "0.5"),
            ("max_rate_ml_h", "10"),
            ("max_volume_ml", "20"),
            ("soft_min_rate_ml_h", "1"),
            ("soft_max_rate_ml_h", "8"),
            ("soft_max_volume_ml", "15"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let shown = doctor.get("/patients/alice").await;
    assert!(
        shown.body.contains("Usual range (soft limits"),
        "{}",
        shown.body
    );
    let before = version(&app, "alice").await;

    // Soft limits crossed: asked, with the order as typed; nothing sent.
    let r = order(&doctor, "alice", "5", "9", None).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("Check this order before it is sent"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("The rate 9 mL/h is above the soft limit of 8 mL/h."),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("name=\"rate_ml_h\" value=\"9\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("name=\"reason\""), "{}", r.body);
    assert_eq!(version(&app, "alice").await, before, "nothing sent");

    // Confirmed: written, and the reason kept.
    let reason = "tremor not controlled at 7 mL/h";
    let r = order(&doctor, "alice", "5", "9", Some(reason)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(version(&app, "alice").await, before + 1);
    let alice = patient_id(&*app.store, "alice").await;
    let audit = app.store.audit_log(Some(alice), 20).await.unwrap();
    let confirmed = audit
        .iter()
        .find(|r| r.entry.action == AuditAction::SoftLimitConfirmed)
        .expect("the confirmation is audited");
    assert!(
        confirmed.entry.detail.contains(reason),
        "{}",
        confirmed.entry.detail
    );
    assert!(
        confirmed.entry.detail.contains("9 mL/h"),
        "{}",
        confirmed.entry.detail
    );
    assert_eq!(confirmed.entry.actor, "user:dr.house");

    // Beyond a hard limit: refused, whatever the reason.
    let r = order(&doctor, "alice", "5", "10.5", Some("urgent")).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("10.5 mL/h is outside this patient"),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("Check this order"),
        "a hard limit is not offered for confirmation"
    );
    assert_eq!(version(&app, "alice").await, before + 1);

    // Soft limits outside the hard ones are refused.
    let r = limits(
        &doctor,
        "alice",
        &[
            ("min_rate_ml_h", "0.5"),
            ("max_rate_ml_h", "10"),
            ("max_volume_ml", "20"),
            ("soft_max_rate_ml_h", "12"),
        ],
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("must lie within the hard ones"),
        "{}",
        r.body
    );
}

/// With `--rate-change-factor 1.5`, going from 4 to 7 mL/h (inside every
/// limit) needs a reason; 4 to 6 mL/h does not.
async fn a_big_rate_step_needs_a_reason(backend: Backend) {
    let mut config = test_config(Duration::from_secs(300));
    config.rate_step = RateStep::parse("1.5").unwrap();
    let app = TestApp::spawn_configured(backend, config).await;
    let doctor = Browser::logged_in(&app, "dr.house").await;
    let before = version(&app, "alice").await;
    let r = order(&doctor, "alice", "2", "7", None).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body
            .contains("The rate changes from 4 mL/h to 7 mL/h, more than 1.5 times up or down."),
        "{}",
        r.body
    );
    assert_eq!(version(&app, "alice").await, before);
    let r = order(&doctor, "alice", "2", "6", Some("titrating")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = order(
        &doctor,
        "alice",
        "2",
        "9.5",
        Some("bolus ordered by neurology"),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(version(&app, "alice").await, before + 2);
}
