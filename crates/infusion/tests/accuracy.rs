//! `infusion bench accuracy` and `infusion accuracy analyze` as a bench
//! engineer would use them: the simulated bench end to end against a real
//! server, its logs analysed again from the files, a hand-made log whose
//! answer is worked out by hand, and refusals of bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{command, json_stdout, refused};
use serde_json::Value;

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&json_stdout(args)).unwrap()
}

/// `accuracy analyze` of `log` set to `volume` mL at 4 mL/h, expected to
/// be refused; returns the message.
fn analyze_refused(log: &Path, volume: &str) -> String {
    refused(command(&[
        "accuracy",
        "analyze",
        "--log",
        log.to_str().unwrap(),
        "--volume-ml",
        volume,
        "--rate-ml-h",
        "4",
    ]))
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-6)
}

#[test]
fn the_bench_runs_the_pump_end_to_end_and_its_logs_analyse_the_same() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    // Two short settings, two runs each, on the default physics.
    let summary = json(&[
        "bench",
        "accuracy",
        "--runs",
        "2",
        "--settings",
        "0.3@6,0.5@10",
        "--out",
        dir,
    ]);
    let settings = summary["settings"].as_array().unwrap();
    assert_eq!(settings.len(), 2);
    for s in settings {
        let runs = s["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2);
        for r in runs {
            // The pump's software delivered exactly its planned steps; the
            // physics (bore, compliance, drops, scale) keeps the weighed
            // volume within a few percent.
            assert_eq!(r["motor_steps"], r["planned_steps"], "{r}");
            assert!(r["volume_error_pct"].as_f64().unwrap().abs() < 15.0, "{r}");
            assert!(r["drops"].as_u64().unwrap() > 5, "{r}");
            // Login, polls and reports went over HTTP to the server.
            assert!(r["requests_ok"].as_u64().unwrap() > 3, "{r}");
        }
        for f in s["figures"].as_array().unwrap() {
            let svg = std::fs::read_to_string(out.path().join(f.as_str().unwrap())).unwrap();
            assert!(svg.starts_with("<svg"), "{f}");
        }
    }
    // The log of a run, analysed from its file, gives the bench's figures.
    let first = &settings[0]["runs"][0];
    let log = out.path().join("logs").join("0_3ml-6mlh-run1.csv");
    assert!(Path::new(&log).exists());
    let again = json(&[
        "accuracy",
        "analyze",
        "--log",
        log.to_str().unwrap(),
        "--volume-ml",
        "0.3",
        "--rate-ml-h",
        "6",
    ]);
    for key in [
        "infused_ml",
        "volume_error_pct",
        "mean_rate_ml_h",
        "rate_error_pct",
    ] {
        assert!(
            close(&again[key], first[key].as_f64().unwrap()),
            "{key}: {} vs {}",
            again[key],
            first[key]
        );
    }
    // The same seed gives the same runs.
    let out2 = tempfile::tempdir().unwrap();
    let again = json(&[
        "bench",
        "accuracy",
        "--runs",
        "2",
        "--settings",
        "0.3@6,0.5@10",
        "--out",
        out2.path().to_str().unwrap(),
    ]);
    assert_eq!(again["settings"][0]["runs"], summary["settings"][0]["runs"]);
}

#[test]
fn analyze_answers_a_hand_worked_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("scale.csv");
    // 0.3 mL at 6 mL/h, water at 1 g/mL, read every 30 s; the mass stops
    // rising at 180 s.
    std::fs::write(
        &log,
        "time_s,mass_g\n0,0\n30,0.05\n60,0.10\n90,0.16\n120,0.20\n150,0.25\n180,0.29\n210,0.29\n",
    )
    .unwrap();
    let plots = dir.path().join("plots");
    let a = json(&[
        "accuracy",
        "analyze",
        "--log",
        log.to_str().unwrap(),
        "--volume-ml",
        "0.3",
        "--rate-ml-h",
        "6",
        "--density-g-ml",
        "1",
        "--plots",
        plots.to_str().unwrap(),
    ]);
    // 0.29 mL infused: 0.01 mL short of 0.3 is −3.33 %; over 180 s that is
    // 5.8 mL/h, also −3.33 %.
    assert!(close(&a["infused_ml"], 0.29), "{a}");
    assert!(close(&a["volume_error_pct"], -10.0 / 3.0), "{a}");
    assert!(close(&a["duration_s"], 180.0), "{a}");
    assert!(close(&a["mean_rate_ml_h"], 5.8), "{a}");
    assert!(close(&a["rate_error_pct"], -10.0 / 3.0), "{a}");
    // IEC: flows 6.0 6.0 7.2 4.8 6.0 4.8 mL/h (deviations 0 0 +20 −20 0
    // −20 %); the 2 min window (4 intervals) means 0, 0 and −5 %; longer
    // windows do not fit in three minutes.
    assert!(close(&a["iec_overall_error_pct"], -10.0 / 3.0), "{a}");
    assert!(close(&a["trumpet"][0]["max_pct"], 0.0), "{a}");
    assert!(close(&a["trumpet"][0]["min_pct"], -5.0), "{a}");
    assert!(a["trumpet"][1]["max_pct"].is_null(), "{a}");
    assert_eq!(a["figures"].as_array().unwrap().len(), 4);
    assert!(plots.join("trumpet-0_3ml-6mlh.svg").exists());
}

#[test]
fn bad_logs_and_settings_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bad.csv");
    std::fs::write(&log, "time_s,mass_g\n0,0\n30,0.05\n20,0.07\n").unwrap();
    let err = analyze_refused(&log, "2");
    assert!(err.contains("line 4") && err.contains("backwards"), "{err}");
    let err = analyze_refused(&dir.path().join("none.csv"), "2");
    assert!(err.contains("none.csv"), "{err}");
    analyze_refused(&log, "0");
    let out = dir.path().join("o");
    for bad in ["2", "2@900", "20@4", "x@4"] {
        refused(command(&[
            "bench",
            "accuracy",
            "--settings",
            bad,
            "--out",
            out.to_str().unwrap(),
        ]));
    }
}
