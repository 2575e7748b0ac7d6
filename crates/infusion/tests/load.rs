//! `infusion bench load` as an operator runs it: a short paper-protocol
//! run and a small fleet, each against its own server process, and their
//! refusals. Benchmarks report figures; this checks only behaviour (every
//! kind of user did its work, nothing failed, the report files exist).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{command, json_stdout, refused};
use serde_json::Value;

/// Runs `bench load` with `--json`; returns one row per measurement.
fn rows(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["bench", "load"];
    all.extend_from_slice(args);
    json_stdout(&all)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_paper_protocol_drives_pumps_and_physicians_without_errors() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let rows = rows(&[
        "--mode",
        "paper",
        "--users",
        "10",
        "--duration",
        "7s",
        "--baseline",
        "1s",
        "--out",
        dir,
    ]);
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r["pumps"].as_u64(), r["physicians"].as_u64()),
        (Some(9), Some(1))
    );
    let w = &r["workload"];
    assert_eq!(w["errors"], 0, "{r}");
    // Every pump logged in, polled and (at its fifth request) reported;
    // the physician logged in to the web application and read the
    // dashboard.
    for kind in ["login", "index", "report", "web_login", "dashboard"] {
        assert!(
            w["by_kind"][kind]["count"].as_u64().unwrap_or(0) >= 1,
            "{kind}: {r}"
        );
    }
    assert!(w["by_kind"]["login"]["count"].as_u64().unwrap() >= 9, "{r}");
    // About one request per user per second, never far more.
    assert!(w["requests"].as_u64().unwrap() <= 10 * 9, "{r}");
    assert_eq!(r["baseline"]["errors"], 0);
    assert!(
        r["baseline"]["by_kind"]["health"]["count"]
            .as_u64()
            .unwrap()
            >= 10,
        "{r}"
    );
    assert!(r["server"]["rss_mb_peak"].as_f64().unwrap() > 0.0, "{r}");
    for f in ["results.json", "throughput.svg", "response-time.svg"] {
        assert!(out.path().join(f).exists(), "{f}");
    }
}

#[test]
fn a_small_fleet_polls_on_schedule_and_reports() {
    let out = tempfile::tempdir().unwrap();
    let rows = rows(&[
        "--mode",
        "fleet",
        "--pumps",
        "40",
        "--poll-interval",
        "1s",
        "--duration",
        "5s",
        "--baseline",
        "1s",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let w = &rows[0]["workload"];
    assert_eq!(w["errors"], 0, "{w}");
    // Five ticks each, on schedule: a login, then four polls.
    assert_eq!(w["requests"].as_u64(), Some(40 * 5), "{w}");
    assert_eq!(w["by_kind"]["login"]["count"].as_u64(), Some(40), "{w}");
    assert_eq!(w["by_kind"]["index"]["count"].as_u64(), Some(160), "{w}");
}

#[test]
fn bad_arguments_are_refused() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    for args in [
        vec!["bench", "load", "--users", "0", "--out", dir],
        vec![
            "bench",
            "load",
            "--mode",
            "fleet",
            "--poll-interval",
            "0s",
            "--out",
            dir,
        ],
        vec!["bench", "load", "--duration", "soon", "--out", dir],
        vec![
            "bench",
            "load",
            "--backend",
            "postgres",
            "--users",
            "2",
            "--duration",
            "1s",
            "--out",
            dir,
        ],
    ] {
        let mut c = command(&args);
        c.env_remove("INFUSION_BENCH_POSTGRES_URL");
        refused(c);
    }
}
