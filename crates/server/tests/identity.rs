//! Attacks on device identity and on the index, each against the real
//! server and a real database on both backends: a cloned device that knows
//! the username, password and MAC but not the device secret; a captured
//! login replayed; the paper's login offered to a server that does not take
//! it; and the signature every index answer carries. Each names the claim
//! of `docs/threat-model.md` it proves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Backend, MAC_A, MAC_B, PASSWORD, TestApp};
use infusion_protocol::{
    DeviceSecret, Index, MacAddress, Nonce, PatientId, Signature, verify_index,
};
use infusion_server::identity::{KeyError, ServerKeys};
use infusion_server::key_file::{KeyFile, KeyFileError};
use infusion_server::{AppState, StartError};
use infusion_testkit::{
    device_secret, login_body, login_body_proved_by, patient_id, serve, server_key, test_config,
};
use serde_json::{Value, json};

infusion_testkit::backend_tests!(
    a_cloned_device_without_the_secret_is_refused_every_time,
    a_captured_login_is_refused_when_replayed_even_by_concurrent_copies,
    the_paper_login_is_taken_only_with_paper_login,
    binding_again_issues_a_new_secret_and_the_old_one_stops_working,
    every_index_answer_is_signed_for_its_patient_and_device,
    keys_moved_to_a_key_file_leave_the_database_unable_to_sign,
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
            patient_id(&*app.store, "alice").await,
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
    let summary = app
        .store
        .patient(patient_id(&*app.store, "alice").await)
        .await
        .unwrap();
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

/// Threat T9 again, from the database's side: with the keys in the
/// database, whoever copies it can sign any dose. `export-keys` moves them
/// into a key file: the database then holds only the public key, a
/// server without the file (or with another key) refuses to start and
/// draws nothing, and a server with the file serves the pumps already
/// provisioned, taking challenges issued before the move.
async fn keys_moved_to_a_key_file_leave_the_database_unable_to_sign(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = app.store.clone();
    let key = server_key(&*store).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.keys");
    // A login challenge issued while the keys are still in the database.
    let early = app.login_body("alice", PASSWORD, MAC_A).await;

    let moved = ServerKeys::export(&*store, &path, "admin-cli", 1)
        .await
        .unwrap();
    assert_eq!(moved, key, "the pumps' provisioning still holds");
    for name in ["index-signing-ed25519", "login-challenge-hmac"] {
        assert_eq!(
            store.find_server_secret(name).await.unwrap(),
            None,
            "{name}"
        );
    }
    assert_eq!(
        store
            .find_server_secret("index-public-ed25519")
            .await
            .unwrap(),
        Some(key.0)
    );
    // A security event: on the administrator's page.
    let events = store.security_events(None, 10).await.unwrap();
    assert_eq!(events[0].entry.action.as_str(), "server_keys_moved");
    assert_eq!(events[0].entry.actor, "admin-cli");
    assert!(
        infusion_store::audit_chain::verify_audit(&*store)
            .await
            .unwrap()
            .faults
            .is_empty()
    );

    // Without the file: refused, and no new key is drawn into the database.
    let config = || test_config(Duration::from_secs(300));
    let err = AppState::new(store.clone(), config()).await.err().unwrap();
    assert!(
        matches!(err, StartError::Keys(KeyError::NotInDatabase)),
        "{err}"
    );
    assert_eq!(
        store
            .find_server_secret("index-signing-ed25519")
            .await
            .unwrap(),
        None
    );
    // Moving them again finds nothing to move and writes no file.
    let again = dir.path().join("again.keys");
    let err = ServerKeys::export(&*store, &again, "admin-cli", 2)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::NotInDatabase), "{err}");
    assert!(!again.exists());

    wrong_key_files_are_refused(&store, dir.path(), &path, &key).await;

    // With the file: the provisioned pump logs in (with the challenge from
    // before the move) and every index verifies under its key.
    let served = serve(store.clone(), with_key_file(&path)).await;
    assert_eq!(served.server_key, key);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", served.base);
    let post = common::post_json;
    let (status, body) = post(&http, &url("/api/v1/device/login"), None, &early).await;
    assert_eq!(status, 200, "{body}");
    let fresh = login_body(&http, &served.base, "bob", PASSWORD, MAC_B).await;
    let (status, body) = post(&http, &url("/api/v1/device/login"), None, &fresh).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    let index_body = json!({"patient_id": app.b.id.0});
    let (status, body) = post(
        &http,
        &url("/api/v1/device/index"),
        Some(token),
        &index_body,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let index: Index = serde_json::from_value(body["index"].clone()).unwrap();
    let sig = Signature::parse(body["signature"].as_str().unwrap()).unwrap();
    let mac_b = MacAddress::parse(MAC_B).unwrap();
    assert!(verify_index(&key, app.b.id, mac_b, &index, &sig));
}

/// A server on the database's key file, with the test's settings.
fn with_key_file(file: &std::path::Path) -> infusion_server::ServerConfig {
    infusion_server::ServerConfig {
        key_file: Some(file.to_owned()),
        ..test_config(Duration::from_secs(300))
    }
}

/// A server given another key file, or a copy of the right one that
/// others may read, refuses to start.
async fn wrong_key_files_are_refused(
    store: &Arc<dyn infusion_store::Store>,
    dir: &std::path::Path,
    path: &std::path::Path,
    key: &infusion_protocol::PublicKey,
) {
    // With another key file: refused, naming the key the pumps trust.
    let other = dir.join("other.keys");
    KeyFile {
        index: [7; 32],
        challenge: [8; 32],
    }
    .write_new(&other)
    .unwrap();
    let err = AppState::new(store.clone(), with_key_file(&other))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, StartError::Keys(KeyError::Mismatch { .. })),
        "{err}"
    );
    assert!(err.to_string().contains(&key.to_string()), "{err}");

    // A copy others may read: refused.
    let exposed = dir.join("exposed.keys");
    std::fs::copy(path, &exposed).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exposed, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = AppState::new(store.clone(), with_key_file(&exposed))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                StartError::Keys(KeyError::File(KeyFileError::Exposed { .. }))
            ),
            "{err}"
        );
    }
}
