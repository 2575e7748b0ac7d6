//! The host firmware and `infusion serve` as processes, for the tests:
//! the accounts a pump logs in with, its provisioning, its console lines.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test file uses a part

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const MAC: &str = "02:00:00:00:00:c3";
pub const PASSWORD: &str = "Pump-Patient-Pass-42";
/// The paper's drive: microsteps per mL (1/16 microsteps, P8 lead screw,
/// the paper's syringe), from `DosePlan::PAPER`.
pub fn steps_for_ul(ul: u32) -> u64 {
    infusion_pump_core::DosePlan::PAPER.steps_for_ul(ul)
}

/// The `infusion` binary of this workspace (built first if this test runs
/// alone).
pub fn infusion() -> PathBuf {
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

pub fn admin(db: &str, args: &[&str], stdin: Option<&str>) -> String {
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
pub fn prescribe(db: &str, volume_ul: u32, rate_ul_h: u32, reason: Option<&str>) {
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
pub fn serve(db: &str, bind: &str, extra: &[&str]) -> (Child, String) {
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
pub struct Firmware {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Firmware {
    pub fn start(flash: &Path, provisioning: Option<String>) -> Firmware {
        Self::start_with(flash, provisioning, &[])
    }

    /// [`Firmware::start`] with more arguments (a bench file).
    pub fn start_with(flash: &Path, provisioning: Option<String>, extra: &[&str]) -> Firmware {
        let mut child = Command::new(env!("CARGO_BIN_EXE_infusion-pump-host"))
            .arg("--flash")
            .arg(flash)
            .args(["--mac", MAC])
            .args(extra)
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
    pub fn status(&self, name: &str) -> Option<String> {
        let lines = self.lines.lock().unwrap();
        let line = lines.iter().rev().find(|l| l.starts_with("status "))?;
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    }

    pub fn number(&self, name: &str) -> u64 {
        self.status(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    pub fn wait(&self, what: &str, limit: Duration, ok: impl Fn(&Firmware) -> bool) {
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

    /// How the process ended, if it did within `limit`.
    pub fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn kill(mut self) {
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

pub fn stop(mut server: Child) {
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
}

/// A physician, patient `alice` with limits, and her pump bound: what
/// `bind-device` printed (`device_secret`, `server_key`).
pub fn accounts(db: &str) -> serde_json::Value {
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
pub fn provisioning(server: &str, bound: &serde_json::Value, extra: &str) -> String {
    format!(
        "wifi-ssid=host\nwifi-password=unused\nserver={server}\nusername=alice\npassword={PASSWORD}\n\
         device-secret={}\nserver-key={}\npoll-interval-ms=1000\n{extra}save\n",
        bound["device_secret"].as_str().unwrap(),
        bound["server_key"].as_str().unwrap(),
    )
}

/// The alarms the server stored for the pump, oldest first.
pub fn stored_alarms(db_path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db_path).unwrap();
    let mut stmt = conn
        .prepare("SELECT alarm FROM events WHERE kind = 'alarm' ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// One of the test certificates of `crates/testkit/certs`.
pub fn cert(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/testkit/certs")
        .join(name)
}
