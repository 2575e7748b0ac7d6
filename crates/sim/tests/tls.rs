//! HTTPS between the pump and the server (threat T10, cleartext traffic),
//! and the connection limits: the simulated pump verifies the server's
//! certificate against the authority it was provisioned with and infuses
//! over TLS; a pump provisioned with another authority refuses the server;
//! plain HTTP gets nothing from a TLS port; answers carry HSTS and cookies
//! are `Secure`; browsers get HTTP/2; oversized and slow request heads are cut off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{PASSWORD, provisioned_pump};
use infusion_protocol::{InfusionState, PatientLimits};
use infusion_server::ServerConfig;
use infusion_sim::{SimConfig, SimPump};
use infusion_store::NewPrescription;
use infusion_testkit::{
    Backend, Served, TestDb, cert, patient_id, seed_patient, seed_physician, serve, serve_tls,
    test_config,
};

const MAC: &str = "02:00:00:00:00:77";

infusion_testkit::backend_tests!(
    pump_verifies_the_server_and_infuses_over_https,
    a_pump_trusting_another_authority_refuses_the_server,
    https_answers_carry_hsts_and_secure_cookies_and_plain_http_gets_nothing,
    oversized_and_slow_request_heads_are_cut_off,
);

async fn seeded(backend: Backend) -> TestDb {
    let db = TestDb::open(backend).await;
    let hash = infusion_server::password::PasswordParams::INSECURE_FAST
        .hash_blocking(PASSWORD)
        .unwrap();
    seed_physician(&*db.store, "doc", &hash).await;
    let limits = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 20_000,
        max_volume_ul: 10_000,
    };
    seed_patient(&*db.store, "pat", "P", "doc", &hash, MAC, limits).await;
    db.store
        .set_prescription(
            patient_id(&*db.store, "pat").await,
            NewPrescription {
                volume_ul: 500,
                rate_ul_h: 6_000,
                state: InfusionState::Run,
                drug: None,
            },
            "doc",
            0,
        )
        .await
        .unwrap();
    db
}

fn pump(server: &Served, ca: &str) -> SimPump {
    let base = &server.base;
    let cfg = SimConfig {
        time_scale: 300,
        ..SimConfig::default()
    };
    provisioned_pump("tls-pump", base, MAC, server, cfg)
        .trusting(base, &std::fs::read(cert(ca)).unwrap())
        .unwrap()
}

async fn pump_verifies_the_server_and_infuses_over_https(backend: Backend) {
    let db = seeded(backend).await;
    let server = serve_tls(db.store.clone(), test_config(Duration::from_secs(300))).await;
    let sim = pump(&server, "ca.pem");
    let mut view = sim.subscribe();
    let task = tokio::spawn(sim.run(tokio::time::sleep(Duration::from_secs(60))));
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        view.wait_for(|s| s.phase == "completed" && s.unacked_events == 0),
    )
    .await
    .is_ok();
    assert!(done, "last: {:?}", *view.borrow());
    task.abort();
    let p = db
        .store
        .patient(patient_id(&*db.store, "pat").await)
        .await
        .unwrap();
    assert!(
        !db.store
            .events(p.patient_id, 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_pump_trusting_another_authority_refuses_the_server(backend: Backend) {
    let db = seeded(backend).await;
    let server = serve_tls(db.store.clone(), test_config(Duration::from_secs(300))).await;
    let sim = pump(&server, "other-ca.pem");
    let last = sim.run(tokio::time::sleep(Duration::from_secs(2))).await;
    assert!(!last.logged_in, "{last:?}");
    assert_eq!(last.requests_ok, 0, "{last:?}");
    assert!(last.requests_failed > 0, "{last:?}");
    let p = db
        .store
        .patient(patient_id(&*db.store, "pat").await)
        .await
        .unwrap();
    let audit = db.store.audit_log(Some(p.patient_id), 100).await.unwrap();
    assert!(
        audit
            .iter()
            .all(|r| r.entry.action.as_str() != "device_login"),
        "the password never reached a server the pump could not verify"
    );
}

async fn https_answers_carry_hsts_and_secure_cookies_and_plain_http_gets_nothing(backend: Backend) {
    let db = seeded(backend).await;
    let server = serve_tls(db.store.clone(), test_config(Duration::from_secs(300))).await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(cert("ca.pem")).unwrap()).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let https = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .build()
        .unwrap();
    let login = https
        .get(format!("{}/login", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    // Offered both by ALPN, a client gets HTTP/2 (browsers multiplex every
    // page and live stream over it); one that speaks only HTTP/1.1, as a
    // pump does, is served too.
    assert_eq!(login.version(), reqwest::Version::HTTP_2);
    let http1 = reqwest::Client::builder()
        .tls_certs_only([ca])
        .http1_only()
        .build()
        .unwrap()
        .get(format!("{}/api/v1/health", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (http1.status(), http1.version()),
        (reqwest::StatusCode::OK, reqwest::Version::HTTP_11)
    );
    // A 64 KiB header over HTTP/2 is refused as over HTTP/1.1.
    let big = https
        .get(format!("{}/api/v1/health", server.base))
        .header("x-padding", "a".repeat(64 * 1024))
        .send()
        .await;
    assert!(
        big.map_or(true, |r| r.status() == 431),
        "a 64 KiB header was served"
    );
    assert!(
        login.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Plain HTTP to the TLS port: no HTTP answer at all.
    let plain = reqwest::get(format!("http://{}/api/v1/health", server.addr)).await;
    assert!(plain.is_err(), "{plain:?}");
}

async fn oversized_and_slow_request_heads_are_cut_off(backend: Backend) {
    let db = seeded(backend).await;
    let config = ServerConfig {
        header_read_timeout: Duration::from_secs(1),
        ..test_config(Duration::from_secs(300))
    };
    let server = serve(db.store.clone(), config).await;
    // A 64 KiB header: refused (431) before any handler runs.
    let big = reqwest::Client::new()
        .get(format!("{}/api/v1/health", server.base))
        .header("x-padding", "a".repeat(64 * 1024))
        .send()
        .await;
    match big {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
    // A head that never ends: the server closes the connection.
    let addr = server.addr;
    let closed = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        let mut buf = Vec::new();
        // Returns when the server closes (after its answer, if any).
        s.read_to_end(&mut buf).map(|_| buf)
    })
    .await
    .unwrap();
    let answer = closed.expect("closed by the server, not by our read timeout");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    // The server still serves everyone else.
    let ok = reqwest::get(format!("{}/api/v1/health", server.base))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}
