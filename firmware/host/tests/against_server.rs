//! The firmware application, on the host board, against the real server:
//! `infusion serve` on SQLite, a pump provisioned with `infusion admin
//! bind-device` over its console. It logs in, infuses, follows a change,
//! rides out a server restart and a SIGKILL of itself (resuming from its
//! flash image file), and every event it reported is in the server's
//! record exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Firmware, accounts, cert, prescribe, provisioning, serve, steps_for_ul, stop};

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
    pump.wait("followed the change", Duration::from_secs(20), |p| {
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
    pump.wait("reported after the restart", Duration::from_secs(45), |p| {
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
        Duration::from_secs(30),
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
    pump.wait("completed", Duration::from_secs(90), |p| {
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
