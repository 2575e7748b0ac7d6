//! The server's watchdog against the simulated pump: a pump that stops
//! polling is found silent (`pump_silent`) within the configured time and
//! the silence clears when the pump comes back, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{PASSWORD, provisioned_pump};
use infusion_protocol::{InfusionState, PatientLimits};
use infusion_pump_core::PumpConfig;
use infusion_sim::SimConfig;
use infusion_store::{AuditAction, NewPrescription, Store};
use infusion_testkit::{
    Backend, Served, TestDb, patient_id, seed_patient, seed_physician, serve, test_config,
};

const MAC: &str = "02:00:00:00:00:51";

infusion_testkit::backend_tests!(a_pump_that_stops_polling_is_seen_silent_until_it_comes_back,);

/// Starts the simulated pump (polling every second of real time) and
/// waits until the server has heard from it; returns its stop switch and
/// its task.
async fn run_pump(
    server: &Served,
    store: &dyn Store,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<infusion_sim::Snapshot>,
) {
    let cfg = SimConfig {
        pump: PumpConfig {
            poll_interval_ms: 1_000,
            ..PumpConfig::default()
        },
        ..SimConfig::default()
    };
    let sim = provisioned_pump("silent-pump", &server.base, MAC, server, cfg);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sim.run(async move {
        let _ = stopped.await;
    }));
    let pid = patient_id(store, "pat").await;
    let start = Instant::now();
    while store.patient(pid).await.unwrap().last_contact_ms.is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the pump never logged in"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (stop, task)
}

/// How long until the patient's silence is `open`.
async fn until_silent(store: &dyn Store, open: bool) -> Duration {
    let pid = patient_id(store, "pat").await;
    let start = Instant::now();
    loop {
        if store.patient(pid).await.unwrap().silent_since_ms.is_some() == open {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "silence still {}",
            !open
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_pump_that_stops_polling_is_seen_silent_until_it_comes_back(backend: Backend) {
    let db = TestDb::open(backend).await;
    let store = db.store.clone();
    let mut config = test_config(Duration::from_secs(300));
    config.silent_after = Duration::from_secs(3);
    let hash = config.password.hash_blocking(PASSWORD).unwrap();
    seed_physician(&*store, "doc", &hash).await;
    let limits = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 20_000,
        max_volume_ul: 10_000,
    };
    let pid = seed_patient(&*store, "pat", "P", "doc", &hash, MAC, limits).await;
    let order = NewPrescription {
        volume_ul: 5_000,
        rate_ul_h: 4_000,
        state: InfusionState::Run,
        drug: None,
    };
    store.set_prescription(pid, order, "doc", 0).await.unwrap();
    let server = serve(store.clone(), config).await;

    // Polling every second, the pump is never silent.
    let (stop, task) = run_pump(&server, &*store).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(store.patient(pid).await.unwrap().silent_since_ms.is_none());
    // It stops polling: silent after 3 s, at the next sweep (sweeps run
    // every fifth of the silence, but at least a second apart).
    let _ = stop.send(());
    task.await.unwrap();
    let found = until_silent(&*store, true).await;
    eprintln!(
        "silent pump found {} ms after it stopped (silent after 3 s)",
        found.as_millis()
    );
    assert!(found >= Duration::from_secs(2), "{found:?}");
    // It comes back: the silence clears.
    let (stop, task) = run_pump(&server, &*store).await;
    until_silent(&*store, false).await;
    let _ = stop.send(());
    task.await.unwrap();
    let audit = store.audit_log(Some(pid), 200).await.unwrap();
    let count = |a: AuditAction| audit.iter().filter(|r| r.entry.action == a).count();
    assert_eq!(
        (
            count(AuditAction::PumpSilent),
            count(AuditAction::PumpHeardAgain)
        ),
        (1, 1)
    );
}
