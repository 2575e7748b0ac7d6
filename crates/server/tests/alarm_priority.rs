//! Alarm priorities on the pages, on both backends: every alarm is shown
//! with its priority as a symbol and a word, the patient page lists the
//! most urgent first, and the dashboard puts the patient with the most
//! urgent alarm first, before one with more but less urgent alarms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::Browser;
use common::{Backend, Patient, TestApp};
use serde_json::{Value, json};

infusion_testkit::backend_tests!(the_most_urgent_alarm_comes_first,);

async fn alarms(app: &TestApp, p: &Patient, kinds: &[&str]) {
    let token = app.login(p).await;
    let events: Vec<Value> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| json!({"seq": i + 1, "uptime_ms": 10 * (i + 1), "kind": "alarm", "alarm": k}))
        .collect();
    let (status, body) = app.report(p, &token, Value::Array(events)).await;
    assert_eq!(status, 200, "{body}");
}

async fn the_most_urgent_alarm_comes_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    alarms(&app, &app.a, &["battery_low", "occlusion", "syringe_empty"]).await;
    alarms(
        &app,
        &app.b,
        &["battery_low", "battery_low", "limits_refused", "restarted"],
    )
    .await;
    let house = Browser::logged_in(&app, "dr.house").await;

    let page = house.get("/patients/alice").await.body;
    let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("no {needle:?}"));
    assert!(page.contains(
        r#"<span class="priority high"><span aria-hidden="true">!!!</span> High priority</span>"#
    ));
    assert!(at("Occlusion: the line is blocked") < at("Syringe empty"));
    assert!(
        at("Syringe empty") < at("Battery low"),
        "newest first within a priority"
    );
    assert!(at("High priority") < at("Medium priority"));

    // Bob has four alarms, Alice three, but Alice's occlusion is high.
    let dash = house.get("/dashboard").await.body;
    let row = |name: &str| dash.find(name).unwrap_or_else(|| panic!("no {name:?}"));
    assert!(row("Patient, Alice") < row("Patient, Bob"), "{dash}");
}
