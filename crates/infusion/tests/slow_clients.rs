//! Red team round 2, finding 1: one anonymous client took the server
//! offline with slow request bodies. 1,100 connections that each sent a
//! request head and one byte of body, under the common 1,024 open file
//! limit, left the server out of descriptors and refusing everyone.
//!
//! Here `infusion serve` runs under `ulimit -n 1024` while one address
//! (127.0.0.2) keeps 1,100 such connections coming for eight seconds,
//! opening a new one whenever the server closes one. Meanwhile a fresh
//! client on another address checks health, and a pump polls its index,
//! each on a new connection, and each must be answered within 1 s. The
//! attacker's connections must be cut (closed at accept past the caps,
//! or answered 408 after the body's grace), and the server must never run
//! out of descriptors. SQLite only: the defence is in front of the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::pumps::{PASSWORD, mac, seed};
use infusion_testkit::{Backend, TestDb, login_body, patient_id};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const ATTACKERS: usize = 1_100;
const ATTACK: Duration = Duration::from_secs(8);

/// A login whose 1,000-byte body never comes: one byte, then nothing.
const SLOW_HEAD: &[u8] = b"POST /api/v1/device/login HTTP/1.1\r\nHost: pump\r\n\
    Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";

#[derive(Default)]
struct Seen {
    /// Connections the server answered 408 `request_timeout`.
    timed_out: AtomicU64,
    /// Connections the server closed without an answer (over a cap).
    closed: AtomicU64,
    /// Connections answered anything else.
    other: AtomicU64,
    /// Connections still open when the attacker gave up on them.
    held_open: AtomicU64,
    /// The longest a connection answered 408 was held, milliseconds.
    longest_ms: AtomicU64,
}

/// One attacker's loop: a slow connection from 127.0.0.2, again as soon
/// as (and 100 ms after) the server ends the last one.
async fn attacker(server: SocketAddr, until: Instant, seen: Arc<Seen>) {
    while Instant::now() < until {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let Ok(mut conn) = socket.connect(server).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let opened = Instant::now();
        let _ = conn.write_all(SLOW_HEAD).await;
        let mut answer = [0u8; 64];
        // Held until the server ends it, or well past the attack if it
        // never does (then the server is not defending itself).
        match tokio::time::timeout_at(until + ATTACK, conn.read(&mut answer)).await {
            Ok(Ok(n)) if answer[..n].starts_with(b"HTTP/1.1 408") => {
                seen.timed_out.fetch_add(1, Ordering::Relaxed);
                let ms = opened.elapsed().as_millis() as u64;
                seen.longest_ms.fetch_max(ms, Ordering::Relaxed);
            }
            Ok(Ok(n)) if n > 0 => {
                seen.other.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {
                seen.closed.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                seen.held_open.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client that opens a new connection for every request.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap()
}

/// The honest side during the attack: a health check and an index poll
/// of pump `p0` every 250 ms; returns every latency, panicking on any
/// request not answered 200 within 1 s.
async fn honest(base: &str, patient: u64, mut token: String, until: Instant) -> Vec<Duration> {
    let mut took = Vec::new();
    while Instant::now() < until {
        let http = fresh_client();
        let t = Instant::now();
        let health = http.get(format!("{base}/api/v1/health")).send().await;
        let health = health.unwrap_or_else(|e| panic!("health check during the attack: {e:?}"));
        assert_eq!(health.status(), 200);
        took.push(t.elapsed());

        let t = Instant::now();
        let index = http
            .post(format!("{base}/api/v1/device/index"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"patient_id": patient}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("index poll during the attack: {e:?}"));
        assert_eq!(index.status(), 200);
        let body: serde_json::Value = index.json().await.unwrap();
        took.push(t.elapsed());
        token = body["token"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_from_one_address_leave_the_server_serving_everyone_else() {
    // The attacking side needs its 1,100 sockets; the server gets 1,024.
    let ours = infusion_server::conn_limit::raise_open_file_limit();
    assert!(
        ours.soft.is_none_or(|n| n > 2 * ATTACKERS as u64),
        "{ours:?}"
    );
    let db = TestDb::open(Backend::Sqlite).await;
    seed(&*db.store, 1).await;
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut serve = Command::new("sh");
    serve.args([
        "-c",
        r#"ulimit -n 1024 && exec "$0" serve "$@""#,
        env!("CARGO_BIN_EXE_infusion"),
        "--bind",
        "127.0.0.1:0",
    ]);
    let (mut child, base) =
        common::spawn_listening(serve, &db.url, Stdio::from(log.reopen().unwrap()));
    let server: SocketAddr = base.trim_start_matches("http://").parse().unwrap();

    let http = reqwest::Client::new();
    let body = login_body(&http, &base, "p0", PASSWORD, &mac(0)).await;
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/device/login"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();

    let until = Instant::now() + ATTACK;
    let seen = Arc::new(Seen::default());
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|_| tokio::spawn(attacker(server, until, Arc::clone(&seen))))
        .collect();
    // Let the attack reach its full strength first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let patient = patient_id(&*db.store, "p0").await.0;
    let mut took = honest(&base, patient, token, until).await;
    for a in attackers {
        a.await.unwrap();
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();

    took.sort();
    let stderr = std::fs::read_to_string(log.path()).unwrap();
    let (timed_out, closed, held, other) = (
        seen.timed_out.load(Ordering::Relaxed),
        seen.closed.load(Ordering::Relaxed),
        seen.held_open.load(Ordering::Relaxed),
        seen.other.load(Ordering::Relaxed),
    );
    eprintln!(
        "{ATTACKERS} slow-body attackers for {ATTACK:?}: {timed_out} answered 408 (held at most \
         {} ms), {closed} closed over the caps, {other} answered otherwise, {held} never ended; {} honest requests, \
         median {:?}, max {:?}",
        seen.longest_ms.load(Ordering::Relaxed),
        took.len(),
        took[took.len() / 2],
        took[took.len() - 1],
    );
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    assert!(
        stderr.contains("open file limit"),
        "the limits are logged: {stderr}"
    );
    assert!(timed_out > 0, "admitted slow bodies are answered 408");
    assert!(
        closed > 0,
        "connections over the per-address cap are closed"
    );
    assert_eq!(held, 0, "every slow connection is ended by the server");
    assert_eq!(other, 0, "a slow body gets no other answer");
    assert!(took.len() >= 20, "the honest client was served throughout");
}
