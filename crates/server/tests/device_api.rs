//! The device API against the real server and a real database: the token
//! chain, every refusal with its code, report idempotency and malformed
//! input (replays and the single-use race are in `attacks.rs`). Each refusal is checked to change
//! nothing in the database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use infusion_testkit::patient_id;
use std::time::Duration;

use common::{Backend, MAC_A, PASSWORD, TestApp, progress_events};
use infusion_protocol::InfusionState;
use infusion_store::NewPrescription;
use serde_json::json;

infusion_testkit::backend_tests!(
    full_chain_of_fifty_polls_reports_and_a_new_version,
    expired_token_is_refused,
    garbage_and_missing_tokens_are_invalid,
    token_of_one_patient_cannot_serve_another,
    login_refusals_are_indistinguishable_and_issue_nothing,
    resent_and_overlapping_report_batches_are_stored_once,
    malformed_bodies_are_refused_with_their_codes,
    unknown_routes_and_methods_answer_json,
    openapi_and_health_are_served,
);

async fn full_chain_of_fifty_polls_reports_and_a_new_version(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, login) = app
        .post(
            "/api/v1/device/login",
            None,
            &app.login_body("alice", PASSWORD, &MAC_A.to_lowercase())
                .await,
        )
        .await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["first_name"], "Alice");
    assert_eq!(login["last_name"], "Patient");
    assert_eq!(login["institution"], "Test Clinic");
    assert_eq!(login["patient_id"], app.a.id.0);
    assert_eq!(login["expires_in_s"], 300);
    let mut token = login["token"].as_str().unwrap().to_owned();
    for _ in 0..50 {
        let (status, body) = app.index(&app.a, &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["index"],
            json!({"version": 1, "volume_ul": 2000, "rate_ul_h": 4000, "state": "run",
                   "limits": {"min_rate_ul_h": 1000, "max_rate_ul_h": 10000, "max_volume_ul": 10000}})
        );
        let next = body["token"].as_str().unwrap().to_owned();
        assert_ne!(next, token);
        token = next;
    }
    let (status, body) = app.report(&app.a, &token, progress_events(1, 5)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["duplicates"].as_u64()),
        (Some(5), Some(0))
    );
    token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(app.event_count(&app.a).await, 5);

    app.store
        .set_prescription(
            patient_id(&*app.store, "alice").await,
            NewPrescription {
                volume_ul: 5_000,
                rate_ul_h: 5_000,
                state: InfusionState::Hold,
                drug: None,
            },
            "test",
            1,
        )
        .await
        .unwrap();
    let (status, body) = app.index(&app.a, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["index"]["version"], 2);
    assert_eq!(body["index"]["volume_ul"], 5000);
    assert_eq!(body["index"]["rate_ul_h"], 5000);
    assert_eq!(body["index"]["state"], "hold");
    assert!(
        app.audit_actions(&app.a)
            .await
            .contains(&"device_login".to_owned())
    );
}

async fn expired_token_is_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, Duration::from_millis(300)).await;
    let token = app.login(&app.a).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, err) = app.index(&app.a, &token).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"], "token_expired");
    assert_eq!(app.token_used(&token).await, Some(false));
    // Logging in again restores service.
    let fresh = app.login(&app.a).await;
    assert_eq!(app.index(&app.a, &fresh).await.0, 200);
}

