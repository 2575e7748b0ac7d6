//! The account lifecycle, against the real server on both backends (red
//! team round 2, finding 10; threat T20 of `docs/threat-model.md`): weak
//! passwords refused with their reason; a first password an administrator
//! chose changed before anything else; a password change ends the other
//! sessions; a disabled account is shut out at once, its pump included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, add_admin};
use common::{Backend, PASSWORD, TestApp};
use infusion_store::AuditAction;

infusion_testkit::backend_tests!(
    weak_passwords_are_refused_with_their_reason,
    an_administrators_choice_of_password_is_changed_before_anything_else,
    a_password_change_ends_the_other_sessions,
    a_disabled_account_is_shut_out_at_once_and_its_pump_with_it,
);

const NEW_PASSWORD: &str = "lantern orbit pebble meadow";

/// The administrator's new-physician form for `username`.
async fn create_physician(
    admin: &Browser,
    username: &str,
    password: &str,
) -> common::browser::Page {
    let csrf = admin.csrf("/admin").await;
    admin
        .post(
            "/admin/physicians",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("first_name", "Nina"),
                ("last_name", "Novak"),
                ("institution", "Test Clinic"),
                ("password", password),
            ],
        )
        .await
}

/// Changes the password of `b`'s account on the account page.
async fn change(b: &Browser, current: &str, new: &str, repeat: &str) -> common::browser::Page {
    let csrf = b.csrf("/account/password").await;
    b.post(
        "/account/password",
        &[
            ("csrf", &csrf),
            ("current", current),
            ("new", new),
            ("repeat", repeat),
        ],
    )
    .await
}

/// Finding 10: any 12 characters were a password (`aaaaaaaaaaaa`, twelve
/// spaces). Now an easy one is refused with zxcvbn's reason, and nothing
/// is created.
async fn weak_passwords_are_refused_with_their_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin(&app).await;
    let admin = Browser::logged_in(&app, "root").await;
    for weak in [
        "aaaaaaaaaaaa",
        "            ",
        "password1234",
        "qwertyuiop12",
        "dr.novaknina",
    ] {
        let r = create_physician(&admin, "dr.novak", weak).await;
        assert_eq!(r.status, 422, "{weak:?}: {}", r.body);
        assert!(r.body.contains("too easy to guess"), "{weak:?}: {}", r.body);
    }
    assert_eq!(app.store.account("dr.novak").await.unwrap(), None);
    let r = create_physician(&admin, "dr.novak", NEW_PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
}

/// An account an administrator made must choose its own password at its
/// first login: every page leads to the change, which checks the current
/// password, the repeat and the strength, and then opens the rest.
async fn an_administrators_choice_of_password_is_changed_before_anything_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin(&app).await;
    let admin = Browser::logged_in(&app, "root").await;
    let chosen = "admin chosen first password";
    assert_eq!(
        create_physician(&admin, "dr.novak", chosen).await.status,
        303
    );

    let nina = Browser::new(&app);
    assert_eq!(nina.login("dr.novak", chosen).await.status, 303);
    for page in ["/", "/dashboard", "/patients/alice"] {
        let r = nina.get(page).await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (303, Some("/account/password")),
            "{page}"
        );
    }
    let form = nina.get("/account/password").await;
    assert!(
        form.body
            .contains("An administrator chose your first password"),
        "{}",
        form.body
    );

    let r = change(&nina, "not the password", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("current password is not right"),
        "{}",
        r.body
    );
    let r = change(&nina, chosen, NEW_PASSWORD, "lantern orbit pebble").await;
    assert!(r.body.contains("two new passwords differ"), "{}", r.body);
    let r = change(&nina, chosen, "novaknovak12", "novaknovak12").await;
    assert!(r.body.contains("too easy to guess"), "{}", r.body);
    assert_eq!(nina.get("/dashboard").await.status, 303, "still held");

    let r = change(&nina, chosen, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        nina.follow(&r)
            .await
            .body
            .contains("Your password has changed")
    );
    assert_eq!(nina.get("/dashboard").await.status, 200);
    // The old password no longer logs in; the new one does, with nothing held.
    assert_eq!(
        Browser::new(&app).login("dr.novak", chosen).await.status,
        401
    );
    let again = Browser::new(&app);
    assert_eq!(again.login("dr.novak", NEW_PASSWORD).await.status, 303);
    assert_eq!(again.get("/dashboard").await.status, 200);
}

/// A password change ends every other session of the account at once
/// (a session left open elsewhere, or one an attacker holds), and keeps
/// the one that made it.
async fn a_password_change_ends_the_other_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let here = Browser::logged_in(&app, "dr.house").await;
    let elsewhere = Browser::logged_in(&app, "dr.house").await;
    assert_eq!(elsewhere.get("/dashboard").await.status, 200);
    let r = change(&here, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        here.follow(&r)
            .await
            .body
            .contains("your other session was logged out")
    );
    assert_eq!(here.get("/dashboard").await.status, 200);
    let r = elsewhere.get("/dashboard").await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/login")));
    let audit = app.store.audit_log(None, 50).await.unwrap();
    assert!(audit.iter().any(
        |r| r.entry.action == AuditAction::PasswordChanged && r.entry.actor == "user:dr.house"
    ));
    // A patient's password is its pump's: not changed here.
    let alice = Browser::logged_in(&app, "alice").await;
    assert_eq!(alice.get("/account/password").await.status, 403);
}

/// An administrator disables a physician and a patient: their sessions
/// end at once, their right passwords are told the account is disabled,
/// the patient's pump's token chain ends and its login is refused; enabled
/// again, both log in. No administrator can disable their own account.
async fn a_disabled_account_is_shut_out_at_once_and_its_pump_with_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin(&app).await;
    let admin = Browser::logged_in(&app, "root").await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let token = app.login(&app.a).await;
    let (status, _) = app.index(&app.a, &token).await;
    assert_eq!(status, 200);
    let token = app.login(&app.a).await;

    let csrf = admin.csrf("/admin").await;
    for who in ["dr.house", "alice"] {
        let r = admin
            .post(
                &format!("/admin/accounts/{who}/disable"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, 303, "{who}: {}", r.body);
    }
    let shown = admin.get("/admin").await;
    assert!(shown.body.contains("is disabled"), "{}", shown.body);
    let r = house.get("/dashboard").await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/login")));
    let r = Browser::new(&app).login("dr.house", PASSWORD).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("This account is disabled"), "{}", r.body);
    let (status, body) = app.index(&app.a, &token).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = app
        .post(
            "/api/v1/device/login",
            None,
            &app.login_body(app.a.username, PASSWORD, app.a.mac).await,
        )
        .await;
    assert_eq!(status, 401);
    let events = app.store.security_events(None, 20).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|r| r.entry.action == AuditAction::AccountDisabled)
            .count(),
        2
    );

    // An administrator cannot lock themselves out.
    let r = admin
        .post("/admin/accounts/root/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("cannot disable your own account"),
        "{}",
        r.body
    );

    for who in ["dr.house", "alice"] {
        let r = admin
            .post(&format!("/admin/accounts/{who}/enable"), &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status, 303, "{who}: {}", r.body);
    }
    assert_eq!(
        Browser::new(&app).login("dr.house", PASSWORD).await.status,
        303
    );
    let token = app.login(&app.a).await;
    assert_eq!(app.index(&app.a, &token).await.0, 200);
}
