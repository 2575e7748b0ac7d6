//! The drug library and orders that name a drug, on both backends, through
//! the real server's forms: an administrator adds and withdraws drugs of
//! their own institution; a physician orders a drug in mg/h and mg, and
//! the pump's index carries the same order in µL/h and µL; the drug's
//! hard limits refuse, its usual range asks for a reason; Hold keeps the
//! drug; the library's limits become the patient's. And patients carry
//! identifiers, shown on every row and page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Browser, add_admin, add_admin_at};
use common::{Backend, TestApp};
use infusion_protocol::InfusionState;
use infusion_store::DrugId;

infusion_testkit::backend_tests!(
    a_physician_orders_a_library_drug_in_mg_h_and_the_pump_gets_ul_h,
    a_new_patient_has_a_record_number_and_date_of_birth_shown_on_every_row,
);

const FOSLEVODOPA: [(&str, &str); 8] = [
    ("name", "Foslevodopa/foscarbidopa"),
    ("concentration_mg_ml", "240"),
    ("hard_min_mg_h", "20"),
    ("hard_max_mg_h", "250"),
    ("hard_max_mg", "2400"),
    ("soft_min_mg_h", "40"),
    ("soft_max_mg_h", "180"),
    ("soft_max_mg", "1920"),
];

async fn add_drug(admin: &Browser, fields: &[(&str, &str)]) -> common::browser::Page {
    let csrf = admin.csrf("/admin").await;
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    admin.post("/admin/drugs", &form).await
}

async fn versions(app: &TestApp) -> Vec<(u32, u32, u32, InfusionState, Option<DrugId>)> {
    let rx = app.store.prescriptions(app.a.id).await.unwrap();
    rx.into_iter()
        .map(|p| (p.version, p.volume_ul, p.rate_ul_h, p.state, p.drug))
        .collect()
}

