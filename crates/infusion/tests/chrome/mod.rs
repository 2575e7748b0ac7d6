//! Headless Chromium over WebDriver (chromedriver) for the browser tests:
//! starting it, and a [`Session`] that finds, fills, clicks, waits for
//! text, runs axe-core and takes screenshots.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test file uses a part

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use infusion_protocol::MacAddress;
use infusion_protocol::{InfusionState, PatientId, PatientLimits};
use infusion_pump_core::PumpConfig;
use infusion_sim::{Credentials, SimConfig, SimPump};
use infusion_store::{NewPrescription, Store};
use infusion_testkit::{Served, device_secret, seed_patient, seed_physician};
use serde_json::{Value, json};

/// The password of every account the browser tests seed.
pub const PASSWORD: &str = "browser test password";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What the test needs from the machine, or why it cannot run.
pub fn tools() -> Result<(PathBuf, String), String> {
    let driver = std::env::var_os("INFUSION_TEST_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    if !driver.exists() {
        return Err(format!("no chromedriver at {}", driver.display()));
    }
    let axe = repo().join("tests/browser/node_modules/axe-core/axe.min.js");
    let axe = std::fs::read_to_string(&axe).map_err(|_| {
        format!(
            "no axe-core at {} (npm ci --prefix tests/browser)",
            axe.display()
        )
    })?;
    Ok((driver, axe))
}

/// What the test needs, or `None` after one line saying why it skips
/// (a panic instead under `INFUSION_TEST_REQUIRE_BROWSER=1`, as in CI).
pub fn tools_or_skip() -> Option<(PathBuf, String)> {
    match tools() {
        Ok(t) => Some(t),
        Err(why) => {
            if std::env::var("INFUSION_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
                panic!("INFUSION_TEST_REQUIRE_BROWSER=1 but {why}");
            }
            eprintln!("skipping the browser test: {why}");
            None
        }
    }
}

/// chromedriver on a free port, killed on drop.
pub struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Chromium through a fresh chromedriver, headless at 1280 × 900, with
/// `extra` command-line switches.
pub async fn start_browser(driver: &PathBuf, extra: &[&str]) -> (Driver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child, port);
    let args: Vec<&str> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ]
    .iter()
    .chain(extra)
    .copied()
    .collect();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("INFUSION_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": args
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.1))
            .await
        {
            Ok(c) => return (driver, c),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start Chromium through chromedriver: {e}"),
        }
    }
}

pub struct Session {
    pub c: Client,
    pub base: String,
    pub axe: String,
    pub shots: PathBuf,
}

impl Session {
    pub async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    /// [`Self::goto`] that says why the page did not load (with a page
    /// load timeout set, a load that hangs).
    pub async fn try_goto(&self, path: &str) -> Result<(), String> {
        self.c
            .goto(&format!("{}{path}", self.base))
            .await
            .map_err(|e| format!("loading {path}: {e}"))
    }

    pub async fn fill(&self, css: &str, text: &str) {
        for attempt in 1.. {
            let e = self.c.find(Locator::Css(css)).await.unwrap();
            let done = match e.clear().await {
                Ok(()) => e.send_keys(text).await,
                Err(err) => Err(err),
            };
            if Self::again(done, attempt).await {
                return;
            }
        }
    }

    pub async fn click(&self, css: &str) {
        for attempt in 1.. {
            let e = self.c.find(Locator::Css(css)).await.unwrap();
            if Self::again(e.click().await, attempt).await {
                return;
            }
        }
    }

