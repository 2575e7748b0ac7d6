//! The administrator's pages, on both backends: accounts and devices, and
//! no clinical data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, add_admin, add_admin_at, snapshot};
use common::{Backend, PASSWORD, TestApp};
use infusion_testkit::patient_id;

infusion_testkit::backend_tests!(
    admin_manages_accounts_and_devices_and_sees_no_clinical_data,
    an_administrator_sees_and_changes_only_their_own_institution,
);

/// Red team round 2 (low): an administrator of one institution saw and
/// changed another's accounts. Now another institution's accounts are
/// neither listed nor reachable by any form, and nothing changes.
async fn an_administrator_sees_and_changes_only_their_own_institution(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin_at(&app, "other.admin", "Other Hospital").await;
    let other = Browser::logged_in(&app, "other.admin").await;
    let overview = other.get("/admin").await;
    assert_eq!(overview.status, 200);
    assert!(
        overview.body.contains("Of Other Hospital"),
        "{}",
        overview.body
    );
    for name in ["dr.house", "alice", "bob", common::MAC_A] {
        assert!(
            !overview.body.contains(name),
            "{name} is another institution's"
        );
    }
    // dr.house's security event is Test Clinic's.
    app.store
        .append_audit(infusion_store::NewAudit::of(
            1,
            "user:dr.house",
            infusion_store::AuditAction::LoginLockedOut,
            None,
            "locked out".into(),
        ))
        .await
        .unwrap();
    assert!(!other.get("/admin").await.body.contains("dr.house"));
    let before = snapshot(&app, "alice").await;
    let csrf = overview.csrf();
    let attempts: [(&str, Vec<(&str, &str)>); 4] = [
        ("/admin/accounts/dr.house/disable", vec![]),
        (
            "/admin/devices",
            vec![("patient", "alice"), ("mac", "02:00:00:00:00:ee")],
        ),
        (
            "/admin/patients",
            vec![
                ("username", "eve"),
                ("first_name", "Eve"),
                ("last_name", "Intruder"),
                ("physician", "dr.house"),
                ("password", "lantern orbit pebble meadow"),
                ("record_number", "MRN-9"),
                ("birth_date", "1990-01-01"),
            ],
        ),
        (
            "/admin/physicians",
            vec![
                ("username", "dr.plant"),
                ("first_name", "Pia"),
                ("last_name", "Plant"),
                ("institution", "Test Clinic"),
                ("password", "lantern orbit pebble meadow"),
            ],
        ),
    ];
    for (path, mut fields) in attempts {
        fields.push(("csrf", &csrf));
        let r = other.post(path, &fields).await;
        assert_eq!(r.status, 422, "{path}: {}", r.body);
        assert!(
            r.body.contains("at Other Hospital")
                || r.body.contains("You administer Other Hospital only"),
            "{path}: {}",
            r.body
        );
    }
    assert_eq!(snapshot(&app, "alice").await, before);
    assert!(
        !app.store
            .account("dr.house")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert_eq!(app.store.account("eve").await.unwrap(), None);
    assert_eq!(app.store.account("dr.plant").await.unwrap(), None);
}

async fn admin_manages_accounts_and_devices_and_sees_no_clinical_data(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin(&app).await;
    let admin = Browser::logged_in(&app, "root").await;
    assert_eq!(admin.get("/").await.location.as_deref(), Some("/admin"));
    let overview = admin.get("/admin").await;
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains("dr.house") && overview.body.contains("AA:BB:CC:00:00:01"));

    // No clinical data for an administrator; nothing changes.
    let before = snapshot(&app, "alice").await;
    assert_eq!(admin.get("/dashboard").await.status, 403);
    assert_eq!(admin.get("/patients/alice").await.status, 404);
    let csrf = admin.csrf("/admin").await;
    let p = admin
        .post(
            "/patients/alice/prescription",
            &[
                ("csrf", &csrf),
                ("volume_ml", "3"),
                ("rate_ml_h", "5"),
                ("state", "run"),
            ],
        )
        .await;
    assert_eq!(p.status, 404);
    assert_eq!(snapshot(&app, "alice").await, before);

    // Nobody else administers.
    for (who, own) in [("dr.house", "/dashboard"), ("alice", "/patients/alice")] {
        let b = Browser::logged_in(&app, who).await;
        assert_eq!(b.get("/admin").await.status, 403, "{who}");
        let csrf = b.csrf(own).await;
        let f = physician_form(&csrf, "dr.sneaky", PASSWORD);
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(b.post("/admin/physicians", &f).await.status, 403, "{who}");
    }
    assert_eq!(app.store.account("dr.sneaky").await.unwrap(), None);

    admin_creates_accounts_and_registers_pumps(&app, &admin, &csrf).await;
}

/// The new-physician form's fields.
fn physician_form(csrf: &str, username: &str, password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", csrf.to_owned()),
        ("username", username.to_owned()),
        ("first_name", "New".to_owned()),
        ("last_name", "Doctor".to_owned()),
        ("institution", "Test Clinic".to_owned()),
        ("password", password.to_owned()),
    ]
}

/// The administrator's forms: refusals say why and change nothing; a
/// physician, a patient and a pump are made.
async fn admin_creates_accounts_and_registers_pumps(app: &TestApp, admin: &Browser, csrf: &str) {
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| async move {
        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        admin.post(path, &f).await
    };
    let r = post("/admin/physicians", physician_form(csrf, "dr.new", "short")).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("A password is 12 to 128 characters"),
        "{}",
        r.body
    );
    let r = post(
        "/admin/physicians",
        physician_form(csrf, "dr.house", PASSWORD),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("is taken"), "{}", r.body);
    let r = post(
        "/admin/physicians",
        physician_form(csrf, "dr.new", PASSWORD),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/admin"));
    assert_eq!(
        app.store.account("dr.new").await.unwrap().unwrap().role,
        infusion_store::Role::Physician
    );

    let r = post(
        "/admin/patients",
        vec![
            ("csrf", csrf.to_owned()),
            ("username", "dave".into()),
            ("first_name", "Dave".into()),
            ("last_name", "Patient".into()),
            ("physician", "dr.new".into()),
            ("password", PASSWORD.into()),
            ("record_number", "MRN-4".into()),
            ("birth_date", "1950-06-30".into()),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        app.store
            .patient(patient_id(&*app.store, "dave").await)
            .await
            .unwrap()
            .physician_username,
        "dr.new"
    );

    for (mac, want, says) in [
        ("zz", 422, "is not a MAC address"),
        (common::MAC_A, 422, "bound to another account"),
        ("02:00:00:00:00:dd", 303, "registered to dave"),
    ] {
        let r = post(
            "/admin/devices",
            vec![
                ("csrf", csrf.to_owned()),
                ("patient", "dave".into()),
                ("mac", mac.into()),
            ],
        )
        .await;
        assert_eq!(r.status, want, "{mac}: {}", r.body);
        let r = if want == 303 {
            admin.follow(&r).await
        } else {
            r
        };
        assert!(r.body.contains(says), "{mac}: {}", r.body);
    }
    let dave = app
        .store
        .patient(patient_id(&*app.store, "dave").await)
        .await
        .unwrap();
    assert_eq!(dave.device.unwrap().to_string(), "02:00:00:00:00:DD");
    let by_root = app
        .store
        .audit_log(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.actor == "user:root" && !r.entry.action.as_str().starts_with("web_"))
        .count();
    assert_eq!(
        by_root, 3,
        "physician, patient and device, audited as the admin"
    );
}