async fn garbage_and_missing_tokens_are_invalid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"patient_id": app.a.id.0});
    let unknown = "A".repeat(43);
    for token in [Some("garbage"), Some(unknown.as_str()), Some(""), None] {
        let (status, err) = app.post("/api/v1/device/index", token, &body).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(err["error"], "token_invalid", "{token:?}");
    }
    let resp = app
        .http
        .post(app.url("/api/v1/device/index"))
        .header("authorization", format!("Basic {unknown}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
}

async fn token_of_one_patient_cannot_serve_another(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.login(&app.a).await;
    let (status, err) = app.index(&app.b, &token).await;
    assert_eq!(status, 403);
    assert_eq!(err["error"], "forbidden");
    let (status, err) = app.report(&app.b, &token, progress_events(1, 1)).await;
    assert_eq!(status, 403);
    assert_eq!(err["error"], "forbidden");
    assert_eq!(app.event_count(&app.b).await, 0);
    assert_eq!(app.event_count(&app.a).await, 0);
    // Nothing was consumed: the token still serves its own patient.
    assert_eq!(app.token_used(&token).await, Some(false));
    assert_eq!(app.index(&app.a, &token).await.0, 200);
    // A patient id that cannot exist is refused the same way.
    let (status, _) = app
        .post(
            "/api/v1/device/index",
            Some(&app.login(&app.a).await),
            &json!({"patient_id": u64::MAX}),
        )
        .await;
    assert_eq!(status, 403);
}

async fn login_refusals_are_indistinguishable_and_issue_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        (
            app.login_body("alice", "wrong", MAC_A).await,
            401,
            "invalid_credentials",
        ),
        (
            app.login_body("nobody", PASSWORD, MAC_A).await,
            401,
            "invalid_credentials",
        ),
        (
            app.login_body("alice", PASSWORD, "AA:BB:CC:00:00:99").await,
            403,
            "device_not_registered",
        ),
        (
            app.login_body("alice", PASSWORD, common::MAC_B).await,
            403,
            "device_not_registered",
        ),
        (
            app.login_body("dr.house", PASSWORD, MAC_A).await,
            401,
            "invalid_credentials",
        ),
    ];
    let mut bodies = Vec::new();
    for (body, want_status, want_code) in cases {
        let (status, err) = app.post("/api/v1/device/login", None, &body).await;
        assert_eq!(status, want_status, "{body}: {err}");
        assert_eq!(err["error"], want_code, "{body}");
        assert!(err.get("token").is_none());
        bodies.push(err);
    }
    // Wrong password and unknown user answer with the very same body.
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[4]);
    let actions = app.audit_actions(&app.a).await;
    assert!(!actions.contains(&"device_login".to_owned()), "{actions:?}");
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "device_login_refused")
            .count(),
        3,
        "{actions:?}"
    );
}

async fn resent_and_overlapping_report_batches_are_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut token = app.login(&app.a).await;
    let batch = json!([
        {"seq": 1, "uptime_ms": 100, "kind": "state", "state": "started"},
        {"seq": 2, "uptime_ms": 200, "kind": "progress", "delivered_ul": 10, "rate_ul_h": 4000, "index_version": 1},
        {"seq": 3, "uptime_ms": 300, "kind": "alarm", "alarm": "battery_low"},
        {"seq": 4, "uptime_ms": 400, "kind": "vitals", "heart_rate_bpm": 72, "spo2_pct": 97, "tremor_score": 5},
    ]);
    let mut counts = Vec::new();
    for _ in 0..3 {
        let (status, body) = app.report(&app.a, &token, batch.clone()).await;
        assert_eq!(status, 200, "{body}");
        counts.push((
            body["accepted"].as_u64().unwrap(),
            body["duplicates"].as_u64().unwrap(),
        ));
        token = body["token"].as_str().unwrap().to_owned();
    }
    assert_eq!(counts, [(4, 0), (0, 4), (0, 4)]);
    assert_eq!(app.event_count(&app.a).await, 4);
    // Overlapping: 3 and 4 again, as they were, then 5 and 6.
    let mut overlap: Vec<_> = batch.as_array().unwrap()[2..].to_vec();
    overlap.extend(progress_events(5, 2).as_array().unwrap().iter().cloned());
    let (status, body) = app.report(&app.a, &token, json!(overlap)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["duplicates"].as_u64()),
        (Some(2), Some(2))
    );
    let events = app.store.events(app.a.id, 0, 100).await.unwrap();
    let seqs: Vec<u32> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    // The alarm was stored once and audited once.
    let alarms = app
        .audit_actions(&app.a)
        .await
        .iter()
        .filter(|a| *a == "alarm")
        .count();
    assert_eq!(alarms, 1);
}

