//! Red-team finding 2: one live token chain per device. A binding ends
//! every chain of the device, and a login ends the device's earlier ones;
//! a token of an ended chain is refused `token_revoked` (the pump logs in
//! again) and recorded as a security event. Both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, MAC_A, PASSWORD, TestApp, progress_events};
use infusion_protocol::{DeviceSecret, MacAddress};
use infusion_testkit::{login_body_proved_by, patient_id};
use serde_json::json;

infusion_testkit::backend_tests!(
    binding_again_ends_the_chain_started_under_the_old_secret,
    a_new_login_ends_the_devices_earlier_chain,
);

/// A fabricated vitals report: SpO2 80 %.
fn low_spo2(seq: u32) -> serde_json::Value {
    json!([{"seq": seq, "uptime_ms": 1000, "kind": "vitals",
            "heart_rate_bpm": 70, "spo2_pct": 80, "tremor_score": 1}])
}

/// How many `retired_token_used` security events the patient has.
async fn retired_uses(app: &TestApp) -> usize {
    let events = app
        .store
        .security_events(Some(app.a.id), 100)
        .await
        .unwrap();
    events
        .iter()
        .filter(|e| e.entry.action.as_str() == "retired_token_used")
        .count()
}

/// The attack: a chain issued before the administrator re-bound the pump
/// (same MAC, new secret) went on answering index polls and took a
/// fabricated vitals report. Now every token of that chain is refused, the
/// attempts are security events, and the new secret's chain works.
async fn binding_again_ends_the_chain_started_under_the_old_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.login(&app.a).await;
    let (status, body) = app.index(&app.a, &first).await;
    assert_eq!(status, 200, "{body}");
    let live = body["token"].as_str().unwrap().to_owned();
    let events_before = app.event_count(&app.a).await;

    let new = DeviceSecret::from_bytes(&[0x42; 32]);
    let alice = patient_id(&*app.store, "alice").await;
    let mac = MacAddress::parse(MAC_A).unwrap();
    app.store
        .bind_device(alice, mac, new.public_key(), "test", 1)
        .await
        .unwrap();

    let (status, body) = app.report(&app.a, &live, low_spo2(1)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("token_revoked"))
    );
    let (status, body) = app.index(&app.a, &live).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("token_revoked"))
    );
    assert_eq!(
        app.event_count(&app.a).await,
        events_before,
        "nothing stored"
    );
    // One security event: the token's second refusal is counted on it,
    // not audited again (threat T16).
    assert_eq!(retired_uses(&app).await, 1);
    assert_eq!(
        app.token_used(&live).await,
        Some(false),
        "a refused token stays unused"
    );

    // The re-provisioned pump logs in with its new secret and goes on.
    let body = login_body_proved_by(&app.http, &app.url(""), "alice", PASSWORD, MAC_A, &new).await;
    let (status, body) = app.post("/api/v1/device/login", None, &body).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .report(
            &app.a,
            body["token"].as_str().unwrap(),
            progress_events(1, 1),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The attack: two logins of one device gave two live chains, each
/// answering 10 of 10 polls. Now the second login ends the first chain;
/// the second goes on, and replaying the first chain's tokens again and
/// again does not end the second.
async fn a_new_login_ends_the_devices_earlier_chain(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut older = app.login(&app.a).await;
    let (status, body) = app.index(&app.a, &older).await;
    assert_eq!(status, 200, "{body}");
    let used = std::mem::replace(&mut older, body["token"].as_str().unwrap().to_owned());
    let mut newer = app.login(&app.a).await;

    let (status, body) = app.index(&app.a, &older).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("token_revoked"))
    );
    for _ in 0..10 {
        // A used token of the ended chain, replayed: refused, revokes nothing.
        let (status, body) = app.index(&app.a, &used).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("token_used")));
        let (status, body) = app.index(&app.a, &newer).await;
        assert_eq!(status, 200, "{body}");
        newer = body["token"].as_str().unwrap().to_owned();
    }
    assert_eq!(retired_uses(&app).await, 1);
    // Bob's pump never noticed.
    let bob = app.login(&app.b).await;
    let (status, body) = app.index(&app.b, &bob).await;
    assert_eq!(status, 200, "{body}");
}