async fn a_physician_orders_a_library_drug_in_mg_h_and_the_pump_gets_ul_h(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin(&app).await;
    let admin = Browser::logged_in(&app, "root").await;
    let added = add_drug(&admin, &FOSLEVODOPA).await;
    let shown = admin.follow(&added).await;
    assert!(
        shown
            .body
            .contains("Foslevodopa/foscarbidopa 240 mg/mL added to the drug library."),
        "{}",
        shown.body
    );
    assert!(shown.body.contains("20 mg/h to 250 mg/h, at most 2400 mg"));
    // Refused, each with its reason, and nothing added: a usual range
    // beyond the hard limits, the same name again, a bad number.
    let mut wide = FOSLEVODOPA;
    wide[6] = ("soft_max_mg_h", "300");
    let mut bad = FOSLEVODOPA;
    bad[1] = ("concentration_mg_ml", "240,5");
    for (fields, why) in [
        (&wide, "usual range must lie inside the hard limits"),
        (
            &FOSLEVODOPA,
            "already has a drug named Foslevodopa/foscarbidopa",
        ),
        (&bad, "is not a number"),
    ] {
        let refused = add_drug(&admin, fields).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.body.contains(why), "{why}: {}", refused.body);
    }
    let library = app.store.drugs("Test Clinic").await.unwrap();
    assert_eq!(library.len(), 1);
    let drug = library[0].id;

    // 240 mg/h is above the usual 180 mg/h: the order asks for a reason
    // and nothing is sent until it is given.
    let house = Browser::logged_in(&app, "dr.house").await;
    let page = house.get("/patients/alice").await;
    assert!(
        page.body.contains("Order a drug (mg/h and mg)"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let id = drug.0.to_string();
    let order = |dose: &'static str, amount: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("drug", id.clone()),
            ("dose_mg_h", dose.to_owned()),
            ("amount_mg", amount.to_owned()),
            ("state", "run".to_owned()),
        ]
    };
    let post = |form: Vec<(&'static str, String)>| {
        let house = &house;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            house.post("/patients/alice/prescription", &form).await
        }
    };
    let asked = post(order("240", "480")).await;
    assert_eq!(asked.status, 422, "{}", asked.body);
    assert!(
        asked.body.contains(
            "The dose 240 mg/h is above the drug library&#39;s usual highest dose of \
             Foslevodopa/foscarbidopa, 180 mg/h."
        ) || asked.body.contains(
            "The dose 240 mg/h is above the drug library's usual highest dose of \
             Foslevodopa/foscarbidopa, 180 mg/h."
        ),
        "{}",
        asked.body
    );
    assert!(
        asked.body.contains(
            "Foslevodopa/foscarbidopa 240 mg/mL, 480 mg (2 mL) at 240 mg/h (1 mL/h), run"
        ),
        "{}",
        asked.body
    );
    assert_eq!(versions(&app).await.len(), 1);
    let mut confirmed = order("240", "480");
    confirmed.push((
        "reason",
        "off periods not controlled at 180 mg/h".to_owned(),
    ));
    confirmed.push(("reviewed", "1".to_owned()));
    let saved = house.follow(&post(confirmed).await).await;
    assert!(
        saved.body.contains(
            "Saved as version 2: Foslevodopa/foscarbidopa 240 mg/mL, 480 mg (2 mL) at 240 mg/h \
             (1 mL/h), run."
        ),
        "{}",
        saved.body
    );
    assert_eq!(
        versions(&app).await[1],
        (2, 2_000, 1_000, InfusionState::Run, Some(drug))
    );
    // The pump is sent µL and µL/h, as before.
    let token = app.login(&app.a).await;
    let (status, body) = app.index(&app.a, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["index"]["volume_ul"], 2_000);
    assert_eq!(body["index"]["rate_ul_h"], 1_000);

    // Beyond the drug's hard limit: refused in mg/h whatever the reason,
    // and the form keeps what was typed.
    let mut beyond = order("260", "480");
    beyond.push(("reason", "urgent".to_owned()));
    beyond.push(("reviewed", "1".to_owned()));
    let refused = post(beyond).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("outside the drug library") && refused.body.contains("259.92 mg/h"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(r#"value="260""#), "{}", refused.body);
    assert_eq!(versions(&app).await.len(), 2);

    // Hold keeps the drug; the library's limits become the patient's.
    let held = house.post("/patients/alice/hold", &[("csrf", &csrf)]).await;
    assert_eq!(held.status, 303, "{}", held.body);
    assert_eq!(
        versions(&app).await[2],
        (3, 2_000, 1_000, InfusionState::Hold, Some(drug))
    );
    let set = house
        .post(
            "/patients/alice/limits/from-drug",
            &[("csrf", &csrf), ("drug", &id)],
        )
        .await;
    assert_eq!(set.status, 303, "{}", set.body);
    let limits = app.store.patient(app.a.id).await.unwrap().limits;
    assert_eq!(
        (limits.hard.min_rate_ul_h, limits.hard.max_rate_ul_h),
        (100, 1_041)
    );
    assert_eq!(
        (limits.soft.min_rate_ul_h, limits.soft.max_rate_ul_h),
        (167, 750)
    );

    // Another institution's administrator cannot withdraw it; this one can,
    // and then no order names it.
    add_admin_at(&app, "elsewhere", "Other Clinic").await;
    let other = Browser::logged_in(&app, "elsewhere").await;
    let other_csrf = other.csrf("/admin").await;
    let path = format!("/admin/drugs/{}/withdraw", drug.0);
    let refused = other.post(&path, &[("csrf", &other_csrf)]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(!app.store.drugs("Test Clinic").await.unwrap()[0].withdrawn);
    let admin_csrf = admin.csrf("/admin").await;
    let withdrawn = admin.post(&path, &[("csrf", &admin_csrf)]).await;
    assert_eq!(withdrawn.status, 303, "{}", withdrawn.body);
    let refused = post(order("120", "480")).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("has been withdrawn from the drug library"),
        "{}",
        refused.body
    );
    assert_eq!(versions(&app).await.len(), 3);
    let actions = app.audit_actions(&app.a).await;
    assert!(
        actions.iter().any(|a| a == "soft_limit_confirmed"),
        "{actions:?}"
    );
}

async fn a_new_patient_has_a_record_number_and_date_of_birth_shown_on_every_row(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_admin(&app).await;
    let admin = Browser::logged_in(&app, "root").await;
    let create = |record: &'static str, born: &'static str, username: &'static str| {
        let admin = &admin;
        async move {
            let csrf = admin.csrf("/admin").await;
            let form = [
                ("csrf", csrf.as_str()),
                ("username", username),
                ("first_name", "Dora"),
                ("last_name", "Lee"),
                ("record_number", record),
                ("birth_date", born),
                ("physician", "dr.house"),
                ("password", "a long enough password 42"),
            ];
            admin.post("/admin/patients", &form).await
        }
    };
    for (record, born, why) in [
        ("MRN 7", "1956-04-23", "record number is 1 to 32"),
        ("MRN-7", "1956-02-30", "is not a date"),
        ("MRN-7", "2999-01-01", "is after today"),
    ] {
        let refused = create(record, born, "dora").await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.body.contains(why), "{why}: {}", refused.body);
    }
    assert!(
        app.store.patient_id("dora").await.is_err(),
        "nothing created"
    );
    let made = create("MRN-7", "1956-04-23", "dora").await;
    assert_eq!(made.status, 303, "{}", made.body);
    let house = Browser::logged_in(&app, "dr.house").await;
    let dashboard = house.get("/dashboard").await;
    assert!(
        dashboard
            .body
            .contains("record MRN-7 · born 23 Apr 1956 · username dora"),
        "{}",
        dashboard.body
    );
    // A patient made before identifiers were kept says so.
    assert!(
        dashboard
            .body
            .contains("no record number · date of birth not recorded · username alice")
    );
    let page = house.get("/patients/dora").await;
    assert!(
        page.body.contains("record MRN-7 · born 23 Apr 1956"),
        "{}",
        page.body
    );
}
