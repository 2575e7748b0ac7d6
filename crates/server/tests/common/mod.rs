//! Spawns the real server on a random port over a fresh database, seeded
//! with one physician and two patients with devices and prescriptions.
//!
//! Every suite runs against each store backend through
//! `infusion_testkit::backend_tests!`: one test body, one generated test per
//! backend.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod care;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use infusion_protocol::{InfusionState, PatientId, PatientLimits};
use infusion_server::ServerConfig;
use infusion_store::{NewPrescription, Store};
pub use infusion_testkit::Backend;
use infusion_testkit::{
    Served, TestDb, patient_id, seed_patient, seed_physician, serve, test_config,
};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery staple";
pub const MAC_A: &str = "AA:BB:CC:00:00:01";
pub const MAC_B: &str = "AA:BB:CC:00:00:02";

/// One seeded patient.
pub struct Patient {
    pub username: &'static str,
    pub mac: &'static str,
    pub id: PatientId,
}

/// A running server and what a test needs to talk to it and to look into
/// its database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub http: reqwest::Client,
    pub a: Patient,
    pub b: Patient,
    pub db: TestDb,
    _server: Served,
}

impl TestApp {
    /// Starts a server with the default test configuration.
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, Duration::from_secs(300)).await
    }

    /// Starts a server whose tokens live `token_ttl`, on a fresh database
    /// seeded with physician dr.house and patients alice (device MAC_A) and
    /// bob (MAC_B), each with limits 1000..=10000 µL/h, at most 10000 µL,
    /// and prescription version 1: 2000 µL at 4000 µL/h.
    pub async fn spawn_with(backend: Backend, token_ttl: Duration) -> TestApp {
        Self::spawn_configured(backend, test_config(token_ttl)).await
    }

    /// Starts a server with `config`, seeded as [`TestApp::spawn_with`] says.
    pub async fn spawn_configured(backend: Backend, config: ServerConfig) -> TestApp {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt().with_env_filter("info").try_init();
        }
        let db = TestDb::open(backend).await;
        let store = db.store.clone();
        let hash = config.password.hash_blocking(PASSWORD).unwrap();
        seed_physician(&*store, "dr.house", &hash).await;
        let limits = PatientLimits {
            min_rate_ul_h: 1_000,
            max_rate_ul_h: 10_000,
            max_volume_ul: 10_000,
        };
        let mut patients = Vec::new();
        for (username, first, mac) in [("alice", "Alice", MAC_A), ("bob", "Bob", MAC_B)] {
            let id = seed_patient(&*store, username, first, "dr.house", &hash, mac, limits).await;
            store
                .set_prescription(
                    patient_id(&*store, username).await,
                    NewPrescription {
                        volume_ul: 2_000,
                        rate_ul_h: 4_000,
                        state: InfusionState::Run,
                        drug: None,
                    },
                    "test",
                    0,
                )
                .await
                .unwrap();
            patients.push(Patient { username, mac, id });
        }
        let server = serve(store.clone(), config).await;
        let b = patients.pop().unwrap();
        let a = patients.pop().unwrap();
        TestApp {
            addr: server.addr,
            store,
            http: reqwest::Client::new(),
            a,
            b,
            db,
            _server: server,
        }
    }

    /// A device login body answering a fresh challenge with the device
    /// secret the test seeding bound to `mac`.
    pub async fn login_body(&self, username: &str, password: &str, mac: &str) -> Value {
        infusion_testkit::login_body(&self.http, &self.url(""), username, password, mac).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs JSON with an optional bearer token; returns status and body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        post_json(&self.http, &self.url(path), token, body).await
    }

    /// POSTs raw bytes with a content type; returns status and body.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        send(req, token).await
    }

    /// Logs in as `p` and returns the first token.
    pub async fn login(&self, p: &Patient) -> String {
        let (status, body) = self
            .post(
                "/api/v1/device/login",
                None,
                &self.login_body(p.username, PASSWORD, p.mac).await,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Polls the index with `token` for `p`; returns status and body.
    pub async fn index(&self, p: &Patient, token: &str) -> (u16, Value) {
        self.post(
            "/api/v1/device/index",
            Some(token),
            &json!({"patient_id": p.id.0}),
        )
        .await
    }

    /// Reports `events` with `token` for `p`; returns status and body.
    pub async fn report(&self, p: &Patient, token: &str, events: Value) -> (u16, Value) {
        self.post(
            "/api/v1/device/report",
            Some(token),
            &json!({"patient_id": p.id.0, "events": events}),
        )
        .await
    }

    /// How many events the database holds for `p`.
    pub async fn event_count(&self, p: &Patient) -> usize {
        self.store.events(p.id, 0, 100_000).await.unwrap().len()
    }

    /// Audit actions recorded for `p`, oldest first.
    pub async fn audit_actions(&self, p: &Patient) -> Vec<String> {
        let mut log = self.store.audit_log(Some(p.id), 10_000).await.unwrap();
        log.reverse();
        log.into_iter()
            .map(|r| r.entry.action.as_str().to_owned())
            .collect()
    }

    /// Whether the stored token is marked used.
    pub async fn token_used(&self, token: &str) -> Option<bool> {
        let t = infusion_protocol::Token::parse(token).unwrap();
        self.store
            .token_status(infusion_server::token::hash(&t))
            .await
            .unwrap()
            .map(|s| s.used_at_ms.is_some())
    }
}

/// `n` progress events with seq `from..from+n`.
pub fn progress_events(from: u32, n: u32) -> Value {
    Value::Array(
        (from..from + n)
            .map(|seq| {
                json!({"seq": seq, "uptime_ms": seq as u64 * 1000, "kind": "progress",
                       "delivered_ul": seq * 10, "rate_ul_h": 4000, "index_version": 1})
            })
            .collect(),
    )
}

/// POSTs JSON to `url` (any server's) with an optional bearer token;
/// returns status and body (`null` when the body is not JSON).
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    send(http.post(url).json(body), token).await
}

/// Sends `req` with an optional bearer token; returns status and body
/// (`null` when the body is not JSON).
async fn send(mut req: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}
