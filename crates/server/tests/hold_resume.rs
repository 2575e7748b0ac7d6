//! One-click Hold and Resume on the patient page, on both backends: each
//! writes a new version of the running order with only its state changed
//! (303, then the page says so); a second click changes nothing; only the
//! patient's physician may; a resume beyond the usual range asks for a
//! reason like any order there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, second_physician};
use common::{Backend, TestApp};
use infusion_protocol::{InfusionState, PatientLimits};
use infusion_store::Limits;

infusion_testkit::backend_tests!(
    hold_then_resume_keeps_the_order_and_changes_only_its_state,
    only_the_patients_physician_holds_and_a_resume_beyond_the_usual_range_asks_for_a_reason,
    a_pump_that_restarted_mid_order_is_continued_with_one_click,
);

async fn versions(app: &TestApp) -> Vec<(u32, u32, u32, InfusionState)> {
    app.store
        .prescriptions(app.a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.version, p.volume_ul, p.rate_ul_h, p.state))
        .collect()
}

async fn hold_then_resume_keeps_the_order_and_changes_only_its_state(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let page = house.get("/patients/alice").await;
    assert!(page.body.contains("Hold: pause the pump"), "{}", page.body);
    let csrf = page.csrf();

    let held = house.post("/patients/alice/hold", &[("csrf", &csrf)]).await;
    let shown = house.follow(&held).await;
    assert!(shown.body.contains("On hold (version 2)"), "{}", shown.body);
    assert!(shown.body.contains("Resume the order"), "{}", shown.body);
    // Clicked again (a second tab, a double click): nothing new.
    let again = house.post("/patients/alice/hold", &[("csrf", &csrf)]).await;
    assert!(house.follow(&again).await.body.contains("on hold already"));

    let resumed = house
        .post("/patients/alice/resume", &[("csrf", &csrf)])
        .await;
    let shown = house.follow(&resumed).await;
    assert!(shown.body.contains("Resumed (version 3)"), "{}", shown.body);
    assert_eq!(
        versions(&app).await,
        [
            (1, 2_000, 4_000, InfusionState::Run),
            (2, 2_000, 4_000, InfusionState::Hold),
            (3, 2_000, 4_000, InfusionState::Run),
        ]
    );
    // Opened as a page, the form's address shows the patient page.
    let opened = house.get("/patients/alice/hold").await;
    assert_eq!(opened.status, 303);
    assert_eq!(opened.location.as_deref(), Some("/patients/alice"));
}

async fn only_the_patients_physician_holds_and_a_resume_beyond_the_usual_range_asks_for_a_reason(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    second_physician(&app).await;
    let other = Browser::logged_in(&app, "dr.other").await;
    let csrf = other.csrf("/dashboard").await;
    let refused = other.post("/patients/alice/hold", &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, 404, "{}", refused.body);
    let patient = Browser::logged_in(&app, "alice").await;
    let csrf = patient.csrf("/patients/alice").await;
    let refused = patient
        .post("/patients/alice/hold", &[("csrf", &csrf)])
        .await;
    assert!(matches!(refused.status, 403 | 404), "{}", refused.body);
    let house = Browser::logged_in(&app, "dr.house").await;
    let no_csrf = house.post("/patients/alice/hold", &[("csrf", "x")]).await;
    assert_eq!(no_csrf.status, 403);
    assert_eq!(versions(&app).await.len(), 1);

    // The order is held, then the usual range narrows below its rate: a
    // resume now crosses it and asks for a reason, sending nothing.
    let csrf = house.csrf("/patients/alice").await;
    let held = house.post("/patients/alice/hold", &[("csrf", &csrf)]).await;
    assert_eq!(held.status, 303);
    let hard = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 10_000,
        max_volume_ul: 10_000,
    };
    let soft = PatientLimits {
        max_rate_ul_h: 3_000,
        ..hard
    };
    app.store
        .set_limits(
            app.a.id,
            Limits {
                hard,
                soft,
                set: true,
            },
            "test",
            0,
        )
        .await
        .unwrap();
    let asked = house
        .post("/patients/alice/resume", &[("csrf", &csrf)])
        .await;
    assert_eq!(asked.status, 422, "{}", asked.body);
    assert!(
        asked.body.contains("Resume this order with this reason"),
        "{}",
        asked.body
    );
    assert!(
        asked.body.contains("above the soft limit of 3 mL/h"),
        "{}",
        asked.body
    );
    assert_eq!(versions(&app).await.len(), 2);
}

/// A pump that restarted in the middle of its order reports the restart
/// (its alarm, a pause, what it had given) and waits: the page says so and
/// offers to continue the order, which writes a new version of it once.
async fn a_pump_that_restarted_mid_order_is_continued_with_one_click(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.login(&app.a).await;
    let (status, body) = app.index(&app.a, &token).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let started = serde_json::json!([
        {"seq": 1, "uptime_ms": 10, "kind": "state", "state": "started"},
        {"seq": 2, "uptime_ms": 10, "kind": "progress", "delivered_ul": 0, "rate_ul_h": 4000, "index_version": 1},
    ]);
    let (status, body) = app.report(&app.a, &token, started).await;
    assert_eq!(status, 200, "{body}");
    let house = Browser::logged_in(&app, "dr.house").await;
    let page = house.get("/patients/alice").await;
    assert!(page.body.contains("Hold: pause the pump"), "{}", page.body);
    assert!(!page.body.contains("Continue the order"));

    // The power goes; the pump comes back and says so.
    let token = body["token"].as_str().unwrap().to_owned();
    let restarted = serde_json::json!([
        {"seq": 3, "uptime_ms": 0, "kind": "alarm", "alarm": "restarted"},
        {"seq": 4, "uptime_ms": 0, "kind": "state", "state": "paused"},
        {"seq": 5, "uptime_ms": 0, "kind": "progress", "delivered_ul": 1200, "rate_ul_h": 0, "index_version": 1},
    ]);
    let (status, body) = app.report(&app.a, &token, restarted).await;
    assert_eq!(status, 200, "{body}");
    let page = house.get("/patients/alice").await;
    assert!(
        page.body
            .contains("stopped: the pump restarted; continue the order"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Continue the order"), "{}", page.body);
    let csrf = page.csrf();
    let continued = house
        .post("/patients/alice/resume", &[("csrf", &csrf)])
        .await;
    let shown = house.follow(&continued).await;
    assert!(
        shown.body.contains("Continued (version 2)"),
        "{}",
        shown.body
    );
    // Sent: until the pump takes it, a second click sends nothing more.
    assert!(!shown.body.contains("Continue the order"), "{}", shown.body);
    let again = house
        .post("/patients/alice/resume", &[("csrf", &csrf)])
        .await;
    assert!(house.follow(&again).await.body.contains("running already"));
    assert_eq!(
        versions(&app).await,
        [
            (1, 2_000, 4_000, InfusionState::Run),
            (2, 2_000, 4_000, InfusionState::Run),
        ]
    );
}
