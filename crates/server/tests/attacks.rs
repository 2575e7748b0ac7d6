//! Attacks on the device API, each against the real server and a real
//! database on both backends: a captured token replayed after its use, and
//! one token raced by many copies at once. Each names the claim of
//! `docs/threat-model.md` it proves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, PASSWORD, TestApp, progress_events};
use infusion_protocol::DeviceSecret;
use infusion_testkit::login_body_proved_by;
use serde_json::json;

infusion_testkit::backend_tests!(
    replayed_token_revokes_the_chain_and_the_pump_logs_in_again,
    one_token_raced_by_twenty_copies_succeeds_once_in_each_of_100_rounds,
    password_guessing_locks_the_account_alike_for_known_and_unknown_names,
    guessing_across_many_names_slows_the_address,
    a_stolen_device_secret_still_meets_the_throttle_and_replays_count_nowhere,
    every_answer_carries_the_security_headers,
);

/// Threat T1 (replay of a captured token). The attacker has copied a token
/// off the wire and presents it after the pump has used it: refused, and
/// every live token of that device dies with it, so whatever the attacker
/// may have obtained is dead too. The pump logs in again and goes on; the
/// physician is shown the event; nothing else changes.
async fn replayed_token_revokes_the_chain_and_the_pump_logs_in_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let bob = app.login(&app.b).await;
    let captured = app.login(&app.a).await;
    let (status, first) = app.index(&app.a, &captured).await;
    assert_eq!(status, 200, "{first}");
    let live = first["token"].as_str().unwrap().to_owned();
    let events_before = app.event_count(&app.a).await;

    // The replay, on both device routes.
    for (path, body) in [
        ("/api/v1/device/index", json!({"patient_id": app.a.id.0})),
        (
            "/api/v1/device/report",
            json!({"patient_id": app.a.id.0, "events": progress_events(1, 2)}),
        ),
    ] {
        let (status, err) = app.post(path, Some(&captured), &body).await;
        assert_eq!(status, 401, "{err}");
        assert_eq!(err["error"], "token_used");
    }
    assert_eq!(app.event_count(&app.a).await, events_before);

    // The chain is dead: the pump's own next token is refused as revoked,
    // and stays refused.
    for _ in 0..2 {
        let (status, err) = app.index(&app.a, &live).await;
        assert_eq!(status, 401, "{err}");
        assert_eq!(err["error"], "token_revoked");
    }
    // The replay on the second route was the same token's second refusal:
    // counted on the token, not audited again (threat T16).
    let actions = app.audit_actions(&app.a).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "token_replayed").count(),
        1,
        "{actions:?}"
    );
    let shown = app.store.security_events(Some(app.a.id), 10).await.unwrap();
    assert_eq!(shown.len(), 1);
    assert!(shown.iter().all(|e| e.entry.actor.contains(common::MAC_A)));
    assert_eq!(
        app.store.security_events(None, 10).await.unwrap().len(),
        1,
        "the administrator sees it too"
    );

    // The genuine pump logs in again and carries on; another pump's chain
    // was never touched.
    let fresh = app.login(&app.a).await;
    let (status, body) = app.report(&app.a, &fresh, progress_events(1, 3)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.index(&app.a, body["token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.event_count(&app.a).await, events_before + 3);
    let (status, body) = app.index(&app.b, &bob).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        app.store
            .security_events(Some(app.b.id), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Threat T2 (racing copies of one token). 100 rounds of 20 concurrent
/// requests with one token: exactly one succeeds each round, the others are
/// replays (`token_used`), and the winner's next token is revoked by them.
async fn one_token_raced_by_twenty_copies_succeeds_once_in_each_of_100_rounds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for round in 0..100 {
        let token = app.login(&app.a).await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (http, url, token, id) = (
                app.http.clone(),
                app.url("/api/v1/device/index"),
                token.clone(),
                app.a.id.0,
            );
            tasks.spawn(async move {
                let resp = http
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"patient_id": id}))
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<serde_json::Value>().await.unwrap())
            });
        }
        let results = tasks.join_all().await;
        let winners: Vec<_> = results.iter().filter(|(s, _)| *s == 200).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        assert!(
            results
                .iter()
                .filter(|(s, _)| *s != 200)
                .all(|(s, b)| *s == 401 && b["error"] == "token_used"),
            "round {round}: {results:?}"
        );
        let next = winners[0].1["token"].as_str().unwrap();
        let (status, body) = app.index(&app.a, next).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("token_revoked")),
            "round {round}"
        );
    }
}

