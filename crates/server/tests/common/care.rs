//! A care team for tests: wards, nurses, and a pump's alarm.

use infusion_store::NewNurse;
use infusion_testkit::patient_id;
use serde_json::json;

use super::browser::second_physician;
use super::{PASSWORD, Patient, TestApp};

/// Wards 4B (alice) and 5C (carol, dr.other's), nurse nina of 4B and nora
/// of 5C; bob is on no ward.
pub async fn wards(app: &TestApp) {
    second_physician(app).await;
    let s = &app.store;
    for ward in ["4B", "5C"] {
        s.create_ward(ward, Some("Test Clinic"), "test", 0)
            .await
            .unwrap();
    }
    let hash = infusion_server::password::PasswordParams::INSECURE_FAST
        .hash_blocking(PASSWORD)
        .unwrap();
    for (username, ward) in [("nina", "4B"), ("nora", "5C")] {
        let new = NewNurse {
            username: username.into(),
            first_name: "Nurse".into(),
            last_name: "Ward".into(),
            ward: ward.into(),
            password_hash: hash.clone(),
            must_change_password: false,
        };
        s.create_nurse(new, "test", 0).await.unwrap();
    }
    for (patient, ward) in [("alice", "4B"), ("carol", "5C")] {
        let id = patient_id(&**s, patient).await;
        s.assign_ward(id, ward, "test", 0).await.unwrap();
    }
}

/// An occlusion reported by `p`'s pump; its stored event id.
pub async fn occlusion(app: &TestApp, p: &Patient) -> i64 {
    alarm(app, p, 1, "occlusion").await
}

/// Alarm `kind` reported by `p`'s pump as event `seq`; its stored id.
pub async fn alarm(app: &TestApp, p: &Patient, seq: u32, kind: &str) -> i64 {
    let token = app.login(p).await;
    let events = json!([{"seq": seq, "uptime_ms": 10 * seq, "kind": "alarm", "alarm": kind}]);
    let (status, body) = app.report(p, &token, events).await;
    assert_eq!(status, 200, "{body}");
    let open = app.store.open_alarms(p.id).await.unwrap();
    open.iter()
        .find(|e| e.seq == seq)
        .map(|e| e.id)
        .expect("the alarm just reported is open")
}
