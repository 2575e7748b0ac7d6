//! The server's watchdog (`pump_silent`), on both backends, through the
//! real server: a pump that logged in and then went quiet is found silent
//! within the configured time and shown with the alarms; a pump never
//! switched on is not; the silence clears when the pump polls again. On
//! PostgreSQL, two instances sweeping at once raise and clear each
//! silence once, step its escalation once, and claim each of its
//! notifications once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::browser::Browser;
use common::{Backend, TestApp};
use infusion_store::{AuditAction, Channel, NoticeEvent, Store};
use infusion_testkit::{open_store, test_config};

infusion_testkit::backend_tests!(a_quiet_pump_is_found_silent_and_cleared_when_heard_again,);

async fn audited(store: &dyn Store, action: AuditAction) -> usize {
    let all = store.audit_log(None, 200).await.unwrap();
    all.iter().filter(|r| r.entry.action == action).count()
}

/// Waits (up to a generous bound) until `alice`'s silence is `open`.
async fn until_silent(app: &TestApp, open: bool) -> Duration {
    let start = Instant::now();
    loop {
        let p = app.store.patient(app.a.id).await.unwrap();
        if p.silent_since_ms.is_some() == open {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "silence still {}",
            !open
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_quiet_pump_is_found_silent_and_cleared_when_heard_again(backend: Backend) {
    let mut config = test_config(Duration::from_secs(300));
    config.silent_after = Duration::from_secs(2);
    let app = TestApp::spawn_configured(backend, config).await;
    // Alice's pump logs in and goes quiet; Bob's is never switched on.
    let token = app.login(&app.a).await;
    let found = until_silent(&app, true).await;
    eprintln!(
        "pump_silent raised {} ms after the last contact (silent after 2 s)",
        found.as_millis()
    );
    assert!(
        found >= Duration::from_secs(2),
        "raised before the silence: {found:?}"
    );
    assert!(
        app.store
            .patient(app.b.id)
            .await
            .unwrap()
            .silent_since_ms
            .is_none()
    );
    let house = Browser::logged_in(&app, "dr.house").await;
    let page = house.get("/patients/alice").await.body;
    assert!(
        page.contains("Pump silent: no word from it since"),
        "{page}"
    );
    assert!(page.contains("Medium priority"));
    let dash = house.get("/dashboard").await.body;
    assert!(dash.contains("Pump silent"));
    assert_eq!(audited(&*app.store, AuditAction::PumpSilent).await, 1);

    // The pump polls again: the silence clears, once (and, quiet again,
    // it would be raised again 2 s later: a new silence).
    let (status, _) = app.index(&app.a, &token).await;
    assert_eq!(status, 200);
    until_silent(&app, false).await;
    assert_eq!(audited(&*app.store, AuditAction::PumpHeardAgain).await, 1);
}

/// Two instances' stores on one PostgreSQL database sweep at the same
/// moments: each silence is raised once and cleared once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_raise_and_clear_a_silence_once() {
    if Backend::Postgres.skip() {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    common::care::wards(&app).await;
    let other = open_store(&app.db.url).await;
    app.login(&app.a).await;
    let now = infusion_server::clock::now_ms();
    let mut raised = 0;
    for round in 0..10 {
        let at = now + 10_000 + round;
        let (a, b) = tokio::join!(
            app.store.sweep_silent(at, 1_000),
            other.sweep_silent(at, 1_000)
        );
        raised += a.unwrap().raised.len() + b.unwrap().raised.len();
    }
    assert_eq!(raised, 1, "one silence, raised once by one instance");
    assert_eq!(audited(&*app.store, AuditAction::PumpSilent).await, 1);
    // Its escalation: stepped once by one instance, each step one
    // notification, each notification claimed by one.
    for round in 0..10 {
        let at = now + 200_000 + round;
        let (a, b) = tokio::join!(app.store.escalate_due(at), other.escalate_due(at));
        a.unwrap();
        b.unwrap();
    }
    let e = app.store.escalations(app.a.id, 5).await.unwrap();
    assert_eq!(e.len(), 1, "one escalation of one silence");
    let events: Vec<_> = e[0].notices.iter().map(|n| n.0).collect();
    assert_eq!(events, [NoticeEvent::Raised, NoticeEvent::Escalated]);
    let hook = Channel::Webhook("http://receiver.example/hook".into());
    let mut claimed = Vec::new();
    for round in 0..5 {
        // After both were written (at the sweeps' times, ahead of now).
        let at = now + 300_000 + round;
        let (a, b) = tokio::join!(
            app.store.claim_deliveries(&hook, at, 20),
            other.claim_deliveries(&hook, at, 20)
        );
        claimed.extend(a.unwrap().into_iter().chain(b.unwrap()).map(|o| o.id));
    }
    claimed.sort_unstable();
    assert_eq!(
        claimed.len(),
        2,
        "each notification claimed once: {claimed:?}"
    );
    claimed.dedup();
    assert_eq!(claimed.len(), 2);
    app.login(&app.a).await;
    let later = infusion_server::clock::now_ms() + 1;
    let mut cleared = 0;
    for round in 0..10 {
        let (a, b) = tokio::join!(
            app.store.sweep_silent(later + round, 60_000),
            other.sweep_silent(later + round, 60_000)
        );
        cleared += a.unwrap().cleared.len() + b.unwrap().cleared.len();
    }
    assert_eq!(cleared, 1, "cleared once by one instance");
    assert_eq!(audited(&*app.store, AuditAction::PumpHeardAgain).await, 1);
    let e = app.store.escalations(app.a.id, 5).await.unwrap();
    let events: Vec<_> = e[0].notices.iter().map(|n| n.0).collect();
    assert_eq!(
        events,
        [
            NoticeEvent::Raised,
            NoticeEvent::Escalated,
            NoticeEvent::Cleared
        ]
    );
}
