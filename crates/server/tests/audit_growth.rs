//! What anonymous requests leave in the append-only audit log, against the
//! real server on both backends (red team round 2, finding 5; threat T16
//! of `docs/threat-model.md`): a refusal that names no stored token or
//! account is counted, not audited; a stored token is audited at its
//! first refusal only; a username no account could have is refused before
//! anything is stored; throttle counts are pruned; audit text is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::browser::Browser;
use common::{Backend, MAC_A, PASSWORD, TestApp, progress_events};
use infusion_store::audit_chain::Verifier;
use infusion_store::throttle::{Outcome, ThrottleKey, WINDOW_MS};
use infusion_store::{AuditAction, NewAudit};

infusion_testkit::backend_tests!(
    garbage_tokens_are_counted_not_audited,
    a_stored_token_refused_again_and_again_is_audited_once,
    logins_naming_no_account_leave_no_audit_row,
    a_username_no_account_could_have_is_refused_before_anything_is_stored,
    forgotten_throttle_counts_are_pruned,
    audit_text_is_bounded_and_the_chain_still_verifies,
);

/// Rows in the audit log.
async fn rows(app: &TestApp) -> u64 {
    app.store.audit_head().await.unwrap().rows
}

/// Rows of the login throttle: pruning as if far in the future removes
/// (and counts) them all.
async fn throttle_rows(app: &TestApp) -> u64 {
    app.store.prune_throttle(i64::MAX / 2).await.unwrap()
}

/// Finding 5. Each index or report with a well-formed garbage bearer token
/// used to add a chained `token_refused` row (+130 KiB per 1,000 on
/// SQLite, +232 KiB on PostgreSQL; one client managed ~750 a second).
/// Now 1,000 of each add none; every one is still refused.
async fn garbage_tokens_are_counted_not_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = rows(&app).await;
    let t = Instant::now();
    for i in 0..1_000 {
        let (garbage, _) = infusion_server::token::issue().unwrap();
        let (status, body) = app.index(&app.a, garbage.as_str()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("token_invalid"))
        );
        let (status, _) = app
            .report(&app.a, garbage.as_str(), progress_events(i + 1, 1))
            .await;
        assert_eq!(status, 401);
    }
    let added = rows(&app).await - before;
    println!(
        "{backend:?}: 2,000 requests with garbage tokens in {:?}: {added} audit rows added",
        t.elapsed()
    );
    assert_eq!(added, 0);
}

/// Low finding: a valid token presented for another patient was audited
/// at every try. Now its first refusal is audited and the rest counted on
/// the token; a replay that revokes the chain is audited all the same,
/// once, and its repeats are counted too.
async fn a_stored_token_refused_again_and_again_is_audited_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.login(&app.a).await;
    let before = rows(&app).await;
    for _ in 0..100 {
        let (status, _) = app.index(&app.b, &token).await;
        assert_eq!(status, 403);
    }
    assert_eq!(rows(&app).await - before, 1, "the first refusal only");
    let (status, _) = app.index(&app.a, &token).await;
    assert_eq!(status, 200, "the token is still alice's to use");
    let before = rows(&app).await;
    for _ in 0..50 {
        let (status, body) = app.index(&app.a, &token).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("token_used")));
    }
    assert_eq!(rows(&app).await - before, 1, "the replay, once");
    let actions = app.audit_actions(&app.a).await;
    assert_eq!(actions.iter().filter(|a| *a == "token_replayed").count(), 1);
}

/// Finding 5: logins of names no account has used to write a row each
/// (web and device alike). Now they are counted (and throttled) only; a
/// known account's wrong password is still audited.
async fn logins_naming_no_account_leave_no_audit_row(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = rows(&app).await;
    let browser = Browser::new(&app);
    for i in 0..8 {
        let page = browser.login(&format!("nobody{i}"), "guess").await;
        assert_eq!(page.status, 401);
        let body = app.login_body(&format!("nobody{i}"), "guess", MAC_A).await;
        let (status, body) = app.post("/api/v1/device/login", None, &body).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_credentials"))
        );
    }
    assert_eq!(rows(&app).await - before, 0);
    let page = browser.login("dr.house", "wrong password").await;
    assert_eq!(page.status, 401);
    assert_eq!(rows(&app).await - before, 1);
    let page = browser.login("dr.house", PASSWORD).await;
    assert_eq!(page.status, 303);
}

/// Finding 5 and a low one: a refused 60 KB username was stored twice over
/// (audit and throttle), and a NUL byte in a username answered 500 on
/// PostgreSQL. A username no account could have (see
/// `is_possible_username`) is now refused like an unknown one, before
/// anything about it is stored or hashed.
async fn a_username_no_account_could_have_is_refused_before_anything_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = rows(&app).await;
    let browser = Browser::new(&app);
    let long = "a".repeat(60_000);
    for name in [long.as_str(), "dr.house\0", "dr house", "é"] {
        let page = browser.login(name, PASSWORD).await;
        assert_eq!(page.status, 401, "{:?}", &name[..name.len().min(20)]);
        assert!(page.body.contains("Unknown username or wrong password."));
    }
    let body = app.login_body("alice\0", PASSWORD, MAC_A).await;
    let (status, body) = app.post("/api/v1/device/login", None, &body).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_credentials"))
    );
    assert_eq!(rows(&app).await - before, 0);
    assert_eq!(
        throttle_rows(&app).await,
        0,
        "nothing counted under such names"
    );
}

/// Finding 5: throttle rows were never deleted. A key untouched for the
/// window is pruned; a recent one is kept.
async fn forgotten_throttle_counts_are_pruned(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = vec![
        ThrottleKey::account("mallory"),
        ThrottleKey::address([192, 0, 2, 1].into()),
    ];
    // Now, not long ago: the server's own pruner, running beside the
    // test on the real clock, must not take these rows first.
    let t0 = infusion_server::clock::now_ms();
    app.store.login_attempt(keys.clone(), t0).await.unwrap();
    app.store
        .login_settled(keys.clone(), Outcome::Failed)
        .await
        .unwrap();
    assert_eq!(app.store.prune_throttle(t0 + WINDOW_MS).await.unwrap(), 0);
    assert_eq!(
        app.store.prune_throttle(t0 + WINDOW_MS + 1).await.unwrap(),
        2
    );
    assert_eq!(throttle_rows(&app).await, 0);
}

/// Finding 5: security events carried attacker-chosen 60 KB text. Actor
/// and detail are cut to their bounds before they are chained, so the
/// chain verifies over what is stored.
async fn audit_text_is_bounded_and_the_chain_still_verifies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.store
        .append_audit(NewAudit::of(
            1,
            &"m".repeat(60_000),
            AuditAction::TokenRefused,
            None,
            "ж".repeat(30_000),
        ))
        .await
        .unwrap();
    let newest = &app.store.audit_log(None, 1).await.unwrap()[0].entry;
    assert!(
        newest.actor.len() <= NewAudit::ACTOR_MAX,
        "{}",
        newest.actor.len()
    );
    assert!(newest.detail.len() <= NewAudit::DETAIL_MAX);
    assert!(newest.detail.ends_with('…'));
    let mut verifier = Verifier::default();
    for row in app.store.audit_chain(0, 10_000).await.unwrap() {
        verifier.push(&row);
    }
    let head = app.store.audit_head().await.unwrap();
    let verdict = verifier.finish(head, &[]);
    assert!(verdict.faults.is_empty(), "{:?}", verdict.faults);
}
