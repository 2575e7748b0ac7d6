//! Look-alike identities, against the real server on both backends (red
//! team round 2, finding 8; threat T18 of `docs/threat-model.md`): an
//! administrator cannot make two accounts whose usernames differ only in
//! letter case, a username that names no page, or a name hiding invisible
//! characters or another alphabet; and every patient row and page shows
//! the username beside the name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, add_admin};
use common::{Backend, PASSWORD, TestApp};

infusion_testkit::backend_tests!(
    look_alike_accounts_are_refused_and_change_nothing,
    every_patient_shows_a_second_identifier,
);

/// The new-patient form of patient `username` named `first` `last`.
fn patient_form(
    csrf: &str,
    username: &str,
    first: &str,
    last: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", csrf.to_owned()),
        ("username", username.to_owned()),
        ("first_name", first.to_owned()),
        ("last_name", last.to_owned()),
        ("physician", "dr.house".to_owned()),
        ("password", PASSWORD.to_owned()),
        ("record_number", "MRN-1".to_owned()),
        ("birth_date", "1956-04-23".to_owned()),
    ]
}

async fn create(admin: &Browser, fields: Vec<(&'static str, String)>) -> common::browser::Page {
    let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    admin.post("/admin/patients", &f).await
}

/// Finding 8: `pa.one`, `Pa.One` and `PA.ONE` were three patients; names
/// with a Cyrillic look-alike, a right-to-left override or only a
/// zero-width space were accepted, and so were the usernames `.` and
/// `..`, whose pages cannot be reached. Each is now refused with its
/// reason, and nothing is stored.
async fn look_alike_accounts_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin(&app).await;
    let admin = Browser::logged_in(&app, "root").await;
    let csrf = admin.csrf("/admin").await;
    let made = create(&admin, patient_form(&csrf, "pa.one", "Pat", "One")).await;
    assert_eq!(made.status, 303, "{}", made.body);
    let before = app.store.audit_head().await.unwrap().rows;

    let refused = [
        ("Pa.One", "Pat", "One", "is taken"),
        ("PA.ONE", "Pat", "One", "is taken"),
        (".", "Pat", "Dot", "at least one letter or digit"),
        ("..", "Pat", "Dots", "at least one letter or digit"),
        // A Cyrillic "О" (U+041E) for the Latin "O".
        ("pa.two", "Pat", "\u{41e}ne", "mixes alphabets"),
        // A right-to-left override: shows as "One".
        ("pa.three", "Pat", "\u{202e}enO", "invisible character"),
        // Only a zero-width space.
        ("pa.four", "\u{200b}", "One", "invisible character"),
        ("pa.five", "Pat", "On\u{200b}e", "invisible character"),
    ];
    for (username, first, last, says) in refused {
        let r = create(&admin, patient_form(&csrf, username, first, last)).await;
        assert_eq!(r.status, 422, "{username:?} {last:?}: {}", r.body);
        assert!(r.body.contains(says), "{username:?} {last:?}: {}", r.body);
        assert_eq!(
            app.store.account(username).await.unwrap(),
            None,
            "{username:?}"
        );
    }
    assert_eq!(
        app.store.audit_head().await.unwrap().rows,
        before,
        "nothing stored"
    );

    // A name in one other alphabet is a name; padding typed by mistake is
    // trimmed at the form.
    let r = create(&admin, patient_form(&csrf, "ivan", " Иван ", "Петров")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let ivan = app.store.account("ivan").await.unwrap().unwrap();
    assert_eq!(ivan.first_name, "Иван");
}

/// Two patients with one name are told apart by the username beside it,
/// on the dashboard and on each patient's page.
async fn every_patient_shows_a_second_identifier(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin(&app).await;
    let admin = Browser::logged_in(&app, "root").await;
    let csrf = admin.csrf("/admin").await;
    for username in ["pat.one.a", "pat.one.b"] {
        let r = create(&admin, patient_form(&csrf, username, "Pat", "One")).await;
        assert_eq!(r.status, 303, "{}", r.body);
    }
    let doctor = Browser::logged_in(&app, "dr.house").await;
    let dashboard = doctor.get("/dashboard").await;
    assert_eq!(dashboard.body.matches("One, Pat").count(), 2);
    for username in ["pat.one.a", "pat.one.b"] {
        assert!(
            dashboard.body.contains(&format!("username {username}")),
            "{}",
            dashboard.body
        );
        let page = doctor.get(&format!("/patients/{username}")).await;
        assert_eq!(page.status, 200);
        assert!(
            page.body
                .contains(&format!("born 23 Apr 1956 · username {username}</p>")),
            "{}",
            page.body
        );
    }
}
