//! The SQL of a board: three statements over an array of patients.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{Board, Boards, EventRow, StoreResult, patient_at, stored_patient};

use crate::rows::Cols;
use crate::{PgStore, db_error};

#[async_trait]
impl Boards for PgStore {
    async fn board(&self, patients: &[PatientId], recent: u32) -> StoreResult<Board> {
        let ids: Vec<i64> = patients.iter().filter_map(|p| stored_patient(*p)).collect();
        let mut board = Board::default();
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        // Each patient's newest events, each an index walk of `recent`
        // rows, whatever the patient's history.
        let recent_sql = format!(
            "SELECT e.* FROM unnest($1::bigint[]) AS ids(pid) CROSS JOIN LATERAL (
                 SELECT {}, patient_id FROM events WHERE patient_id = ids.pid
                 ORDER BY id DESC LIMIT $2) e",
            EventRow::COLUMNS
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(recent_sql))
            .bind(&ids)
            .bind(i64::from(recent))
            .fetch_all(&mut *conn)
            .await
            .map_err(db_error)?;
        for r in &rows {
            let c = Cols(r);
            Board::push(
                &mut board.recent,
                patient_at(&c, 14)?,
                EventRow::from_row(&c)?,
            );
        }
        let alarms_sql = format!(
            "SELECT {}, patient_id FROM events e
             WHERE patient_id = ANY($1) AND kind = 'alarm'
               AND NOT EXISTS (SELECT 1 FROM alarm_acks a WHERE a.event_id = e.id)",
            EventRow::COLUMNS
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(alarms_sql))
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_error)?;
        for r in &rows {
            let c = Cols(r);
            Board::push(
                &mut board.alarms,
                patient_at(&c, 14)?,
                EventRow::from_row(&c)?,
            );
        }
        board.sort_alarms();
        let pending: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT patient_id, count(*) FROM suggestions
             WHERE patient_id = ANY($1) AND status = 'pending' GROUP BY patient_id",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
        for (p, n) in pending {
            board
                .pending
                .insert(PatientId(p as u64), usize::try_from(n).unwrap_or(0));
        }
        Ok(board)
    }
}
