//! Real receivers of alarm notifications for tests and benchmarks: an
//! HTTP webhook receiver that checks every signature and keeps what it
//! got, and an SMTP server (Python's aiosmtpd, a separate process) that
//! keeps every message it accepts.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One webhook request as received.
#[derive(Debug, Clone)]
pub struct Hook {
    /// The JSON body.
    pub body: Value,
    /// `X-Infusion-Timestamp`.
    pub timestamp_ms: i64,
    /// The signature checked out under the receiver's secret.
    pub signed: bool,
    /// `Content-Type` was `application/json`.
    pub json: bool,
    /// When it arrived, ms since the epoch.
    pub at_ms: i64,
}

#[derive(Default)]
struct Inbox {
    hooks: Vec<Hook>,
    /// Answer 500 to this many requests before accepting.
    fail_first: usize,
    refused: usize,
}

/// An HTTP receiver on a loopback port; stops when dropped.
pub struct WebhookReceiver {
    /// `http://addr/hook`.
    pub url: String,
    inbox: Arc<Mutex<Inbox>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn now_ms() -> i64 {
    infusion_server::clock::now_ms()
}

fn verify(secret: &[u8], ts: &str, body: &[u8], sig: &str) -> bool {
    let Some(hex) = sig.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    want == hex
}

impl WebhookReceiver {
    /// Starts one checking signatures with `secret`, refusing (500) the
    /// first `fail_first` requests.
    pub async fn start(secret: &[u8], fail_first: usize) -> WebhookReceiver {
        let inbox = Arc::new(Mutex::new(Inbox {
            fail_first,
            ..Inbox::default()
        }));
        let (secret, kept) = (secret.to_vec(), inbox.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (secret, kept) = (secret.clone(), kept.clone());
                async move {
                    let get = |h: &str| {
                        headers
                            .get(h)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let ts = get("x-infusion-timestamp");
                    let hook = Hook {
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        timestamp_ms: ts.parse().unwrap_or(-1),
                        signed: verify(&secret, &ts, &body, &get("x-infusion-signature")),
                        json: get("content-type") == "application/json",
                        at_ms: now_ms(),
                    };
                    let mut inbox = kept.lock().unwrap_or_else(|e| e.into_inner());
                    if inbox.refused < inbox.fail_first {
                        inbox.refused += 1;
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    inbox.hooks.push(hook);
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind a receiver: {e}"));
        let addr: SocketAddr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("receiver address: {e}"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        WebhookReceiver {
            url: format!("http://{addr}/hook"),
            inbox,
            _stop: stop,
        }
    }

    /// Everything accepted so far.
    pub fn hooks(&self) -> Vec<Hook> {
        self.inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hooks
            .clone()
    }

    /// Refuses (500) the next `n` requests (0: accepts from now on).
    pub fn refuse_next(&self, n: usize) {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        inbox.fail_first = inbox.refused + n;
    }

    /// How many requests were refused on purpose.
    pub fn refused(&self) -> usize {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner()).refused
    }

    /// Waits up to `within` for a hook `pick` accepts.
    pub async fn wait_for(&self, within: Duration, pick: impl Fn(&Hook) -> bool) -> Option<Hook> {
        let start = Instant::now();
        loop {
            if let Some(h) = self.hooks().into_iter().find(|h| pick(h)) {
                return Some(h);
            }
            if start.elapsed() > within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One email as the SMTP server accepted it.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The whole message, headers and body.
    pub data: String,
}

/// aiosmtpd on a loopback port, in its own process; killed when dropped.
pub struct SmtpSink {
    /// Its port.
    pub port: u16,
    child: Child,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    /// The Python with aiosmtpd: `INFUSION_TEST_SMTP_PYTHON`, else
    /// `python3` if it has the module. `None` when there is none (the
    /// caller skips, unless `INFUSION_TEST_REQUIRE_SMTP` says it must not).
    pub fn python() -> Option<String> {
        if let Ok(p) = std::env::var("INFUSION_TEST_SMTP_PYTHON") {
            return Some(p);
        }
        let has = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if has {
            return Some("python3".into());
        }
        assert!(
            std::env::var_os("INFUSION_TEST_REQUIRE_SMTP").is_none(),
            "INFUSION_TEST_REQUIRE_SMTP is set but no Python with aiosmtpd was found"
        );
        None
    }

    /// Starts one with `python`; waits until it listens.
    pub fn start(python: &str) -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("a free port: {e}"));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/smtp/sink.py");
        let mut child = Command::new(python)
            .args([script, &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start aiosmtpd with {python}: {e}"));
        let stdout = child
            .stdout
            .take()
            .unwrap_or_else(|| panic!("aiosmtpd's output"));
        let mails = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let kept = mails.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "ready" {
                    let _ = ready_tx.send(());
                    continue;
                }
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let to = v["to"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    let data = v["data"].as_str().unwrap_or("").to_owned();
                    kept.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Mail { to, data });
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("aiosmtpd did not start: {e}"));
        SmtpSink { port, child, mails }
    }

    /// Every message accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits up to `within` for a message `pick` accepts.
    pub async fn wait_for(&self, within: Duration, pick: impl Fn(&Mail) -> bool) -> Option<Mail> {
        let start = Instant::now();
        loop {
            if let Some(m) = self.mails().into_iter().find(|m| pick(m)) {
                return Some(m);
            }
            if start.elapsed() > within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
