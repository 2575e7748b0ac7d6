//! The care team, on both backends, through the real server: wards and
//! nurses (a nurse sees the ward's patients, acknowledges their alarms,
//! changes no treatment), caregivers (a physician's grant, read only, one
//! patient, ended by revocation or by its date), and the authorization
//! matrix of the new roles against every page and form. Each refusal
//! leaves the record as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, add_admin, add_admin_at, snapshot};
use common::care::{occlusion, wards};
use common::{Backend, PASSWORD, TestApp};
use infusion_store::{AuditAction, NewCaregiver, NewNurse};
use infusion_testkit::patient_id;

infusion_testkit::backend_tests!(
    nurses_see_their_ward_and_attend_to_alarms_only,
    caregivers_read_one_patient_until_revoked_or_ended,
    ward_and_caregiver_rules_refuse_with_reasons,
    an_administrator_sets_a_wards_escalation,
);

/// Posts `fields` to `path` with a CSRF token from `from`.
async fn post(b: &Browser, from: &str, path: &str, fields: &[(&str, &str)]) -> u16 {
    let csrf = b.csrf(from).await;
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    b.post(path, &form).await.status
}

/// Every treatment form of alice's page, with fields that would change
/// something.
const TREATMENT_FORMS: [(&str, &[(&str, &str)]); 5] = [
    (
        "/patients/alice/limits",
        &[
            ("min_rate_ml_h", "2"),
            ("max_rate_ml_h", "8"),
            ("max_volume_ml", "9"),
        ],
    ),
    (
        "/patients/alice/prescription",
        &[
            ("volume_ml", "3"),
            ("rate_ml_h", "5"),
            ("state", "run"),
            ("reviewed", "1"),
            ("reason", "as planned"),
        ],
    ),
    ("/patients/alice/hold", &[]),
    ("/patients/alice/note", &[("note", "changed")]),
    (
        "/patients/alice/caregivers",
        &[("username", "sneaky"), ("until", "2099-01-01")],
    ),
];

async fn nurses_see_their_ward_and_attend_to_alarms_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    wards(&app).await;
    let nina = Browser::logged_in(&app, "nina").await;
    let nora = Browser::logged_in(&app, "nora").await;

    assert_eq!(nina.get("/").await.location.as_deref(), Some("/ward"));
    let ward = nina.get("/ward").await;
    assert_eq!(ward.status, 200);
    assert!(ward.body.contains("Ward 4B"), "{}", ward.body);
    assert!(ward.body.contains("Patient, Alice"), "{}", ward.body);
    assert!(!ward.body.contains("Bob") && !ward.body.contains("Carol"));
    let other = nora.get("/ward").await;
    assert!(other.body.contains("Carol") && !other.body.contains("Alice"));
    for (b, who, path, want) in [
        (&nina, "nina", "/patients/alice", 200),
        (&nina, "nina", "/patients/bob", 404),
        (&nina, "nina", "/patients/carol", 404),
        (&nina, "nina", "/dashboard", 403),
        (&nina, "nina", "/following", 403),
        (&nora, "nora", "/patients/alice", 404),
        (&nora, "nora", "/patients/carol", 200),
    ] {
        assert_eq!(b.get(path).await.status, want, "{who} GET {path}");
    }
    // The nurse reads the whole page but has no treatment form.
    let page = nina.get("/patients/alice").await;
    assert!(page.body.contains("Care team") && page.body.contains("Ward: 4B"));
    for form in ["/limits\"", "/prescription\"", "/hold\"", "/caregivers\""] {
        assert!(!page.body.contains(form), "{form} on a nurse's page");
    }
    let before = snapshot(&app, "alice").await;
    for (path, fields) in TREATMENT_FORMS {
        let status = post(&nina, "/patients/alice", path, fields).await;
        assert_eq!(status, 403, "nina POST {path}");
        assert_eq!(snapshot(&app, "alice").await, before, "nina POST {path}");
    }

    // Alarms: the other ward's nurse cannot reach it; the ward's nurse
    // acknowledges it, audited under her name.
    let alarm = occlusion(&app, &app.a).await;
    let page = nina.get("/patients/alice").await;
    assert!(page.body.contains("Acknowledge"), "{}", page.body);
    let ack = format!("/patients/alice/alarms/{alarm}/ack");
    assert_eq!(post(&nora, "/ward", &ack, &[]).await, 404);
    assert_eq!(app.store.open_alarms(app.a.id).await.unwrap().len(), 1);
    assert_eq!(post(&nina, "/ward", &ack, &[]).await, 303);
    assert!(app.store.open_alarms(app.a.id).await.unwrap().is_empty());
    let audit = app.store.audit_log(Some(app.a.id), 20).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.entry.action == AuditAction::AlarmAcknowledged
                && r.entry.actor == "user:nina"),
        "{audit:?}"
    );

    // Put on another ward, alice leaves nina's view at once.
    let id = patient_id(&*app.store, "alice").await;
    app.store.assign_ward(id, "5C", "test", 1).await.unwrap();
    assert_eq!(nina.get("/patients/alice").await.status, 404);
    assert_eq!(nora.get("/patients/alice").await.status, 200);
}

