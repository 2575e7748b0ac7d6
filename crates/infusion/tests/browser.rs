//! The web application in a real headless Chromium, driven over WebDriver
//! (chromedriver), with a simulated pump infusing on the same server:
//!
//! a physician logs in, changes limits, changes the prescription and sees
//! the running pump switch to the new rate (live, without reloading),
//! approves a suggestion, acknowledges an alarm; the pages work at a
//! phone's width; a patient logs in and cannot reach another patient's
//! page; an administrator reaches the accounts page. axe-core runs on
//! every page and must report no serious or critical violation.
//! Screenshots go to `target/browser-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (Debian's `chromium` and
//! `chromium-driver`) and axe-core from npm (`npm ci --prefix
//! tests/browser`); `.ci/run` installs them and sets
//! `INFUSION_TEST_REQUIRE_BROWSER=1`, without which a machine lacking them
//! skips this test with one line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use infusion_protocol::{InfusionState, MacAddress, PatientId, PatientLimits};
use infusion_pump_core::PumpConfig;
use infusion_server::password::PasswordParams;
use infusion_sim::{Credentials, SimConfig, SimPump};
use infusion_store::{NewPhysician, NewPrescription, NewSuggestion, Store};
use infusion_testkit::{
    Backend, Served, TestDb, device_secret, patient_id, seed_patient, seed_physician, serve,
    test_config,
};
use serde_json::{Value, json};

