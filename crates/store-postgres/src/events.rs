//! The SQL of reports, the event history and alarm acknowledgement.

use async_trait::async_trait;
use infusion_protocol::{Alarm, Event, PatientId, StateChange, WireEvent};
use infusion_store::{
    AlarmFound, DeviceId, EventRow, Events, NewToken, ReportOutcome, Reporter, StoreResult,
    StoredEvent, Team, TokenHash, acknowledge, by_priority, has_alarm, not_stored_now, reported,
};
use sqlx::PgPool;

use crate::accounts::lock_patient;
use crate::alarms::team_of;
use crate::audit::apply;
use crate::rows::{Cols, get, stored_patient};
use crate::tokens::{CONSUME, refuse_token};
use crate::{PgStore, db_error};

/// A report's events as parallel columns, for one `UNNEST` insert.
#[derive(Default)]
struct EventColumns {
    seq: Vec<i64>,
    uptime_ms: Vec<i64>,
    kind: Vec<&'static str>,
    delivered_ul: Vec<Option<i64>>,
    rate_ul_h: Vec<Option<i64>>,
    index_version: Vec<Option<i64>>,
    state: Vec<Option<&'static str>>,
    alarm: Vec<Option<&'static str>>,
    heart_rate_bpm: Vec<Option<i32>>,
    spo2_pct: Vec<Option<i16>>,
    tremor_score: Vec<Option<i16>>,
}

impl EventColumns {
    fn of(events: &[Event]) -> EventColumns {
        let mut c = EventColumns::default();
        for e in events {
            let w = WireEvent::from(*e);
            c.seq.push(i64::from(w.seq));
            c.uptime_ms.push(w.uptime_ms as i64);
            c.kind.push(w.kind.as_str());
            c.delivered_ul.push(w.delivered_ul.map(i64::from));
            c.rate_ul_h.push(w.rate_ul_h.map(i64::from));
            c.index_version.push(w.index_version.map(i64::from));
            c.state.push(w.state.map(StateChange::as_str));
            c.alarm.push(w.alarm.map(Alarm::as_str));
            c.heart_rate_bpm.push(w.heart_rate_bpm.map(i32::from));
            c.spo2_pct.push(w.spo2_pct.map(i16::from));
            c.tremor_score.push(w.tremor_score.map(i16::from));
        }
        c
    }
}

async fn report(
    pool: &PgPool,
    presented: TokenHash,
    patient: PatientId,
    events: &[Event],
    next: NewToken,
    now_ms: i64,
) -> StoreResult<ReportOutcome> {
    let Some(pid) = stored_patient(patient) else {
        return Err(refuse_token(pool, presented, patient, now_ms).await);
    };
    let mut tx = pool.begin().await.map_err(db_error)?;
    let consumed = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH {CONSUME} SELECT device_id, mac FROM consumed"
    )))
    .bind(&presented.0[..])
    .bind(pid)
    .bind(now_ms)
    .bind(&next.hash.0[..])
    .bind(next.expires_at_ms)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    let Some(consumed) = consumed else {
        drop(tx);
        return Err(refuse_token(pool, presented, patient, now_ms).await);
    };
    let device: i64 = get(&consumed, 0)?;
    let mac: String = get(&consumed, 1)?;
    let c = EventColumns::of(events);
    let stored: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO events (device_id, patient_id, seq, uptime_ms, kind, delivered_ul, rate_ul_h,
             index_version, state, alarm, heart_rate_bpm, spo2_pct, tremor_score, received_at_ms)
         SELECT $1, $2, e.*, $3 FROM UNNEST($4::bigint[], $5::bigint[], $6::text[], $7::bigint[],
             $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::int[], $13::smallint[],
             $14::smallint[]) AS e
         ON CONFLICT (device_id, seq) DO NOTHING
         RETURNING seq",
    )
    .bind(device)
    .bind(pid)
    .bind(now_ms)
    .bind(&c.seq)
    .bind(&c.uptime_ms)
    .bind(&c.kind)
    .bind(&c.delivered_ul)
    .bind(&c.rate_ul_h)
    .bind(&c.index_version)
    .bind(&c.state)
    .bind(&c.alarm)
    .bind(&c.heart_rate_bpm)
    .bind(&c.spo2_pct)
    .bind(&c.tremor_score)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_error)?;
    let stored: Vec<u32> = stored
        .into_iter()
        .filter_map(|s| u32::try_from(s).ok())
        .collect();
    let repeats: Vec<i64> = not_stored_now(events, &stored)
        .into_iter()
        .map(i64::from)
        .collect();
    let already = if repeats.is_empty() {
        Vec::new()
    } else {
        stored_at(&mut tx, device, &repeats).await?
    };
    let team = if has_alarm(events) {
        team_of(&mut tx, pid, now_ms).await?
    } else {
        Team::NONE
    };
    let by = Reporter {
        patient,
        device: DeviceId(device),
        mac: &mac,
        team: &team,
    };
    let (outcome, effects) = reported(events, &stored, &already, &by, now_ms)?;
    apply(&mut tx, effects).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(outcome)
}

