//! Nothing acknowledged is lost, for alarms too: a pump's occlusion is
//! stored with its notification in one transaction; the server is killed
//! with SIGKILL after writing it and before the hospital's receiver took
//! it (the receiver was refusing); after the restart the notification is
//! delivered, and a receiver that drops repeats by id sees it once. Both
//! backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use common::pumps::{PASSWORD, mac, seed};
use infusion_testkit::receivers::WebhookReceiver;
use infusion_testkit::{Backend, TestDb, login_body};
use serde_json::{Value, json};

infusion_testkit::backend_tests!(a_notification_written_before_a_crash_is_delivered_after_it);

const SECRET: &str = "crash test webhook secret";

/// `infusion serve` with the webhook, on `bind`.
fn serve(url: &str, hook: &str, bind: &str) -> std::process::Child {
    let mut c = common::command(&["serve", "--bind", bind, "--webhook-url", hook]);
    c.env("INFUSION_WEBHOOK_SECRET", SECRET);
    common::spawn_listening(c, url, Stdio::null()).0
}

/// Posts `body` to `base` + `path`, with a bearer token if given.
async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Value {
    let mut r = http.post(format!("{base}{path}")).json(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let answer = r.send().await.unwrap();
    assert!(answer.status().is_success(), "{path}: {}", answer.status());
    answer.json().await.unwrap()
}

async fn a_notification_written_before_a_crash_is_delivered_after_it(backend: Backend) {
    let db = TestDb::open(backend).await;
    seed(&*db.store, 1).await;
    let hooks = WebhookReceiver::start(SECRET.as_bytes(), usize::MAX).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let base = format!("http://{bind}");
    let mut first = serve(&db.url, &hooks.url, &bind);

    // The pump logs in and reports an occlusion: answered 200, so stored.
    let http = reqwest::Client::new();
    let login = login_body(&http, &base, "p0", PASSWORD, &mac(0)).await;
    let session = post(&http, &base, "/api/v1/device/login", None, &login).await;
    let token = session["token"].as_str().unwrap().to_owned();
    let patient = session["patient_id"].clone();
    let report = json!({"patient_id": patient, "events": [
        {"seq": 1, "uptime_ms": 10, "kind": "alarm", "alarm": "occlusion"}]});
    post(&http, &base, "/api/v1/device/report", Some(&token), &report).await;
    // The server tried to deliver it and was refused: written, not
    // delivered. Then the power goes.
    for _ in 0..200 {
        if hooks.refused() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(hooks.refused() > 0, "the server tried before the crash");
    assert!(hooks.hooks().is_empty());
    first.kill().unwrap();
    first.wait().unwrap();

    hooks.refuse_next(0);
    let mut second = serve(&db.url, &hooks.url, &bind);
    let got = hooks
        .wait_for(Duration::from_secs(30), |h| h.body["event"] == "raised")
        .await
        .expect("delivered after the restart");
    assert!(got.signed);
    assert_eq!(got.body["alarm"], "occlusion");
    assert_eq!(got.body["patient_id"], patient);
    // A little longer: anything sent twice would arrive now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = hooks.hooks();
    let ids: HashSet<String> = all.iter().map(|h| h.body["id"].to_string()).collect();
    assert_eq!(ids.len(), 1, "one notification: {all:?}");
    eprintln!(
        "refused {} attempts before the SIGKILL; delivered after the restart ({} deliveries, one id)",
        hooks.refused(),
        all.len()
    );
    let _ = second.kill();
    let _ = second.wait();
}
