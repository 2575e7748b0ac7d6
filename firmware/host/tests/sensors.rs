//! The sensors task on the host board against the real server: what the
//! bench's inputs say stops the motor, raises its alarm and reaches the
//! server's record, and the bedside's confirm button ends a stop whose
//! cause is gone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Firmware, accounts, prescribe, provisioning, serve, stop, stored_alarms};

#[test]
fn the_pumps_sensors_stop_it_and_their_alarms_reach_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("server.db");
    let db = format!("sqlite://{}", db_path.display());
    let bound = accounts(&db);
    prescribe(&db, 5_000, 36_000, None);
    let (server, base) = serve(&db, "127.0.0.1:0", &[]);
    let bench = dir.path().join("bench");
    // Written whole and renamed into place: the pump never reads half a
    // bench (a torn read would look like a sensor clearing and setting).
    let set = |text: &str| {
        let next = dir.path().join("bench.next");
        std::fs::write(&next, text).unwrap();
        std::fs::rename(&next, &bench).unwrap();
    };
    set("");
    let pump = Firmware::start_with(
        &dir.path().join("pump.img"),
        Some(provisioning(&base, &bound, "")),
        &["--bench", bench.to_str().unwrap()],
    );
    let running = |p: &Firmware| p.status("phase").as_deref() == Some("running");
    pump.wait("started", Duration::from_secs(20), running);

    // The line blocks: the motor stops at once and the server is told.
    set("stalled=1\n");
    pump.wait("stopped for the occlusion", Duration::from_secs(15), |p| {
        p.status("alarm").as_deref() == Some("occlusion")
    });
    let stopped_at = pump.number("pulsed");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pump.number("pulsed"), stopped_at, "no step while occluded");
    // Confirming while the line is still blocked changes nothing.
    set("stalled=1\nconfirm=1\n");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pump.status("alarm").as_deref(), Some("occlusion"));
    // Cleared, then confirmed at the bedside: it runs again.
    set("stalled=0\nconfirm=1\n");
    std::thread::sleep(Duration::from_millis(300));
    set("stalled=0\nconfirm=2\n");
    pump.wait(
        "resumed after the confirm",
        Duration::from_secs(15),
        running,
    );

    // A low battery warns and lets the infusion go on.
    set("confirm=2\nbattery_mv=3300\n");
    pump.wait("reported the battery", Duration::from_secs(30), |p| {
        p.number("unacked") == 0 && stored_alarms(&db_path).contains(&"battery_low".to_owned())
    });
    assert!(running(&pump), "a low battery does not stop the pump");

    // The driver faults (nFAULT low): the motor stops.
    set("confirm=2\nbattery_mv=3300\ndriver_fault=1\n");
    pump.wait("stopped for the driver", Duration::from_secs(15), |p| {
        p.status("alarm").as_deref() == Some("motor_fault")
    });
    pump.wait("reported everything", Duration::from_secs(30), |p| {
        p.number("unacked") == 0
    });
    let alarms = stored_alarms(&db_path);
    for alarm in ["occlusion", "battery_low", "motor_fault"] {
        assert_eq!(
            alarms.iter().filter(|a| *a == alarm).count(),
            1,
            "{alarm} stored once in {alarms:?}"
        );
    }
    pump.kill();
    stop(server);
}
