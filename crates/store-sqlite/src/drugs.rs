//! The SQL of the drug library.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    Drug, DrugId, Drugs, NewDrug, StoreError, StoreResult, drug_added, drug_withdrawn,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::SqliteStore;
use crate::rows::{all, one, stored_patient};
use crate::writer::{Cached, WriteCtx, backend};

/// The institution of the patient `?1`.
const PATIENTS_INSTITUTION: &str = "SELECT a.institution_id FROM patients p
    JOIN accounts a ON a.id = p.account_id WHERE p.id = ?1";

/// The drug an order names, as the library of `pid`'s institution holds
/// it; `None` when the order names none or the library has no such drug.
pub(crate) fn drug_for(
    conn: &Connection,
    pid: i64,
    drug: Option<DrugId>,
) -> StoreResult<Option<Drug>> {
    let Some(id) = drug else { return Ok(None) };
    let sql = format!(
        "SELECT {} FROM drugs g WHERE g.institution_id = ({PATIENTS_INSTITUTION}) AND g.id = ?2",
        Drug::COLUMNS
    );
    one(conn, &sql, params![pid, id.0], |r| Drug::from_row(r))
}

fn institution_id(conn: &Connection, institution: &str) -> StoreResult<i64> {
    conn.row(
        "SELECT id FROM institutions WHERE name = ?1",
        [institution],
        |r| r.get(0),
    )
    .optional()
    .map_err(backend)?
    .ok_or_else(|| StoreError::NotFound(format!("no institution {institution:?}")))
}

fn library(conn: &Connection, institution_id: i64) -> StoreResult<Vec<Drug>> {
    let sql = format!(
        "SELECT {} FROM drugs g WHERE g.institution_id = ?1
         ORDER BY lower(g.name), g.withdrawn_at_ms IS NOT NULL, g.id DESC",
        Drug::COLUMNS
    );
    all(conn, &sql, [institution_id], |r| Drug::from_row(r))
}

fn add_drug(
    cx: &mut WriteCtx<'_>,
    institution: &str,
    new: &NewDrug,
    actor: &str,
    now_ms: i64,
) -> StoreResult<DrugId> {
    let conn = cx.conn;
    let inst = institution_id(conn, institution)?;
    let taken = conn
        .row(
            "SELECT 1 FROM drugs WHERE institution_id = ?1 AND lower(name) = lower(?2)
               AND withdrawn_at_ms IS NULL",
            params![inst, new.name],
            |_| Ok(()),
        )
        .optional()
        .map_err(backend)?
        .is_some();
    let effects = drug_added(new, taken, actor, now_ms)?;
    let (h, s) = (&new.hard, &new.soft);
    conn.exec(
        "INSERT INTO drugs (institution_id, name, concentration_ug_ml, hard_min_ug_h, hard_max_ug_h,
                            hard_max_ug, soft_min_ug_h, soft_max_ug_h, soft_max_ug, created_at_ms, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            inst,
            new.name,
            new.concentration_ug_ml,
            h.min_ug_h,
            h.max_ug_h,
            h.max_ug,
            s.min_ug_h,
            s.max_ug_h,
            s.max_ug,
            now_ms,
            actor
        ],
    )
    .map_err(backend)?;
    let id = DrugId(conn.last_insert_rowid());
    cx.apply(effects)?;
    Ok(id)
}

fn withdraw_drug(
    cx: &mut WriteCtx<'_>,
    institution: &str,
    drug: DrugId,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let conn = cx.conn;
    let inst = institution_id(conn, institution)?;
    let sql = format!(
        "SELECT {} FROM drugs g WHERE g.institution_id = ?1 AND g.id = ?2",
        Drug::COLUMNS
    );
    let found = one(conn, &sql, params![inst, drug.0], |r| Drug::from_row(r))?;
    let effects = drug_withdrawn(found.as_ref(), actor, now_ms)?;
    conn.exec(
        "UPDATE drugs SET withdrawn_at_ms = ?2 WHERE id = ?1",
        params![drug.0, now_ms],
    )
    .map_err(backend)?;
    cx.apply(effects)
}

#[async_trait]
impl Drugs for SqliteStore {
    async fn add_drug(
        &self,
        institution: &str,
        drug: NewDrug,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<DrugId> {
        let (institution, actor) = (institution.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| add_drug(cx, &institution, &drug, &actor, now_ms))
            .await
    }

    async fn withdraw_drug(
        &self,
        institution: &str,
        drug: DrugId,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (institution, actor) = (institution.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| withdraw_drug(cx, &institution, drug, &actor, now_ms))
            .await
    }

    async fn drugs(&self, institution: &str) -> StoreResult<Vec<Drug>> {
        let institution = institution.to_owned();
        self.readers
            .read(move |conn| library(conn, institution_id(conn, &institution)?))
            .await
    }

    async fn drugs_for(&self, patient: PatientId) -> StoreResult<Vec<Drug>> {
        let Some(pid) = stored_patient(patient) else {
            return Ok(Vec::new());
        };
        self.readers
            .read(move |conn| {
                let inst: Option<i64> = conn
                    .row(PATIENTS_INSTITUTION, [pid], |r| r.get(0))
                    .optional()
                    .map_err(backend)?
                    .flatten();
                match inst {
                    Some(i) => library(conn, i),
                    None => Ok(Vec::new()),
                }
            })
            .await
    }
}