/// The stored events of `device` at the sequence numbers `seqs`.
async fn stored_at(
    tx: &mut sqlx::PgConnection,
    device: i64,
    seqs: &[i64],
) -> StoreResult<Vec<Event>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM events WHERE device_id = $1 AND seq = ANY($2)",
        EventRow::COLUMNS
    )))
    .bind(device)
    .bind(seqs)
    .fetch_all(tx)
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| EventRow::from_row(&Cols(r)).map(|e| e.event()))
    .collect()
}

/// Events after `after_id`, oldest first; or with `newest_first`, the
/// newest (and `after_id` ignored).
async fn events(
    pool: &PgPool,
    patient: PatientId,
    after_id: i64,
    limit: u32,
    newest_first: bool,
) -> StoreResult<Vec<StoredEvent>> {
    let Some(pid) = stored_patient(patient) else {
        return Ok(Vec::new());
    };
    let (after, order) = if newest_first {
        (0, "DESC")
    } else {
        (after_id, "")
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM events WHERE patient_id = $1 AND id > $2 ORDER BY id {order} LIMIT $3",
        EventRow::COLUMNS
    )))
    .bind(pid)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| EventRow::from_row(&Cols(r)))
    .collect()
}

#[async_trait]
impl Events for PgStore {
    async fn report(
        &self,
        presented: TokenHash,
        patient_id: PatientId,
        events: Vec<Event>,
        next: NewToken,
        now_ms: i64,
    ) -> StoreResult<ReportOutcome> {
        report(&self.pool, presented, patient_id, &events, next, now_ms).await
    }

    async fn events(
        &self,
        patient_id: PatientId,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        events(&self.pool, patient_id, after_id, limit, false).await
    }

    async fn recent_events(
        &self,
        patient_id: PatientId,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        events(&self.pool, patient_id, 0, limit, true).await
    }

    async fn open_alarms(&self, patient_id: PatientId) -> StoreResult<Vec<StoredEvent>> {
        let Some(pid) = stored_patient(patient_id) else {
            return Ok(Vec::new());
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM events e WHERE patient_id = $1 AND kind = 'alarm'
             AND NOT EXISTS (SELECT 1 FROM alarm_acks a WHERE a.event_id = e.id)
             ORDER BY id DESC LIMIT 100",
            EventRow::COLUMNS
        )))
        .bind(pid)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| EventRow::from_row(&Cols(r)))
        .collect::<StoreResult<Vec<_>>>()
        .map(by_priority)
    }

    async fn acknowledge_alarm(
        &self,
        patient: PatientId,
        event_id: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // Under the patient's lock, two acknowledgements of one alarm take
        // turns: the second finds the first.
        lock_patient(&mut tx, patient).await?;
        let found = sqlx::query(
            "SELECT alarm, EXISTS (SELECT 1 FROM alarm_acks WHERE event_id = e.id)
             FROM events e WHERE id = $1 AND patient_id = $2 AND kind = 'alarm'",
        )
        .bind(event_id)
        .bind(patient.0 as i64)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .map(|r| {
            Ok::<_, infusion_store::StoreError>(AlarmFound {
                alarm: get(&r, 0)?,
                acknowledged: get(&r, 1)?,
            })
        })
        .transpose()?;
        let Some(effects) = acknowledge(found, patient, event_id, actor, now_ms)? else {
            return Ok(false);
        };
        sqlx::query("INSERT INTO alarm_acks (event_id, acked_at_ms, acked_by) VALUES ($1, $2, $3)")
            .bind(event_id)
            .bind(now_ms)
            .bind(actor)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }
}
