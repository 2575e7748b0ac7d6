//! The simulated pump (the core over HTTP) against the real server: it
//! infuses, follows a new prescription version, completes, recovers from
//! expired tokens by logging in again, rides out a server outage, and
//! survives an attacker replaying a token captured off the wire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{PASSWORD, provisioned_pump};
use infusion_protocol::Alarm;
use infusion_protocol::{EventBody, InfusionState, PatientLimits, StateChange};
use infusion_pump_core::{CommLossPolicy, PumpConfig};
use infusion_sim::{SimConfig, SimPump, Snapshot};
use infusion_store::{Confirmation, NewPrescription, Store};
use infusion_testkit::{
    Backend, Served, TestDb, patient_id, seed_patient, seed_physician, serve, serve_on, test_config,
};
use tokio::sync::watch;

const MAC: &str = "02:00:00:00:00:42";

infusion_testkit::backend_tests!(
    pump_infuses_adjusts_to_a_new_version_and_completes,
    pump_logs_in_again_when_its_token_expires,
    pump_stops_on_a_lost_link_when_told_and_reports_it_when_back,
    pump_logs_in_again_after_its_captured_token_is_replayed_and_completes,
    a_man_in_the_middle_cannot_change_the_dose,
    a_restarted_pump_says_so_and_waits_for_a_new_version,
);

async fn server(backend: Backend, token_ttl: Duration) -> (Served, Arc<dyn Store>, TestDb) {
    let db = TestDb::open(backend).await;
    let store = db.store.clone();
    let config = test_config(token_ttl);
    let hash = config.password.hash_blocking(PASSWORD).unwrap();
    seed_physician(&*store, "doc", &hash).await;
    let limits = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 20_000,
        max_volume_ul: 10_000,
    };
    seed_patient(&*store, "pat", "P", "doc", &hash, MAC, limits).await;
    (serve(store.clone(), config).await, store, db)
}

/// The test pump on `url` (the server, or a proxy in front of it),
/// provisioned with `server`'s key.
fn pump(url: &str, server: &Served, cfg: SimConfig) -> SimPump {
    provisioned_pump("test-pump", url, MAC, server, cfg)
}

/// Starts a pump on `url` at 300 times real time (1000 µL at 4000 µL/h,
/// 15 minutes of pump time, takes 3 s): its view, the switch that stops
/// it, and its task, which ends with the last snapshot.
fn start_fast(
    url: &str,
    server: &Served,
) -> (
    watch::Receiver<Snapshot>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Snapshot>,
) {
    spawn(pump(
        url,
        server,
        SimConfig {
            time_scale: 300,
            ..SimConfig::default()
        },
    ))
}

/// Runs `sim`: its view, the switch that stops it, and its task.
fn spawn(
    sim: SimPump,
) -> (
    watch::Receiver<Snapshot>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Snapshot>,
) {
    let view = sim.subscribe();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sim.run(async move {
        let _ = stopped.await;
    }));
    (view, stop, task)
}

async fn wait_for(view: &mut watch::Receiver<Snapshot>, what: &str, f: impl Fn(&Snapshot) -> bool) {
    let done = tokio::time::timeout(Duration::from_secs(30), view.wait_for(|s| f(s)))
        .await
        .is_ok();
    assert!(
        done,
        "timed out waiting for: {what}; last {:?}",
        *view.borrow()
    );
}

fn prescription(volume_ul: u32, rate_ul_h: u32) -> NewPrescription {
    NewPrescription {
        volume_ul,
        rate_ul_h,
        state: InfusionState::Run,
        drug: None,
    }
}

