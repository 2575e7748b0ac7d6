//! The watchdog is fed only by the control loop: a pump whose loops stop
//! running (here a task that never yields, as a hung driver would) is
//! reset, and one whose loops run is not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Firmware;

/// Provisioned for a server no one answers on (port 9): the network loop
/// backs off, the control loop runs and feeds the watchdog.
const PROVISIONING: &str = "wifi-ssid=host\nserver=http://127.0.0.1:9\nusername=alice\n\
    password=pw\ndevice-secret=a16085f3cc0b4a911339b597b290f46aea8f5aba4e79feff74d5443965fc6dc2\n\
    server-key=514781276682c3dfacf228492e888fb0c000d4080db59b98cac68a618c8c6dbb\nsave\n";

fn pump(dir: &tempfile::TempDir, extra: &[&str]) -> Firmware {
    Firmware::start_with(
        &dir.path().join("pump.img"),
        Some(PROVISIONING.into()),
        extra,
    )
}

#[test]
fn a_pump_whose_loops_hang_is_reset_and_one_that_runs_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = pump(&dir, &[]);
    assert_eq!(
        running.exit_within(Duration::from_secs(5)),
        None,
        "a running pump is left alone"
    );
    running.kill();
    let dir = tempfile::tempdir().unwrap();
    let mut hung = pump(&dir, &["--hang-after-ms", "1000"]);
    let status = hung
        .exit_within(Duration::from_secs(15))
        .expect("the watchdog ends a hung pump");
    // Fed last before the hang; 2 s later the watchdog resets it.
    assert_eq!(status.code(), Some(3), "the watchdog's reset");
}