const PASSWORD: &str = "browser test password";
const MAC_A: &str = "02:00:00:00:0A:01";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What the test needs from the machine, or why it cannot run.
fn tools() -> Result<(PathBuf, String), String> {
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

/// chromedriver on a free port, killed on drop.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_browser(driver: &PathBuf) -> (Driver, Client) {
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
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("INFUSION_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]
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

struct Session {
    c: Client,
    base: String,
    axe: String,
    shots: PathBuf,
}

impl Session {
    async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn fill(&self, css: &str, text: &str) {
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

    async fn click(&self, css: &str) {
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
    async fn body(&self) -> String {
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
    async fn wait_text(&self, needle: &str, within: Duration) {
        if let Err(text) = self.text_within(needle, within).await {
            panic!("timed out waiting for {needle:?}; page says:\n{text}");
        }
    }

    /// `Ok` once the page's text contains `needle`, or the last text read
    /// when `within` has passed first.
    async fn text_within(&self, needle: &str, within: Duration) -> Result<(), String> {
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

    async fn shot(&self, name: &str) {
        eprintln!("screenshot {name}");
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Runs axe-core on the page; fails on any serious or critical finding.
    async fn axe(&self, page: &str) {
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

    async fn login(&self, username: &str) {
        self.goto("/login").await;
        self.fill("#username", username).await;
        self.fill("#password", PASSWORD).await;
        self.click("button[type=submit]").await;
    }

    /// Logs out with the header's button. A click that lands while the
    /// page is still settling (a live update under way) can be lost: the
    /// button is clicked again, three times at most, while it is there.
    async fn logout(&self) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinicians_and_patients_in_a_real_browser() {
    let (driver_path, axe) = match tools() {
        Ok(t) => t,
        Err(why) => {
            if std::env::var("INFUSION_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
                panic!("INFUSION_TEST_REQUIRE_BROWSER=1 but {why}");
            }
            eprintln!("skipping the browser test: {why}");
            return;
        }
    };
    let db = TestDb::open(Backend::Sqlite).await;
    let store = db.store.clone();
    let alice = seed(&*store).await;
    let server = serve(store.clone(), test_config(Duration::from_secs(300))).await;
    let (stop_pump, pump_task) = start_pump(&server);
    let shots = repo().join("target/browser-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let (_driver, client) = start_browser(&driver_path).await;
    let s = Session {
        c: client,
        base: server.base.clone(),
        axe,
        shots,
    };

    physician(&s, &*store, alice).await;
    alarm(&s, &*store, &server, alice).await;
    phone_patient_and_admin(&s).await;
    let _ = s.c.close().await;
    let _ = stop_pump.send(());
    pump_task.await.unwrap();
}

/// The physicians, patients and administrator of the browser test, and
/// alice's first prescription; alice's patient id.
async fn seed(store: &dyn Store) -> PatientId {
    let hash = PasswordParams::INSECURE_FAST
        .hash_blocking(PASSWORD)
        .unwrap();
    seed_physician(store, "dr.house", &hash).await;
    seed_physician(store, "dr.other", &hash).await;
    let limits = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 10_000,
        max_volume_ul: 10_000,
    };
    let alice = seed_patient(store, "alice", "Alice", "dr.house", &hash, MAC_A, limits).await;
    seed_patient(
        store,
        "bob",
        "Bob",
        "dr.other",
        &hash,
        "02:00:00:00:0B:01",
        limits,
    )
    .await;
    store
        .create_admin(
            NewPhysician {
                username: "root".into(),
                first_name: "Ada".into(),
                last_name: "Admin".into(),
                institution: "Test Clinic".into(),
                password_hash: hash.clone(),
                must_change_password: false,
            },
            "test",
            0,
        )
        .await
        .unwrap();
    store
        .set_prescription(
            patient_id(store, "alice").await,
            NewPrescription {
                volume_ul: 9_000,
                rate_ul_h: 4_000,
                state: InfusionState::Run,
            },
            "test",
            0,
        )
        .await
        .unwrap();
    alice
}

/// Alice's simulated pump, infusing until told to stop.
fn start_pump(
    server: &Served,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<infusion_sim::Snapshot>,
) {
    let pump = SimPump::new(
        "alice-pump",
        &server.base,
        Credentials::provisioned(
            "alice",
            PASSWORD,
            MacAddress::parse(MAC_A).unwrap(),
            device_secret(MAC_A),
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

/// The physician: dashboard, limits, a new rate seen live, a suggestion
/// approved.
async fn physician(s: &Session, store: &dyn Store, alice: PatientId) {
    // The physician.
    s.goto("/login").await;
    s.axe("login").await;
    s.shot("01-login").await;
    s.login("dr.house").await;
    s.wait_text("My patients", Duration::from_secs(5)).await;
    s.wait_text("4 mL/h", Duration::from_secs(10)).await;
    s.axe("dashboard").await;
    s.shot("02-dashboard").await;

    s.goto("/patients/alice").await;
    s.wait_text("Pump state: started", Duration::from_secs(10))
        .await;
    s.axe("patient page").await;
    s.shot("03-patient").await;

    s.fill("#max_rate", "12").await;
    s.click("form[action$='/limits'] button").await;
    s.wait_text("Limits saved.", Duration::from_secs(5)).await;
    s.wait_text("rate 1 to 12 mL/h", Duration::from_secs(5))
        .await;

    s.fill("#rate", "8").await;
    s.click("form[action$='/prescription'] button").await;
    s.wait_text("Saved as version 2", Duration::from_secs(5))
        .await;
    // The pump fetches version 2 at its next poll and reports the new rate;
    // the page's live regions show it without a reload.
    s.wait_text("Rate: 8 mL/h", Duration::from_secs(20)).await;
    s.wait_text("running on the pump", Duration::from_secs(10))
        .await;
    s.shot("04-new-rate-live").await;

    // A suggestion appears live and is approved.
    store
        .suggest(
            alice,
            NewSuggestion {
                based_on_version: 2,
                volume_ul: 9_000,
                rate_ul_h: 8_800,
                reason: "browser test: mean tremor score 70".into(),
            },
            infusion_server::clock::now_ms(),
        )
        .await
        .unwrap();
    s.wait_text("Approve suggestion", Duration::from_secs(10))
        .await;
    s.axe("patient page with a suggestion").await;
    s.shot("05-suggestion").await;
    s.click("form[action$='/approve'] button").await;
    s.wait_text("Suggestion approved as version 3", Duration::from_secs(5))
        .await;
    assert_eq!(
        store
            .patient(patient_id(store, "alice").await)
            .await
            .unwrap()
            .prescription
            .unwrap()
            .rate_ul_h,
        8_800
    );
}

/// A device alarm reaches the dashboard live and is acknowledged.
async fn alarm(s: &Session, store: &dyn Store, server: &Served, alice: PatientId) {
    s.goto("/dashboard").await;
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{}/api/v1/device/login", server.base))
        .json(&infusion_testkit::login_body(&http, &server.base, "alice", PASSWORD, MAC_A).await)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status = http
        .post(format!("{}/api/v1/device/report", server.base))
        .bearer_auth(login["token"].as_str().unwrap())
        .json(&json!({"patient_id": alice.0, "events": [
            {"seq": 1_000_000, "uptime_ms": 1, "kind": "alarm", "alarm": "occlusion"}]}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    s.wait_text("occlusion", Duration::from_secs(3)).await;
    s.axe("dashboard with an alarm").await;
    s.shot("06-dashboard-alarm").await;
    s.goto("/patients/alice").await;
    s.click("form[action$='/ack'] button").await;
    s.wait_text("Alarm acknowledged.", Duration::from_secs(5))
        .await;
    assert!(store.open_alarms(alice).await.unwrap().is_empty());
}

/// The pages at a phone's width, then the patient's and the
/// administrator's views.
async fn phone_patient_and_admin(s: &Session) {
    // A phone's width.
    s.c.set_window_size(390, 844).await.unwrap();
    s.goto("/dashboard").await;
    s.axe("dashboard, phone").await;
    s.shot("07-phone-dashboard").await;
    s.goto("/patients/alice").await;
    s.axe("patient page, phone").await;
    s.shot("08-phone-patient").await;
    s.c.set_window_size(1280, 900).await.unwrap();
    s.logout().await;

    // The patient: own record only.
    s.login("alice").await;
    s.wait_text("Alice Patient", Duration::from_secs(5)).await;
    s.axe("patient's own page").await;
    s.shot("09-patient-own").await;
    s.goto("/patients/bob").await;
    s.wait_text("no such patient in your care", Duration::from_secs(5))
        .await;
    assert!(!s.body().await.contains("Bob"));
    s.axe("refusal page").await;
    s.shot("10-patient-refused").await;
    s.goto("/").await;
    s.logout().await;

    // The administrator.
    s.login("root").await;
    s.wait_text("Accounts and devices", Duration::from_secs(5))
        .await;
    s.axe("admin").await;
    s.shot("11-admin").await;
}
