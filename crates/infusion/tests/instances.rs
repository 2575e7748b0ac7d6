//! Several server instances on one PostgreSQL database: a token presented
//! to two server processes at once is honoured once; pumps spread over two
//! instances follow a prescription changed through one, and the change feed
//! reaches both; and a database restart under load from simulated pumps
//! loses no acknowledged report, stores nothing twice, answers 503
//! `database_unavailable` while the database is away and recovers without
//! a server restart.
//!
//! PostgreSQL only (SQLite is one process by design); skipped like the
//! rest of the PostgreSQL half when no server is configured.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use infusion_protocol::InfusionState;
use infusion_pump_core::PumpConfig;
use infusion_store::{Change, NewPrescription, Store};
use infusion_store_postgres::{PgConfig, PgStore};
use infusion_testkit::pg_server::PgServer;
use infusion_testkit::{Backend, TestDb, login_body, patient_id, serve, test_config};
use serde_json::{Value, json};
use tokio::sync::watch;

mod common;

use common::pumps::{Fleet, PASSWORD, ServerProcess, mac, pump, seed, wait_for};

async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        }
        Err(e) => (0, json!({"transport": e.to_string()})),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_at_two_server_processes_succeeds_once() {
    if Backend::Postgres.skip() {
        return;
    }
    let db = TestDb::open(Backend::Postgres).await;
    seed(&*db.store, 1).await;
    let a = ServerProcess::start(&db.url);
    let b = ServerProcess::start(&db.url);
    let http = reqwest::Client::new();
    let (status, login) = post(
        &http,
        format!("{}/api/v1/device/login", a.base),
        None,
        login_body(&http, &a.base, "p0", PASSWORD, &mac(0)).await,
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let patient = login["patient_id"].clone();
    let mut wins = BTreeMap::<&str, u32>::new();
    for round in 0..40 {
        // The loser of each round is a replay, which revokes the chain: a
        // fresh login starts every round.
        let base = if round % 2 == 0 { &a.base } else { &b.base };
        let (status, login) = post(
            &http,
            format!("{base}/api/v1/device/login"),
            None,
            login_body(&http, base, "p0", PASSWORD, &mac(0)).await,
        )
        .await;
        assert_eq!(status, 200, "{login}");
        let token = login["token"].as_str().unwrap().to_owned();
        let body = json!({"patient_id": patient});
        let (ra, rb) = tokio::join!(
            post(
                &http,
                format!("{}/api/v1/device/index", a.base),
                Some(&token),
                body.clone()
            ),
            post(
                &http,
                format!("{}/api/v1/device/index", b.base),
                Some(&token),
                body
            ),
        );
        let winners: Vec<_> = [("a", &ra), ("b", &rb)]
            .into_iter()
            .filter(|(_, (s, _))| *s == 200)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {ra:?} {rb:?}");
        let (who, (_, won)) = winners[0];
        let lost = if who == "a" { &rb } else { &ra };
        assert_eq!(lost.0, 401, "round {round}: {lost:?}");
        assert_eq!(lost.1["error"], "token_used", "round {round}: {lost:?}");
        *wins.entry(who).or_default() += 1;
        // Across instances, the replay killed the winner's next token.
        let next = won["token"].as_str().unwrap().to_owned();
        let (status, body) = post(
            &http,
            format!("{}/api/v1/device/index", b.base),
            Some(&next),
            json!({"patient_id": patient}),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("token_revoked")),
            "round {round}"
        );
    }
    // Both instances took part; who wins a round is a race.
    eprintln!("wins per instance over 40 rounds: {wins:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pumps_on_two_instances_follow_a_change_made_through_one() {
    if Backend::Postgres.skip() {
        return;
    }
    let db = TestDb::open(Backend::Postgres).await;
    let server_key = seed(&*db.store, 4).await;
    let store_a = db.store.clone();
    let store_b = db.open_another().await;
    let mut feed_a = store_a.changes();
    let mut feed_b = store_b.changes();
    let server_a = serve(store_a.clone(), test_config(Duration::from_secs(300))).await;
    let base_a = server_a.base.clone();
    let server_b = serve(store_b.clone(), test_config(Duration::from_secs(300))).await;
    let base_b = server_b.base.clone();
    let cfg = PumpConfig {
        poll_interval_ms: 1_000,
        ..PumpConfig::default()
    };
    let (stop, stopped) = watch::channel(false);
    let mut views = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let base = if i % 2 == 0 { &base_a } else { &base_b };
        let sim = pump(i, base, server_key, cfg, 5);
        views.push(sim.subscribe());
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(sim.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })));
    }
    for (i, view) in views.iter_mut().enumerate() {
        wait_for(view, &format!("p{i} running version 1"), |s| {
            s.phase == "running" && s.index.is_some_and(|x| x.version == 1)
        })
        .await;
    }
    // Through instance A only.
    for i in 0..4 {
        let v = store_a
            .set_prescription(
                patient_id(&*store_a, &format!("p{i}")).await,
                NewPrescription {
                    volume_ul: 8_000,
                    rate_ul_h: 30_000,
                    state: InfusionState::Run,
                    drug: None,
                },
                "doc",
                1,
            )
            .await
            .unwrap();
        assert_eq!(v, 2);
    }
    for (i, view) in views.iter_mut().enumerate() {
        wait_for(view, &format!("p{i} at version 2"), |s| {
            s.index.is_some_and(|x| x.version == 2) && s.rate_ul_h == 30_000
        })
        .await;
    }
    // Both instances heard every change (B only through NOTIFY).
    for (name, feed) in [("A", &mut feed_a), ("B", &mut feed_b)] {
        let mut versions = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while versions.len() < 4 && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(1), feed.recv()).await {
                Ok(Ok(Change::Prescription { patient, version })) if version == 2 => {
                    versions.insert(patient, version);
                }
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) => panic!("instance {name} feed: {e}"),
            }
        }
        assert_eq!(versions.len(), 4, "instance {name} heard {versions:?}");
    }
    stop.send_replace(true);
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restart_under_load_loses_nothing_and_recovers() {
    if Backend::Postgres.skip() {
        return;
    }
    let Some(pg) = PgServer::start() else {
        if std::env::var("INFUSION_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
            panic!("no PostgreSQL server binaries for the restart test");
        }
        eprintln!("skipping the restart test: no PostgreSQL server binaries");
        return;
    };
    let config = PgConfig {
        max_connections: 4,
        acquire_timeout: Duration::from_millis(1_000),
        statement_timeout: Duration::from_secs(2),
    };
    let store_a: Arc<dyn Store> =
        Arc::new(PgStore::connect(&pg.url(), config.clone()).await.unwrap());
    let store_b: Arc<dyn Store> = Arc::new(PgStore::connect(&pg.url(), config).await.unwrap());
    const PUMPS: usize = 6;
    let server_key = seed(&*store_a, PUMPS).await;
    let server_a = serve(store_a.clone(), test_config(Duration::from_secs(300))).await;
    let base_a = server_a.base.clone();
    let server_b = serve(store_b.clone(), test_config(Duration::from_secs(300))).await;
    let base_b = server_b.base.clone();
    let mut fleet = Fleet::start(PUMPS, &[&base_a, &base_b], server_key).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut feed = store_b.changes();
    pg.stop();
    // While the database is away both instances answer a clear 503.
    let http = reqwest::Client::new();
    for base in [&base_a, &base_b] {
        let (status, body) = post(
            &http,
            format!("{base}/api/v1/device/login"),
            None,
            login_body(&http, base, "p0", PASSWORD, &mac(0)).await,
        )
        .await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "database_unavailable", "{body}");
        let ready = reqwest::get(format!("{base}/api/v1/ready")).await.unwrap();
        assert_eq!(ready.status(), 503);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.start_again();

    // The same server instances recover: every pump gets answers again and
    // empties its outbox.
    fleet.wait_all_served(4, "served again").await;
    // The change listener reconnected by itself and told its subscribers
    // that notifications may have been missed.
    let resync = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match feed.recv().await {
                Ok(Change::Resync) => break true,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break false,
            }
        }
    })
    .await;
    assert_eq!(resync, Ok(true), "no resync after the restart");
    let acks = fleet.acks.clone();
    let failed = fleet.stop().await;
    assert!(failed > 0, "the outage should have failed some requests");
    eprintln!("requests failed during the outage, all pumps: {failed}");

    common::pumps::assert_acknowledged_stored_once(&*store_a, &acks).await;
    for base in [&base_a, &base_b] {
        let health: Value = reqwest::get(format!("{base}/api/v1/health"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["status"], "ok");
        let ready: Value = reqwest::get(format!("{base}/api/v1/ready"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["status"], "ready");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_session_started_on_one_instance_works_and_ends_on_the_other() {
    if Backend::Postgres.skip() {
        return;
    }
    let db = TestDb::open(Backend::Postgres).await;
    seed(&*db.store, 1).await;
    let (a, b) = (db.store.clone(), db.open_another().await);
    let doc = a.account("doc").await.unwrap().unwrap();
    let hash = infusion_store::TokenHash([7; 32]);
    let session = infusion_store::NewWebSession {
        hash,
        expires_at_ms: 10_000_000,
    };
    a.start_web_session(doc.account_id, session, 1_000)
        .await
        .unwrap();
    let seen = b
        .web_session(hash, 60_000, 2_000, infusion_store::SessionUse::Active)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.username, "doc");
    // Logged out through B: dead at A at once, no cache to wait for.
    assert!(b.end_web_session(hash, 3_000).await.unwrap());
    assert_eq!(
        a.web_session(hash, 60_000, 3_001, infusion_store::SessionUse::Active)
            .await
            .unwrap(),
        None
    );
}
