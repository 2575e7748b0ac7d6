//! The SQL of the watchdog's sweep for silent pumps. Instances sweep
//! concurrently: the unique index on an open alarm makes a second raise
//! of one silence do nothing, and a clear locks the row it ends, so each
//! is recorded once.

use std::sync::LazyLock;

use async_trait::async_trait;
use infusion_store::{
    Columns, DeviceId, PUMP_SILENT, SHOULD_POLL, Silence, StoreResult, Swept, Team, Watchdog,
    stored_patient, swept,
};
use sqlx::postgres::PgRow;

use crate::alarms::team_of;
use crate::audit::apply;
use crate::rows::{Cols, patient_id};
use crate::{PgStore, db_error};

/// Raises the silences of this sweep: $1 now, $2 the last time a pump
/// must have been heard from.
static RAISE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO server_alarms (patient_id, device_id, kind, raised_at_ms, last_heard_ms)
         SELECT d.patient_id, d.id, '{PUMP_SILENT}', $1, d.last_seen_ms
         FROM devices d JOIN patients p ON p.id = d.patient_id JOIN accounts a ON a.id = p.account_id
         WHERE {SHOULD_POLL} AND d.last_seen_ms < $2
           AND NOT EXISTS (SELECT 1 FROM server_alarms s
                           WHERE s.device_id = d.id AND s.cleared_at_ms IS NULL)
         ON CONFLICT DO NOTHING
         RETURNING patient_id, device_id, last_heard_ms, id"
    )
});

/// Clears the silences whose pump was heard from since, or unbound: $1 now.
const CLEAR: &str = "UPDATE server_alarms s SET cleared_at_ms = $1
    FROM devices d
    WHERE s.cleared_at_ms IS NULL AND d.id = s.device_id
      AND (d.retired_at_ms IS NOT NULL OR d.last_seen_ms > s.last_heard_ms)
    RETURNING s.patient_id, s.device_id, s.last_heard_ms, s.id";

fn silences(rows: &[PgRow]) -> StoreResult<Vec<Silence>> {
    rows.iter()
        .map(|r| {
            let c = Cols(r);
            Ok(Silence {
                patient: patient_id(c.i64(0)?),
                device: DeviceId(c.i64(1)?),
                last_heard_ms: c.i64(2)?,
                alarm: c.i64(3)?,
                team: Team::NONE,
            })
        })
        .collect()
}

#[async_trait]
impl Watchdog for PgStore {
    async fn sweep_silent(&self, now_ms: i64, silent_after_ms: i64) -> StoreResult<Swept> {
        let cutoff = now_ms.saturating_sub(silent_after_ms);
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let cleared = sqlx::query(CLEAR)
            .bind(now_ms)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        let raised = sqlx::query(sqlx::AssertSqlSafe(RAISE.as_str()))
            .bind(now_ms)
            .bind(cutoff)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        let mut s = Swept {
            raised: silences(&raised)?,
            cleared: silences(&cleared)?,
        };
        for r in &mut s.raised {
            r.team = team_of(&mut tx, stored_patient(r.patient).unwrap_or(-1), now_ms).await?;
        }
        apply(&mut tx, swept(&s, now_ms)).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(s)
    }
}