    /// True when `result` succeeded. A live update may swap the region an
    /// element was found in between finding and using it (a stale element
    /// reference): then false, after a moment, so the caller finds it
    /// anew; five times at most. Any other error fails the test.
    async fn again<T>(result: Result<T, fantoccini::error::CmdError>, attempt: u32) -> bool {
        match result {
            Ok(_) => true,
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference
                    && attempt < 5 =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
                false
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// The page's visible text (read by script: no element handle to go
    /// stale when a live region is swapped or the page navigates).
    pub async fn body(&self) -> String {
        match self
            .c
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
        {
            Ok(Value::String(s)) => s,
            _ => String::new(),
        }
    }

    /// Waits until the page's text contains `needle` (live regions update
    /// without navigation).
    pub async fn wait_text(&self, needle: &str, within: Duration) {
        if let Err(text) = self.text_within(needle, within).await {
            panic!("timed out waiting for {needle:?}; page says:\n{text}");
        }
    }

    /// `Ok` once the page's text contains `needle`, or the last text read
    /// when `within` has passed first.
    pub async fn text_within(&self, needle: &str, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let text = self.body().await;
            if text.contains(needle) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(text);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn shot(&self, name: &str) {
        eprintln!("screenshot {name}");
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Runs axe-core on the page; fails on any serious or critical finding.
    pub async fn axe(&self, page: &str) {
        self.c.execute(&self.axe, vec![]).await.unwrap();
        let found = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then(r => done(
                   r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' @ ' +
                          v.nodes.map(n => n.target.join(' ')).join(', '))));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(found, json!([]), "axe on {page}");
    }

    /// Logs in and waits for the page it lands on: a navigation begun
    /// while the login is still being answered would race it (seen in CI:
    /// the next page's address opened before the answer, "Form expired").
    pub async fn login(&self, username: &str) {
        self.goto("/login").await;
        self.fill("#username", username).await;
        self.fill("#password", PASSWORD).await;
        self.click("button[type=submit]").await;
        self.wait_text("Log out", Duration::from_secs(10)).await;
    }

    /// Sends the order the form `form` holds: its button, then the review
    /// that every new order shows, confirmed with `reason`.
    pub async fn send_order(&self, form: &str, reason: &str) {
        self.click(&format!("{form} button")).await;
        self.wait_text("Check this order before it is sent", Duration::from_secs(5))
            .await;
        self.fill("#confirm-reason", reason).await;
        self.click("#confirm button").await;
    }

    /// Logs out with the header's button. A click that lands while the
    /// page is still settling (a live update under way) can be lost: the
    /// button is clicked again, three times at most, while it is there.
    pub async fn logout(&self) {
        let mut last = String::new();
        for _ in 0..3 {
            if self
                .c
                .find(Locator::Css("header form button"))
                .await
                .is_ok()
            {
                self.click("header form button").await;
            }
            match self.text_within("Log in", Duration::from_secs(5)).await {
                Ok(()) => return,
                Err(text) => last = text,
            }
        }
        panic!("logging out did not reach the login page; page says:\n{last}");
    }
}

/// `username`'s simulated pump `mac` on `server`, polling every 2 s
/// (at ten times real time), infusing until told to stop.
pub fn start_pump(
    server: &Served,
    username: &str,
    mac: &str,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<infusion_sim::Snapshot>,
) {
    let pump = SimPump::new(
        &format!("{username}-pump"),
        &server.base,
        Credentials::provisioned(
            username,
            PASSWORD,
            MacAddress::parse(mac).unwrap(),
            device_secret(mac),
            server.server_key,
        ),
        SimConfig {
            pump: PumpConfig {
                poll_interval_ms: 2_000,
                ..PumpConfig::default()
            },
            time_scale: 10,
            vitals_interval_ms: 30_000,
            ..SimConfig::default()
        },
    );
    let (stop_pump, pump_stopped) = tokio::sync::oneshot::channel::<()>();
    let pump_task = tokio::spawn(pump.run(async {
        let _ = pump_stopped.await;
    }));

    (stop_pump, pump_task)
}

/// dr.house and his patient alice (pump `mac`, within `limits`), running
/// 9 mL at 4 mL/h: where both browser tests start. Alice's patient id.
pub async fn seed_alice(
    store: &dyn Store,
    hash: &str,
    mac: &str,
    limits: PatientLimits,
) -> PatientId {
    seed_physician(store, "dr.house", hash).await;
    let alice = seed_patient(store, "alice", "Alice", "dr.house", hash, mac, limits).await;
    let order = NewPrescription {
        volume_ul: 9_000,
        rate_ul_h: 4_000,
        state: InfusionState::Run,
        drug: None,
    };
    store
        .set_prescription(alice, order, "test", 0)
        .await
        .unwrap();
    alice
}

/// The pump `mac` of patient `username` logs in to `server` and reports
/// `events` (answered 200): what a browser test shows arriving.
pub async fn pump_reports(
    server: &Served,
    store: &dyn Store,
    username: &str,
    mac: &str,
    events: Value,
) {
    let http = reqwest::Client::new();
    let body = infusion_testkit::login_body(&http, &server.base, username, PASSWORD, mac).await;
    let login: Value = http
        .post(format!("{}/api/v1/device/login", server.base))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let patient = infusion_testkit::patient_id(store, username).await;
    let status = http
        .post(format!("{}/api/v1/device/report", server.base))
        .bearer_auth(login["token"].as_str().unwrap())
        .json(&json!({"patient_id": patient.0, "events": events}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}
