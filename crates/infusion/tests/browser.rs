//! The web application in a real headless Chromium, driven over WebDriver
//! (chromedriver), with a simulated pump infusing on the same server:
//!
//! a physician logs in, changes limits, changes the prescription and sees
//! the running pump switch to the new rate (live, without reloading),
//! approves a suggestion, acknowledges an alarm; the pages work at a
//! phone's width; a patient logs in and cannot reach another patient's
//! page; an administrator reaches the accounts page. axe-core runs on
//! every page and must report no serious or critical violation.
//! Screenshots go to `target/browser-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (Debian's `chromium` and
//! `chromium-driver`) and axe-core from npm (`npm ci --prefix
//! tests/browser`); `.ci/run` installs them and sets
//! `INFUSION_TEST_REQUIRE_BROWSER=1`, without which a machine lacking them
//! skips this test with one line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chrome;

use std::time::Duration;

use chrome::{PASSWORD, Session, repo, start_browser};
use infusion_protocol::{PatientId, PatientLimits};
use infusion_server::password::PasswordParams;
use infusion_store::{NewPhysician, NewSuggestion, Store};
use infusion_testkit::{
    Backend, Served, TestDb, patient_id, seed_patient, seed_physician, serve, test_config,
};
use serde_json::{Value, json};

const MAC_A: &str = "02:00:00:00:0A:01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinicians_and_patients_in_a_real_browser() {
    let Some((driver_path, axe)) = chrome::tools_or_skip() else {
        return;
    };
    let db = TestDb::open(Backend::Sqlite).await;
    let store = db.store.clone();
    let alice = seed(&*store).await;
    let server = serve(store.clone(), test_config(Duration::from_secs(300))).await;
    let (stop_pump, pump_task) = chrome::start_pump(&server, "alice", MAC_A);
    let shots = repo().join("target/browser-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let (_driver, client) = start_browser(&driver_path, &[]).await;
    let s = Session {
        c: client,
        base: server.base.clone(),
        axe,
        shots,
    };

    physician(&s, &*store, alice).await;
    alarm(&s, &*store, &server, alice).await;
    phone_patient_and_admin(&s).await;
    let _ = s.c.close().await;
    let _ = stop_pump.send(());
    pump_task.await.unwrap();
}

/// The physicians, patients and administrator of the browser test, and
/// alice's first prescription; alice's patient id.
async fn seed(store: &dyn Store) -> PatientId {
    let hash = PasswordParams::INSECURE_FAST
        .hash_blocking(PASSWORD)
        .unwrap();
    let limits = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 10_000,
        max_volume_ul: 10_000,
    };
    let alice = chrome::seed_alice(store, &hash, MAC_A, limits).await;
    seed_physician(store, "dr.other", &hash).await;
    seed_patient(
        store,
        "bob",
        "Bob",
        "dr.other",
        &hash,
        "02:00:00:00:0B:01",
        limits,
    )
    .await;
    store
        .create_admin(
            NewPhysician {
                username: "root".into(),
                first_name: "Ada".into(),
                last_name: "Admin".into(),
                institution: "Test Clinic".into(),
                password_hash: hash.clone(),
                must_change_password: false,
            },
            "test",
            0,
        )
        .await
        .unwrap();
    alice
}

