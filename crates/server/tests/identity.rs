//! Attacks on device identity and on the index, each against the real
//! server and a real database on both backends: a cloned device that knows
//! the username, password and MAC but not the device secret; a captured
//! login replayed; the paper's login offered to a server that does not take
//! it; and the signature every index answer carries. Each names the claim
//! of `docs/threat-model.md` it proves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Backend, MAC_A, MAC_B, PASSWORD, TestApp};
use infusion_protocol::{
    DeviceSecret, Index, MacAddress, Nonce, PatientId, Signature, verify_index,
};
use infusion_testkit::{device_secret, login_body_proved_by, server_key, test_config};
use serde_json::{Value, json};

infusion_testkit::backend_tests!(
    a_cloned_device_without_the_secret_is_refused_every_time,
    a_captured_login_is_refused_when_replayed_even_by_concurrent_copies,
    the_paper_login_is_taken_only_with_paper_login,
    binding_again_issues_a_new_secret_and_the_old_one_stops_working,
    every_index_answer_is_signed_for_its_patient_and_device,
);

/// Posts a login body; returns status and body.
async fn login(app: &TestApp, body: &Value) -> (u16, Value) {
    app.post("/api/v1/device/login", None, body).await
}

/// A login body for alice's account and MAC, answering a fresh challenge
/// with the proof `secret` makes.
async fn alice_proved_by(app: &TestApp, secret: &DeviceSecret) -> Value {
    let base = app.url("");
    login_body_proved_by(&app.http, &base, "alice", PASSWORD, MAC_A, secret).await
}

/// Threat T8 (cloned device). The attacker has everything the paper's
/// pump sends (username, password and MAC, from a captured plain-HTTP login
/// or the pump's flash) but not the device secret. Every way it can try is
/// refused, 60 attempts in all; the failed proofs count against the
/// account's throttle and are shown to the physician.
async fn a_cloned_device_without_the_secret_is_refused_every_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let own_key = DeviceSecret::from_bytes(&[0x66; 32]);
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    for attempt in 0..60 {
        let body = match attempt % 4 {
            // The paper's login: username, password, MAC.
            0 => json!({"username": "alice", "password": PASSWORD, "mac": MAC_A}),
            // A real challenge, signed with a key of its own.
            1 => alice_proved_by(&app, &own_key).await,
            // A real challenge and random bytes for a proof.
            2 => {
                let mut body = alice_proved_by(&app, &own_key).await;
                body["proof"] = json!(format!("{:0128x}", attempt * 7919));
                body
            }
            // A nonce of its own making, signed with its own key.
            _ => {
                let nonce = Nonce::parse(&format!("{:064x}", attempt)).unwrap();
                let mac = MacAddress::parse(MAC_A).unwrap();
                json!({
                    "username": "alice", "password": PASSWORD, "mac": MAC_A,
                    "nonce": nonce.to_string(),
                    "proof": own_key.prove(&nonce, "alice", mac).to_string(),
                })
            }
        };
        let (status, answer) = login(&app, &body).await;
        assert!(
            matches!(status, 401 | 429),
            "attempt {attempt}: {status} {answer}"
        );
        assert!(answer.get("token").is_none(), "attempt {attempt}: {answer}");
        *seen
            .entry(answer["error"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    // Each kind of refusal was met; a failed proof answers like a wrong
    // password, so the cloner cannot tell what is missing.
    for code in [
        "device_proof_required",
        "invalid_credentials",
        "challenge_invalid",
        "too_many_requests",
    ] {
        assert!(seen.contains_key(code), "{code} never answered: {seen:?}");
    }
    let actions = app.audit_actions(&app.a).await;
    assert!(!actions.iter().any(|a| a == "device_login"), "{actions:?}");
    assert!(
        actions.iter().any(|a| a == "device_proof_failed"),
        "{actions:?}"
    );
    let shown = app
        .store
        .security_events(Some(app.a.id), 100)
        .await
        .unwrap();
    assert!(
        shown
            .iter()
            .any(|r| r.entry.action.as_str() == "device_proof_failed"),
        "{shown:?}"
    );
}

/// Threat T8, the other half: a genuine login copied off the wire and sent
/// again, once after its use and as ten concurrent copies of a fresh one.
/// Each nonce logs the device in exactly once.
async fn a_captured_login_is_refused_when_replayed_even_by_concurrent_copies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let genuine = device_secret(MAC_A);
    let captured = alice_proved_by(&app, &genuine).await;
    let (status, first) = login(&app, &captured).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = login(&app, &captured).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (401, Some("challenge_invalid"))
    );
    assert!(again.get("token").is_none());

    let fresh = alice_proved_by(&app, &genuine).await;
    let mut copies = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (http, url, body) = (
            app.http.clone(),
            app.url("/api/v1/device/login"),
            fresh.clone(),
        );
        copies.spawn(async move {
            let answer = http.post(url).json(&body).send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap())
        });
    }
    let answers = copies.join_all().await;
    let won = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(won, 1, "{answers:?}");
    // The losers are refused as replays, or, once the replays have used up
    // the account's free attempts, throttled before any check.
    let mut replays = 0;
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        match (*status, body["error"].as_str()) {
            (401, Some("challenge_invalid")) => replays += 1,
            (429, Some("too_many_requests")) => {}
            other => panic!("{other:?}"),
        }
    }
    let actions = app.audit_actions(&app.a).await;
    let count = |name: &str| actions.iter().filter(|a| *a == name).count();
    assert_eq!(count("device_login"), 2, "{actions:?}");
    assert_eq!(count("login_replayed"), 1 + replays, "{actions:?}");
}

