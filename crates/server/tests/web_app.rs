//! The web application over HTTP, on both backends: logging in and out,
//! the authorization matrix (every page and form, for each role, against
//! an own and someone else's patient; a refusal changes nothing), CSRF,
//! refusals of out-of-limits input, and names rendered as text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, PASSWORD, TestApp};
use infusion_protocol::PatientLimits;
use infusion_testkit::{patient_id, seed_patient, seed_physician};

infusion_testkit::backend_tests!(
    login_logout_and_session_renewal,
    authorization_matrix_of_pages_and_forms,
    forms_without_this_sessions_csrf_token_change_nothing,
    out_of_limits_input_is_refused_on_the_page,
    names_render_as_text,
    live_stream_carries_only_changes_of_visible_patients,
    alarms_stay_open_until_their_physician_acknowledges_them,
    suggestions_change_nothing_until_approved_and_stale_ones_are_refused,
    versions_show_their_delivery_state,
    admin_manages_accounts_and_devices_and_sees_no_clinical_data,
    sql_and_script_in_every_text_field_are_stored_and_shown_verbatim,
);

/// A browser: keeps cookies, does not follow redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let at = self.body.find(marker).expect("a form with a CSRF token") + marker.len();
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.url(""),
        }
    }

    async fn page(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        Page {
            status,
            location,
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        Self::page(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        Self::page(
            self.http
                .post(format!("{}{path}", self.base))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Logs in; returns the page it lands on (after the redirect to `/`).
    async fn login(&self, username: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        let done = self
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("username", username),
                    ("password", password),
                ],
            )
            .await;
        if done.status == 303 {
            assert_eq!(done.location.as_deref(), Some("/"));
        }
        done
    }

    async fn logged_in(app: &TestApp, username: &str) -> Browser {
        let b = Browser::new(app);
        let p = b.login(username, PASSWORD).await;
        assert_eq!(p.status, 303, "{username}: {}", p.body);
        b
    }

    /// A CSRF token of this browser's session, from a page it may see.
    async fn csrf(&self, page: &str) -> String {
        self.get(page).await.csrf()
    }
}

/// Adds physician dr.other with patient carol (device 02:..:0C).
async fn second_physician(app: &TestApp) {
    let hash = infusion_server::password::PasswordParams::INSECURE_FAST
        .hash_blocking(PASSWORD)
        .unwrap();
    seed_physician(&*app.store, "dr.other", &hash).await;
    let limits = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 10_000,
        max_volume_ul: 10_000,
    };
    seed_patient(
        &*app.store,
        "carol",
        "Carol",
        "dr.other",
        &hash,
        "02:00:00:00:00:0C",
        limits,
    )
    .await;
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
            "user:nobody web_login_refused",
            "user:dr.house web_login_refused",
        ]
    );

    // A patient lands on their own page.
    let pat = Browser::logged_in(&app, "alice").await;
    assert_eq!(
        pat.get("/").await.location.as_deref(),
        Some("/patients/alice")
    );
}

/// What a patient's record looks like, to check a refusal changed nothing.
async fn snapshot(app: &TestApp, username: &str) -> String {
    let p = app
        .store
        .patient(patient_id(&*app.store, username).await)
        .await
        .unwrap();
    let versions = app.store.prescriptions(p.patient_id).await.unwrap();
    format!("{:?} {:?}", p.limits, versions)
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
    let prescription = [("volume_ml", "3"), ("rate_ml_h", "5"), ("state", "run")];
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
        assert_eq!(done.status, 200, "dr.house POST {path}: {}", done.body);
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
            p.limits.min_rate_ul_h,
            p.limits.max_rate_ul_h,
            p.limits.max_volume_ul
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

async fn out_of_limits_input_is_refused_on_the_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let before = snapshot(&app, "alice").await;
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 5] = [
        (
            "prescription",
            &[("volume_ml", "3"), ("rate_ml_h", "50"), ("state", "run")],
            "outside the patient's limits",
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
            "above maximum rate",
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
            },
            "test",
            0,
        )
        .await
        .unwrap();
    app.store
        .set_limits(patient_id(&*app.store, "mallory").await, limits, "test", 0)
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

