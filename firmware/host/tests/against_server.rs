//! The firmware application, on the host board, against the real server:
//! `infusion serve` on SQLite, a pump provisioned with `infusion admin
//! bind-device` over its console. It logs in, infuses, follows a change,
//! rides out a server restart and a SIGKILL of itself (resuming from its
//! flash image file), and every event it reported is in the server's
//! record exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAC: &str = "02:00:00:00:00:c3";
const PASSWORD: &str = "Pump-Patient-Pass-42";
/// The paper's drive: microsteps per mL (1/16 microsteps, P8 lead screw,
/// the paper's syringe), from `DosePlan::PAPER`.
fn steps_for_ul(ul: u32) -> u64 {
    infusion_pump_core::DosePlan::PAPER.steps_for_ul(ul)
}

/// The `infusion` binary of this workspace (built first if this test runs
/// alone).
fn infusion() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("infusion");
    if !bin.exists() {
        let ok = Command::new(env!("CARGO"))
            .args(["build", "-p", "infusion"])
            .status()
            .unwrap();
        assert!(ok.success(), "cargo build -p infusion");
    }
    bin
}

fn admin(db: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut c = Command::new(infusion());
    c.arg("admin").arg("--database-url").arg(db).args(args);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The physician's order for alice: `volume_ul` at `rate_ul_h`, running
/// (with the reason a large rate change asks for).
fn prescribe(db: &str, volume_ul: u32, rate_ul_h: u32, reason: Option<&str>) {
    let (volume, rate) = (volume_ul.to_string(), rate_ul_h.to_string());
    let mut args = vec![
        "set-prescription",
        "--patient",
        "alice",
        "--volume-ul",
        &volume,
        "--rate-ul-h",
        &rate,
    ];
    if let Some(why) = reason {
        args.extend(["--reason", why]);
    }
    admin(db, &args, None);
}

/// `infusion serve` on `bind` (with `extra` arguments); returns the
/// process and its address.
fn serve(db: &str, bind: &str, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(infusion())
        .args(["serve", "--bind", bind, "--database-url", db])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    (child, url)
}

/// The host firmware as a process, its console lines collected.
struct Firmware {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Firmware {
    fn start(flash: &Path, provisioning: Option<String>) -> Firmware {
        let mut child = Command::new(env!("CARGO_BIN_EXE_infusion-pump-host"))
            .arg("--flash")
            .arg(flash)
            .args(["--mac", MAC])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(p) = provisioning {
            stdin.write_all(p.as_bytes()).unwrap();
        }
        // Kept open: a console that closes is a console unplugged.
        std::mem::forget(stdin);
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Firmware { child, lines }
    }

    /// The newest status line's `name=` value.
    fn status(&self, name: &str) -> Option<String> {
        let lines = self.lines.lock().unwrap();
        let line = lines.iter().rev().find(|l| l.starts_with("status "))?;
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    }

    fn number(&self, name: &str) -> u64 {
        self.status(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    fn wait(&self, what: &str, limit: Duration, ok: impl Fn(&Firmware) -> bool) {
        let until = Instant::now() + limit;
        while !ok(self) {
            assert!(
                Instant::now() < until,
                "the pump never {what}; console:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Firmware {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stop(mut server: Child) {
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
}

/// A physician, patient `alice` with limits, and her pump bound: what
/// `bind-device` printed (`device_secret`, `server_key`).
fn accounts(db: &str) -> serde_json::Value {
    admin(
        db,
        &[
            "create-physician",
            "--username",
            "doc",
            "--first-name",
            "Dana",
            "--last-name",
            "Doc",
            "--institution",
            "St Test",
            "--password-stdin",
        ],
        Some("Correct-Horse-Battery-9\n"),
    );
    admin(
        db,
        &[
            "create-patient",
            "--username",
            "alice",
            "--first-name",
            "Alice",
            "--last-name",
            "Pump",
            "--physician",
            "doc",
            "--record-number",
            "MRN-1",
            "--birth-date",
            "1950-01-02",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    admin(
        db,
        &[
            "set-limits",
            "--patient",
            "alice",
            "--min-rate-ul-h",
            "1000",
            "--max-rate-ul-h",
            "200000",
            "--max-volume-ul",
            "10000",
        ],
        None,
    );
    serde_json::from_str(&admin(
        db,
        &["--json", "bind-device", "--patient", "alice", "--mac", MAC],
        None,
    ))
    .unwrap()
}

/// The console lines that provision the pump for `server`, its index
/// key and secret from `bound`, and `extra` lines (an authority).
fn provisioning(server: &str, bound: &serde_json::Value, extra: &str) -> String {
    format!(
        "wifi-ssid=host\nwifi-password=unused\nserver={server}\nusername=alice\npassword={PASSWORD}\n\
         device-secret={}\nserver-key={}\npoll-interval-ms=1000\n{extra}save\n",
        bound["device_secret"].as_str().unwrap(),
        bound["server_key"].as_str().unwrap(),
    )
}

/// One of the test certificates of `crates/testkit/certs`.
fn cert(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/testkit/certs")
        .join(name)
}

#[test]
fn the_host_firmware_infuses_against_the_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("server.db");
    let db = format!("sqlite://{}", db_path.display());
    let flash = dir.path().join("pump.img");
    let bound = accounts(&db);
    // 1.5 mL at 90 mL/h: a minute of infusion, then faster.
    prescribe(&db, 1500, 90000, None);
    let (server, base) = serve(&db, "127.0.0.1:0", &[]);
    let pump = Firmware::start(&flash, Some(provisioning(&base, &bound, "")));
    pump.wait("started", Duration::from_secs(20), |p| {
        p.status("phase").as_deref() == Some("running")
    });

    // The physician doubles the rate: the pump follows within a poll.
    prescribe(&db, 1500, 180000, Some("end of the test sooner"));
    pump.wait("followed the change", Duration::from_secs(10), |p| {
        p.number("version") == 2 && p.number("rate_ul_h") == 180_000
    });

    // The server restarts on its address; the pump goes on infusing.
    stop(server);
    let before = pump.number("delivered_steps");
    std::thread::sleep(Duration::from_secs(3));
    let (server, _) = serve(&db, base.trim_start_matches("http://"), &[]);
    assert!(
        pump.number("delivered_steps") > before,
        "it infused with the server down"
    );
    pump.wait("reported after the restart", Duration::from_secs(15), |p| {
        p.number("failures") == 0
            && p.number("unacked") == 0
            && p.status("logged_in").as_deref() == Some("1")
    });

    // SIGKILL, half way: what it had pulsed is all that moved.
    let pulsed_first = pump.number("pulsed");
    pump.kill();
    let pump = Firmware::start(&flash, None);
    pump.wait(
        "came back stopped by its restart",
        Duration::from_secs(10),
        |p| {
            p.status("alarm").as_deref() == Some("restarted")
                && p.status("logged_in").as_deref() == Some("1")
        },
    );
    assert_eq!(
        pump.number("pulsed"),
        0,
        "a restarted pump does not run on its own"
    );
    let resumed_from = pump.number("delivered_steps");
    assert!(
        resumed_from >= pulsed_first,
        "the flash never says less than was given"
    );

    // The physician resumes the order: the pump gives what is left.
    prescribe(&db, 1500, 180000, None);
    pump.wait("completed", Duration::from_secs(60), |p| {
        p.status("phase").as_deref() == Some("completed") && p.number("unacked") == 0
    });
    let pulsed_second = pump.number("pulsed");
    let total = pulsed_first + pulsed_second;
    let prescribed = steps_for_ul(1500);
    // The most a kill may take off (the flash's reserve ahead of the
    // motor), and what the last status line before the kill missed (it
    // is printed every second: 50 µL at 180 mL/h).
    let ahead = steps_for_ul(infusion_firmware_app::keep::AHEAD_UL + 50);
    eprintln!(
        "delivered: {total} of {prescribed} microsteps ({:.1} of 1500 µL); first run {pulsed_first}, \
         after the kill {pulsed_second}, resumed from {resumed_from}",
        total as f64 * 1500.0 / prescribed as f64
    );
    assert!(total <= prescribed, "never more than the order");
    assert!(
        total + ahead >= prescribed,
        "no less than the order minus what a kill may take"
    );
    stop(server);

    // The server's record: every event once, numbered without a repeat,
    // and the order reported complete at its volume.
    let conn = rusqlite::Connection::open(&db_path).unwrap();
    let mut seqs: Vec<i64> = conn
        .prepare("SELECT seq FROM events ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let n = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "an event stored twice");
    let restarted: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE alarm = 'restarted'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(restarted, 1, "the restart reported once");
    let (state, delivered): (String, i64) = conn
        .query_row(
            "SELECT (SELECT state FROM events WHERE kind = 'state' ORDER BY seq DESC LIMIT 1), \
                    (SELECT delivered_ul FROM events WHERE kind = 'progress' ORDER BY seq DESC LIMIT 1)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(state, "completed");
    assert!(
        (1499..=1500).contains(&delivered),
        "reported {delivered} µL"
    );
}

#[test]
fn over_https_the_pump_trusts_only_the_authority_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("server.db").display());
    let bound = accounts(&db);
    prescribe(&db, 500, 60000, None);
    let (server, base) = serve(
        &db,
        "127.0.0.1:0",
        &[
            "--tls-cert",
            cert("server.pem").to_str().unwrap(),
            "--tls-key",
            cert("server.key").to_str().unwrap(),
        ],
    );
    // The certificate names `localhost`: the pump checks the name too.
    let port = base.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}");
    let pem = |name: &str| std::fs::read_to_string(cert(name)).unwrap();

    // Given another authority, it never logs in.
    let stranger = Firmware::start(
        &dir.path().join("stranger.img"),
        Some(provisioning(&url, &bound, &pem("other-ca.pem"))),
    );
    stranger.wait("failed its handshakes", Duration::from_secs(20), |p| {
        p.number("failures") >= 2
    });
    assert_eq!(stranger.status("logged_in").as_deref(), Some("0"));
    stranger.kill();

    // Given the server's, it logs in and infuses over TLS.
    let pump = Firmware::start(
        &dir.path().join("pump.img"),
        Some(provisioning(&url, &bound, &pem("ca.pem"))),
    );
    pump.wait("started over TLS", Duration::from_secs(20), |p| {
        p.status("phase").as_deref() == Some("running") && p.number("unacked") == 0
    });
    pump.kill();
    stop(server);
}