/// `--paper-login` and only it lets the paper's login through.
async fn the_paper_login_is_taken_only_with_paper_login(backend: Backend) {
    let paper = json!({"username": "alice", "password": PASSWORD, "mac": MAC_A});
    let app = TestApp::spawn(backend).await;
    let (status, body) = login(&app, &paper).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("device_proof_required"))
    );
    drop(app);
    let config = infusion_server::ServerConfig {
        paper_login: true,
        ..test_config(Duration::from_secs(300))
    };
    let app = TestApp::spawn_configured(backend, config).await;
    let (status, body) = login(&app, &paper).await;
    assert_eq!(status, 200, "{body}");
    // A proof, when given, is still checked.
    let forged = alice_proved_by(&app, &DeviceSecret::from_bytes(&[1; 32])).await;
    let (status, body) = login(&app, &forged).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_credentials"))
    );
}

/// Binding the same pump again replaces its secret: a lost or leaked
/// secret is revoked by re-provisioning.
async fn binding_again_issues_a_new_secret_and_the_old_one_stops_working(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let old = device_secret(MAC_A);
    let new = DeviceSecret::from_bytes(&[0x42; 32]);
    app.store
        .bind_device(
            "alice",
            MacAddress::parse(MAC_A).unwrap(),
            new.public_key(),
            "test",
            0,
        )
        .await
        .unwrap();
    let (status, body) = login(&app, &alice_proved_by(&app, &old).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_credentials"))
    );
    let (status, body) = login(&app, &alice_proved_by(&app, &new).await).await;
    assert_eq!(status, 200, "{body}");
    // Same registration: the event series goes on.
    let summary = app.store.patient("alice").await.unwrap();
    assert_eq!(summary.device, Some(MacAddress::parse(MAC_A).unwrap()));
}

/// Threat T9 (index changed on the path): every answer is signed over the
/// patient, the device's MAC and every value, with the key the pumps were
/// provisioned with; the signature does not fit another patient, device or
/// value.
async fn every_index_answer_is_signed_for_its_patient_and_device(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = server_key(&*app.store).await;
    let mac_a = MacAddress::parse(MAC_A).unwrap();
    let mut token = app.login(&app.a).await;
    for _ in 0..5 {
        let (status, body) = app.index(&app.a, &token).await;
        assert_eq!(status, 200, "{body}");
        let index: Index = serde_json::from_value(body["index"].clone()).unwrap();
        let sig = Signature::parse(body["signature"].as_str().unwrap()).unwrap();
        assert!(verify_index(&key, app.a.id, mac_a, &index, &sig));
        let mac_b = MacAddress::parse(MAC_B).unwrap();
        assert!(!verify_index(&key, app.a.id, mac_b, &index, &sig));
        assert!(!verify_index(
            &key,
            PatientId(app.b.id.0),
            mac_a,
            &index,
            &sig
        ));
        let mut more = index;
        more.rate_ul_h += 1;
        assert!(!verify_index(&key, app.a.id, mac_a, &more, &sig));
        token = body["token"].as_str().unwrap().to_owned();
    }
}
