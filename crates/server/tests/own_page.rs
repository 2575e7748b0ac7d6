//! The patient's own page, on both backends: written for the patient
//! (what the pump gives now, how much is left and about when it ends,
//! what it warned of, the latest readings) with none of the clinician's
//! tables, and the note the physician chose to share, which only the
//! patient's physician may write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, second_physician};
use common::{Backend, TestApp};
use infusion_store::AuditAction;

infusion_testkit::backend_tests!(the_patient_reads_their_infusion_and_their_physicians_note,);

async fn note(b: &Browser, text: &str) -> common::browser::Page {
    let csrf = b.csrf("/dashboard").await;
    b.post("/patients/alice/note", &[("csrf", &csrf), ("note", text)])
        .await
}

async fn the_patient_reads_their_infusion_and_their_physicians_note(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    second_physician(&app).await;
    let alice = Browser::logged_in(&app, "alice").await;
    let own = alice.get("/patients/alice").await;
    for says in [
        "Your infusion now",
        "Your pump has not reported yet.",
        "From your physician",
        "Nothing yet.",
        "call your care team",
    ] {
        assert!(own.body.contains(says), "{says}");
    }
    for never in [
        "Prescription versions",
        "Recent pump reports",
        "Limits",
        "Audit trail",
    ] {
        assert!(
            !own.body.contains(never),
            "the patient's page shows {never}"
        );
    }

    // The pump runs version 1 (2 mL at 4 mL/h), warns of its battery and
    // sends a reading.
    let token = app.login(&app.a).await;
    let (status, body) = app
        .report(
            &app.a,
            &token,
            serde_json::json!([
                {"seq": 1, "uptime_ms": 10, "kind": "state", "state": "started"},
                {"seq": 2, "uptime_ms": 20, "kind": "progress", "delivered_ul": 500, "rate_ul_h": 4000, "index_version": 1},
                {"seq": 3, "uptime_ms": 30, "kind": "alarm", "alarm": "battery_low"},
                {"seq": 4, "uptime_ms": 40, "kind": "vitals", "heart_rate_bpm": 72, "spo2_pct": 97, "tremor_score": 5}
            ]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let own = alice.get("/patients/alice").await;
    for says in [
        "Your pump is giving 4 mL an hour.",
        "About 1.5 mL left. At this rate it ends at about",
        "(in 23 min)",
        "Your pump has warned:",
        "<li>Battery low, ",
        "heart rate 72 beats a minute, oxygen 97 %",
    ] {
        assert!(own.body.contains(says), "{says}: {}", own.body);
    }
    assert!(
        own.body
            .contains(r#"<progress id="own-progress" max="2000" value="500">"#)
    );

    // Only the patient's physician writes the note; a wrong one changes
    // nothing.
    let other = Browser::logged_in(&app, "dr.other").await;
    assert_eq!(note(&other, "not mine").await.status, 404);
    let csrf = alice.csrf("/patients/alice").await;
    let mine = alice
        .post("/patients/alice/note", &[("csrf", &csrf), ("note", "mine")])
        .await;
    assert!(matches!(mine.status, 403 | 404), "{}", mine.status);
    let house = Browser::logged_in(&app, "dr.house").await;
    let long = "x".repeat(infusion_store::NOTE_MAX + 1);
    assert_eq!(note(&house, &long).await.status, 422);
    assert!(
        alice
            .get("/patients/alice")
            .await
            .body
            .contains("Nothing yet.")
    );

    let saved = note(
        &house,
        "Take it easy today.\nCall the ward if the tremor returns.",
    )
    .await;
    let shown = house.follow(&saved).await;
    assert!(shown.body.contains("Saved: the patient sees this note"));
    assert!(
        shown
            .body
            .contains("Call the ward if the tremor returns.</textarea>")
    );
    let own = alice.get("/patients/alice").await;
    assert!(
        own.body.contains(
            "<p class=\"note\">Take it easy today.\nCall the ward if the tremor returns.</p>"
        ),
        "{}",
        own.body
    );
    house.follow(&note(&house, "  ").await).await;
    assert!(
        alice
            .get("/patients/alice")
            .await
            .body
            .contains("Nothing yet.")
    );
    let audit = app.store.audit_log(Some(app.a.id), 50).await.unwrap();
    let notes: Vec<&str> = audit
        .iter()
        .filter(|r| r.entry.action == AuditAction::PatientNoteSet)
        .map(|r| r.entry.detail.as_str())
        .collect();
    assert_eq!(
        notes,
        [
            "note for the patient removed",
            "note for the patient: Take it easy today. / Call the ward if the tremor returns."
        ]
    );
}
