//! A board (dashboard, ward view) reads every patient at once: on both
//! backends, what the three statements of `Boards::board` return is what
//! the per-patient reads return, for patients with long histories, open
//! and acknowledged alarms, and none at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestApp};
use infusion_store::BOARD_RECENT;
use serde_json::{Value, json};

infusion_testkit::backend_tests!(the_board_reads_what_each_patient_reads,);

async fn the_board_reads_what_each_patient_reads(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Alice: 120 events, two alarms of which one is acknowledged; bob:
    // nothing.
    let token = app.login(&app.a).await;
    let mut events: Vec<Value> = (1..=118)
        .map(|i| {
            json!({"seq": i, "uptime_ms": i * 10, "kind": "progress",
                        "delivered_ul": i, "rate_ul_h": 4000, "index_version": 1})
        })
        .collect();
    events.push(json!({"seq": 119, "uptime_ms": 1190, "kind": "alarm", "alarm": "battery_low"}));
    events.push(json!({"seq": 120, "uptime_ms": 1200, "kind": "alarm", "alarm": "occlusion"}));
    let mut token = token;
    for chunk in events.chunks(40) {
        let (status, body) = app
            .report(&app.a, &token, Value::Array(chunk.to_vec()))
            .await;
        assert_eq!(status, 200, "{body}");
        token = body["token"].as_str().unwrap().to_owned();
    }
    let open = app.store.open_alarms(app.a.id).await.unwrap();
    let battery = open.iter().find(|e| e.seq == 119).unwrap().id;
    app.store
        .acknowledge_alarm(app.a.id, battery, "user:dr.house", 1)
        .await
        .unwrap();

    let ids = [app.a.id, app.b.id];
    let board = app.store.board(&ids, BOARD_RECENT).await.unwrap();
    for id in ids {
        let recent = app.store.recent_events(id, BOARD_RECENT).await.unwrap();
        assert_eq!(board.recent.get(&id).cloned().unwrap_or_default(), recent);
        let alarms = app.store.open_alarms(id).await.unwrap();
        assert_eq!(board.alarms.get(&id).cloned().unwrap_or_default(), alarms);
        let pending = app.store.pending_suggestions(id).await.unwrap().len();
        assert_eq!(board.pending.get(&id).copied().unwrap_or(0), pending);
    }
    assert_eq!(board.recent[&app.a.id].len(), BOARD_RECENT as usize);
    assert_eq!(board.alarms[&app.a.id].len(), 1);
    assert!(!board.recent.contains_key(&app.b.id));
    // No patients, no rows.
    assert_eq!(app.store.board(&[], 5).await.unwrap(), Default::default());
}
