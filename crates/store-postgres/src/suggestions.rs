//! The SQL of suggestions and of decisions on them.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    Columns, Decision, NewSuggestion, Standing, StoreResult, SuggestPlan, Suggestion,
    SuggestionStatus, Suggestions, Verdict, suggest, suggested,
};

use crate::accounts::lock_patient;
use crate::audit::apply;
use crate::drugs::drug_for;
use crate::rows::{Cols, get, stored_patient};
use crate::treatment::{current_prescription, insert_prescription, limits_of};
use crate::{PgStore, db_error};

#[async_trait]
impl Suggestions for PgStore {
    async fn suggest(
        &self,
        patient: PatientId,
        s: NewSuggestion,
        now_ms: i64,
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        lock_patient(&mut tx, patient).await?;
        let pid = patient.0 as i64;
        let current = current_prescription(&mut tx, pid)
            .await?
            .map_or(0, |c| c.version);
        let limits = limits_of(&mut tx, pid).await?.hard;
        let pending = sqlx::query(
            "SELECT id, based_on_version FROM suggestions WHERE patient_id = $1 AND status = 'pending'",
        )
        .bind(pid)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .map(|r| Ok::<_, infusion_store::StoreError>((get(&r, 0)?, Cols(&r).u32(1)?)))
        .transpose()?;
        let SuggestPlan::Insert { supersede } = suggest(&s, current, &limits, pending)? else {
            return Ok(None);
        };
        if let Some(old) = supersede {
            sqlx::query("UPDATE suggestions SET status = $3, decided_at_ms = $2 WHERE id = $1")
                .bind(old)
                .bind(now_ms)
                .bind(SuggestionStatus::Superseded.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO suggestions (patient_id, based_on_version, volume_ul, rate_ul_h, reason, created_at_ms, status)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending') RETURNING id",
        )
        .bind(pid)
        .bind(i64::from(s.based_on_version))
        .bind(i64::from(s.volume_ul))
        .bind(i64::from(s.rate_ul_h))
        .bind(&s.reason)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        apply(&mut tx, suggested(patient, id, &s, now_ms)).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(id))
    }

    async fn pending_suggestions(&self, patient: PatientId) -> StoreResult<Vec<Suggestion>> {
        let Some(pid) = stored_patient(patient) else {
            return Ok(Vec::new());
        };
        sqlx::query(
            "SELECT id, created_at_ms, based_on_version, volume_ul, rate_ul_h, reason FROM suggestions
             WHERE patient_id = $1 AND status = 'pending' ORDER BY id DESC",
        )
        .bind(pid)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| Suggestion::from_row(&Cols(r)))
        .collect()
    }

    async fn decide_suggestion(&self, verdict: Verdict) -> StoreResult<Decision> {
        let (patient, id, now_ms) = (verdict.patient, verdict.id, verdict.at_ms);
        let actor = verdict.actor.as_str();
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        lock_patient(&mut tx, patient).await?;
        let pid = patient.0 as i64;
        let pending = sqlx::query(
            "SELECT based_on_version, volume_ul, rate_ul_h, reason FROM suggestions
             WHERE id = $1 AND patient_id = $2 AND status = 'pending'",
        )
        .bind(id)
        .bind(pid)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .map(|r| NewSuggestion::at(&Cols(&r), 0))
        .transpose()?;
        let current = current_prescription(&mut tx, pid).await?;
        let limits = limits_of(&mut tx, pid).await?;
        let drug = drug_for(&mut tx, pid, current.as_ref().and_then(|c| c.drug)).await?;
        let read = Standing {
            limits: &limits,
            current: current.as_ref(),
            drug: drug.as_ref(),
        };
        let decided = verdict.decide(pending.as_ref(), read)?;
        if let Some((version, p)) = &decided.prescription {
            insert_prescription(&mut tx, patient, *version, p, actor, now_ms).await?;
        }
        let approved_version = decided.prescription.as_ref().map(|(v, _)| i64::from(*v));
        sqlx::query(
            "UPDATE suggestions SET status = $2, decided_at_ms = $3, decided_by = $4, approved_version = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(decided.status.as_str())
        .bind(now_ms)
        .bind(actor)
        .bind(approved_version)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        apply(&mut tx, decided.effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(decided.decision)
    }
}
