//! The watchdog is fed only by the control loop: a pump whose loops stop
//! running (here a task that never yields, as a hung driver would) is
//! reset, and one whose loops run is not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const PROVISIONING: &str = "wifi-ssid=host\nserver=http://127.0.0.1:9\nusername=alice\n\
    password=pw\ndevice-secret=a16085f3cc0b4a911339b597b290f46aea8f5aba4e79feff74d5443965fc6dc2\n\
    server-key=514781276682c3dfacf228492e888fb0c000d4080db59b98cac68a618c8c6dbb\nsave\n";

/// Runs the provisioned host firmware with `extra` arguments for at most
/// `limit`; its exit status if it ended, `None` if it ran on.
fn run_for(extra: &[&str], limit: Duration) -> Option<ExitStatus> {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_infusion-pump-host"))
        .arg("--flash")
        .arg(dir.path().join("pump.img"))
        .args(["--mac", "02:00:00:00:00:d0"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(PROVISIONING.as_bytes()).unwrap();
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(stdin);
    None
}

#[test]
fn a_pump_whose_loops_hang_is_reset_and_one_that_runs_is_not() {
    // No server answers on port 9: the network loop backs off, the
    // control loop runs and feeds the watchdog.
    assert_eq!(
        run_for(&[], Duration::from_secs(5)),
        None,
        "a running pump is left alone"
    );
    let status = run_for(&["--hang-after-ms", "1000"], Duration::from_secs(15))
        .expect("the watchdog ends a hung pump");
    // Fed last before the hang; 2 s later the watchdog resets it.
    assert_eq!(status.code(), Some(3), "the watchdog's reset");
}