/// One device login attempt by the real pump `mac` (its proof made with
/// the secret it was bound with): (status, error code, Retry-After).
async fn try_login(
    app: &TestApp,
    username: &str,
    password: &str,
    mac: &str,
) -> (u16, String, Option<u64>) {
    send_login(app, &app.login_body(username, password, mac).await).await
}

/// One device login attempt by someone who knows the username and MAC but
/// not the device secret: the proof is made with a key of their own.
async fn try_login_without_secret(
    app: &TestApp,
    username: &str,
    password: &str,
    mac: &str,
) -> (u16, String, Option<u64>) {
    let own_key = DeviceSecret::from_bytes(&[0x66; 32]);
    let base = app.url("");
    let body = login_body_proved_by(&app.http, &base, username, password, mac, &own_key).await;
    send_login(app, &body).await
}

/// Posts a login body: (status, error code, Retry-After).
async fn send_login(app: &TestApp, body: &serde_json::Value) -> (u16, String, Option<u64>) {
    let resp = app
        .http
        .post(app.url("/api/v1/device/login"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let body: serde_json::Value = resp.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or("").to_owned(),
        retry,
    )
}

/// Threat T6 (password guessing). An attacker who knows the username and
/// MAC but not the device secret guesses: six guesses are answered 401;
/// the seventh, at once, 429 `too_many_requests` with `Retry-After`, even
/// with the right password; an unknown username gets exactly the same
/// answers (no enumeration). Another account logs in normally throughout,
/// and so does the real pump of the attacked account, which proves its
/// secret: the attack cannot lock it out. After the lockout the right
/// password works again, and the lockout was recorded as a security
/// event.
async fn password_guessing_locks_the_account_alike_for_known_and_unknown_names(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut seen = Vec::new();
    for name in ["alice", "mallory"] {
        let mut answers = Vec::new();
        for _ in 0..6 {
            answers.push(try_login_without_secret(&app, name, "guess", common::MAC_A).await);
        }
        assert!(
            answers
                .iter()
                .all(|(s, e, r)| *s == 401 && e == "invalid_credentials" && r.is_none()),
            "{name}: {answers:?}"
        );
        let (status, code, retry) =
            try_login_without_secret(&app, name, PASSWORD, common::MAC_A).await;
        assert_eq!(
            (status, code.as_str()),
            (429, "too_many_requests"),
            "{name}"
        );
        assert!(retry.is_some_and(|r| r >= 1), "{name}: {retry:?}");
        seen.push((answers, status, code));
        if name == "alice" {
            // Nor is the real pump of the attacked account, during the
            // lockout, which its login does not lift for the attacker.
            let (status, code, _) = try_login(&app, "alice", PASSWORD, common::MAC_A).await;
            assert_eq!(status, 200, "alice's pump during the lockout: {code}");
            let (status, code, _) =
                try_login_without_secret(&app, "alice", PASSWORD, common::MAC_A).await;
            assert_eq!((status, code.as_str()), (429, "too_many_requests"));
        }
        // The other account is not held up.
        let (status, _, _) = try_login(&app, "bob", PASSWORD, common::MAC_B).await;
        assert_eq!(status, 200, "bob during the attack on {name}");
    }
    assert_eq!(seen[0], seen[1], "a known and an unknown name answer alike");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, code, _) = try_login(&app, "alice", PASSWORD, common::MAC_A).await;
    assert_eq!(status, 200, "{code}");
    let events = app.store.security_events(None, 50).await.unwrap();
    let locked: Vec<&str> = events
        .iter()
        .filter(|e| e.entry.action.as_str() == "login_locked_out")
        .map(|e| e.entry.actor.as_str())
        .collect();
    assert!(
        locked.contains(&"user:alice") && locked.contains(&"user:mallory"),
        "{locked:?}"
    );
}

