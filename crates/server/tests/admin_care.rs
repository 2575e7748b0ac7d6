//! An administrator's changes to who and what serves an account, on both
//! backends, through the admin page's forms: a patient moved to another
//! physician of the institution (the previous one loses the record at
//! once), a pump unbound (its tokens stop working, it cannot log in), a
//! staff password reset (sessions end, a new password at the next login).
//! Each refusal leaves everything as it was; each change is audited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, add_admin, add_admin_at, second_physician, snapshot};
use common::{Backend, TestApp};
use infusion_store::{AuditAction, NewPhysician};

infusion_testkit::backend_tests!(
    a_patient_moves_to_another_physician_of_the_institution_only,
    an_unbound_pump_can_no_longer_fetch_or_log_in,
    a_reset_password_ends_sessions_and_must_be_changed,
);

async fn audited(app: &TestApp, action: AuditAction) -> Vec<String> {
    let all = app.store.audit_log(None, 100).await.unwrap();
    all.into_iter()
        .filter(|r| r.entry.action == action)
        .map(|r| r.entry.detail)
        .collect()
}

/// The notice at the top of a page, its entities decoded: what a form
/// told the user.
fn notice(body: &str) -> String {
    let start = body.find("class=\"notice\">").map_or(0, |i| i + 15);
    let end = body[start..].find("</p>").map_or(body.len(), |i| start + i);
    body[start..end]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

async fn admin_post(admin: &Browser, path: &str, fields: &[(&str, &str)]) -> common::browser::Page {
    let csrf = admin.csrf("/admin").await;
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    admin.post(path, &form).await
}

async fn a_patient_moves_to_another_physician_of_the_institution_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin(&app).await;
    second_physician(&app).await;
    add_admin_at(&app, "elsewhere", "Other Clinic").await;
    let far = infusion_server::password::PasswordParams::INSECURE_FAST
        .hash_blocking(common::PASSWORD)
        .unwrap();
    app.store
        .create_physician(
            NewPhysician {
                username: "dr.far".into(),
                first_name: "Far".into(),
                last_name: "Away".into(),
                institution: "Other Clinic".into(),
                password_hash: far,
                must_change_password: false,
            },
            "test",
            0,
        )
        .await
        .unwrap();
    let admin = Browser::logged_in(&app, "root").await;
    let page = admin.get("/admin").await;
    assert!(page.body.contains("Move alice"), "{}", page.body);

    let before = snapshot(&app, "alice").await;
    for (to, says) in [
        ("dr.far", "No physician named \"dr.far\" at Test Clinic"),
        (
            "dr.house",
            "Nothing to do: alice is already dr.house's patient",
        ),
        ("nobody", "No physician named \"nobody\""),
    ] {
        let p = admin_post(&admin, "/admin/patients/alice/move", &[("physician", to)]).await;
        assert_eq!(p.status, 422, "{to}: {}", notice(&p.body));
        assert!(notice(&p.body).contains(says), "{to}: {}", notice(&p.body));
        assert_eq!(snapshot(&app, "alice").await, before, "{to}");
    }

    let house = Browser::logged_in(&app, "dr.house").await;
    assert_eq!(house.get("/patients/alice").await.status, 200);
    let moved = admin_post(
        &admin,
        "/admin/patients/alice/move",
        &[("physician", "dr.other")],
    )
    .await;
    let shown = admin.follow(&moved).await;
    assert!(
        notice(&shown.body).starts_with("Moved: alice is now dr.other's patient"),
        "{}",
        notice(&shown.body)
    );
    // At once: the previous physician's open session no longer reaches it.
    assert_eq!(house.get("/patients/alice").await.status, 404);
    let other = Browser::logged_in(&app, "dr.other").await;
    assert_eq!(other.get("/patients/alice").await.status, 200);
    assert_eq!(
        audited(&app, AuditAction::PatientMoved).await,
        ["alice moved from dr.house to dr.other"]
    );
}