/// Adds administrator root (Ada Admin).
async fn add_admin(app: &TestApp) {
    app.store
        .create_admin(
            infusion_store::NewPhysician {
                username: "root".into(),
                first_name: "Ada".into(),
                last_name: "Admin".into(),
                institution: "Test Clinic".into(),
                password_hash: infusion_server::password::PasswordParams::INSECURE_FAST
                    .hash_blocking(PASSWORD)
                    .unwrap(),
            },
            "test",
            0,
        )
        .await
        .unwrap();
}

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

async fn live_stream_carries_only_changes_of_visible_patients(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    second_physician(&app).await;
    let rx = |v: u32| infusion_store::NewPrescription {
        volume_ul: 2_000,
        rate_ul_h: v,
        state: infusion_protocol::InfusionState::Run,
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

async fn alarms_stay_open_until_their_physician_acknowledges_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    second_physician(&app).await;
    let token = app.login(&app.a).await;
    let (status, body) = app
        .report(
            &app.a,
            &token,
            serde_json::json!([
                {"seq": 1, "uptime_ms": 10, "kind": "progress", "delivered_ul": 5, "rate_ul_h": 4000, "index_version": 1},
                {"seq": 2, "uptime_ms": 20, "kind": "alarm", "alarm": "occlusion"}
            ]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let open = app.store.open_alarms(app.a.id).await.unwrap();
    assert_eq!(open.len(), 1);
    let alarm_id = open[0].id;
    let progress_id = app.store.events(app.a.id, 0, 10).await.unwrap()[0].id;

    let house = Browser::logged_in(&app, "dr.house").await;
    let dash = house.get("/dashboard").await;
    assert!(dash.body.contains("occlusion"), "{}", dash.body);
    let page = house.get("/patients/alice").await;
    let ack = format!("/patients/alice/alarms/{alarm_id}/ack");
    assert!(page.body.contains(&ack), "{}", page.body);

    // Refused: the patient (read only), another patient, another physician,
    // an event that is not an alarm, an alarm of another patient's path.
    for (b, who, own, path, want) in [
        (
            Browser::logged_in(&app, "alice").await,
            "alice",
            "/patients/alice",
            ack.clone(),
            403,
        ),
        (
            Browser::logged_in(&app, "bob").await,
            "bob",
            "/patients/bob",
            ack.clone(),
            404,
        ),
        (
            Browser::logged_in(&app, "dr.other").await,
            "dr.other",
            "/dashboard",
            ack.clone(),
            404,
        ),
        (
            Browser::logged_in(&app, "dr.house").await,
            "dr.house",
            "/dashboard",
            format!("/patients/alice/alarms/{progress_id}/ack"),
            404,
        ),
        (
            Browser::logged_in(&app, "dr.house").await,
            "dr.house",
            "/dashboard",
            format!("/patients/bob/alarms/{alarm_id}/ack"),
            404,
        ),
    ] {
        let csrf = b.csrf(own).await;
        assert_eq!(
            b.post(&path, &[("csrf", &csrf)]).await.status,
            want,
            "{who} {path}"
        );
        assert_eq!(
            app.store.open_alarms(app.a.id).await.unwrap().len(),
            1,
            "{who} {path}"
        );
    }

    let csrf = house.csrf("/patients/alice").await;
    let done = house.post(&ack, &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("Alarm acknowledged."));
    assert!(app.store.open_alarms(app.a.id).await.unwrap().is_empty());
    let again = house.post(&ack, &[("csrf", &csrf)]).await;
    assert!(again.body.contains("acknowledged already"));
    let acks: Vec<_> = app
        .store
        .audit_log(Some(app.a.id), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.action.as_str() == "alarm_acknowledged")
        .collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].entry.actor, "user:dr.house");
    assert!(acks[0].entry.detail.starts_with("occlusion"));
    let dash = house.get("/dashboard").await;
    assert!(!dash.body.contains("class=\"alarm\""), "{}", dash.body);
}

/// Reports three vitals readings with `tremor` from alice's pump, seq
/// `from..from+3`, and waits until the decision algorithm has looked.
async fn tremor(app: &TestApp, from: u32, tremor: u8) -> Vec<infusion_store::Suggestion> {
    let token = app.login(&app.a).await;
    let events: Vec<serde_json::Value> = (from..from + 3)
        .map(|seq| {
            serde_json::json!({"seq": seq, "uptime_ms": seq * 1000, "kind": "vitals",
            "heart_rate_bpm": 72, "spo2_pct": 97, "tremor_score": tremor})
        })
        .collect();
    let (status, body) = app
        .report(&app.a, &token, serde_json::Value::Array(events))
        .await;
    assert_eq!(status, 200, "{body}");
    let before = app.store.pending_suggestions(app.a.id).await.unwrap();
    // The algorithm runs after the answer; give it a moment to store.
    for _ in 0..50 {
        let now = app.store.pending_suggestions(app.a.id).await.unwrap();
        if now != before
            || !now.is_empty() && now[0].proposal.based_on_version == current_version(app).await
        {
            return now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.store.pending_suggestions(app.a.id).await.unwrap()
}

async fn current_version(app: &TestApp) -> u32 {
    app.store
        .patient(patient_id(&*app.store, "alice").await)
        .await
        .unwrap()
        .prescription
        .unwrap()
        .version
}

async fn suggestions_change_nothing_until_approved_and_stale_ones_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    second_physician(&app).await;
    let house = Browser::logged_in(&app, "dr.house").await;

    // High tremor: raise 4 mL/h by 10 %. Nothing changes yet.
    let pending = tremor(&app, 1, 80).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    let s = &pending[0];
    assert_eq!(
        (
            s.proposal.based_on_version,
            s.proposal.rate_ul_h,
            s.proposal.volume_ul
        ),
        (1, 4_400, 2_000)
    );
    assert!(
        s.proposal.reason.contains("tremor"),
        "{}",
        s.proposal.reason
    );
    assert_eq!(current_version(&app).await, 1);
    let dash = house.get("/dashboard").await;
    assert!(dash.body.contains("1 to review"), "{}", dash.body);
    let page = house.get("/patients/alice").await;
    assert!(page.body.contains("4.4 mL/h"), "{}", page.body);

    let approve = format!("/patients/alice/suggestions/{}/approve", s.id);
    let reject = format!("/patients/alice/suggestions/{}/reject", s.id);
    for (who, own, want) in [
        ("alice", "/patients/alice", 403),
        ("bob", "/patients/bob", 404),
        ("dr.other", "/dashboard", 404),
    ] {
        let b = Browser::logged_in(&app, who).await;
        let csrf = b.csrf(own).await;
        for path in [&approve, &reject] {
            assert_eq!(
                b.post(path, &[("csrf", &csrf)]).await.status,
                want,
                "{who} {path}"
            );
        }
    }
    assert_eq!(
        app.store.pending_suggestions(app.a.id).await.unwrap().len(),
        1
    );
    assert_eq!(current_version(&app).await, 1);

    // Rejected: closed, audited, prescription unchanged.
    let csrf = house.csrf("/patients/alice").await;
    let done = house.post(&reject, &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("Suggestion rejected."));
    assert!(
        app.store
            .pending_suggestions(app.a.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(current_version(&app).await, 1);
    assert_eq!(
        house.post(&approve, &[("csrf", &csrf)]).await.status,
        404,
        "decided already"
    );

    // A new suggestion, then a newer prescription makes it stale: refused.
    let pending = tremor(&app, 4, 80).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    let stale_id = pending[0].id;
    let p = house
        .post(
            "/patients/alice/prescription",
            &[
                ("csrf", &csrf),
                ("volume_ml", "2"),
                ("rate_ml_h", "5"),
                ("state", "run"),
            ],
        )
        .await;
    assert_eq!(p.status, 200);
    assert_eq!(current_version(&app).await, 2);
    let page = house.get("/patients/alice").await;
    assert!(
        page.body.contains("Stale: version 2 was written since"),
        "{}",
        page.body
    );
    let refused = house
        .post(
            &format!("/patients/alice/suggestions/{stale_id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("can no longer be approved"),
        "{}",
        refused.body
    );
    assert_eq!(current_version(&app).await, 2);

    // Fresh vitals supersede it; approving the new one writes version 3.
    let pending = tremor(&app, 7, 80).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_ne!(pending[0].id, stale_id);
    assert_eq!(
        (
            pending[0].proposal.based_on_version,
            pending[0].proposal.rate_ul_h
        ),
        (2, 5_500)
    );
    let ok = house
        .post(
            &format!("/patients/alice/suggestions/{}/approve", pending[0].id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("approved as version 3"), "{}", ok.body);
    let v3 = app
        .store
        .patient(patient_id(&*app.store, "alice").await)
        .await
        .unwrap()
        .prescription
        .unwrap();
    assert_eq!(
        (v3.version, v3.rate_ul_h, v3.created_by.as_str()),
        (3, 5_500, "user:dr.house")
    );
    let actions: Vec<String> = app
        .store
        .audit_log(Some(app.a.id), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.action.as_str().starts_with("suggestion_"))
        .map(|r| format!("{} {}", r.entry.actor, r.entry.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            "user:dr.house suggestion_approved",
            "decision-algorithm suggestion_made",
            "decision-algorithm suggestion_made",
            "user:dr.house suggestion_rejected",
            "decision-algorithm suggestion_made",
        ]
    );
}

/// The delivery column of version `v`'s row on the patient page.
fn delivery_of(page: &str, v: u32) -> String {
    let row = page
        .split("<tr>")
        .find(|r| r.starts_with(&format!("<td>{v}</td>")))
        .unwrap_or_else(|| panic!("no row for version {v}"));
    let cells: Vec<&str> = row.split("<td>").collect();
    cells[7].split("</td>").next().unwrap().to_owned()
}

async fn versions_show_their_delivery_state(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let page = || async { house.get("/patients/alice").await.body };
    assert_eq!(
        delivery_of(&page().await, 1),
        "sent; waiting for the pump&#39;s next poll".replace("&#39;", "'")
    );

    let token = app.login(&app.a).await;
    let (status, body) = app.index(&app.a, &token).await;
    assert_eq!(status, 200);
    assert!(delivery_of(&page().await, 1).starts_with("fetched by the pump at"));

    let token = body["token"].as_str().unwrap().to_owned();
    let (status, body) = app
        .report(&app.a, &token, common::progress_events(1, 1))
        .await;
    assert_eq!(status, 200);
    let now = page().await;
    assert_eq!(delivery_of(&now, 1), "running on the pump");
    // The history chart plots the progress report, labelled for screen readers.
    assert!(
        now.contains("role=\"img\" aria-label=\"Delivered in mL, from"),
        "{now}"
    );

    let csrf = house.csrf("/patients/alice").await;
    let p = house
        .post(
            "/patients/alice/prescription",
            &[
                ("csrf", &csrf),
                ("volume_ml", "2"),
                ("rate_ml_h", "6"),
                ("state", "run"),
            ],
        )
        .await;
    assert_eq!(p.status, 200);
    let now = page().await;
    assert!(delivery_of(&now, 2).starts_with("sent"));
    assert_eq!(delivery_of(&now, 1), "delivered, then replaced");

    let token = body["token"].as_str().unwrap().to_owned();
    let (status, body) = app.index(&app.a, &token).await;
    assert_eq!(status, 200);
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, _) = app
        .report(
            &app.a,
            &token,
            serde_json::json!([{"seq": 2, "uptime_ms": 5000, "kind": "alarm", "alarm": "limits_refused"}]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        delivery_of(&page().await, 2),
        "refused by the pump (limits_refused alarm)"
    );
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
    let physician_form = |csrf: &str, username: &str, password: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("username", username.to_owned()),
            ("first_name", "New".to_owned()),
            ("last_name", "Doctor".to_owned()),
            ("institution", "Test Clinic".to_owned()),
            ("password", password.to_owned()),
        ]
    };
    for (who, own) in [("dr.house", "/dashboard"), ("alice", "/patients/alice")] {
        let b = Browser::logged_in(&app, who).await;
        assert_eq!(b.get("/admin").await.status, 403, "{who}");
        let csrf = b.csrf(own).await;
        let f = physician_form(&csrf, "dr.sneaky", PASSWORD);
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(b.post("/admin/physicians", &f).await.status, 403, "{who}");
    }
    assert_eq!(app.store.account("dr.sneaky").await.unwrap(), None);

    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let admin = &admin;
        async move {
            let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            admin.post(path, &f).await
        }
    };
    let r = post(
        "/admin/physicians",
        physician_form(&csrf, "dr.new", "short"),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("a password is 12 to 128 characters"),
        "{}",
        r.body
    );
    let r = post(
        "/admin/physicians",
        physician_form(&csrf, "dr.house", PASSWORD),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("is taken"), "{}", r.body);
    let r = post(
        "/admin/physicians",
        physician_form(&csrf, "dr.new", PASSWORD),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.store.account("dr.new").await.unwrap().unwrap().role,
        infusion_store::Role::Physician
    );

    let r = post(
        "/admin/patients",
        vec![
            ("csrf", csrf.clone()),
            ("username", "dave".into()),
            ("first_name", "Dave".into()),
            ("last_name", "Patient".into()),
            ("physician", "dr.new".into()),
            ("password", PASSWORD.into()),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
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
        ("02:00:00:00:00:dd", 200, "registered to dave"),
    ] {
        let r = post(
            "/admin/devices",
            vec![
                ("csrf", csrf.clone()),
                ("patient", "dave".into()),
                ("mac", mac.into()),
            ],
        )
        .await;
        assert_eq!(r.status, want, "{mac}: {}", r.body);
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

/// Threats T4 and T5 (injection): SQL metacharacters and script tags in
/// every free-text field an administrator types (names, institution), and
/// in the username of a refused login (which reaches the audit trail), are
/// stored exactly as typed, shown escaped, and never executed: every table
/// is still there afterwards.
async fn sql_and_script_in_every_text_field_are_stored_and_shown_verbatim(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin(&app).await;
    let payloads = [
        "Robert'); DROP TABLE accounts;--",
        "<script>alert(1)</script>",
        "\" OR 1=1 -- <img src=x onerror=alert(2)>",
        "'; DELETE FROM audit; SELECT '",
    ];
    let admin = Browser::logged_in(&app, "root").await;
    for (i, evil) in payloads.iter().enumerate() {
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
        // A refused web login under the payload as username reaches the
        // audit log as text.
        let stranger = Browser::new(&app);
        let refused = stranger.login(evil, "not the password at all").await;
        assert_eq!(refused.status, 401, "{evil}");
        assert!(!refused.body.contains("<script>") && !refused.body.contains("<img"));
    }
    for path in ["/admin"] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 200);
        assert!(
            !page.body.contains("<script>alert") && !page.body.contains("<img src=x"),
            "{path}"
        );
        assert!(
            page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}"
        );
        assert!(
            page.body.contains("Robert&#39;); DROP TABLE accounts;--")
                || page.body.contains("Robert'); DROP TABLE accounts;--"),
            "{path}"
        );
    }
    for i in 0..payloads.len() {
        let doc = Browser::logged_in(&app, &format!("doc{i}")).await;
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
        log.iter().any(|r| r.entry.actor.contains(payloads[3])),
        "the refused login names the typed username verbatim"
    );
    let v = infusion_store::audit_chain::verify_audit(&*app.store)
        .await
        .unwrap();
    assert!(v.faults.is_empty(), "{:?}", v.faults);
}
