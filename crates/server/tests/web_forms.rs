//! The web application's forms as input, on both backends: refusals of
//! out-of-limits input, names and script rendered as text, SQL stored
//! verbatim, and Post/Redirect/Get (a reload repeats nothing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, Page, add_admin, add_admin_at, snapshot};
use common::{Backend, PASSWORD, TestApp};
use infusion_protocol::PatientLimits;
use infusion_testkit::patient_id;

infusion_testkit::backend_tests!(
    out_of_limits_input_is_refused_on_the_page,
    names_render_as_text,
    sql_and_script_in_every_text_field_are_stored_and_shown_verbatim,
    a_saved_form_redirects_so_a_reload_repeats_nothing,
);

async fn out_of_limits_input_is_refused_on_the_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let before = snapshot(&app, "alice").await;
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 5] = [
        (
            "prescription",
            &[("volume_ml", "3"), ("rate_ml_h", "50"), ("state", "run")],
            "3 mL at 50 mL/h is outside this patient's limits",
        ),
        (
            "prescription",
            &[("volume_ml", "3"), ("rate_ml_h", "4,5"), ("state", "run")],
            "is not a number",
        ),
        (
            "prescription",
            &[("volume_ml", "3"), ("rate_ml_h", "4"), ("state", "fast")],
            "neither run nor hold",
        ),
        (
            "limits",
            &[
                ("min_rate_ml_h", "9"),
                ("max_rate_ml_h", "2"),
                ("max_volume_ml", "9"),
            ],
            "The lowest rate, 9 mL/h, is above the highest, 2 mL/h",
        ),
        (
            "limits",
            &[
                ("min_rate_ml_h", "1"),
                ("max_rate_ml_h", "3"),
                ("max_volume_ml", "9"),
            ],
            "change it first",
        ),
    ];
    for (form, fields, says) in cases {
        let csrf = house.csrf("/patients/alice").await;
        let mut f = vec![("csrf", csrf.as_str())];
        f.extend_from_slice(fields);
        let p = house.post(&format!("/patients/alice/{form}"), &f).await;
        assert_eq!(p.status, 422, "{form} {fields:?}");
        assert!(p.body.contains("role=\"alert\""), "{}", p.body);
        assert!(
            p.body.contains(says),
            "{form} {fields:?} should say {says:?}"
        );
        assert_eq!(snapshot(&app, "alice").await, before);
    }
    // A form with fields missing is refused with a page saying so.
    let csrf = house.csrf("/patients/alice").await;
    let p = house
        .post(
            "/patients/alice/prescription",
            &[("csrf", &csrf), ("volume_ml", "3")],
        )
        .await;
    assert_eq!(p.status, 422);
    assert!(
        p.body.contains("could not be read") && p.body.contains("<html"),
        "{}",
        p.body
    );
    assert_eq!(snapshot(&app, "alice").await, before);
}

async fn names_render_as_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let hash = infusion_server::password::PasswordParams::INSECURE_FAST
        .hash_blocking(PASSWORD)
        .unwrap();
    let limits = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 10_000,
        max_volume_ul: 10_000,
    };
    let evil = "<script>alert(\"x\")</script>";
    app.store
        .create_patient(
            infusion_store::NewPatient {
                username: "mallory".into(),
                first_name: evil.into(),
                last_name: "O'Brien \"<b>\"".into(),
                physician_username: "dr.house".into(),
                password_hash: hash,
                identifiers: Default::default(),
            },
            "test",
            0,
        )
        .await
        .unwrap();
    app.store
        .set_limits(
            patient_id(&*app.store, "mallory").await,
            limits.into(),
            "test",
            0,
        )
        .await
        .unwrap();
    let house = Browser::logged_in(&app, "dr.house").await;
    for path in ["/dashboard", "/patients/mallory"] {
        let p = house.get(path).await;
        assert_eq!(p.status, 200, "{path}");
        assert!(!p.body.contains("<script>"), "{path} has a raw script tag");
        assert!(!p.body.contains("<b>"), "{path} has a raw tag");
        assert!(
            p.body.contains("&lt;script&gt;"),
            "{path} shows the name as text"
        );
    }
    let mallory = Browser::logged_in(&app, "mallory").await;
    let own = mallory.get("/patients/mallory").await;
    assert!(!own.body.contains("<script>") && own.body.contains("&lt;script&gt;"));
    // The administrator's account list shows every name too.
    add_admin(&app).await;
    let admin = Browser::logged_in(&app, "root").await;
    let list = admin.get("/admin").await;
    assert_eq!(list.status, 200);
    assert!(!list.body.contains("<script>") && !list.body.contains("<b>"));
    assert!(list.body.contains("&lt;script&gt;"));
}

