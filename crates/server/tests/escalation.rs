//! Alarms that reach people, on both backends, through the real server:
//! an unacknowledged alarm goes from the patient's nurse to every nurse of
//! the ward to the physician, each step audited and shown on the patient
//! page; an acknowledgement ends it; a silence holds it back; and every
//! notification reaches a real webhook receiver (signed, retried after a
//! failure, one id per notification) and a real SMTP server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::care::{alarm, occlusion, wards};
use common::{Backend, PASSWORD, TestApp};
use infusion_server::notify::{NotifyConfig, SmtpConfig};
use infusion_store::{AuditAction, NewNurse, NoticeEvent, Policy, Step};
use infusion_testkit::receivers::{SmtpSink, WebhookReceiver};
use infusion_testkit::test_config;

infusion_testkit::backend_tests!(
    an_unacknowledged_alarm_climbs_the_ward_policy_until_acknowledged,
    a_silence_holds_the_next_step_back,
    notifications_reach_a_webhook_and_a_mailbox,
);

const SECRET: &[u8] = b"a webhook secret shared with the hospital";

/// 4B's second nurse, nell (nina's colleague), and the shortest policy:
/// 10 s to the ward, 10 s more to the physician.
async fn ward_4b(app: &TestApp) {
    wards(app).await;
    let hash = infusion_server::password::PasswordParams::INSECURE_FAST
        .hash_blocking(PASSWORD)
        .unwrap();
    let nell = NewNurse {
        username: "nell".into(),
        first_name: "Nell".into(),
        last_name: "Ward".into(),
        ward: "4B".into(),
        password_hash: hash,
        must_change_password: false,
    };
    app.store.create_nurse(nell, "test", 0).await.unwrap();
    let policy = Policy {
        to_ward_after_ms: 10_000,
        to_physician_after_ms: 10_000,
    };
    app.store
        .set_escalation_policy("4B", policy, "test", 0)
        .await
        .unwrap();
}

/// Each notification of alice's newest alarm: event, step, whom.
async fn told(app: &TestApp) -> Vec<(NoticeEvent, Step, Vec<String>)> {
    let e = app.store.escalations(app.a.id, 1).await.unwrap();
    e[0].notices
        .iter()
        .map(|(event, step, _, who)| (*event, *step, who.clone()))
        .collect()
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| (*s).to_owned()).collect()
}

async fn an_unacknowledged_alarm_climbs_the_ward_policy_until_acknowledged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    ward_4b(&app).await;
    let nina = Browser::logged_in(&app, "nina").await;
    // Nina looks after alice: she is told first.
    let csrf = nina.csrf("/patients/alice").await;
    let took = nina
        .post(
            "/patients/alice/nurse",
            &[("csrf", csrf.as_str()), ("action", "take")],
        )
        .await;
    assert_eq!(took.status, 303, "{}", took.body);

    occlusion(&app, &app.a).await;
    let raised = app.store.escalations(app.a.id, 1).await.unwrap()[0]
        .row
        .clone();
    assert_eq!(raised.step, Step::PatientNurse);
    assert_eq!(
        told(&app).await,
        [(NoticeEvent::Raised, Step::PatientNurse, names(&["nina"]))]
    );
    // Not yet due: nothing moves.
    let t0 = raised.raised_at_ms;
    app.store.escalate_due(t0 + 9_000).await.unwrap();
    assert_eq!(told(&app).await.len(), 1);
    // Unacknowledged for 10 s: every nurse of the ward; 10 s more: the
    // physician.
    app.store.escalate_due(t0 + 10_001).await.unwrap();
    app.store.escalate_due(t0 + 20_002).await.unwrap();
    assert_eq!(
        told(&app).await,
        [
            (NoticeEvent::Raised, Step::PatientNurse, names(&["nina"])),
            (
                NoticeEvent::Escalated,
                Step::WardNurses,
                names(&["nell", "nina"])
            ),
            (
                NoticeEvent::Escalated,
                Step::Physician,
                names(&["dr.house"])
            ),
        ]
    );
    // Nothing after the last step, however late.
    app.store.escalate_due(t0 + 99_000).await.unwrap();
    assert_eq!(told(&app).await.len(), 3);
    let audit = app.store.audit_log(Some(app.a.id), 50).await.unwrap();
    let steps: Vec<_> = audit
        .iter()
        .filter(|r| r.entry.action == AuditAction::AlarmEscalated)
        .map(|r| r.entry.detail.clone())
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(steps[0].contains("told to the physician"), "{steps:?}");
    assert!(
        steps[1].contains("told to every nurse of the ward"),
        "{steps:?}"
    );

    // The patient page shows who was told, and the buttons.
    let page = nina.get("/patients/alice").await;
    assert!(page.body.contains("Who has been told"), "{}", page.body);
    assert!(
        page.body
            .contains("not acknowledged: told the physician (dr.house)"),
        "{}",
        page.body
    );
    // Another ward's nurse cannot acknowledge it; nell can.
    let id = raised.id;
    let path = format!("/patients/alice/escalations/{id}/acknowledge");
    let nora = Browser::logged_in(&app, "nora").await;
    let csrf = nora.csrf("/ward").await;
    assert_eq!(
        nora.post(&path, &[("csrf", csrf.as_str())]).await.status,
        404
    );
    let nell = Browser::logged_in(&app, "nell").await;
    let csrf = nell.csrf("/ward").await;
    assert_eq!(
        nell.post(&path, &[("csrf", csrf.as_str())]).await.status,
        303
    );
    // Everyone told learns it; the pump's alarm leaves the open list.
    let last = told(&app).await.pop().unwrap();
    assert_eq!(last.0, NoticeEvent::Acknowledged);
    assert_eq!(last.2, names(&["dr.house", "nell", "nina"]));
    assert!(app.store.open_alarms(app.a.id).await.unwrap().is_empty());
    // The same condition again is a new alarm, with an escalation of its
    // own.
    alarm(&app, &app.a, 2, "occlusion").await;
    let all = app.store.escalations(app.a.id, 5).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].row.open() && !all[1].row.open());
}

