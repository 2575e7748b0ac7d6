//! Who reaches what in the web application, on both backends: logging in
//! and out, the authorization matrix (every page and form, for each role,
//! against an own and someone else's patient; a refusal changes nothing),
//! CSRF, and the live stream's filter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, second_physician, snapshot};
use common::{Backend, PASSWORD, TestApp};
use infusion_testkit::patient_id;

infusion_testkit::backend_tests!(
    login_logout_and_session_renewal,
    authorization_matrix_of_pages_and_forms,
    forms_without_this_sessions_csrf_token_change_nothing,
    live_stream_carries_only_changes_of_visible_patients,
);

/// Reads the first `change` event's data from a server-sent event stream.
async fn first_change(resp: &mut reqwest::Response) -> String {
    let mut text = String::new();
    let found = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if let Some(at) = text.find("event: change\ndata: ") {
                let rest = &text[at + "event: change\ndata: ".len()..];
                if let Some(end) = rest.find('\n') {
                    return rest[..end].to_owned();
                }
            }
            match resp.chunk().await.unwrap() {
                Some(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
                None => panic!("stream ended: {text:?}"),
            }
        }
    })
    .await;
    found.expect("a change event within 10 s")
}

async fn login_logout_and_session_renewal(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b = Browser::new(&app);
    // Anonymous: every page sends to the login page.
    for path in ["/", "/dashboard", "/patients/alice"] {
        let p = b.get(path).await;
        assert_eq!(
            (p.status, p.location.as_deref()),
            (303, Some("/login")),
            "{path}"
        );
    }
    let wrong = b.login("dr.house", "not the password at all").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Unknown username or wrong password"));
    let unknown = b.login("nobody", PASSWORD).await;
    assert_eq!(unknown.status, 401);
    assert_eq!(b.get("/dashboard").await.status, 303);

    let ok = b.login("dr.house", PASSWORD).await;
    assert_eq!(ok.status, 303);
    let home = b.get("/").await;
    assert_eq!(home.location.as_deref(), Some("/dashboard"));
    let dash = b.get("/dashboard").await;
    assert_eq!(dash.status, 200);
    assert!(dash.body.contains("Patient, Alice") && dash.body.contains("Patient, Bob"));

    // Logging in again replaces the session: the old id is dead.
    let csrf_before = b.csrf("/dashboard").await;
    assert_eq!(b.login("dr.house", PASSWORD).await.status, 303);
    let csrf_after = b.csrf("/dashboard").await;
    assert_ne!(csrf_before, csrf_after, "a new session id at login");

    // Logout ends the session; the cookie no longer opens anything.
    let out = b.post("/logout", &[("csrf", &csrf_after)]).await;
    assert_eq!((out.status, out.location.as_deref()), (303, Some("/login")));
    assert_eq!(b.get("/dashboard").await.status, 303);

    let audit: Vec<String> = app
        .store
        .audit_log(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.action.as_str().starts_with("web_"))
        .map(|r| format!("{} {}", r.entry.actor, r.entry.action.as_str()))
        .collect();
    assert_eq!(
        audit,
        [
            "user:dr.house web_logout",
            "user:dr.house web_login",
            "user:dr.house web_logout",
            "user:dr.house web_login",
            "user:dr.house web_login_refused",
        ]
    );

    // Two login pages open in one browser (two tabs, or one reopened
    // while a login was answered) share one token: the older still works.
    let tabs = Browser::new(&app);
    let older = tabs.get("/login").await.csrf();
    let newer = tabs.get("/login").await.csrf();
    assert_eq!(older, newer);
    let done = tabs
        .post(
            "/login",
            &[
                ("csrf", older.as_str()),
                ("username", "dr.house"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);

    // A patient lands on their own page.
    let pat = Browser::logged_in(&app, "alice").await;
    assert_eq!(
        pat.get("/").await.location.as_deref(),
        Some("/patients/alice")
    );
}

async fn authorization_matrix_of_pages_and_forms(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    second_physician(&app).await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let other = Browser::logged_in(&app, "dr.other").await;
    let alice = Browser::logged_in(&app, "alice").await;
    let bob = Browser::logged_in(&app, "bob").await;
    let anon = Browser::new(&app);

    // Pages: (who, path, expected status).
    let pages: [(&Browser, &str, &str, u16); 11] = [
        (&house, "dr.house", "/dashboard", 200),
        (&other, "dr.other", "/dashboard", 200),
        (&alice, "alice", "/dashboard", 403),
        (&anon, "anonymous", "/dashboard", 303),
        (&house, "dr.house", "/patients/alice", 200),
        (&alice, "alice", "/patients/alice", 200),
        (&bob, "bob", "/patients/alice", 404),
        (&other, "dr.other", "/patients/alice", 404),
        (&anon, "anonymous", "/patients/alice", 303),
        (&house, "dr.house", "/patients/carol", 404),
        (&house, "dr.house", "/patients/nobody", 404),
    ];
    for (b, who, path, want) in pages {
        assert_eq!(b.get(path).await.status, want, "{who} GET {path}");
    }
    // A refused page shows no data of the patient.
    let refused = bob.get("/patients/alice").await;
    assert!(!refused.body.contains("Alice"), "{}", refused.body);
    // Patients see their record read only: no forms but logout.
    let own = alice.get("/patients/alice").await;
    assert!(!own.body.contains("/limits") && !own.body.contains("/prescription"));
    assert!(!own.body.contains("Audit trail"));

    // Forms: every refusal leaves the record as it was.
    let limits = [
        ("min_rate_ml_h", "2"),
        ("max_rate_ml_h", "8"),
        ("max_volume_ml", "9"),
    ];
    let prescription = [
        ("volume_ml", "3"),
        ("rate_ml_h", "5"),
        ("state", "run"),
        ("reviewed", "1"),
        ("reason", "as planned"),
    ];
    for (form, fields) in [("limits", &limits[..]), ("prescription", &prescription[..])] {
        let path = format!("/patients/alice/{form}");
        let before = snapshot(&app, "alice").await;
        for (b, who, own_page, want) in [
            (&alice, "alice", "/patients/alice", 403),
            (&bob, "bob", "/patients/bob", 404),
            (&other, "dr.other", "/dashboard", 404),
        ] {
            let csrf = b.csrf(own_page).await;
            let mut f = vec![("csrf", csrf.as_str())];
            f.extend_from_slice(fields);
            assert_eq!(b.post(&path, &f).await.status, want, "{who} POST {path}");
            assert_eq!(
                snapshot(&app, "alice").await,
                before,
                "{who} POST {path} changed something"
            );
        }
        let mut f = vec![("csrf", "x")];
        f.extend_from_slice(fields);
        assert_eq!(
            anon.post(&path, &f).await.status,
            303,
            "anonymous POST {path}"
        );
        assert_eq!(snapshot(&app, "alice").await, before);

        let csrf = house.csrf("/patients/alice").await;
        let mut f = vec![("csrf", csrf.as_str())];
        f.extend_from_slice(fields);
        let done = house.post(&path, &f).await;
        assert_eq!(done.status, 303, "dr.house POST {path}: {}", done.body);
        assert_eq!(done.location.as_deref(), Some("/patients/alice"));
        let done = house.follow(&done).await;
        assert!(done.body.contains("role=\"status\""), "{}", done.body);
        assert_ne!(
            snapshot(&app, "alice").await,
            before,
            "dr.house POST {path}"
        );
    }
    let p = app
        .store
        .patient(patient_id(&*app.store, "alice").await)
        .await
        .unwrap();
    assert_eq!(
        (
            p.limits.hard.min_rate_ul_h,
            p.limits.hard.max_rate_ul_h,
            p.limits.hard.max_volume_ul
        ),
        (2_000, 8_000, 9_000)
    );
    let v = p.prescription.unwrap();
    assert_eq!((v.version, v.volume_ul, v.rate_ul_h), (2, 3_000, 5_000));
    assert_eq!(v.created_by, "user:dr.house");
}

async fn forms_without_this_sessions_csrf_token_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let other_session = Browser::logged_in(&app, "dr.house").await;
    let foreign = other_session.csrf("/dashboard").await;
    let before = snapshot(&app, "alice").await;
    for csrf in ["", "forged", foreign.as_str()] {
        let p = house
            .post(
                "/patients/alice/prescription",
                &[
                    ("csrf", csrf),
                    ("volume_ml", "3"),
                    ("rate_ml_h", "5"),
                    ("state", "run"),
                ],
            )
            .await;
        assert_eq!(p.status, 403, "csrf {csrf:?}");
        let p = house.post("/logout", &[("csrf", csrf)]).await;
        assert_eq!(p.status, 403, "logout with csrf {csrf:?}");
    }
    assert_eq!(snapshot(&app, "alice").await, before);
    assert_eq!(house.get("/dashboard").await.status, 200, "still logged in");
    // The login form's token must match its cookie too.
    let fresh = Browser::new(&app);
    let p = fresh
        .post(
            "/login",
            &[
                ("csrf", "guess"),
                ("username", "dr.house"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(p.status, 403);
}

async fn live_stream_carries_only_changes_of_visible_patients(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    second_physician(&app).await;
    let rx = |v: u32| infusion_store::NewPrescription {
        volume_ul: 2_000,
        rate_ul_h: v,
        state: infusion_protocol::InfusionState::Run,
        drug: None,
    };
    let anon = Browser::new(&app);
    assert_eq!(anon.get("/live").await.status, 303);
    // With PostgreSQL the seeding's notifications may still be on their
    // way; let the feed go quiet before listening.
    let mut feed = app.store.changes();
    while let Ok(Ok(_)) =
        tokio::time::timeout(std::time::Duration::from_millis(500), feed.recv()).await
    {}

    for (who, hidden, shown) in [("dr.house", "carol", "alice"), ("alice", "bob", "alice")] {
        let b = Browser::logged_in(&app, who).await;
        let mut stream = b.http.get(format!("{}/live", b.base)).send().await.unwrap();
        assert_eq!(stream.status(), 200);
        assert!(
            stream.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        // Committed in this order; the hidden one must not come through.
        app.store
            .set_prescription(patient_id(&*app.store, hidden).await, rx(3_000), "test", 1)
            .await
            .unwrap();
        app.store
            .set_prescription(patient_id(&*app.store, shown).await, rx(3_500), "test", 2)
            .await
            .unwrap();
        let id = app
            .store
            .patient(patient_id(&*app.store, shown).await)
            .await
            .unwrap()
            .patient_id
            .0;
        assert_eq!(
            first_change(&mut stream).await,
            format!("{{\"patient\":{id},\"kind\":\"prescription\"}}"),
            "{who}"
        );
    }
}