/// Threat T6 (password spraying). One guess at each of many usernames from
/// one address: after twenty the address is paced, whatever name it tries
/// next. Attempts arriving at once take turns a second apart, and those
/// whose turn lies more than 5 s ahead are refused 429 with a short
/// `Retry-After`; the pacing is a security event. A pump that proves its
/// secret is not held up (a ward of pumps shares one address with whoever
/// attacks).
async fn guessing_across_many_names_slows_the_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..21 {
        let (status, code, _) = try_login(&app, &format!("user{i}"), "guess", common::MAC_A).await;
        assert_eq!(
            (status, code.as_str()),
            (401, "invalid_credentials"),
            "guess {i}"
        );
    }
    let mut at_once = tokio::task::JoinSet::new();
    for i in 21..29 {
        let body = app
            .login_body(&format!("user{i}"), "guess", common::MAC_A)
            .await;
        let http = app.http.clone();
        let url = app.url("/api/v1/device/login");
        at_once.spawn(async move {
            let resp = http.post(url).json(&body).send().await.unwrap();
            let retry: Option<u64> = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse().ok());
            (resp.status().as_u16(), retry)
        });
    }
    let answers = at_once.join_all().await;
    let waited = answers.iter().filter(|a| **a == (401, None)).count();
    let refused = answers
        .iter()
        .filter(|(s, r)| *s == 429 && r.is_some_and(|r| r <= 2))
        .count();
    assert_eq!(
        (waited + refused, waited >= 4, refused >= 2),
        (8, true, true),
        "{answers:?}"
    );
    let events = app.store.security_events(None, 50).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.entry.actor == "addr:127.0.0.1" && e.entry.action.as_str() == "login_slowed"),
        "{events:?}"
    );
    let (status, code, _) = try_login(&app, "alice", PASSWORD, common::MAC_A).await;
    assert_eq!(status, 200, "{code}");
}

/// Threat T6 and T8 together: the device key that lets a proven login past
/// the username and address lockouts is no way around the throttle. A
/// captured login replayed is refused without counting anywhere, so
/// replays cannot lock the pump out either; but whoever holds a stolen
/// device secret and guesses the password is locked out on the device
/// after the same five free attempts, while other accounts log in.
async fn a_stolen_device_secret_still_meets_the_throttle_and_replays_count_nowhere(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let captured = app.login_body("alice", PASSWORD, common::MAC_A).await;
    let (status, code, _) = send_login(&app, &captured).await;
    assert_eq!(status, 200, "{code}");
    for _ in 0..10 {
        let (status, code, _) = send_login(&app, &captured).await;
        assert_eq!((status, code.as_str()), (401, "challenge_invalid"));
    }
    let (status, code, _) = try_login(&app, "alice", PASSWORD, common::MAC_A).await;
    assert_eq!(status, 200, "after ten replays: {code}");
    assert_eq!(
        app.audit_actions(&app.a)
            .await
            .iter()
            .filter(|a| *a == "login_replayed")
            .count(),
        10
    );

    for guess in 0..6 {
        let (status, code, retry) = try_login(&app, "alice", "guess", common::MAC_A).await;
        assert_eq!(
            (status, code.as_str(), retry),
            (401, "invalid_credentials", None),
            "guess {guess}"
        );
    }
    let (status, code, retry) = try_login(&app, "alice", PASSWORD, common::MAC_A).await;
    assert_eq!((status, code.as_str()), (429, "too_many_requests"));
    assert!(retry.is_some_and(|r| r >= 1), "{retry:?}");
    let (status, _, _) = try_login(&app, "bob", PASSWORD, common::MAC_B).await;
    assert_eq!(status, 200, "bob meanwhile");
    let device = app
        .store
        .device_login_record("alice")
        .await
        .unwrap()
        .unwrap()
        .device
        .unwrap()
        .id;
    let events = app.store.security_events(None, 50).await.unwrap();
    let actor = format!("device:{}", device.0);
    assert!(
        events
            .iter()
            .any(|e| e.entry.action.as_str() == "login_locked_out" && e.entry.actor == actor),
        "{events:?}"
    );
}

/// Threat T5 and T11 (script injection, clickjacking, caching of patient
/// data): pages, API answers and refusals all carry the policy headers.
async fn every_answer_carries_the_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let get = |path: &str| app.http.get(app.url(path)).send();
    let answers = [
        get("/login").await.unwrap(),
        get("/api/v1/health").await.unwrap(),
        get("/no/such/route").await.unwrap(),
        get("/static/live.js").await.unwrap(),
        app.http
            .post(app.url("/api/v1/device/index"))
            .bearer_auth("garbage")
            .json(&json!({"patient_id": 1}))
            .send()
            .await
            .unwrap(),
    ];
    for r in &answers {
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store", "{}", r.url());
    }
}