async fn a_silence_holds_the_next_step_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    ward_4b(&app).await;
    alarm(&app, &app.a, 1, "syringe_empty").await;
    let row = app.store.escalations(app.a.id, 1).await.unwrap()[0]
        .row
        .clone();
    // No nurse looks after alice: the ward's nurses first.
    assert_eq!(row.step, Step::WardNurses);
    let nina = Browser::logged_in(&app, "nina").await;
    let csrf = nina.csrf("/patients/alice").await;
    let path = format!("/patients/alice/escalations/{}/silence", row.id);
    let silenced = nina.post(&path, &[("csrf", csrf.as_str())]).await;
    assert_eq!(silenced.status, 303);
    let now = infusion_server::clock::now_ms();
    // Due 10 s after the raise, but silenced for two minutes: no one more
    // is told until the silence ends.
    app.store.escalate_due(now + 11_000).await.unwrap();
    assert_eq!(told(&app).await.len(), 1);
    app.store.escalate_due(now + 121_000).await.unwrap();
    let t = told(&app).await;
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!((t[1].0, t[1].1), (NoticeEvent::Escalated, Step::Physician));
    // A caregiver cannot silence it.
    let audit = app.store.audit_log(Some(app.a.id), 50).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.entry.action == AuditAction::AlarmSilenced && r.entry.actor == "user:nina")
    );
}

async fn notifications_reach_a_webhook_and_a_mailbox(backend: Backend) {
    let Some(python) = SmtpSink::python() else {
        eprintln!("skipped: no Python with aiosmtpd (set INFUSION_TEST_SMTP_PYTHON)");
        return;
    };
    let smtp = SmtpSink::start(&python);
    // The hospital's receiver fails twice first: the server retries.
    let hooks = WebhookReceiver::start(SECRET, 2).await;
    let mut config = test_config(Duration::from_secs(300));
    config.notify = NotifyConfig {
        webhooks: vec![hooks.url.clone()],
        webhook_secret: Some(SECRET.to_vec()),
        smtp: Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port: smtp.port,
            from: "alarms@hospital.example".into(),
        }),
        escalate_every: Duration::from_millis(200),
    };
    let app = TestApp::spawn_configured(backend, config).await;
    ward_4b(&app).await;
    app.store
        .set_email("nina", Some("nina@hospital.example"), "test", 0)
        .await
        .unwrap();
    occlusion(&app, &app.a).await;

    let raised = hooks
        .wait_for(Duration::from_secs(20), |h| h.body["event"] == "raised")
        .await
        .expect("the raise reaches the webhook");
    assert!(raised.signed && raised.json, "{raised:?}");
    assert_eq!(hooks.refused(), 2, "delivered after two refusals");
    let b = &raised.body;
    assert_eq!(b["alarm"], "occlusion");
    assert_eq!(b["priority"], "high");
    assert_eq!(b["patient_id"], app.a.id.0);
    assert_eq!(b["step"], "ward_nurses");
    assert!(b["id"].as_i64().is_some() && b["raised_at_ms"].as_i64().is_some());
    let mail = smtp
        .wait_for(Duration::from_secs(20), |m| m.data.contains("Occlusion"))
        .await
        .expect("the raise reaches nina's mailbox");
    assert_eq!(mail.to, ["nina@hospital.example"]);
    assert!(
        mail.data
            .contains("Subject: [HIGH] Occlusion: the line is blocked (Alice Patient)"),
        "{}",
        mail.data
    );

    // Acknowledged: the receiver hears that too, under another id.
    let esc = app.store.escalations(app.a.id, 1).await.unwrap()[0].row.id;
    app.store
        .acknowledge_escalation(app.a.id, esc, "user:nina", infusion_server::clock::now_ms())
        .await
        .unwrap();
    let acked = hooks
        .wait_for(Duration::from_secs(20), |h| {
            h.body["event"] == "acknowledged"
        })
        .await
        .expect("the acknowledgement reaches the webhook");
    assert_ne!(acked.body["id"], raised.body["id"]);
    // Each notification arrived once, and the administrator sees each
    // delivery with its attempts.
    let hooks_now = hooks.hooks();
    let ids: std::collections::HashSet<_> =
        hooks_now.iter().map(|h| h.body["id"].clone()).collect();
    assert_eq!(ids.len(), hooks_now.len(), "{hooks_now:?}");
    let deliveries = app.store.deliveries(20).await.unwrap();
    let first = deliveries
        .iter()
        .find(|d| d.channel.starts_with("webhook:") && d.event == NoticeEvent::Raised)
        .unwrap();
    assert_eq!(first.attempts, 3, "{deliveries:?}");
    assert!(first.delivered_at_ms.is_some());
    // The administrator's page lists them, the failures' words with them.
    common::browser::add_admin(&app).await;
    let root = Browser::logged_in(&app, "root").await;
    let page = root.get("/admin").await.body;
    assert!(page.contains("Alarm notifications"), "{page}");
    assert!(page.contains(&format!("webhook:{}", hooks.url)), "{page}");
    assert!(page.contains("email:nina@hospital.example"), "{page}");
}
