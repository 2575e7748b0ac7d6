//! The SQL of suggestions and of decisions on them.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    Columns, Decision, NewSuggestion, Standing, StoreError, StoreResult, SuggestPlan, Suggestion,
    SuggestionStatus, Suggestions, Verdict, suggest, suggested,
};
use rusqlite::params;

use crate::SqliteStore;
use crate::accounts::username_of;
use crate::drugs::drug_for;
use crate::rows::{all, one, stored_patient};
use crate::treatment::{current_prescription, insert_prescription, limits_of};
use crate::writer::{Cached, WriteCtx, backend};

fn make_suggestion(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    s: NewSuggestion,
    now_ms: i64,
) -> StoreResult<Option<i64>> {
    let conn = cx.conn;
    let pid =
        stored_patient(patient).ok_or_else(|| StoreError::NotFound("no such patient".into()))?;
    username_of(conn, patient)?;
    let current = current_prescription(conn, pid)?.map_or(0, |c| c.version);
    let pending = one(
        conn,
        "SELECT id, based_on_version FROM suggestions WHERE patient_id = ?1 AND status = 'pending'",
        [pid],
        |r| Ok((r.i64(0)?, r.u32(1)?)),
    )?;
    let SuggestPlan::Insert { supersede } =
        suggest(&s, current, &limits_of(conn, pid)?.hard, pending)?
    else {
        return Ok(None);
    };
    if let Some(old) = supersede {
        conn.exec(
            "UPDATE suggestions SET status = ?3, decided_at_ms = ?2 WHERE id = ?1",
            params![old, now_ms, SuggestionStatus::Superseded.as_str()],
        )
        .map_err(backend)?;
    }
    conn.exec(
        "INSERT INTO suggestions (patient_id, based_on_version, volume_ul, rate_ul_h, reason, created_at_ms, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')",
        params![pid, s.based_on_version, s.volume_ul, s.rate_ul_h, s.reason, now_ms],
    )
    .map_err(backend)?;
    let id = conn.last_insert_rowid();
    cx.apply(suggested(patient, id, &s, now_ms))?;
    Ok(Some(id))
}

fn decide_suggestion(cx: &mut WriteCtx<'_>, verdict: Verdict) -> StoreResult<Decision> {
    let (conn, patient, id, now_ms) = (cx.conn, verdict.patient, verdict.id, verdict.at_ms);
    let actor = verdict.actor.as_str();
    username_of(conn, patient)?;
    let pid = patient.0 as i64;
    let sql = format!(
        "SELECT {} FROM suggestions WHERE id = ?1 AND patient_id = ?2 AND status = 'pending'",
        NewSuggestion::COLUMNS
    );
    let pending = one(conn, &sql, params![id, pid], |r| NewSuggestion::at(r, 0))?;
    let current = current_prescription(conn, pid)?;
    let limits = limits_of(conn, pid)?;
    let drug = drug_for(conn, pid, current.as_ref().and_then(|c| c.drug))?;
    let read = Standing {
        limits: &limits,
        current: current.as_ref(),
        drug: drug.as_ref(),
    };
    let decided = verdict.decide(pending.as_ref(), read)?;
    if let Some((version, p)) = &decided.prescription {
        insert_prescription(conn, patient, *version, p, actor, now_ms)?;
    }
    let approved_version = decided.prescription.as_ref().map(|(v, _)| *v);
    conn.exec(
        "UPDATE suggestions SET status = ?2, decided_at_ms = ?3, decided_by = ?4, approved_version = ?5 WHERE id = ?1",
        params![id, decided.status.as_str(), now_ms, actor, approved_version],
    )
    .map_err(backend)?;
    cx.apply(decided.effects)?;
    Ok(decided.decision)
}

#[async_trait]
impl Suggestions for SqliteStore {
    async fn suggest(
        &self,
        patient_id: PatientId,
        suggestion: NewSuggestion,
        now_ms: i64,
    ) -> StoreResult<Option<i64>> {
        self.writer
            .write(move |cx| make_suggestion(cx, patient_id, suggestion, now_ms))
            .await
    }

    async fn pending_suggestions(&self, patient_id: PatientId) -> StoreResult<Vec<Suggestion>> {
        let Some(pid) = stored_patient(patient_id) else {
            return Ok(Vec::new());
        };
        self.readers
            .read(move |conn| {
                let sql = format!(
                    "SELECT {} FROM suggestions WHERE patient_id = ?1 AND status = 'pending'
                     ORDER BY id DESC",
                    Suggestion::COLUMNS
                );
                all(conn, &sql, [pid], |r| Suggestion::from_row(r))
            })
            .await
    }

    async fn decide_suggestion(&self, verdict: Verdict) -> StoreResult<Decision> {
        self.writer
            .write(move |cx| decide_suggestion(cx, verdict))
            .await
    }
}
