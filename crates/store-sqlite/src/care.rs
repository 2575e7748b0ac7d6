//! The SQL of unbinding a pump and moving a patient to another physician.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    Care, MovingPatient, PhysicianFound, StoreError, StoreResult, moved, stored_patient, unbound,
};
use rusqlite::{OptionalExtension, params};

use crate::SqliteStore;
use crate::accounts::username_of;
use crate::writer::{Cached, WriteCtx, backend};

fn unbind_device(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let conn = cx.conn;
    let username = username_of(conn, patient)?;
    let pid = stored_patient(patient).unwrap_or(-1);
    let mac: Option<String> = conn
        .row(
            "SELECT mac FROM devices WHERE patient_id = ?1 AND retired_at_ms IS NULL",
            [pid],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    let effects = unbound(mac.as_deref(), patient, &username, actor, now_ms)?;
    conn.exec(
        "UPDATE devices SET retired_at_ms = ?2 WHERE patient_id = ?1 AND retired_at_ms IS NULL",
        params![pid, now_ms],
    )
    .map_err(backend)?;
    cx.apply(effects)
}

fn move_patient(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    physician: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let conn = cx.conn;
    let pid = stored_patient(patient).unwrap_or(-1);
    let row: (String, Option<i64>, String) = conn
        .row(
            "SELECT a.username, a.institution_id, ph.username FROM patients p
             JOIN accounts a ON a.id = p.account_id JOIN accounts ph ON ph.id = p.physician_id
             WHERE p.id = ?1",
            [pid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("no patient {}", patient.0)))?;
    let to: Option<(i64, String, Option<i64>)> = conn
        .row(
            "SELECT id, username, institution_id FROM accounts
             WHERE username = ?1 AND role = 'physician'",
            [physician],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(backend)?;
    let p = MovingPatient::from_row(patient, row);
    let found = to.map(PhysicianFound::from_row);
    let (to, effects) = moved(&p, found.as_ref(), physician, actor, now_ms)?;
    conn.exec(
        "UPDATE patients SET physician_id = ?2 WHERE id = ?1",
        params![pid, to.0],
    )
    .map_err(backend)?;
    cx.apply(effects)
}

#[async_trait]
impl Care for SqliteStore {
    async fn unbind_device(&self, patient: PatientId, actor: &str, now_ms: i64) -> StoreResult<()> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| unbind_device(cx, patient, &actor, now_ms))
            .await
    }

    async fn move_patient(
        &self,
        patient: PatientId,
        physician: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (physician, actor) = (physician.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| move_patient(cx, patient, &physician, &actor, now_ms))
            .await
    }
}
