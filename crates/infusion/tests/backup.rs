//! `infusion admin backup` while the server runs and `admin restore` into a
//! fresh database, on both backends: the restored database holds exactly
//! what was committed before the backup (accounts, prescriptions, events,
//! audit, tokens: a pump's unused token still works), nothing after it, and
//! a damaged backup file is refused without touching the target.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use infusion_protocol::{InfusionState, PatientLimits};
use infusion_server::password::PasswordParams;
use infusion_store::{NewPrescription, Store};
use std::time::Duration;

use infusion_testkit::{
    Backend, EmptyDb, TestDb, open_store, patient_id, seed_patient, seed_physician, serve,
    test_config,
};
use serde_json::{Value, json};

const PASSWORD: &str = "backup test password";
const MAC: &str = "02:00:00:00:0B:01";

infusion_testkit::backend_tests!(
    backup_of_a_running_server_restores_exactly_what_was_committed,
    damaged_backup_is_refused,
);

fn admin(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infusion"))
        .arg("--json")
        .arg("admin")
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .unwrap()
}

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn prescription(rate_ul_h: u32) -> NewPrescription {
    NewPrescription {
        volume_ul: 2_000,
        rate_ul_h,
        state: InfusionState::Run,
        drug: None,
    }
}

/// What a restore must reproduce, read through the store.
async fn contents(store: &dyn Store) -> (Value, usize, usize, usize) {
    let p = store.patient(patient_id(store, "pat").await).await.unwrap();
    let versions = store.prescriptions(p.patient_id).await.unwrap();
    let events = store.events(p.patient_id, 0, 10_000).await.unwrap();
    let audit = store.audit_log(None, 10_000).await.unwrap();
    (
        json!({"limits": format!("{:?}", p.limits), "device": p.device.map(|m| m.to_string())}),
        versions.len(),
        events.len(),
        audit.len(),
    )
}

async fn backup_of_a_running_server_restores_exactly_what_was_committed(backend: Backend) {
    let db = TestDb::open(backend).await;
    let store = db.store.clone();
    let hash = PasswordParams::INSECURE_FAST
        .hash_blocking(PASSWORD)
        .unwrap();
    seed_physician(&*store, "doc", &hash).await;
    let limits = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 10_000,
        max_volume_ul: 10_000,
    };
    seed_patient(&*store, "pat", "P", "doc", &hash, MAC, limits).await;
    store
        .set_prescription(
            patient_id(&*store, "pat").await,
            prescription(4_000),
            "doc",
            0,
        )
        .await
        .unwrap();
    let server = serve(store.clone(), test_config(Duration::from_secs(300))).await;
    let base = server.base.clone();
    let (status, login) = post(
        &base,
        "/api/v1/device/login",
        None,
        infusion_testkit::login_body(&reqwest::Client::new(), &base, "pat", PASSWORD, MAC).await,
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let patient = login["patient_id"].clone();
    let events = json!([
        {"seq": 1, "uptime_ms": 1000, "kind": "state", "state": "started"},
        {"seq": 2, "uptime_ms": 2000, "kind": "progress", "delivered_ul": 5, "rate_ul_h": 4000, "index_version": 1},
        {"seq": 3, "uptime_ms": 3000, "kind": "alarm", "alarm": "battery_low"}
    ]);
    let (status, report) = post(
        &base,
        "/api/v1/device/report",
        login["token"].as_str(),
        json!({"patient_id": patient, "events": events}),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    let kept_token = report["token"].as_str().unwrap().to_owned();
    let before = contents(&*store).await;

    // Online: the server is still running.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("infusion.backup");
    let file_arg = file.to_str().unwrap();
    let out = admin(&db.url, &["backup", "--to", file_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(printed["bytes"].as_u64().unwrap() > 0, "{printed}");
    // A second backup to the same file is refused.
    assert!(
        !admin(&db.url, &["backup", "--to", file_arg])
            .status
            .success()
    );

    // Committed after the backup: must not come back.
    store
        .set_prescription(
            patient_id(&*store, "pat").await,
            prescription(8_000),
            "doc",
            1,
        )
        .await
        .unwrap();

    let target = EmptyDb::create(backend).await;
    let out = admin(&target.url, &["restore", "--from", file_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = open_store(&target.url).await;
    assert_eq!(contents(&*restored).await, before);

    // The pump's unused token from before the backup works on the restored
    // database, and the index is the backed-up version 1.
    let server2 = serve(restored.clone(), test_config(Duration::from_secs(300))).await;
    let base2 = server2.base.clone();
    let (status, index) = post(
        &base2,
        "/api/v1/device/index",
        Some(&kept_token),
        json!({"patient_id": patient}),
    )
    .await;
    assert_eq!(status, 200, "{index}");
    assert_eq!(index["index"]["version"], 1, "{index}");
    assert_eq!(index["index"]["rate_ul_h"], 4_000, "{index}");
}

async fn damaged_backup_is_refused(backend: Backend) {
    let target = TestDb::open(backend).await;
    seed_physician(&*target.store, "doc", "x").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("garbage.backup");
    std::fs::write(&file, b"this is not a backup of anything").unwrap();
    let out = admin(&target.url, &["restore", "--from", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let missing = admin(&target.url, &["restore", "--from", "/nonexistent/backup"]);
    assert!(!missing.status.success());
    // The target is as it was.
    let audit = target.store.audit_log(None, 100).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
}
