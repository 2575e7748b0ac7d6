//! Red team round 2, finding 11: the idle timeout never fired while a page
//! was open, because the live stream's periodic session check also
//! refreshed the session (and every live refresh of the page did too), so
//! an unattended ward screen stayed logged in for 12 hours; and a logout
//! ended the open streams only at their next check, up to 30 s later.
//! Both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::{Backend, TestApp};
use infusion_testkit::test_config;

infusion_testkit::backend_tests!(
    an_open_page_alone_does_not_keep_its_session_alive,
    a_logout_ends_the_sessions_open_streams_at_once,
);

/// Reads `stream` until `event: session_ended` and its end, within
/// `within`; panics if it does not come.
async fn ended(stream: &mut reqwest::Response, within: Duration) {
    let mut text = String::new();
    let done = tokio::time::timeout(within, async {
        while let Ok(Some(bytes)) = stream.chunk().await {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "the stream still open after {within:?}: {text:?}"
    );
    assert!(text.contains("event: session_ended"), "{text:?}");
}

async fn open_stream(b: &Browser) -> reqwest::Response {
    let stream = b.http.get(format!("{}/live", b.base)).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["cache-control"],
        "no-store",
        "never stored"
    );
    stream
}

/// A physician's dashboard left open: its live stream checks the session
/// every 200 ms and the page refreshes itself every 300 ms, for longer
/// than the 2 s idle timeout. The session idles out anyway, the stream
/// says so, and the next page asks for the login.
async fn an_open_page_alone_does_not_keep_its_session_alive(backend: Backend) {
    let config = infusion_server::ServerConfig {
        session_idle: Duration::from_secs(2),
        live_recheck: Duration::from_millis(200),
        ..test_config(Duration::from_secs(300))
    };
    let app = TestApp::spawn_configured(backend, config).await;
    let b = Browser::logged_in(&app, "dr.house").await;
    let mut stream = open_stream(&b).await;
    let refresh = async {
        for _ in 0..10 {
            let page = b
                .http
                .get(format!("{}/dashboard", b.base))
                .header("X-Live-Refresh", "1")
                .send()
                .await
                .unwrap();
            if page.status() != 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let ((), ()) = tokio::join!(refresh, ended(&mut stream, Duration::from_secs(6)));
    assert_eq!(b.get("/dashboard").await.status, 303, "idled out");
}

/// Logging out ends that session's open streams at once (the check runs
/// every 30 s here), while another session of the same physician keeps
/// its stream.
async fn a_logout_ends_the_sessions_open_streams_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b = Browser::logged_in(&app, "dr.house").await;
    let other = Browser::logged_in(&app, "dr.house").await;
    let mut stream = open_stream(&b).await;
    let mut kept = open_stream(&other).await;
    let csrf = b.csrf("/dashboard").await;
    assert_eq!(b.post("/logout", &[("csrf", &csrf)]).await.status, 303);
    ended(&mut stream, Duration::from_secs(3)).await;
    let still = tokio::time::timeout(Duration::from_millis(500), kept.chunk()).await;
    assert!(
        still.is_err(),
        "the other session's stream goes on: {still:?}"
    );
    assert_eq!(other.get("/dashboard").await.status, 200);
}
