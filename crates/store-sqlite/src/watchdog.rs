//! The SQL of the watchdog's sweep for silent pumps.

use std::sync::LazyLock;

use async_trait::async_trait;
use infusion_store::{
    Columns, DeviceId, PUMP_SILENT, SHOULD_POLL, Silence, StoreResult, Swept, Team, Watchdog,
    stored_patient, swept,
};
use rusqlite::params;

use crate::SqliteStore;
use crate::alarms::team_of;
use crate::rows::{Cols, all, patient_id};
use crate::writer::WriteCtx;

/// Raises the silences of this sweep: ?1 now, ?2 the last time a pump
/// must have been heard from.
static RAISE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO server_alarms (patient_id, device_id, kind, raised_at_ms, last_heard_ms)
         SELECT d.patient_id, d.id, '{PUMP_SILENT}', ?1, d.last_seen_ms
         FROM devices d JOIN patients p ON p.id = d.patient_id JOIN accounts a ON a.id = p.account_id
         WHERE {SHOULD_POLL} AND d.last_seen_ms < ?2
           AND NOT EXISTS (SELECT 1 FROM server_alarms s
                           WHERE s.device_id = d.id AND s.cleared_at_ms IS NULL)
         ON CONFLICT DO NOTHING
         RETURNING patient_id, device_id, last_heard_ms, id"
    )
});

/// Clears the silences whose pump was heard from since, or unbound: ?1 now.
const CLEAR: &str = "UPDATE server_alarms SET cleared_at_ms = ?1
    WHERE cleared_at_ms IS NULL AND EXISTS (
        SELECT 1 FROM devices d WHERE d.id = server_alarms.device_id
          AND (d.retired_at_ms IS NOT NULL OR d.last_seen_ms > server_alarms.last_heard_ms))
    RETURNING patient_id, device_id, last_heard_ms, id";

fn silence(c: &Cols<'_, '_>) -> StoreResult<Silence> {
    Ok(Silence {
        patient: patient_id(c.i64(0)?),
        device: DeviceId(c.i64(1)?),
        last_heard_ms: c.i64(2)?,
        alarm: c.i64(3)?,
        team: Team::NONE,
    })
}

fn sweep(cx: &mut WriteCtx<'_>, now_ms: i64, silent_after_ms: i64) -> StoreResult<Swept> {
    let cutoff = now_ms.saturating_sub(silent_after_ms);
    let mut s = Swept {
        cleared: all(cx.conn, CLEAR, params![now_ms], silence)?,
        raised: all(cx.conn, &RAISE, params![now_ms, cutoff], silence)?,
    };
    for r in &mut s.raised {
        r.team = team_of(cx.conn, stored_patient(r.patient).unwrap_or(-1), now_ms)?;
    }
    cx.apply(swept(&s, now_ms))?;
    Ok(s)
}

#[async_trait]
impl Watchdog for SqliteStore {
    async fn sweep_silent(&self, now_ms: i64, silent_after_ms: i64) -> StoreResult<Swept> {
        self.writer
            .write(move |cx| sweep(cx, now_ms, silent_after_ms))
            .await
    }
}
