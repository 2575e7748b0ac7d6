//! `infusion admin verify-audit` against tampering done the way an insider
//! would do it: straight in the database, around the application, with
//! the append-only triggers switched off. Each case starts from a fresh,
//! intact log on each backend, changes it one way, and expects the verdict
//! to name the rows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use infusion_protocol::{InfusionState, PatientLimits};
use infusion_store::NewPrescription;
use infusion_store::audit_chain::{GENESIS, chain_hash};
use infusion_testkit::{Backend, TestDb, patient_id, seed_patient, seed_physician};
use serde_json::Value;

infusion_testkit::backend_tests!(
    the_application_cannot_change_or_delete_audit_rows,
    verify_audit_names_each_edited_deleted_and_appended_row,
    a_chain_recomputed_from_scratch_is_caught_by_an_anchor,
);

/// A fresh database with a physician, a patient and five prescription
/// versions: ten audit rows or so.
async fn seeded(backend: Backend) -> TestDb {
    let db = TestDb::open(backend).await;
    let hash = infusion_server::password::PasswordParams::INSECURE_FAST
        .hash_blocking("a long enough password")
        .unwrap();
    seed_physician(&*db.store, "doc", &hash).await;
    let limits = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 10_000,
        max_volume_ul: 10_000,
    };
    seed_patient(
        &*db.store,
        "pat",
        "Pat",
        "doc",
        &hash,
        "02:00:00:00:00:01",
        limits,
    )
    .await;
    for v in 1..=5u32 {
        db.store
            .set_prescription(
                patient_id(&*db.store, "pat").await,
                NewPrescription {
                    volume_ul: 1_000 * v,
                    rate_ul_h: 1_000 * v,
                    state: InfusionState::Run,
                    drug: None,
                },
                "user:doc",
                i64::from(v),
            )
            .await
            .unwrap();
    }
    db
}

/// Runs SQL on the database as its owner would, with the audit triggers
/// off (SQLite: dropped; PostgreSQL: disabled by the tables' owner). With
/// `bypass` false, the triggers stay and the error (if any) is returned.
async fn tamper(db: &TestDb, sql: &str, bypass: bool) -> Result<(), String> {
    match db.url.strip_prefix("sqlite://") {
        Some(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            if bypass {
                conn.execute_batch(
                    "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;",
                )
                .unwrap();
            }
            conn.execute_batch(sql).map_err(|e| e.to_string())
        }
        None => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            if bypass {
                // What the tables' owner may do (no superuser needed).
                sqlx::raw_sql("ALTER TABLE audit DISABLE TRIGGER USER")
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut conn)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }
}

/// `admin verify-audit --json`: (succeeded, the verdict).
fn verify(db: &TestDb, anchor: Option<&str>) -> (bool, Value) {
    let mut args = vec!["--json", "admin", "verify-audit"];
    if let Some(a) = anchor {
        args.extend(["--anchor", a]);
    }
    let out = common::command(&args)
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let verdict: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), verdict)
}

fn faults(v: &Value) -> Vec<String> {
    v["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

async fn the_application_cannot_change_or_delete_audit_rows(backend: Backend) {
    let db = seeded(backend).await;
    for sql in [
        "UPDATE audit SET detail = 'nothing happened' WHERE id = 2",
        "DELETE FROM audit WHERE id = 2",
        "DELETE FROM audit_head",
    ] {
        let err = tamper(&db, sql, false).await.expect_err(sql);
        assert!(
            err.contains("append-only") || err.contains("kept"),
            "{sql}: {err}"
        );
    }
    let (ok, v) = verify(&db, None);
    assert!(ok && v["intact"] == true, "{v}");
}

async fn verify_audit_names_each_edited_deleted_and_appended_row(backend: Backend) {
    let db = seeded(backend).await;
    let (ok, v) = verify(&db, None);
    assert!(ok, "{v}");
    assert_eq!(v["intact"], true);
    let rows = v["rows"].as_u64().unwrap() as i64;
    assert!(rows >= 7, "{v}");
    let ids: Vec<i64> = db
        .store
        .audit_chain(0, 1_000)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    let (third, fourth, fifth, last) = (ids[2], ids[3], ids[4], ids[ids.len() - 1]);
    let before_last = ids[ids.len() - 2];
    let cases = [
        (
            format!("UPDATE audit SET detail = 'volume 1 µL' WHERE id = {fourth}"),
            format!("row {fourth} was edited"),
        ),
        (
            format!("DELETE FROM audit WHERE id = {fourth}"),
            format!("between rows {third} and {fifth}"),
        ),
        (
            format!("DELETE FROM audit WHERE id = {last}"),
            format!("rows after {before_last} up to {last} were deleted"),
        ),
        (
            format!(
                "INSERT INTO audit (id, at_ms, actor, action, patient_id, detail) {}
                 VALUES ({}, 9, 'user:doc', 'prescription_changed', NULL, 'forged')",
                match backend {
                    Backend::Sqlite => "",
                    Backend::Postgres => "OVERRIDING SYSTEM VALUE",
                },
                last + 100
            ),
            format!("row {} follows the recorded head", last + 100),
        ),
    ];
    for (sql, expected) in cases {
        let db = seeded(backend).await;
        tamper(&db, &sql, true).await.unwrap();
        let (ok, v) = verify(&db, None);
        assert!(!ok, "{sql}: {v}");
        assert_eq!(v["intact"], false);
        let found = faults(&v);
        assert!(
            found.iter().any(|f| f.contains(&expected)),
            "{sql}: expected {expected:?} in {found:?}"
        );
    }
}

async fn a_chain_recomputed_from_scratch_is_caught_by_an_anchor(backend: Backend) {
    let db = seeded(backend).await;
    let (_, before) = verify(&db, None);
    let anchor = before["head_hash"].as_str().unwrap().to_owned();
    // The insider edits row 2, then recomputes every hash and the head, so
    // the chain is consistent again.
    let mut rows = db.store.audit_chain(0, 1_000).await.unwrap();
    rows[1].entry.detail = "rewritten".into();
    let mut prev = GENESIS;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let blob = |b: &[u8]| match backend {
        Backend::Sqlite => format!("X'{}'", hex(b)),
        Backend::Postgres => format!("'\\x{}'::bytea", hex(b)),
    };
    let mut sql = String::new();
    for r in &rows {
        let h = chain_hash(&prev, &r.entry);
        sql.push_str(&format!(
            "UPDATE audit SET detail = '{}', prev_hash = {}, hash = {} WHERE id = {};\n",
            r.entry.detail,
            blob(&prev),
            blob(&h),
            r.id
        ));
        prev = h;
    }
    sql.push_str(&format!(
        "UPDATE audit_head SET hash = {} WHERE id = 1;",
        blob(&prev)
    ));
    tamper(&db, &sql, true).await.unwrap();
    let (ok, v) = verify(&db, None);
    assert!(ok, "without an anchor the rewrite is consistent: {v}");
    let (ok, v) = verify(&db, Some(&anchor));
    assert!(!ok, "{v}");
    assert!(faults(&v).iter().any(|f| f.contains("anchor")), "{v}");
    // On the untouched log, the anchor is found.
    let clean = seeded(backend).await;
    let (_, c) = verify(&clean, None);
    let (ok, v) = verify(&clean, c["head_hash"].as_str());
    assert!(ok, "{v}");
}