async fn caregivers_read_one_patient_until_revoked_or_ended(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    wards(&app).await;
    add_admin(&app).await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let until = jiff::Zoned::now().date().tomorrow().unwrap().to_string();
    let grant = [
        ("username", "carla"),
        ("first_name", "Carla"),
        ("last_name", "Diaz"),
        ("password", PASSWORD),
        ("email", "carla@family.example"),
        ("until", until.as_str()),
    ];
    let path = "/patients/alice/caregivers";
    assert_eq!(post(&house, "/patients/alice", path, &grant).await, 303);
    let page = house.get("/patients/alice").await;
    assert!(
        page.body.contains("Carla Diaz (carla): until"),
        "{}",
        page.body
    );

    let carla = Browser::new(&app);
    assert_eq!(carla.login("carla", PASSWORD).await.status, 303);
    // Her first password was chosen for her: she changes it first.
    assert_eq!(
        carla.get("/patients/alice").await.location.as_deref(),
        Some("/account/password")
    );
    let csrf = carla.csrf("/account/password").await;
    let new = "a brand new caregiver passphrase";
    let changed = carla
        .post(
            "/account/password",
            &[
                ("csrf", csrf.as_str()),
                ("current", PASSWORD),
                ("new", new),
                ("repeat", new),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(carla.get("/").await.location.as_deref(), Some("/following"));
    assert_eq!(
        carla.get("/following").await.location.as_deref(),
        Some("/patients/alice")
    );
    let own = carla.get("/patients/alice").await;
    assert_eq!(own.status, 200);
    assert!(own.body.contains("as a caregiver"), "{}", own.body);
    assert!(!own.body.contains("Audit trail") && !own.body.contains("/limits\""));
    for (p, want) in [
        ("/patients/bob", 404),
        ("/patients/carol", 404),
        ("/ward", 403),
        ("/dashboard", 403),
        ("/admin", 403),
    ] {
        assert_eq!(carla.get(p).await.status, want, "carla GET {p}");
    }
    let alarm = occlusion(&app, &app.a).await;
    // She is told of it with the ward's nurses, and her open page raises
    // the alert (the patient's own page does not: the pump beeps).
    let raised = &app.store.escalations(app.a.id, 1).await.unwrap()[0].notices[0];
    assert_eq!(raised.3, ["carla", "nina"], "{raised:?}");
    let hers = carla.get("/patients/alice").await.body;
    assert!(hers.contains("data-alarm-priority=\"high\""), "{hers}");
    let alice = Browser::logged_in(&app, "alice").await;
    let own = alice.get("/patients/alice").await.body;
    assert!(own.contains("Your pump has warned") && !own.contains("data-alarm-priority"));
    let before = snapshot(&app, "alice").await;
    let ack = format!("/patients/alice/alarms/{alarm}/ack");
    let mut forms = TREATMENT_FORMS.to_vec();
    forms.push((ack.as_str(), &[]));
    for (path, fields) in forms {
        let status = post(&carla, "/patients/alice", path, fields).await;
        assert_eq!(status, 403, "carla POST {path}");
        assert_eq!(snapshot(&app, "alice").await, before, "carla POST {path}");
    }
    assert_eq!(app.store.open_alarms(app.a.id).await.unwrap().len(), 1);
    // Nor do the other roles reach the grant form: the ward's nurse, the
    // patient, an administrator, another physician.
    for (who, home) in [
        ("nina", "/ward"),
        ("alice", "/patients/alice"),
        ("root", "/admin"),
        ("dr.other", "/dashboard"),
    ] {
        let b = Browser::logged_in(&app, who).await;
        let status = post(&b, home, path, &grant).await;
        assert!(matches!(status, 403 | 404), "{who} POST {path}: {status}");
    }
    assert_eq!(app.store.caregivers(app.a.id).await.unwrap().len(), 1);

    // Revoked: the record is out of reach at once.
    let g = app.store.caregivers(app.a.id).await.unwrap()[0].id;
    let revoke = format!("/patients/alice/caregivers/{g}/revoke");
    assert_eq!(post(&house, "/patients/alice", &revoke, &[]).await, 303);
    assert_eq!(carla.get("/patients/alice").await.status, 404);
    let none = carla.get("/following").await;
    assert!(
        none.body.contains("You do not follow anyone now"),
        "{}",
        none.body
    );
    // Revoking again is refused and says why.
    let again = house
        .post(
            &revoke,
            &[("csrf", house.csrf("/patients/alice").await.as_str())],
        )
        .await;
    assert_eq!(again.status, 422);
    assert!(again.body.contains("has ended already"), "{}", again.body);

    // A grant ends by itself at its end: granted again, for a moment.
    let now = infusion_server::clock::now_ms();
    let brief = NewCaregiver {
        patient: app.a.id,
        username: "carla".into(),
        first_name: String::new(),
        last_name: String::new(),
        password_hash: None,
        ends_at_ms: now + 60_000,
    };
    let account = app.store.grant_caregiver(brief, "test", now).await.unwrap();
    let reach = |t| app.store.caregiver_patients(account, t);
    assert_eq!(reach(now).await.unwrap(), vec![app.a.id]);
    assert!(reach(now + 60_000).await.unwrap().is_empty());
    let actions: Vec<_> = app
        .store
        .audit_log(Some(app.a.id), 50)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry.action)
        .collect();
    assert!(actions.contains(&AuditAction::CaregiverGranted));
    assert!(actions.contains(&AuditAction::CaregiverRevoked));
}

async fn ward_and_caregiver_rules_refuse_with_reasons(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    wards(&app).await;
    let s = &app.store;
    let dup = s.create_ward("4b", None, "test", 0).await.unwrap_err();
    assert!(dup.to_string().contains("already"), "{dup}");
    let id = patient_id(&**s, "alice").await;
    let same = s.assign_ward(id, "4B", "test", 0).await.unwrap_err();
    assert!(same.to_string().contains("already"), "{same}");
    let none = s.assign_ward(id, "9Z", "test", 0).await.unwrap_err();
    assert!(none.to_string().contains("no ward named"), "{none}");
    let taken = NewNurse {
        username: "ALICE".into(),
        first_name: "A".into(),
        last_name: "B".into(),
        ward: "4B".into(),
        password_hash: "x".into(),
        must_change_password: true,
    };
    let e = s.create_nurse(taken, "test", 0).await.unwrap_err();
    assert!(e.to_string().contains("taken"), "{e}");
    // A caregiver cannot be made of a staff member's or a patient's
    // account, and a grant needs a sensible end.
    let house = Browser::logged_in(&app, "dr.house").await;
    let before = app.store.caregivers(app.a.id).await.unwrap().len();
    let soon = jiff::Zoned::now()
        .date()
        .saturating_add(jiff::Span::new().days(30));
    let soon = soon.to_string();
    for (username, until, email, says) in [
        ("nina", soon.as_str(), "", "is taken"),
        ("bob", soon.as_str(), "", "is taken"),
        ("dan", "2000-01-01", "", "must end after today"),
        ("dan", "2099-01-01", "", "lasts at most a year"),
        ("dan", "next week", "", "as a date"),
        (
            "dan",
            soon.as_str(),
            "dan at home",
            "is not an email address",
        ),
    ] {
        let csrf = house.csrf("/patients/alice").await;
        let page = house
            .post(
                "/patients/alice/caregivers",
                &[
                    ("csrf", csrf.as_str()),
                    ("username", username),
                    ("first_name", "Dan"),
                    ("last_name", "Diaz"),
                    ("password", PASSWORD),
                    ("until", until),
                    ("email", email),
                ],
            )
            .await;
        assert_eq!(page.status, 422, "{username} {until}");
        assert!(
            page.body.contains(says),
            "{username} {until}: {}",
            page.body
        );
    }
    assert_eq!(app.store.caregivers(app.a.id).await.unwrap().len(), before);
}

async fn an_administrator_sets_a_wards_escalation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    wards(&app).await;
    add_admin(&app).await;
    add_admin_at(&app, "elsewhere", "Other Clinic").await;
    let root = Browser::logged_in(&app, "root").await;
    let page = root.get("/admin").await.body;
    assert!(page.contains("Ward 4B: 1 nurse, 1 patient"), "{page}");
    let path = "/admin/wards/4B/escalation";
    let policy = |app: &TestApp| {
        let store = app.store.clone();
        async move { store.wards("Test Clinic").await.unwrap()[0].policy }
    };
    let before = policy(&app).await;
    for (who, ward_s, physician_s, says) in [
        ("root", "abc", "90", "in whole seconds"),
        ("root", "5", "90", "10 s to 3600 s"),
        ("elsewhere", "30", "90", "ward named &quot;4B&quot; here"),
    ] {
        let b = Browser::logged_in(&app, who).await;
        let csrf = b.csrf("/admin").await;
        let page = b
            .post(
                path,
                &[
                    ("csrf", csrf.as_str()),
                    ("to_ward_after_s", ward_s),
                    ("to_physician_after_s", physician_s),
                ],
            )
            .await;
        assert_eq!(page.status, 422, "{who} {ward_s}");
        assert!(page.body.contains(says), "{who} {ward_s}: {}", page.body);
        assert_eq!(policy(&app).await, before);
    }
    let csrf = root.csrf("/admin").await;
    let done = root
        .post(
            path,
            &[
                ("csrf", csrf.as_str()),
                ("to_ward_after_s", "30"),
                ("to_physician_after_s", "90"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let now = policy(&app).await;
    assert_eq!(
        (now.to_ward_after_ms, now.to_physician_after_ms),
        (30_000, 90_000)
    );
    // A nurse is not an administrator.
    let nina = Browser::logged_in(&app, "nina").await;
    let csrf = nina.csrf("/ward").await;
    let refused = nina
        .post(
            path,
            &[
                ("csrf", csrf.as_str()),
                ("to_ward_after_s", "10"),
                ("to_physician_after_s", "10"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
}