/// Threats T4 and T5 (injection): SQL metacharacters and script tags in
/// every free-text field an administrator types (names, institution), and
/// in the username of a refused login (which reaches the audit trail), are
/// stored exactly as typed, shown escaped, and never executed: every table
/// is still there afterwards.
async fn sql_and_script_in_every_text_field_are_stored_and_shown_verbatim(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let payloads = [
        "Robert'); DROP TABLE accounts;--",
        "<script>alert(1)</script>",
        "\" OR 1=1 -- <img src=x onerror=alert(2)>",
        "'; DELETE FROM audit; SELECT '",
    ];
    let mut admin_pages = String::new();
    for (i, evil) in payloads.iter().enumerate() {
        // An administrator of the institution named by the payload: an
        // administrator makes physicians at their own institution only.
        let root = format!("root{i}");
        add_admin_at(&app, &root, evil).await;
        let admin = Browser::logged_in(&app, &root).await;
        let csrf = admin.csrf("/admin").await;
        let username = format!("doc{i}");
        let done = admin
            .post(
                "/admin/physicians",
                &[
                    ("csrf", csrf.as_str()),
                    ("username", &username),
                    ("first_name", evil),
                    ("last_name", evil),
                    ("institution", evil),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert!(
            done.status == 200 || done.status == 303,
            "{evil}: {}",
            done.status
        );
        let csrf = admin.csrf("/admin").await;
        let patient = format!("pat{i}");
        admin
            .post(
                "/admin/patients",
                &[
                    ("csrf", csrf.as_str()),
                    ("username", &patient),
                    ("first_name", evil),
                    ("last_name", evil),
                    ("physician", &username),
                    ("password", PASSWORD),
                    ("record_number", "MRN-1"),
                    ("birth_date", "1956-04-23"),
                ],
            )
            .await;
        // Stored exactly as typed.
        let stored = app
            .store
            .patient(patient_id(&*app.store, &patient).await)
            .await
            .unwrap();
        assert_eq!(
            (stored.first_name.as_str(), stored.last_name.as_str()),
            (*evil, *evil)
        );
        let account = app.store.account(&username).await.unwrap().unwrap();
        assert_eq!(account.first_name, *evil);
        // A web login under the payload as username is refused before
        // anything about it is stored.
        let stranger = Browser::new(&app);
        let refused = stranger.login(evil, "not the password at all").await;
        assert_eq!(refused.status, 401, "{evil}");
        assert!(!refused.body.contains("<script>") && !refused.body.contains("<img"));
        let page = admin.get("/admin").await;
        assert_eq!(page.status, 200);
        admin_pages.push_str(&page.body);
    }
    // Every administrator page shows its institution's payload escaped.
    let body = &admin_pages;
    assert!(!body.contains("<script>alert") && !body.contains("<img src=x"));
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        body.contains("Robert&#39;); DROP TABLE accounts;--")
            || body.contains("Robert'); DROP TABLE accounts;--")
    );
    for i in 0..payloads.len() {
        let doc = Browser::logged_in(&app, &format!("doc{i}")).await;
        // The administrator chose the password: it is changed first, on a
        // page that shows the name too.
        let page = doc.get("/account/password").await;
        assert!(!page.body.contains("<script>alert") && !page.body.contains("<img src=x"));
        let new = "lantern orbit pebble meadow";
        let changed = doc
            .post(
                "/account/password",
                &[
                    ("csrf", &page.csrf()),
                    ("current", PASSWORD),
                    ("new", new),
                    ("repeat", new),
                ],
            )
            .await;
        assert_eq!(changed.status, 303, "{}", changed.body);
        for path in ["/dashboard".to_owned(), format!("/patients/pat{i}")] {
            let page = doc.get(&path).await;
            assert_eq!(page.status, 200, "{path}");
            assert!(
                !page.body.contains("<script>alert") && !page.body.contains("<img src=x"),
                "{path}"
            );
        }
    }
    // Nothing was executed: every table is intact and the audit log too.
    assert!(app.store.accounts().await.unwrap().len() > 2 * payloads.len());
    let log = app.store.audit_log(None, 1_000).await.unwrap();
    assert!(
        !log.iter().any(|r| r.entry.actor.contains(payloads[3])),
        "a name no account could have is not stored"
    );
    let v = infusion_store::audit_chain::verify_audit(&*app.store)
        .await
        .unwrap();
    assert!(v.faults.is_empty(), "{:?}", v.faults);
}

/// Post/Redirect/Get: a saved prescription answers 303 to the patient
/// page, which says what was saved once; reloading that page (what a
/// browser's reload does after the redirect) writes no new version.
async fn a_saved_form_redirects_so_a_reload_repeats_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let versions = || async {
        let id = patient_id(&*app.store, "alice").await;
        app.store.prescriptions(id).await.unwrap().len()
    };
    let before = versions().await;
    let csrf = house.csrf("/patients/alice").await;
    let saved = house
        .post(
            "/patients/alice/prescription",
            &[
                ("csrf", &csrf),
                ("volume_ml", "2"),
                ("rate_ml_h", "5"),
                ("state", "run"),
                ("reviewed", "1"),
                ("reason", "as planned"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location.as_deref(), Some("/patients/alice"));
    assert_eq!(versions().await, before + 1);
    let landed = house.follow(&saved).await;
    assert_eq!(landed.status, 200);
    let said = format!("Saved as version {}", before + 1);
    assert!(landed.body.contains(&said), "{}", landed.body);
    for _ in 0..2 {
        let reloaded = house.get("/patients/alice").await;
        assert_eq!(reloaded.status, 200);
        assert!(!reloaded.body.contains(&said), "the notice is shown once");
    }
    assert_eq!(versions().await, before + 1, "a reload wrote nothing");

    // A refusal is not redirected: the page says why, answered 422.
    let refused = house
        .post(
            "/patients/alice/prescription",
            &[
                ("csrf", &csrf),
                ("volume_ml", "2"),
                ("rate_ml_h", "99"),
                ("state", "run"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("role=\"alert\""), "{}", refused.body);
    assert_eq!(versions().await, before + 1);

    // The notice is for the session that saved: another session's page
    // shows none, even with the first session's notice cookie.
    let other = Browser::new(&app).login("dr.house", PASSWORD).await;
    let other_session = cookie_of(&other, "infusion_session");
    let csrf = house.csrf("/patients/alice").await;
    let saved = house
        .post(
            "/patients/alice/limits",
            &[
                ("csrf", &csrf),
                ("min_rate_ml_h", "1"),
                ("max_rate_ml_h", "10"),
                ("max_volume_ml", "10"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303);
    let cookies = format!("{other_session}; {}", cookie_of(&saved, "infusion_notice"));
    let page = reqwest::Client::new()
        .get(app.url("/patients/alice"))
        .header("cookie", cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the other session is live");
    let page = page.text().await.unwrap();
    assert!(!page.contains("Limits saved."), "{page}");
    assert!(house.follow(&saved).await.body.contains("Limits saved."));
}

/// The cookie `name` an answer sets, as it goes in a `Cookie` header.
fn cookie_of(page: &Page, name: &str) -> String {
    page.cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .expect("a notice cookie")
        .to_owned()
}
