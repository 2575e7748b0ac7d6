//! The change feed on both backends: what commits is announced once, with
//! the patient it concerns; what is refused is not announced at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Backend, TestApp};
use infusion_protocol::{Alarm, InfusionState};
use infusion_store::{Change, NewPrescription};
use serde_json::json;
use tokio::sync::broadcast;

infusion_testkit::backend_tests!(committed_changes_are_announced_and_refused_ones_are_not);

/// Everything announced until the feed has been quiet for a moment.
async fn drain(feed: &mut broadcast::Receiver<Change>) -> Vec<Change> {
    let mut seen = Vec::new();
    while let Ok(Ok(c)) = tokio::time::timeout(Duration::from_millis(500), feed.recv()).await {
        seen.push(c);
    }
    seen
}

async fn committed_changes_are_announced_and_refused_ones_are_not(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut feed = app.store.changes();
    // With PostgreSQL the seeding's own notifications may still be on
    // their way: let them pass first.
    drain(&mut feed).await;
    let alice = app.a.id;

    // Refused (outside alice's limits): nothing to announce.
    let refused = app
        .store
        .set_prescription(
            alice,
            NewPrescription {
                volume_ul: 2_000,
                rate_ul_h: 99_000,
                state: InfusionState::Run,
                drug: None,
            },
            "test",
            1,
        )
        .await;
    assert!(refused.is_err());
    assert_eq!(drain(&mut feed).await, []);

    let version = app
        .store
        .set_prescription(
            alice,
            NewPrescription {
                volume_ul: 3_000,
                rate_ul_h: 5_000,
                state: InfusionState::Run,
                drug: None,
            },
            "test",
            1,
        )
        .await
        .unwrap();
    assert_eq!(
        drain(&mut feed).await,
        [Change::Prescription {
            patient: alice,
            version,
        }]
    );

    // A report with an alarm, through the device API.
    let token = app.login(&app.a).await;
    let (status, body) = app
        .report(
            &app.a,
            &token,
            json!([
                {"seq": 1, "uptime_ms": 10, "kind": "alarm", "alarm": "occlusion"},
                {"seq": 2, "uptime_ms": 20, "kind": "state", "state": "paused"}
            ]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let seen = drain(&mut feed).await;
    assert!(
        seen.contains(&Change::Events { patient: alice }),
        "{seen:?}"
    );
    assert!(
        seen.contains(&Change::Alarm {
            patient: alice,
            alarm: Alarm::Occlusion
        }),
        "{seen:?}"
    );
    assert_eq!(seen.len(), 2, "{seen:?}");

    // The same batch again stores nothing and announces nothing.
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, body) = app
        .report(
            &app.a,
            &token,
            json!([{"seq": 1, "uptime_ms": 10, "kind": "alarm", "alarm": "occlusion"}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["duplicates"], 1);
    assert_eq!(drain(&mut feed).await, []);
}
