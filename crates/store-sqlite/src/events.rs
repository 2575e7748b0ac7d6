//! The SQL of reports, the event history and alarm acknowledgement.

use async_trait::async_trait;
use infusion_protocol::{Alarm, Event, PatientId, StateChange, WireEvent};
use infusion_store::{
    AlarmFound, Columns, DeviceId, EventRow, Events, NewToken, ReportOutcome, Reporter,
    StoreResult, StoredEvent, Team, TokenHash, acknowledge, by_priority, has_alarm, not_stored_now,
    reported,
};
use rusqlite::{Connection, params};

use crate::SqliteStore;
use crate::alarms::team_of;
use crate::rows::{all, one, patient_id, stored_patient};
use crate::tokens::{consume_token, insert_token};
use crate::writer::{Cached, WriteCtx, backend};

fn report(
    cx: &mut WriteCtx<'_>,
    presented: TokenHash,
    patient: PatientId,
    events: &[Event],
    next: NewToken,
    now_ms: i64,
) -> StoreResult<ReportOutcome> {
    let (device, pid, mac) = consume_token(cx, presented, patient, now_ms)?;
    let conn = cx.conn;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO events (device_id, patient_id, seq, uptime_ms, kind, delivered_ul, rate_ul_h,
                index_version, state, alarm, heart_rate_bpm, spo2_pct, tremor_score, received_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (device_id, seq) DO NOTHING",
        )
        .map_err(backend)?;
    let mut stored = Vec::with_capacity(events.len());
    for e in events {
        let w = WireEvent::from(*e);
        let n = insert
            .execute(params![
                device,
                pid,
                w.seq,
                w.uptime_ms as i64,
                w.kind.as_str(),
                w.delivered_ul,
                w.rate_ul_h,
                w.index_version,
                w.state.map(StateChange::as_str),
                w.alarm.map(Alarm::as_str),
                w.heart_rate_bpm,
                w.spo2_pct,
                w.tremor_score,
                now_ms
            ])
            .map_err(backend)?;
        if n == 1 {
            stored.push(e.seq);
        }
    }
    drop(insert);
    let already = stored_at(conn, device, &not_stored_now(events, &stored))?;
    let team = if has_alarm(events) {
        team_of(conn, pid, now_ms)?
    } else {
        Team::NONE
    };
    let by = Reporter {
        patient: patient_id(pid),
        device: DeviceId(device),
        mac: &mac,
        team: &team,
    };
    let (outcome, effects) = reported(events, &stored, &already, &by, now_ms)?;
    cx.apply(effects)?;
    insert_token(conn, &next, device, pid, now_ms)?;
    Ok(outcome)
}

/// The stored events of `device` at the sequence numbers `seqs`.
fn stored_at(conn: &Connection, device: i64, seqs: &[u32]) -> StoreResult<Vec<Event>> {
    let sql = format!(
        "SELECT {} FROM events WHERE device_id = ?1 AND seq = ?2",
        EventRow::COLUMNS
    );
    let mut found = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        if let Some(e) = one(conn, &sql, params![device, seq], |r| EventRow::from_row(r))? {
            found.push(e.event());
        }
    }
    Ok(found)
}

/// Events after `after_id`, oldest first; or with `newest_first`, the
/// newest (and `after_id` ignored).
fn events(
    conn: &Connection,
    pid: i64,
    after_id: i64,
    limit: u32,
    newest_first: bool,
) -> StoreResult<Vec<StoredEvent>> {
    let (after, order) = if newest_first {
        (0, "DESC")
    } else {
        (after_id, "")
    };
    let sql = format!(
        "SELECT {} FROM events WHERE patient_id = ?1 AND id > ?2 ORDER BY id {order} LIMIT ?3",
        EventRow::COLUMNS
    );
    all(conn, &sql, params![pid, after, limit], |r| {
        EventRow::from_row(r)
    })
}

fn open_alarms(conn: &Connection, pid: i64) -> StoreResult<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {} FROM events e WHERE patient_id = ?1 AND kind = 'alarm'
         AND NOT EXISTS (SELECT 1 FROM alarm_acks a WHERE a.event_id = e.id)
         ORDER BY id DESC LIMIT 100",
        EventRow::COLUMNS
    );
    all(conn, &sql, [pid], |r| EventRow::from_row(r)).map(by_priority)
}

fn acknowledge_alarm(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    event_id: i64,
    actor: &str,
    now_ms: i64,
) -> StoreResult<bool> {
    let conn = cx.conn;
    let found = one(
        conn,
        "SELECT alarm, EXISTS (SELECT 1 FROM alarm_acks WHERE event_id = e.id)
         FROM events e WHERE id = ?1 AND patient_id = ?2 AND kind = 'alarm'",
        params![event_id, stored_patient(patient).unwrap_or(-1)],
        |r| {
            Ok(AlarmFound {
                alarm: r.string(0)?,
                acknowledged: r.flag(1)?,
            })
        },
    )?;
    let Some(effects) = acknowledge(found, patient, event_id, actor, now_ms)? else {
        return Ok(false);
    };
    conn.exec(
        "INSERT INTO alarm_acks (event_id, acked_at_ms, acked_by) VALUES (?1, ?2, ?3)",
        params![event_id, now_ms, actor],
    )
    .map_err(backend)?;
    cx.apply(effects)?;
    Ok(true)
}

#[async_trait]
impl Events for SqliteStore {
    async fn report(
        &self,
        presented: TokenHash,
        patient_id: PatientId,
        events: Vec<Event>,
        next: NewToken,
        now_ms: i64,
    ) -> StoreResult<ReportOutcome> {
        self.writer
            .write(move |cx| report(cx, presented, patient_id, &events, next, now_ms))
            .await
    }

    async fn events(
        &self,
        patient_id: PatientId,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        let Some(pid) = stored_patient(patient_id) else {
            return Ok(Vec::new());
        };
        self.readers
            .read(move |conn| events(conn, pid, after_id, limit, false))
            .await
    }

    async fn recent_events(
        &self,
        patient_id: PatientId,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        let Some(pid) = stored_patient(patient_id) else {
            return Ok(Vec::new());
        };
        self.readers
            .read(move |conn| events(conn, pid, 0, limit, true))
            .await
    }

    async fn open_alarms(&self, patient_id: PatientId) -> StoreResult<Vec<StoredEvent>> {
        let Some(pid) = stored_patient(patient_id) else {
            return Ok(Vec::new());
        };
        self.readers.read(move |conn| open_alarms(conn, pid)).await
    }

    async fn acknowledge_alarm(
        &self,
        patient: PatientId,
        event_id: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| acknowledge_alarm(cx, patient, event_id, &actor, now_ms))
            .await
    }
}
