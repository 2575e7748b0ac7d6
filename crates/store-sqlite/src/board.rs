//! The SQL of a board: three statements over a JSON list of patients.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{Board, Boards, Columns, EventRow, StoreResult, patient_at, stored_patient};
use rusqlite::params;

use crate::SqliteStore;
use crate::rows::all;

#[async_trait]
impl Boards for SqliteStore {
    async fn board(&self, patients: &[PatientId], recent: u32) -> StoreResult<Board> {
        // The ids as a JSON array, for `json_each` (integers only).
        let ids: Vec<String> = patients
            .iter()
            .filter_map(|p| stored_patient(*p))
            .map(|id| id.to_string())
            .collect();
        let ids = format!("[{}]", ids.join(","));
        self.readers
            .read(move |conn| {
                let mut board = Board::default();
                // Each patient's newest events: the subquery walks the
                // patient's index backwards `recent` rows, whatever the
                // patient's history.
                let sql = format!(
                    "WITH ids(pid) AS (SELECT value FROM json_each(?1))
                     SELECT {}, patient_id FROM ids JOIN events ON events.id IN (
                         SELECT x.id FROM events x WHERE x.patient_id = ids.pid
                         ORDER BY x.id DESC LIMIT ?2)
                     ORDER BY patient_id, id DESC",
                    EventRow::COLUMNS
                );
                for (p, e) in all(conn, &sql, params![ids, recent], |r| {
                    Ok((patient_at(r, 14)?, EventRow::from_row(r)?))
                })? {
                    Board::push(&mut board.recent, p, e);
                }
                let sql = format!(
                    "SELECT {}, patient_id FROM events e
                     WHERE patient_id IN (SELECT value FROM json_each(?1)) AND kind = 'alarm'
                       AND NOT EXISTS (SELECT 1 FROM alarm_acks a WHERE a.event_id = e.id)",
                    EventRow::COLUMNS
                );
                for (p, e) in all(conn, &sql, [&ids], |r| {
                    Ok((patient_at(r, 14)?, EventRow::from_row(r)?))
                })? {
                    Board::push(&mut board.alarms, p, e);
                }
                board.sort_alarms();
                for (p, n) in all(
                    conn,
                    "SELECT patient_id, count(*) FROM suggestions
                     WHERE patient_id IN (SELECT value FROM json_each(?1)) AND status = 'pending'
                     GROUP BY patient_id",
                    [&ids],
                    |r| Ok((patient_at(r, 0)?, r.i64(1)?)),
                )? {
                    board.pending.insert(p, usize::try_from(n).unwrap_or(0));
                }
                Ok(board)
            })
            .await
    }
}