async fn pump_infuses_adjusts_to_a_new_version_and_completes(backend: Backend) {
    let (server, store, _db) = server(backend, Duration::from_secs(300)).await;
    let url = server.base.clone();
    store
        .set_prescription(
            patient_id(&*store, "pat").await,
            prescription(1_000, 4_000),
            "doc",
            0,
        )
        .await
        .unwrap();
    let (mut view, stop, task) = start_fast(&url, &server);
    wait_for(&mut view, "running on version 1", |s| {
        s.phase == "running" && s.delivered_ul > 0
    })
    .await;
    // Three times the rate: an order that needs its reason.
    let faster = Confirmation {
        reason: Some("finish sooner".into()),
        ..Confirmation::default()
    };
    store
        .prescribe(
            patient_id(&*store, "pat").await,
            prescription(1_000, 12_000),
            &faster,
            "doc",
            0,
        )
        .await
        .unwrap();
    wait_for(&mut view, "version 2 applied", |s| s.rate_ul_h == 12_000).await;
    wait_for(&mut view, "completion reported", |s| {
        s.phase == "completed" && s.unacked_events == 0
    })
    .await;
    let _ = stop.send(());
    let last = task.await.unwrap();
    assert_eq!(last.delivered_ul, 1_000);

    let patient = store
        .patient(patient_id(&*store, "pat").await)
        .await
        .unwrap();
    let events = store.events(patient.patient_id, 0, 10_000).await.unwrap();
    assert_eq!(
        states(&events),
        [
            StateChange::Started,
            StateChange::Adjusted,
            StateChange::Completed
        ]
    );
    let last_progress = last_progress(&events);
    assert_eq!(last_progress.delivered_ul, 1_000);
    assert_eq!(last_progress.index_version, 2);
    assert!(
        events
            .iter()
            .any(|e| matches!(e.body, EventBody::Vitals(_)))
    );
    // Sequence numbers are unique and increasing: nothing stored twice.
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
}

async fn pump_logs_in_again_when_its_token_expires(backend: Backend) {
    let (server, store, _db) = server(backend, Duration::from_secs(1)).await;
    let url = server.base.clone();
    store
        .set_prescription(
            patient_id(&*store, "pat").await,
            prescription(5_000, 4_000),
            "doc",
            0,
        )
        .await
        .unwrap();
    let cfg = SimConfig {
        pump: PumpConfig {
            poll_interval_ms: 1_500,
            ..PumpConfig::default()
        },
        ..SimConfig::default()
    };
    let sim = pump(&url, &server, cfg);
    let mut view = sim.subscribe();
    let task = tokio::spawn(sim.run(tokio::time::sleep(Duration::from_secs(5))));
    wait_for(&mut view, "running", |s| s.phase == "running").await;
    let last = task.await.unwrap();
    assert_eq!(last.phase, "running");
    let patient = store
        .patient(patient_id(&*store, "pat").await)
        .await
        .unwrap();
    let audit = store
        .audit_log(Some(patient.patient_id), 1_000)
        .await
        .unwrap();
    let logins = audit
        .iter()
        .filter(|r| r.entry.action.as_str() == "device_login")
        .count();
    let expired = audit
        .iter()
        .filter(|r| {
            r.entry.action.as_str() == "token_refused" && r.entry.detail.contains("expired")
        })
        .count();
    assert!(expired >= 1, "{audit:?}");
    assert!(logins >= 2, "{audit:?}");
}

