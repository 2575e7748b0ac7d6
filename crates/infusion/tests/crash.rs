//! Crash safety (threat model: availability and "nothing acknowledged is
//! ever lost"): simulated pumps keep polling and reporting while the
//! server process is killed with SIGKILL again and again and started anew
//! on the same address. After every kill, each report that had been
//! answered 200 is in the database exactly once, and every pump resumes
//! by itself. Both backends: on SQLite the killed process leaves its WAL
//! behind for the next one to recover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::pumps::{Fleet, ServerProcess, assert_acknowledged_stored_once, seed};
use infusion_testkit::{Backend, TestDb};

infusion_testkit::backend_tests!(
    server_killed_twenty_times_under_load_loses_no_acknowledged_report
);

const PUMPS: usize = 4;
const KILLS: usize = 20;

async fn server_killed_twenty_times_under_load_loses_no_acknowledged_report(backend: Backend) {
    let db = TestDb::open(backend).await;
    let server_key = seed(&*db.store, PUMPS).await;
    let mut server = ServerProcess::start(&db.url);
    let addr = server.addr().to_owned();
    let base = server.base.clone();
    let mut fleet = Fleet::start(PUMPS, &[&base], server_key).await;
    for kill in 0..KILLS {
        // Somewhere in the middle of the pumps' traffic, never in step.
        tokio::time::sleep(Duration::from_millis(250 + (kill as u64 * 137) % 400)).await;
        server.kill_hard();
        server = ServerProcess::start_on(&db.url, &addr);
    }
    // Every pump resumes by itself and empties its outbox.
    fleet
        .wait_all_served(3, "served after the last restart")
        .await;
    let acks = fleet.acks.clone();
    let failed = fleet.stop().await;
    let acknowledged = assert_acknowledged_stored_once(&*db.store, &acks).await;
    eprintln!(
        "{KILLS} SIGKILLs: {acknowledged} acknowledged events all stored once; \
         {failed} requests failed while the server was down"
    );
    assert!(failed > 0, "the kills should have failed some requests");
    drop(server);
}
