//! Red team round 2, finding 6: an event that reused a stored `seq` with
//! other content was answered `200 {"accepted":0,"duplicates":1}` and
//! dropped, so a pump whose counter restarted lost its alarm (and deleted
//! it from its outbox). Now only an identical event is a repeat; another
//! is refused 409 `seq_conflict` with nothing stored, and the login answer
//! says where numbering stands (`next_seq`). Both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, MAC_A, PASSWORD, TestApp, progress_events};
use serde_json::json;

infusion_testkit::backend_tests!(
    an_event_reusing_a_stored_number_with_other_content_is_refused,
    the_login_answer_says_where_numbering_stands,
);

fn motor_fault(seq: u32) -> serde_json::Value {
    json!([{"seq": seq, "uptime_ms": 5, "kind": "alarm", "alarm": "motor_fault"}])
}

/// The attack (or a pump whose flash was wiped): `motor_fault` at a number
/// stored with a progress event. Refused, nothing stored, the token not
/// consumed; the same alarm at the next free number is stored; the very
/// same event sent again is a repeat.
async fn an_event_reusing_a_stored_number_with_other_content_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.login(&app.a).await;
    let (status, body) = app.report(&app.a, &token, progress_events(1, 3)).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let stored = app.event_count(&app.a).await;
    let audit = app.audit_actions(&app.a).await.len();

    let (status, body) = app.report(&app.a, &token, motor_fault(2)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("seq_conflict")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("next_seq"),
        "{body}"
    );
    assert_eq!(app.event_count(&app.a).await, stored, "nothing stored");
    assert_eq!(
        app.audit_actions(&app.a).await.len(),
        audit,
        "nothing audited"
    );
    assert_eq!(
        app.token_used(&token).await,
        Some(false),
        "token not consumed"
    );
    // A batch holding one conflict is refused whole: its new event too.
    let mut mixed = progress_events(4, 1);
    mixed
        .as_array_mut()
        .unwrap()
        .insert(0, motor_fault(3)[0].clone());
    let (status, _) = app.report(&app.a, &token, mixed).await;
    assert_eq!(status, 409);
    assert_eq!(app.event_count(&app.a).await, stored);

    let (status, body) = app.report(&app.a, &token, motor_fault(4)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["duplicates"].as_u64()),
        (Some(1), Some(0))
    );
    let token = body["token"].as_str().unwrap();
    let (status, body) = app.report(&app.a, token, motor_fault(4)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(app.audit_actions(&app.a).await.iter().any(|a| a == "alarm"));
}

/// Alice's pump logs in; the whole answer.
async fn login(app: &TestApp) -> serde_json::Value {
    let body = app.login_body("alice", PASSWORD, MAC_A).await;
    let (status, body) = app.post("/api/v1/device/login", None, &body).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// `next_seq` is one past the device's highest stored number (0 before
/// any), and another device's events do not move it.
async fn the_login_answer_says_where_numbering_stands(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(login(&app).await["next_seq"].as_u64(), Some(0));
    let token = login(&app).await["token"].as_str().unwrap().to_owned();
    let (status, _) = app.report(&app.a, &token, progress_events(7, 5)).await;
    assert_eq!(status, 200);
    let bob = app.login(&app.b).await;
    let (status, _) = app.report(&app.b, &bob, progress_events(100, 2)).await;
    assert_eq!(status, 200);
    assert_eq!(login(&app).await["next_seq"].as_u64(), Some(12));
}