async fn pump_stops_on_a_lost_link_when_told_and_reports_it_when_back(backend: Backend) {
    let (server, store, _db) = server(backend, Duration::from_secs(300)).await;
    let addr = server.addr;
    store
        .set_prescription(
            patient_id(&*store, "pat").await,
            prescription(5_000, 4_000),
            "doc",
            0,
        )
        .await
        .unwrap();
    let cfg = SimConfig {
        pump: PumpConfig {
            poll_interval_ms: 1_000,
            comm_loss: CommLossPolicy::StopAfter(3),
            ..PumpConfig::default()
        },
        time_scale: 20,
        ..SimConfig::default()
    };
    let sim = pump(&server.base, &server, cfg);
    let mut view = sim.subscribe();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sim.run(async move {
        let _ = stopped.await;
    }));
    wait_for(&mut view, "running and reported", |s| {
        s.phase == "running" && s.unacked_events == 0
    })
    .await;
    // The server goes away: after three failed requests the pump stops.
    drop(server);
    wait_for(&mut view, "stopped for the lost link", |s| {
        s.phase == "alarm"
    })
    .await;
    let held = view.borrow().delivered_ul;
    // It comes back on the same address: the pump resumes, and the alarm
    // and the stop it queued while away reach the record.
    let config = test_config(Duration::from_secs(300));
    let _back = serve_on(store.clone(), config, addr).await;
    wait_for(&mut view, "running again, everything reported", |s| {
        s.phase == "running" && s.unacked_events == 0 && s.delivered_ul > held
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();
    let patient = store
        .patient(patient_id(&*store, "pat").await)
        .await
        .unwrap();
    let events = store.events(patient.patient_id, 0, 10_000).await.unwrap();
    let bodies: Vec<EventBody> = events.iter().map(|e| e.body).collect();
    let at = |b: EventBody| bodies.iter().position(|x| *x == b);
    let lost = at(EventBody::Alarm(Alarm::CommLost)).expect("comm_lost reported");
    let paused = at(EventBody::State(StateChange::Paused)).expect("the stop reported");
    let resumed = at(EventBody::State(StateChange::Resumed)).expect("the restart reported");
    assert!(lost < resumed && paused < resumed, "{bodies:?}");
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
}

/// A man in the middle on the pump's plain-HTTP link.
struct Proxy {
    /// Where the pump should connect.
    url: String,
    /// Every bearer token that went through.
    captured: Arc<std::sync::Mutex<Vec<String>>>,
    /// While set, index answers are rewritten to ten times the rate, with
    /// limits that allow it: the dose change a compromised path would make.
    tamper: Arc<std::sync::atomic::AtomicBool>,
}

/// Starts a [`Proxy`] that forwards every request to `upstream` and every
/// answer back, unchanged unless told to tamper.
async fn proxy(upstream: String) -> Proxy {
    use axum::body::{Body, to_bytes};
    use axum::extract::Request;
    use axum::response::Response;
    use std::sync::atomic::Ordering;
    let captured = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tamper = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (seen, http) = (Arc::clone(&captured), reqwest::Client::new());
    let tampering = Arc::clone(&tamper);
    let forward = move |req: Request| {
        let (seen, http, upstream) = (Arc::clone(&seen), http.clone(), upstream.clone());
        let tampering = Arc::clone(&tampering);
        async move {
            let is_index = req.uri().path() == "/api/v1/device/index";
            let (parts, body) = req.into_parts();
            let body = to_bytes(body, 1 << 20).await.unwrap();
            let mut out = http.request(parts.method, format!("{upstream}{}", parts.uri));
            for name in ["authorization", "content-type"] {
                if let Some(v) = parts.headers.get(name) {
                    out = out.header(name, v.clone());
                    if let Some(t) = v.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) {
                        seen.lock().unwrap().push(t.to_owned());
                    }
                }
            }
            let answer = out.body(body).send().await.unwrap();
            let status = answer.status();
            let ct = answer.headers().get("content-type").cloned();
            let mut bytes = answer.bytes().await.unwrap().to_vec();
            if is_index && status.is_success() && tampering.load(Ordering::SeqCst) {
                let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let rate = v["index"]["rate_ul_h"].as_u64().unwrap();
                v["index"]["rate_ul_h"] = (rate * 10).into();
                v["index"]["version"] = (v["index"]["version"].as_u64().unwrap() + 1).into();
                v["index"]["limits"]["max_rate_ul_h"] = 200_000.into();
                bytes = serde_json::to_vec(&v).unwrap();
            }
            let mut resp = Response::new(Body::from(bytes));
            *resp.status_mut() = status;
            if let Some(ct) = ct {
                resp.headers_mut().insert("content-type", ct);
            }
            resp
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(forward);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Proxy {
        url: format!("http://{addr}"),
        captured,
        tamper,
    }
}

/// Threat T1 end to end: an attacker on the pump's link copies its tokens
/// and replays one the pump has used. The chain is revoked; the real pump
/// logs in again by itself and delivers the whole prescription, every step
/// and event exactly once.
async fn pump_logs_in_again_after_its_captured_token_is_replayed_and_completes(backend: Backend) {
    let (server, store, _db) = server(backend, Duration::from_secs(300)).await;
    store
        .set_prescription(
            patient_id(&*store, "pat").await,
            prescription(1_000, 4_000),
            "doc",
            0,
        )
        .await
        .unwrap();
    let Proxy { url, captured, .. } = proxy(server.base.clone()).await;
    let (mut view, stop, task) = start_fast(&url, &server);
    wait_for(&mut view, "running with a few polls behind it", |s| {
        s.phase == "running" && s.delivered_ul > 0
    })
    .await;
    let first = captured
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("a token on the wire");
    let patient = store
        .patient(patient_id(&*store, "pat").await)
        .await
        .unwrap();
    let replay = reqwest::Client::new()
        .post(format!("{}/api/v1/device/index", server.base))
        .bearer_auth(&first)
        .json(&serde_json::json!({"patient_id": patient.patient_id.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status().as_u16(), 401);
    let err: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(err["error"], "token_used");
    wait_for(&mut view, "completion reported", |s| {
        s.phase == "completed" && s.unacked_events == 0
    })
    .await;
    let _ = stop.send(());
    assert_eq!(task.await.unwrap().delivered_ul, 1_000);
    let audit = store
        .audit_log(Some(patient.patient_id), 1_000)
        .await
        .unwrap();
    let count = |action: &str| {
        audit
            .iter()
            .filter(|r| r.entry.action.as_str() == action)
            .count()
    };
    assert_eq!(count("token_replayed"), 1, "{audit:?}");
    assert!(count("device_login") >= 2, "{audit:?}");
    let events = store.events(patient.patient_id, 0, 10_000).await.unwrap();
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
}

/// Threat T9 end to end: a man in the middle rewrites every index answer
/// to ten times the rate (with limits to match). The pump refuses each,
/// keeps infusing at the prescribed rate, logs in again, and reports
/// `index_unverified`; once the path is clean it follows the physician's
/// next version.
async fn a_man_in_the_middle_cannot_change_the_dose(backend: Backend) {
    use std::sync::atomic::Ordering;
    let (server, store, _db) = server(backend, Duration::from_secs(300)).await;
    store
        .set_prescription(
            patient_id(&*store, "pat").await,
            prescription(5_000, 4_000),
            "doc",
            0,
        )
        .await
        .unwrap();
    let proxy = proxy(server.base.clone()).await;
    let (mut view, stop, task) = start_fast(&proxy.url, &server);
    wait_for(&mut view, "running at 4 mL/h", |s| {
        s.phase == "running" && s.rate_ul_h == 4_000
    })
    .await;
    proxy.tamper.store(true, Ordering::SeqCst);
    let patient = store
        .patient(patient_id(&*store, "pat").await)
        .await
        .unwrap();
    let logins = |audit: &[infusion_store::AuditRecord]| {
        audit
            .iter()
            .filter(|r| r.entry.action.as_str() == "device_login")
            .count()
    };
    let mut refused = false;
    for _ in 0..500 {
        let snap = view.borrow().clone();
        assert_eq!(
            snap.rate_ul_h, 4_000,
            "the pump ran a tampered rate: {snap:?}"
        );
        let events = store.events(patient.patient_id, 0, 10_000).await.unwrap();
        let audit = store
            .audit_log(Some(patient.patient_id), 1_000)
            .await
            .unwrap();
        // Each refused answer sends the pump back to log in.
        if events
            .iter()
            .any(|e| e.body == EventBody::Alarm(Alarm::IndexUnverified))
            && logins(&audit) >= 4
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "no index_unverified reported, or no new logins");
    proxy.tamper.store(false, Ordering::SeqCst);
    store
        .set_prescription(
            patient_id(&*store, "pat").await,
            prescription(5_000, 8_000),
            "doc",
            0,
        )
        .await
        .unwrap();
    wait_for(&mut view, "the physician's new rate", |s| {
        s.rate_ul_h == 8_000
    })
    .await;
    let _ = stop.send(());
    let last = task.await.unwrap();
    assert_eq!(last.index.map(|i| i.version), Some(2));
    let events = store.events(patient.patient_id, 0, 10_000).await.unwrap();
    let unverified = events
        .iter()
        .filter(|e| e.body == EventBody::Alarm(Alarm::IndexUnverified))
        .count();
    assert_eq!(unverified, 1, "raised once for the whole attack");
}

/// A pump that restarts mid-infusion (power loss, reset), keeping in flash
/// the newest version it applied, neither runs that order again nor leaves
/// the server's last report standing as if it still ran: it reports a
/// `restarted` alarm and a stopped state, stays idle through its polls,
/// and runs the next version the physician writes. Its event counter
/// starts over at 1, as after wiped flash: the login's `next_seq` tells it
/// where the numbering stands, so its alarm is stored, not taken for a
/// repeat of the event stored under the same number before.
async fn a_restarted_pump_says_so_and_waits_for_a_new_version(backend: Backend) {
    let (server, store, _db) = server(backend, Duration::from_secs(300)).await;
    let url = server.base.clone();
    store
        .set_prescription(
            patient_id(&*store, "pat").await,
            prescription(3_000, 4_000),
            "doc",
            0,
        )
        .await
        .unwrap();
    let (mut view, stop, task) = start_fast(&url, &server);
    wait_for(&mut view, "running and reported", |s| {
        s.phase == "running" && s.delivered_ul > 0 && s.unacked_events == 0
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();
    let patient = store
        .patient(patient_id(&*store, "pat").await)
        .await
        .unwrap()
        .patient_id;
    let before = store.events(patient, 0, 10_000).await.unwrap();
    let next_seq = before.iter().map(|e| e.seq).max().unwrap() + 1;

    let (mut view, stop, task) = spawn(pump(
        &url,
        &server,
        SimConfig {
            time_scale: 300,
            pump: PumpConfig {
                applied_version: 1,
                ..PumpConfig::default()
            },
            ..SimConfig::default()
        },
    ));
    wait_for(&mut view, "polled and reported after the restart", |s| {
        s.requests_ok >= 4 && s.unacked_events == 0 && s.index.is_some()
    })
    .await;
    assert_eq!(view.borrow().phase, "idle", "version 1 does not run again");
    let open = store.open_alarms(patient).await.unwrap();
    assert!(
        open.iter()
            .any(|e| e.body == EventBody::Alarm(Alarm::Restarted)),
        "{open:?}"
    );
    let after = store.events(patient, 0, 10_000).await.unwrap();
    assert_eq!(states(&after).last(), Some(&StateChange::Paused));
    assert_eq!(last_progress(&after).rate_ul_h, 0);
    assert_eq!(
        after.len(),
        before.len() + 3 + vitals_after(&after, next_seq)
    );

    store
        .set_prescription(
            patient_id(&*store, "pat").await,
            prescription(1_000, 4_000),
            "doc",
            0,
        )
        .await
        .unwrap();
    wait_for(&mut view, "version 2 running", |s| {
        s.phase == "running" && s.index.is_some_and(|i| i.version == 2)
    })
    .await;
    let _ = stop.send(());
    task.await.unwrap();
}

/// How many vitals events the restarted pump (from `first_seq` on) sent.
fn vitals_after(events: &[infusion_store::StoredEvent], first_seq: u32) -> usize {
    events
        .iter()
        .filter(|e| e.seq >= first_seq && matches!(e.body, EventBody::Vitals(_)))
        .count()
}

/// The state changes among `events`, oldest first.
fn states(events: &[infusion_store::StoredEvent]) -> Vec<StateChange> {
    events
        .iter()
        .filter_map(|e| match e.body {
            EventBody::State(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// The newest progress event among `events`.
fn last_progress(events: &[infusion_store::StoredEvent]) -> infusion_protocol::Progress {
    events
        .iter()
        .rev()
        .find_map(|e| match e.body {
            EventBody::Progress(p) => Some(p),
            _ => None,
        })
        .unwrap()
}