/// The physician: dashboard, limits, a new rate seen live, a suggestion
/// approved.
async fn physician(s: &Session, store: &dyn Store, alice: PatientId) {
    // The physician.
    s.goto("/login").await;
    s.axe("login").await;
    s.shot("01-login").await;
    s.login("dr.house").await;
    s.wait_text("My patients", Duration::from_secs(5)).await;
    s.wait_text("4 mL/h", Duration::from_secs(10)).await;
    s.axe("dashboard").await;
    s.shot("02-dashboard").await;

    s.goto("/patients/alice").await;
    s.wait_text("Pump state: running", Duration::from_secs(10))
        .await;
    s.axe("patient page").await;
    s.shot("03-patient").await;

    s.fill("#max_rate", "12").await;
    s.click("form[action$='/limits'] button").await;
    s.wait_text("Limits saved.", Duration::from_secs(5)).await;
    s.wait_text("rate 1 to 12 mL/h", Duration::from_secs(5))
        .await;

    s.fill("#rate", "8").await;
    s.send_order("form[action$='/prescription']", "tremor not controlled")
        .await;
    s.wait_text("Saved as version 2", Duration::from_secs(5))
        .await;
    // The pump fetches version 2 at its next poll and reports the new rate;
    // the page's live regions show it without a reload.
    s.wait_text("Rate: 8 mL/h", Duration::from_secs(20)).await;
    s.wait_text("running on the pump", Duration::from_secs(10))
        .await;
    s.shot("04-new-rate-live").await;

    // A suggestion appears live and is approved.
    store
        .suggest(
            alice,
            NewSuggestion {
                based_on_version: 2,
                volume_ul: 9_000,
                rate_ul_h: 8_800,
                reason: "browser test: mean tremor score 70".into(),
            },
            infusion_server::clock::now_ms(),
        )
        .await
        .unwrap();
    s.wait_text("Approve suggestion", Duration::from_secs(10))
        .await;
    s.axe("patient page with a suggestion").await;
    s.shot("05-suggestion").await;
    s.click("form[action$='/approve'] button").await;
    s.wait_text("Suggestion approved as version 3", Duration::from_secs(5))
        .await;
    assert_eq!(
        store
            .patient(patient_id(store, "alice").await)
            .await
            .unwrap()
            .prescription
            .unwrap()
            .rate_ul_h,
        8_800
    );
}

/// A device alarm reaches the dashboard live and is acknowledged.
async fn alarm(s: &Session, store: &dyn Store, server: &Served, alice: PatientId) {
    s.goto("/dashboard").await;
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{}/api/v1/device/login", server.base))
        .json(&infusion_testkit::login_body(&http, &server.base, "alice", PASSWORD, MAC_A).await)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status = http
        .post(format!("{}/api/v1/device/report", server.base))
        .bearer_auth(login["token"].as_str().unwrap())
        .json(&json!({"patient_id": alice.0, "events": [
            {"seq": 1_000_000, "uptime_ms": 1, "kind": "alarm", "alarm": "occlusion"}]}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    s.wait_text("Occlusion", Duration::from_secs(3)).await;
    s.axe("dashboard with an alarm").await;
    s.shot("06-dashboard-alarm").await;
    s.goto("/patients/alice").await;
    s.click("form[action$='/ack'] button").await;
    s.wait_text("Alarm acknowledged.", Duration::from_secs(5))
        .await;
    assert!(store.open_alarms(alice).await.unwrap().is_empty());
}

/// The pages at a phone's width, then the patient's and the
/// administrator's views.
async fn phone_patient_and_admin(s: &Session) {
    // A phone's width.
    s.c.set_window_size(390, 844).await.unwrap();
    s.goto("/dashboard").await;
    s.axe("dashboard, phone").await;
    s.shot("07-phone-dashboard").await;
    s.goto("/patients/alice").await;
    s.axe("patient page, phone").await;
    s.shot("08-phone-patient").await;
    s.c.set_window_size(1280, 900).await.unwrap();
    s.logout().await;

    // The patient: own record only.
    s.login("alice").await;
    s.wait_text("Alice Patient", Duration::from_secs(5)).await;
    s.axe("patient's own page").await;
    s.shot("09-patient-own").await;
    s.goto("/patients/bob").await;
    s.wait_text("no such patient in your care", Duration::from_secs(5))
        .await;
    assert!(!s.body().await.contains("Bob"));
    s.axe("refusal page").await;
    s.shot("10-patient-refused").await;
    s.goto("/").await;
    s.logout().await;

    // The administrator.
    s.login("root").await;
    s.wait_text("Accounts and devices", Duration::from_secs(5))
        .await;
    s.axe("admin").await;
    s.shot("11-admin").await;
}
