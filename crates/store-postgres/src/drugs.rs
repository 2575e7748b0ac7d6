//! The SQL of the drug library.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    Drug, DrugId, Drugs, NewDrug, StoreError, StoreResult, drug_added, drug_withdrawn,
};
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use crate::audit::apply;
use crate::rows::{Cols, stored_patient};
use crate::{PgStore, db_error};

/// The institution of the patient `$1`.
const PATIENTS_INSTITUTION: &str = "SELECT a.institution_id FROM patients p
    JOIN accounts a ON a.id = p.account_id WHERE p.id = $1";

fn drugs_of(rows: &[PgRow]) -> StoreResult<Vec<Drug>> {
    rows.iter().map(|r| Drug::from_row(&Cols(r))).collect()
}

/// The drug an order names, as the library of `pid`'s institution holds
/// it; `None` when the order names none or the library has no such drug.
pub(crate) async fn drug_for(
    conn: &mut PgConnection,
    pid: i64,
    drug: Option<DrugId>,
) -> StoreResult<Option<Drug>> {
    let Some(id) = drug else { return Ok(None) };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM drugs g WHERE g.institution_id = ({PATIENTS_INSTITUTION}) AND g.id = $2",
        Drug::COLUMNS
    )))
    .bind(pid)
    .bind(id.0)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?
    .map(|r| Drug::from_row(&Cols(&r)))
    .transpose()
}

async fn institution_id(conn: &mut PgConnection, institution: &str) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT id FROM institutions WHERE name = $1")
        .bind(institution)
        .fetch_optional(conn)
        .await
        .map_err(db_error)?
        .ok_or_else(|| StoreError::NotFound(format!("no institution {institution:?}")))
}

async fn library(conn: &mut PgConnection, institution_id: i64) -> StoreResult<Vec<Drug>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM drugs g WHERE g.institution_id = $1
         ORDER BY lower(g.name), g.withdrawn_at_ms IS NOT NULL, g.id DESC",
        Drug::COLUMNS
    )))
    .bind(institution_id)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    drugs_of(&rows)
}

#[async_trait]
impl Drugs for PgStore {
    async fn add_drug(
        &self,
        institution: &str,
        new: NewDrug,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<DrugId> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let inst = institution_id(&mut tx, institution).await?;
        let taken = sqlx::query(
            "SELECT 1 FROM drugs WHERE institution_id = $1 AND lower(name) = lower($2)
               AND withdrawn_at_ms IS NULL",
        )
        .bind(inst)
        .bind(&new.name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .is_some();
        let effects = drug_added(&new, taken, actor, now_ms)?;
        let (h, s) = (&new.hard, &new.soft);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO drugs (institution_id, name, concentration_ug_ml, hard_min_ug_h, hard_max_ug_h,
                                hard_max_ug, soft_min_ug_h, soft_max_ug_h, soft_max_ug, created_at_ms, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(inst)
        .bind(&new.name)
        .bind(i64::from(new.concentration_ug_ml))
        .bind(i64::from(h.min_ug_h))
        .bind(i64::from(h.max_ug_h))
        .bind(i64::from(h.max_ug))
        .bind(i64::from(s.min_ug_h))
        .bind(i64::from(s.max_ug_h))
        .bind(i64::from(s.max_ug))
        .bind(now_ms)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(DrugId(id))
    }

    async fn withdraw_drug(
        &self,
        institution: &str,
        drug: DrugId,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let inst = institution_id(&mut tx, institution).await?;
        let found = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM drugs g WHERE g.institution_id = $1 AND g.id = $2 FOR UPDATE",
            Drug::COLUMNS
        )))
        .bind(inst)
        .bind(drug.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .map(|r| Drug::from_row(&Cols(&r)))
        .transpose()?;
        let effects = drug_withdrawn(found.as_ref(), actor, now_ms)?;
        sqlx::query("UPDATE drugs SET withdrawn_at_ms = $2 WHERE id = $1")
            .bind(drug.0)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn drugs(&self, institution: &str) -> StoreResult<Vec<Drug>> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        let inst = institution_id(&mut conn, institution).await?;
        library(&mut conn, inst).await
    }

    async fn drugs_for(&self, patient: PatientId) -> StoreResult<Vec<Drug>> {
        let Some(pid) = stored_patient(patient) else {
            return Ok(Vec::new());
        };
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        let inst: Option<Option<i64>> = sqlx::query_scalar(PATIENTS_INSTITUTION)
            .bind(pid)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
        match inst.flatten() {
            Some(i) => library(&mut conn, i).await,
            None => Ok(Vec::new()),
        }
    }
}
