//! Local time, on both backends: an administrator sets the institution's
//! time zone; its staff and patients then read times in it, with the zone
//! named on every page, while the audit trail keeps UTC. A name that is no
//! time zone is refused and changes nothing; another institution keeps
//! its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, add_admin, add_admin_at};
use common::{Backend, TestApp};
use infusion_store::AuditAction;

infusion_testkit::backend_tests!(times_are_read_in_the_institutions_zone_and_the_audit_in_utc,);

async fn set_zone(admin: &Browser, zone: &str) -> common::browser::Page {
    let csrf = admin.csrf("/admin").await;
    admin
        .post("/admin/time-zone", &[("csrf", &csrf), ("zone", zone)])
        .await
}

async fn times_are_read_in_the_institutions_zone_and_the_audit_in_utc(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin(&app).await;
    add_admin_at(&app, "elsewhere", "Other Clinic").await;
    let admin = Browser::logged_in(&app, "root").await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let page = house.get("/patients/alice").await;
    assert!(page.body.contains("Times are in UTC."), "{}", page.body);

    let refused = set_zone(&admin, "Mars/Olympus").await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("is not a time zone name"),
        "{}",
        refused.body
    );
    let page = house.get("/patients/alice").await;
    assert!(page.body.contains("Times are in UTC."), "nothing changed");

    let set = set_zone(&admin, " europe/madrid ").await;
    assert_eq!(set.status, 303, "{}", set.body);
    let shown = admin.follow(&set).await;
    assert!(
        shown
            .body
            .contains("Test Clinic now reads times in Europe/Madrid ("),
        "{}",
        shown.body
    );

    // The physician's open session reads Madrid time at once: version 1
    // was written at the epoch, 01:00 in Madrid; the audit keeps UTC.
    let page = house.get("/patients/alice").await;
    for says in [
        "Times are in Europe/Madrid (",
        "the audit trail and security events are in UTC.",
        "<td>1970-01-01 01:00:00 CET</td>",
        "When (UTC)",
        "<td>1970-01-01 00:00:00 UTC</td>",
    ] {
        assert!(page.body.contains(says), "{says}: {}", page.body);
    }
    // The patient reads it too, without the audit's note.
    let alice = Browser::logged_in(&app, "alice").await;
    let own = alice.get("/patients/alice").await;
    assert!(
        own.body.contains("Times are in Europe/Madrid (") && !own.body.contains("audit trail"),
        "{}",
        own.body
    );
    // Another institution keeps UTC.
    let other = Browser::logged_in(&app, "elsewhere").await;
    let theirs = other.get("/admin").await;
    assert!(
        theirs
            .body
            .contains("Staff and patients read times in UTC."),
        "{}",
        theirs.body
    );
    let audit = app.store.audit_log(None, 50).await.unwrap();
    let set: Vec<&str> = audit
        .iter()
        .filter(|r| r.entry.action == AuditAction::TimeZoneSet)
        .map(|r| r.entry.detail.as_str())
        .collect();
    assert_eq!(set, ["Test Clinic: from UTC to Europe/Madrid"]);
}
