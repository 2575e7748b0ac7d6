//! The physician's work in the web application, on both backends: alarms
//! acknowledged, suggestions approved or rejected (stale ones refused),
//! and each prescription version's delivery state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, second_physician};
use common::{Backend, TestApp};
use infusion_testkit::patient_id;

infusion_testkit::backend_tests!(
    alarms_stay_open_until_their_physician_acknowledges_them,
    suggestions_change_nothing_until_approved_and_stale_ones_are_refused,
    versions_show_their_delivery_state,
);

/// Reports three vitals readings with `tremor` from alice's pump, seq
/// `from..from+3`, and waits until the decision algorithm has looked.
async fn tremor(app: &TestApp, from: u32, tremor: u8) -> Vec<infusion_store::Suggestion> {
    let token = app.login(&app.a).await;
    let events: Vec<serde_json::Value> = (from..from + 3)
        .map(|seq| {
            serde_json::json!({"seq": seq, "uptime_ms": seq * 1000, "kind": "vitals",
            "heart_rate_bpm": 72, "spo2_pct": 97, "tremor_score": tremor})
        })
        .collect();
    let (status, body) = app
        .report(&app.a, &token, serde_json::Value::Array(events))
        .await;
    assert_eq!(status, 200, "{body}");
    let before = app.store.pending_suggestions(app.a.id).await.unwrap();
    // The algorithm runs after the answer; give it a moment to store.
    for _ in 0..50 {
        let now = app.store.pending_suggestions(app.a.id).await.unwrap();
        if now != before
            || !now.is_empty() && now[0].proposal.based_on_version == current_version(app).await
        {
            return now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.store.pending_suggestions(app.a.id).await.unwrap()
}

async fn current_version(app: &TestApp) -> u32 {
    app.store
        .patient(patient_id(&*app.store, "alice").await)
        .await
        .unwrap()
        .prescription
        .unwrap()
        .version
}

/// The delivery column of version `v`'s row on the patient page.
fn delivery_of(page: &str, v: u32) -> String {
    let row = page
        .split("<tr>")
        .find(|r| r.starts_with(&format!("<td>{v}</td>")))
        .unwrap_or_else(|| panic!("no row for version {v}"));
    let cells: Vec<&str> = row.split("<td>").collect();
    cells[8].split("</td>").next().unwrap().to_owned()
}

async fn alarms_stay_open_until_their_physician_acknowledges_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    second_physician(&app).await;
    let token = app.login(&app.a).await;
    let (status, body) = app
        .report(
            &app.a,
            &token,
            serde_json::json!([
                {"seq": 1, "uptime_ms": 10, "kind": "progress", "delivered_ul": 5, "rate_ul_h": 4000, "index_version": 1},
                {"seq": 2, "uptime_ms": 20, "kind": "alarm", "alarm": "occlusion"}
            ]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let open = app.store.open_alarms(app.a.id).await.unwrap();
    assert_eq!(open.len(), 1);
    let alarm_id = open[0].id;
    let progress_id = app.store.events(app.a.id, 0, 10).await.unwrap()[0].id;

    let house = Browser::logged_in(&app, "dr.house").await;
    let dash = house.get("/dashboard").await;
    assert!(
        dash.body.contains("Occlusion: the line is blocked"),
        "{}",
        dash.body
    );
    let page = house.get("/patients/alice").await;
    let ack = format!("/patients/alice/alarms/{alarm_id}/ack");
    assert!(page.body.contains(&ack), "{}", page.body);

    // Refused: the patient (read only), another patient, another physician,
    // an event that is not an alarm, an alarm of another patient's path.
    for (b, who, own, path, want) in [
        (
            Browser::logged_in(&app, "alice").await,
            "alice",
            "/patients/alice",
            ack.clone(),
            403,
        ),
        (
            Browser::logged_in(&app, "bob").await,
            "bob",
            "/patients/bob",
            ack.clone(),
            404,
        ),
        (
            Browser::logged_in(&app, "dr.other").await,
            "dr.other",
            "/dashboard",
            ack.clone(),
            404,
        ),
        (
            Browser::logged_in(&app, "dr.house").await,
            "dr.house",
            "/dashboard",
            format!("/patients/alice/alarms/{progress_id}/ack"),
            404,
        ),
        (
            Browser::logged_in(&app, "dr.house").await,
            "dr.house",
            "/dashboard",
            format!("/patients/bob/alarms/{alarm_id}/ack"),
            404,
        ),
    ] {
        let csrf = b.csrf(own).await;
        assert_eq!(
            b.post(&path, &[("csrf", &csrf)]).await.status,
            want,
            "{who} {path}"
        );
        assert_eq!(
            app.store.open_alarms(app.a.id).await.unwrap().len(),
            1,
            "{who} {path}"
        );
    }

    let csrf = house.csrf("/patients/alice").await;
    let done = house.post(&ack, &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 303);
    let done = house.follow(&done).await;
    assert!(done.body.contains("Alarm acknowledged."));
    assert!(app.store.open_alarms(app.a.id).await.unwrap().is_empty());
    let again = house.post(&ack, &[("csrf", &csrf)]).await;
    let again = house.follow(&again).await;
    assert!(again.body.contains("acknowledged already"));
    let acks: Vec<_> = app
        .store
        .audit_log(Some(app.a.id), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.action.as_str() == "alarm_acknowledged")
        .collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].entry.actor, "user:dr.house");
    assert!(acks[0].entry.detail.starts_with("Occlusion"));
    let dash = house.get("/dashboard").await;
    assert!(!dash.body.contains("class=\"alarm\""), "{}", dash.body);
}

async fn suggestions_change_nothing_until_approved_and_stale_ones_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    second_physician(&app).await;
    let house = Browser::logged_in(&app, "dr.house").await;

    // High tremor: raise 4 mL/h by 10 %. Nothing changes yet.
    let pending = tremor(&app, 1, 80).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    let s = &pending[0];
    assert_eq!(
        (
            s.proposal.based_on_version,
            s.proposal.rate_ul_h,
            s.proposal.volume_ul
        ),
        (1, 4_400, 2_000)
    );
    assert!(
        s.proposal.reason.contains("tremor"),
        "{}",
        s.proposal.reason
    );
    assert_eq!(current_version(&app).await, 1);
    let dash = house.get("/dashboard").await;
    assert!(dash.body.contains("1 to review"), "{}", dash.body);
    let page = house.get("/patients/alice").await;
    assert!(page.body.contains("4.4 mL/h"), "{}", page.body);

    let approve = format!("/patients/alice/suggestions/{}/approve", s.id);
    let reject = format!("/patients/alice/suggestions/{}/reject", s.id);
    for (who, own, want) in [
        ("alice", "/patients/alice", 403),
        ("bob", "/patients/bob", 404),
        ("dr.other", "/dashboard", 404),
    ] {
        let b = Browser::logged_in(&app, who).await;
        let csrf = b.csrf(own).await;
        for path in [&approve, &reject] {
            assert_eq!(
                b.post(path, &[("csrf", &csrf)]).await.status,
                want,
                "{who} {path}"
            );
        }
    }
    assert_eq!(
        app.store.pending_suggestions(app.a.id).await.unwrap().len(),
        1
    );
    assert_eq!(current_version(&app).await, 1);

    // Rejected: closed, audited, prescription unchanged.
    let csrf = house.csrf("/patients/alice").await;
    let done = house.post(&reject, &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 303);
    let done = house.follow(&done).await;
    assert!(done.body.contains("Suggestion rejected."));
    assert!(
        app.store
            .pending_suggestions(app.a.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(current_version(&app).await, 1);
    assert_eq!(
        house.post(&approve, &[("csrf", &csrf)]).await.status,
        404,
        "decided already"
    );

    let stale_id = a_stale_suggestion_is_refused(&app, &house, &csrf).await;
    the_next_suggestion_is_approved_as_version_3(&app, &house, &csrf, stale_id).await;
}

/// A new suggestion, then a newer prescription makes it stale: refused.
/// Returns the stale suggestion's id.
async fn a_stale_suggestion_is_refused(app: &TestApp, house: &Browser, csrf: &str) -> i64 {
    let pending = tremor(app, 4, 80).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    let stale_id = pending[0].id;
    let p = house
        .post(
            "/patients/alice/prescription",
            &[
                ("csrf", csrf),
                ("volume_ml", "2"),
                ("rate_ml_h", "5"),
                ("state", "run"),
                ("reviewed", "1"),
                ("reason", "as planned"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(current_version(app).await, 2);
    let page = house.get("/patients/alice").await;
    assert!(
        page.body.contains("Stale: version 2 was written since"),
        "{}",
        page.body
    );
    let refused = house
        .post(
            &format!("/patients/alice/suggestions/{stale_id}/approve"),
            &[("csrf", csrf)],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("can no longer be approved"),
        "{}",
        refused.body
    );
    assert_eq!(current_version(app).await, 2);

    stale_id
}

/// Fresh vitals supersede the stale suggestion; approving the new one
/// writes version 3, and the audit trail tells the whole story.
async fn the_next_suggestion_is_approved_as_version_3(
    app: &TestApp,
    house: &Browser,
    csrf: &str,
    stale_id: i64,
) {
    let pending = tremor(app, 7, 80).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_ne!(pending[0].id, stale_id);
    assert_eq!(
        (
            pending[0].proposal.based_on_version,
            pending[0].proposal.rate_ul_h
        ),
        (2, 5_500)
    );
    let ok = house
        .post(
            &format!("/patients/alice/suggestions/{}/approve", pending[0].id),
            &[("csrf", csrf)],
        )
        .await;
    assert_eq!(ok.status, 303);
    let ok = house.follow(&ok).await;
    assert!(ok.body.contains("approved as version 3"), "{}", ok.body);
    let v3 = app
        .store
        .patient(patient_id(&*app.store, "alice").await)
        .await
        .unwrap()
        .prescription
        .unwrap();
    assert_eq!(
        (v3.version, v3.rate_ul_h, v3.created_by.as_str()),
        (3, 5_500, "user:dr.house")
    );
    let actions: Vec<String> = app
        .store
        .audit_log(Some(app.a.id), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.action.as_str().starts_with("suggestion_"))
        .map(|r| format!("{} {}", r.entry.actor, r.entry.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            "user:dr.house suggestion_approved",
            "decision-algorithm suggestion_made",
            "decision-algorithm suggestion_made",
            "user:dr.house suggestion_rejected",
            "decision-algorithm suggestion_made",
        ]
    );
}

async fn versions_show_their_delivery_state(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let page = || async { house.get("/patients/alice").await.body };
    assert_eq!(
        delivery_of(&page().await, 1),
        "sent; waiting for the pump&#39;s next poll".replace("&#39;", "'")
    );

    let token = app.login(&app.a).await;
    let (status, body) = app.index(&app.a, &token).await;
    assert_eq!(status, 200);
    assert!(delivery_of(&page().await, 1).starts_with("fetched by the pump at"));

    let token = body["token"].as_str().unwrap().to_owned();
    let (status, body) = app
        .report(&app.a, &token, common::progress_events(1, 1))
        .await;
    assert_eq!(status, 200);
    let now = page().await;
    assert_eq!(delivery_of(&now, 1), "running on the pump");
    // The history chart plots the progress report, labelled for screen readers.
    assert!(
        now.contains("role=\"img\" aria-label=\"Delivered in mL, from"),
        "{now}"
    );

    let csrf = house.csrf("/patients/alice").await;
    let p = house
        .post(
            "/patients/alice/prescription",
            &[
                ("csrf", &csrf),
                ("volume_ml", "2"),
                ("rate_ml_h", "6"),
                ("state", "run"),
                ("reviewed", "1"),
                ("reason", "as planned"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    let now = page().await;
    assert!(delivery_of(&now, 2).starts_with("sent"));
    assert_eq!(delivery_of(&now, 1), "delivered, then replaced");

    let token = body["token"].as_str().unwrap().to_owned();
    let (status, body) = app.index(&app.a, &token).await;
    assert_eq!(status, 200);
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, _) = app
        .report(
            &app.a,
            &token,
            serde_json::json!([{"seq": 2, "uptime_ms": 5000, "kind": "alarm", "alarm": "limits_refused"}]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        delivery_of(&page().await, 2),
        "refused by the pump: outside its limits"
    );
}
