//! Web application sessions in the store, on both backends: a session is
//! found by its id hash until it is ended, outlives its absolute expiry
//! never, and dies after the idle timeout; logins and logouts are audited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestApp};
use infusion_store::{NewWebSession, Role, SessionUse, TokenHash};

infusion_testkit::backend_tests!(
    sessions_live_until_ended_idle_or_expired,
    accounts_of_every_role_are_found_by_name,
);

const IDLE_MS: i64 = 60_000;

async fn sessions_live_until_ended_idle_or_expired(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.store;
    let doc = store.account("dr.house").await.unwrap().unwrap();
    // Real time: the server's pruner deletes sessions that expired before now.
    let t0 = infusion_server::clock::now_ms();

    // Ended by logout.
    let a = TokenHash([1; 32]);
    let new = NewWebSession {
        hash: a,
        expires_at_ms: t0 + 3_600_000,
    };
    store
        .start_web_session(doc.account_id, new, t0)
        .await
        .unwrap();
    let s = store
        .web_session(a, IDLE_MS, t0 + 1, SessionUse::Active)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.username.as_str(), s.role), ("dr.house", Role::Physician));
    assert_eq!(s.created_at_ms, t0);
    assert!(store.end_web_session(a, t0 + 2).await.unwrap());
    assert_eq!(
        store
            .web_session(a, IDLE_MS, t0 + 3, SessionUse::Active)
            .await
            .unwrap(),
        None
    );
    assert!(!store.end_web_session(a, t0 + 4).await.unwrap());

    // Kept alive by use, then dead after an idle minute.
    let b = TokenHash([2; 32]);
    let new = NewWebSession {
        hash: b,
        expires_at_ms: t0 + 3_600_000,
    };
    store
        .start_web_session(doc.account_id, new, t0)
        .await
        .unwrap();
    for step in 1..=5 {
        let at = t0 + step * (IDLE_MS - 1);
        assert!(
            store
                .web_session(b, IDLE_MS, at, SessionUse::Active)
                .await
                .unwrap()
                .is_some(),
            "step {step}"
        );
    }
    let last = t0 + 5 * (IDLE_MS - 1);
    assert_eq!(
        store
            .web_session(b, IDLE_MS, last + IDLE_MS, SessionUse::Active)
            .await
            .unwrap(),
        None
    );
    // Once idle-dead, it stays dead.
    assert_eq!(
        store
            .web_session(b, IDLE_MS, last + IDLE_MS + 1, SessionUse::Active)
            .await
            .unwrap(),
        None
    );

    // Dead at its absolute expiry however active.
    let c = TokenHash([3; 32]);
    let new = NewWebSession {
        hash: c,
        expires_at_ms: t0 + 100_000,
    };
    store
        .start_web_session(doc.account_id, new, t0)
        .await
        .unwrap();
    assert!(
        store
            .web_session(c, IDLE_MS, t0 + 50_000, SessionUse::Active)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .web_session(c, IDLE_MS, t0 + 99_999, SessionUse::Active)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .web_session(c, IDLE_MS, t0 + 100_000, SessionUse::Active)
            .await
            .unwrap(),
        None
    );

    // A look-up in the background (a page's live stream) is no use: it
    // finds the session and leaves it to idle out.
    let d = TokenHash([4; 32]);
    let new = NewWebSession {
        hash: d,
        expires_at_ms: t0 + 3_600_000,
    };
    store
        .start_web_session(doc.account_id, new, t0)
        .await
        .unwrap();
    let peek = |at| store.web_session(d, IDLE_MS, at, SessionUse::Background);
    assert!(peek(t0 + IDLE_MS - 1).await.unwrap().is_some());
    assert_eq!(peek(t0 + IDLE_MS).await.unwrap(), None, "not kept alive");

    // Unknown ids are simply not sessions.
    assert_eq!(
        store
            .web_session(TokenHash([9; 32]), IDLE_MS, t0, SessionUse::Active)
            .await
            .unwrap(),
        None
    );

    let actions: Vec<String> = store
        .audit_log(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.actor == "user:dr.house")
        .map(|r| r.entry.action.as_str().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "web_login",
            "web_login",
            "web_login",
            "web_logout",
            "web_login"
        ],
        "newest first"
    );
}

async fn accounts_of_every_role_are_found_by_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = app.store.account("dr.house").await.unwrap().unwrap();
    assert_eq!(doc.role, Role::Physician);
    assert!(doc.password_hash.starts_with("$argon2id$"));
    let alice = app.store.account("alice").await.unwrap().unwrap();
    assert_eq!(
        (alice.role, alice.first_name.as_str()),
        (Role::Patient, "Alice")
    );
    assert_eq!(app.store.account("nobody").await.unwrap(), None);
}