async fn malformed_bodies_are_refused_with_their_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.login(&app.a).await;
    let id = app.a.id.0;
    let json_ct = Some("application/json");
    let huge = format!(
        r#"{{"patient_id":{id},"events":[],"pad":"{}"}}"#,
        "x".repeat(70_000)
    );
    // (path, content type, body, expected status, expected code)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("/api/v1/device/report", json_ct, b"{not json".to_vec(), 400, "malformed_json"),
        ("/api/v1/device/report", json_ct, br#"{"patient_id":"one","events":[]}"#.to_vec(), 422, "invalid_body"),
        ("/api/v1/device/report", json_ct, format!(r#"{{"patient_id":{id},"events":[],"extra":1}}"#).into_bytes(), 422, "invalid_body"),
        ("/api/v1/device/report", json_ct, format!(r#"{{"patient_id":{id}}}"#).into_bytes(), 422, "invalid_body"),
        ("/api/v1/device/report", json_ct, format!(r#"{{"patient_id":{id},"events":[{{"seq":-1,"uptime_ms":1,"kind":"state","state":"paused"}}]}}"#).into_bytes(), 422, "invalid_body"),
        ("/api/v1/device/report", json_ct, format!(r#"{{"patient_id":{id},"events":[{{"seq":1,"uptime_ms":1,"kind":"progress","delivered_ul":1,"rate_ul_h":999999,"index_version":1}}]}}"#).into_bytes(), 422, "invalid_body"),
        ("/api/v1/device/report", json_ct, format!(r#"{{"patient_id":{id},"events":[{{"seq":1,"uptime_ms":1,"kind":"vitals","heart_rate_bpm":70,"spo2_pct":150,"tremor_score":1}}]}}"#).into_bytes(), 422, "invalid_body"),
        ("/api/v1/device/report", json_ct, format!(r#"{{"patient_id":{id},"events":[{{"seq":2,"uptime_ms":1,"kind":"state","state":"paused"}},{{"seq":2,"uptime_ms":2,"kind":"state","state":"resumed"}}]}}"#).into_bytes(), 422, "invalid_body"),
        ("/api/v1/device/report", json_ct, huge.into_bytes(), 413, "payload_too_large"),
        ("/api/v1/device/report", Some("text/plain"), format!(r#"{{"patient_id":{id},"events":[]}}"#).into_bytes(), 415, "unsupported_media_type"),
        ("/api/v1/device/report", None, format!(r#"{{"patient_id":{id},"events":[]}}"#).into_bytes(), 415, "unsupported_media_type"),
        ("/api/v1/device/index", json_ct, b"[]".to_vec(), 422, "invalid_body"),
        ("/api/v1/device/index", json_ct, format!(r#"{{"patient_id":{id}0000000000000000000000}}"#).into_bytes(), 422, "invalid_body"),
        ("/api/v1/device/login", json_ct, br#"{"username":"alice","password":"x","mac":"not-a-mac"}"#.to_vec(), 422, "invalid_body"),
        ("/api/v1/device/login", json_ct, format!(r#"{{"username":"{}","password":"x","mac":"{MAC_A}"}}"#, "u".repeat(65)).into_bytes(), 422, "invalid_body"),
        ("/api/v1/device/login", json_ct, br#"{"username":"alice","password":"x"}"#.to_vec(), 422, "invalid_body"),
        ("/api/v1/device/login", json_ct, b"".to_vec(), 400, "malformed_json"),
    ];
    for (path, ct, body, want_status, want_code) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
        let (status, err) = app.post_raw(path, Some(&token), ct, body).await;
        assert_eq!(status, want_status, "{path} {shown}: {err}");
        assert_eq!(err["error"], want_code, "{path} {shown}");
        assert!(
            !err["message"].as_str().unwrap_or("").is_empty(),
            "{path} {shown}"
        );
    }
    // None of it stored anything or consumed the token.
    assert_eq!(app.event_count(&app.a).await, 0);
    assert_eq!(app.token_used(&token).await, Some(false));
    assert_eq!(app.index(&app.a, &token).await.0, 200);
}

async fn unknown_routes_and_methods_answer_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app.http.get(app.url("/api/v1/nope")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "not_found"
    );
    let resp = app
        .http
        .get(app.url("/api/v1/device/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "method_not_allowed"
    );
}

async fn openapi_and_health_are_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health: serde_json::Value = app
        .http
        .get(app.url("/api/v1/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready: serde_json::Value = app
        .http
        .get(app.url("/api/v1/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    let backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(ready["backend"], backend);
    let doc: serde_json::Value = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/device/login",
        "/api/v1/device/index",
        "/api/v1/device/report",
        "/api/v1/health",
        "/api/v1/ready",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    // Every reference in the document resolves (a client generated from
    // it, or an API fuzzer, must see every type).
    fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} does not resolve"
        );
    }
    let schemas = &doc["components"]["schemas"];
    for name in [
        "LoginRequest",
        "LoginResponse",
        "IndexResponse",
        "ReportRequest",
        "ErrorBody",
        "Event",
    ] {
        assert!(schemas[name].is_object(), "schema {name} missing");
    }
    assert!(
        schemas["Event"]["properties"]["kind"].is_object(),
        "{}",
        schemas["Event"]
    );
}