async fn an_unbound_pump_can_no_longer_fetch_or_log_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin(&app).await;
    let admin = Browser::logged_in(&app, "root").await;
    let token = app.login(&app.a).await;
    let page = admin.get("/admin").await;
    assert!(page.body.contains("Unbind pump…"), "{}", page.body);

    let done = admin_post(&admin, "/admin/patients/alice/unbind", &[]).await;
    let shown = admin.follow(&done).await;
    assert!(
        notice(&shown.body).starts_with("Pump AA:BB:CC:00:00:01 unbound from alice"),
        "{}",
        notice(&shown.body)
    );
    let (status, body) = app.index(&app.a, &token).await;
    assert!(
        status == 401 || status == 403,
        "an unbound pump's token: {status} {body}"
    );
    let login = app
        .login_body("alice", common::PASSWORD, "AA:BB:CC:00:00:01")
        .await;
    assert!(
        login.get("token").is_none(),
        "an unbound pump logged in: {login}"
    );
    assert_eq!(
        audited(&app, AuditAction::DeviceUnbound).await,
        ["device AA:BB:CC:00:00:01 unbound from alice: its tokens stopped working"]
    );
    // Nothing left to unbind: refused, and nothing changes.
    let before = snapshot(&app, "alice").await;
    let again = admin_post(&admin, "/admin/patients/alice/unbind", &[]).await;
    assert_eq!(again.status, 422, "{}", again.body);
    assert!(
        notice(&again.body).contains("There is no pump bound to alice"),
        "{}",
        notice(&again.body)
    );
    assert_eq!(snapshot(&app, "alice").await, before);
    // Binding a pump again serves the patient again.
    let bound = admin
        .follow(
            &admin_post(
                &admin,
                "/admin/devices",
                &[("patient", "alice"), ("mac", "AA:BB:CC:00:00:09")],
            )
            .await,
        )
        .await;
    assert_eq!(bound.status, 200);
}

async fn a_reset_password_ends_sessions_and_must_be_changed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin(&app).await;
    let admin = Browser::logged_in(&app, "root").await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let temporary = "copper kettle winter lantern 42";
    for (who, password, says) in [
        ("alice", temporary, "This is a patient's account"),
        (
            "root",
            temporary,
            "Change your own password on the Password page",
        ),
        ("dr.house", "short", "A password is"),
    ] {
        let path = format!("/admin/accounts/{who}/reset-password");
        let p = admin_post(&admin, &path, &[("password", password)]).await;
        assert_eq!(p.status, 422, "{who}: {}", notice(&p.body));
        assert!(notice(&p.body).contains(says), "{who}: {}", notice(&p.body));
    }
    assert_eq!(house.get("/dashboard").await.status, 200, "still logged in");
    assert!(audited(&app, AuditAction::PasswordReset).await.is_empty());

    let p = admin_post(
        &admin,
        "/admin/accounts/dr.house/reset-password",
        &[("password", temporary)],
    )
    .await;
    let shown = admin.follow(&p).await;
    assert!(
        notice(&shown.body).starts_with("Password reset: dr.house's sessions have ended"),
        "{}",
        notice(&shown.body)
    );
    // The open session has ended; the old password no longer logs in; the
    // temporary one leads to the forced change.
    assert_ne!(house.get("/dashboard").await.status, 200);
    let fresh = Browser::new(&app);
    assert_ne!(fresh.login("dr.house", common::PASSWORD).await.status, 303);
    let fresh = Browser::new(&app);
    assert_eq!(fresh.login("dr.house", temporary).await.status, 303);
    let next = fresh.get("/dashboard").await;
    assert!(
        next.status == 303 && next.location.as_deref() == Some("/account/password"),
        "{} {:?}",
        next.status,
        next.location
    );
    assert_eq!(audited(&app, AuditAction::PasswordReset).await.len(), 1);
}
