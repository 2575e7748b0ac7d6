//! The SQL of escalations: writing a decision's [`AlarmEffect`]s (each
//! with its notification and recipients, in the decision's transaction),
//! the due steps (each taken by one instance: `FOR UPDATE SKIP LOCKED`),
//! silences, acknowledgements, the patient's nurse and a ward's policy.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    AccountId, AlarmEffect, AlarmRef, Escalation, EscalationRow, Escalations, Member, NoticeEvent,
    Policy, Step, StoreError, StoreResult, TOLD_SQL, Team, WardId, acknowledged, nurse_set,
    policy_set, silenced, step_due, stored_patient, stored_role,
};
use sqlx::PgConnection;

use crate::audit::apply;
use crate::rows::Cols;
use crate::{PgStore, db_error};

/// The store's shared SQL (written with `?N`) in PostgreSQL's `$N`.
fn pg(sql: &str) -> String {
    sql.replace('?', "$")
}

/// The team of patient `pid` at `now_ms`: whom its alarms are told to.
pub(crate) async fn team_of(conn: &mut PgConnection, pid: i64, now_ms: i64) -> StoreResult<Team> {
    let row = sqlx::query(sqlx::AssertSqlSafe(pg(Team::PATIENT_SQL)))
        .bind(pid)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
    let Some(row) = row else {
        return Ok(Team::NONE);
    };
    let mut team = Team::from_row(&Cols(&row))?;
    let ward: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(pg(Team::WARD_NURSES_SQL)))
        .bind(pid)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
    let carers: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(pg(Team::CAREGIVERS_SQL)))
        .bind(pid)
        .bind(now_ms)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
    let member = |(id, username): (i64, String)| Member {
        account: AccountId(id),
        username,
    };
    team.ward_nurses = ward.into_iter().map(member).collect();
    team.caregivers = carers.into_iter().map(member).collect();
    Ok(team)
}

/// Writes one effect of a decision.
pub(crate) async fn write(conn: &mut PgConnection, effect: &AlarmEffect) -> StoreResult<()> {
    match effect {
        AlarmEffect::Raise {
            patient,
            source,
            alarm,
            priority,
            at_ms,
            step,
            next_step_at_ms,
            recipients,
        } => {
            let pid = stored_patient(*patient).unwrap_or(-1);
            let (event, server): (Option<i64>, Option<i64>) = match *source {
                AlarmRef::Reported { device, seq } => (
                    sqlx::query_scalar("SELECT id FROM events WHERE device_id = $1 AND seq = $2")
                        .bind(device.0)
                        .bind(i64::from(seq))
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(db_error)?,
                    None,
                ),
                AlarmRef::Event(id) => (Some(id), None),
                AlarmRef::Server(id) => (None, Some(id)),
                AlarmRef::Escalation(_) => {
                    return Err(StoreError::Backend("a raise names its alarm".into()));
                }
            };
            let esc: Option<i64> = sqlx::query_scalar(
                "INSERT INTO alarm_escalations (patient_id, event_id, server_alarm_id, alarm,
                     priority, raised_at_ms, step, next_step_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(pid)
            .bind(event)
            .bind(server)
            .bind(alarm)
            .bind(priority.as_str())
            .bind(at_ms)
            .bind(step.as_str())
            .bind(next_step_at_ms)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
            if let Some(esc) = esc
                && let Some(id) = notice(conn, esc, NoticeEvent::Raised, *step, *at_ms).await?
            {
                tell(conn, id, recipients).await?;
            }
            Ok(())
        }
        AlarmEffect::End {
            source,
            event,
            by,
            at_ms,
        } => {
            let Some((esc, step)) = open_escalation(conn, source).await? else {
                return Ok(());
            };
            let sql = match event {
                NoticeEvent::Acknowledged => {
                    "UPDATE alarm_escalations SET acknowledged_at_ms = $2, acknowledged_by = $3,
                         next_step_at_ms = NULL WHERE id = $1"
                }
                _ => {
                    "UPDATE alarm_escalations SET cleared_at_ms = $2, next_step_at_ms = NULL
                     WHERE id = $1 AND $3::text IS NULL"
                }
            };
            sqlx::query(sql)
                .bind(esc)
                .bind(at_ms)
                .bind(by)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
            if let Some(id) = notice(conn, esc, *event, step, *at_ms).await? {
                // Everyone told of it learns that it ended.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO notification_recipients (notification_id, account_id)
                     SELECT $2, account_id FROM ({}) r ON CONFLICT DO NOTHING",
                    pg(TOLD_SQL)
                )))
                .bind(esc)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
            }
            Ok(())
        }
        AlarmEffect::Step {
            escalation,
            step,
            next_step_at_ms,
            at_ms,
            recipients,
        } => {
            sqlx::query(
                "UPDATE alarm_escalations SET step = $2, next_step_at_ms = $3 WHERE id = $1",
            )
            .bind(escalation)
            .bind(step.as_str())
            .bind(next_step_at_ms)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
            if let Some(id) =
                notice(conn, *escalation, NoticeEvent::Escalated, *step, *at_ms).await?
            {
                tell(conn, id, recipients).await?;
            }
            Ok(())
        }
        AlarmEffect::Postpone {
            escalation,
            next_step_at_ms,
            silenced,
        } => {
            let (until, by) = silenced.clone().unzip();
            sqlx::query(
                "UPDATE alarm_escalations SET next_step_at_ms = $2,
                     silenced_until_ms = COALESCE($3, silenced_until_ms),
                     silenced_by = COALESCE($4, silenced_by)
                 WHERE id = $1",
            )
            .bind(escalation)
            .bind(next_step_at_ms)
            .bind(until)
            .bind(by)
            .execute(&mut *conn)
            .await
            .map(|_| ())
            .map_err(db_error)
        }
    }
}

/// The open escalation `source` names, locked: its id and the step it
/// told last.
async fn open_escalation(
    conn: &mut PgConnection,
    source: &AlarmRef,
) -> StoreResult<Option<(i64, Step)>> {
    let (filter, a, b) = match *source {
        AlarmRef::Reported { device, seq } => (
            "event_id = (SELECT id FROM events WHERE device_id = $1 AND seq = $2)",
            device.0,
            i64::from(seq),
        ),
        AlarmRef::Event(id) => ("event_id = $1 AND $2 = 0", id, 0),
        AlarmRef::Server(id) => ("server_alarm_id = $1 AND $2 = 0", id, 0),
        AlarmRef::Escalation(id) => ("id = $1 AND $2 = 0", id, 0),
    };
    let row: Option<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, step FROM alarm_escalations
         WHERE {filter} AND acknowledged_at_ms IS NULL AND cleared_at_ms IS NULL FOR UPDATE"
    )))
    .bind(a)
    .bind(b)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    row.map(|(id, step)| {
        Step::parse(&step)
            .map(|s| (id, s))
            .ok_or_else(|| StoreError::Backend(format!("bad stored step {step:?}")))
    })
    .transpose()
}

/// Writes the notification `event` of escalation `esc` for `step`; its id,
/// or `None` when it was written already (by another instance, too).
async fn notice(
    conn: &mut PgConnection,
    esc: i64,
    event: NoticeEvent,
    step: Step,
    at_ms: i64,
) -> StoreResult<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO notifications (escalation_id, event, step, created_at_ms)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(esc)
    .bind(event.as_str())
    .bind(step.as_str())
    .bind(at_ms)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)
}

/// Records `recipients` as whom notification `id` is for.
async fn tell(conn: &mut PgConnection, id: i64, recipients: &[AccountId]) -> StoreResult<()> {
    let ids: Vec<i64> = recipients.iter().map(|a| a.0).collect();
    sqlx::query(
        "INSERT INTO notification_recipients (notification_id, account_id)
         SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .map(|_| ())
    .map_err(db_error)
}

/// The escalations `filter` selects (over `x`, with `$1`), locked when
/// `lock` says how (`FOR UPDATE OF x SKIP LOCKED`).
async fn rows(conn: &mut PgConnection, filter: &str, arg: i64) -> StoreResult<Vec<EscalationRow>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM alarm_escalations x {} {filter}",
        EscalationRow::COLUMNS,
        EscalationRow::JOINS
    )))
    .bind(arg)
    .fetch_all(conn)
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| EscalationRow::from_row(&Cols(r)))
    .collect()
}

/// `patient`'s escalation `id`, locked, if it is theirs.
async fn row_of(
    conn: &mut PgConnection,
    patient: PatientId,
    id: i64,
) -> StoreResult<Option<EscalationRow>> {
    Ok(rows(conn, "WHERE x.id = $1 FOR UPDATE OF x", id)
        .await?
        .into_iter()
        .find(|r| r.patient == patient))
}

/// `patient`'s newest escalations with their notifications.
async fn escalations(
    conn: &mut PgConnection,
    pid: i64,
    limit: u32,
) -> StoreResult<Vec<Escalation>> {
    let filter = format!(
        "WHERE x.patient_id = $1
         ORDER BY (x.acknowledged_at_ms IS NULL AND x.cleared_at_ms IS NULL) DESC,
                  x.raised_at_ms DESC, x.id DESC LIMIT {limit}"
    );
    let mut out = Vec::new();
    // What the next step is: the caregivers (read as of the end of time:
    // none) decide no step.
    let team = team_of(conn, pid, i64::MAX).await?;
    for mut row in rows(conn, &filter, pid).await? {
        row.team = team.clone();
        let notices: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT n.id, n.event, n.step, n.created_at_ms FROM notifications n
             WHERE n.escalation_id = $1 ORDER BY n.id",
        )
        .bind(row.id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
        let mut told = Vec::with_capacity(notices.len());
        for (id, event, step, at) in notices {
            let who: Vec<String> = sqlx::query_scalar(
                "SELECT a.username FROM notification_recipients r JOIN accounts a ON a.id = r.account_id
                 WHERE r.notification_id = $1 ORDER BY a.username",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_error)?;
            let bad = || StoreError::Backend(format!("bad stored notification {id}"));
            told.push((
                NoticeEvent::parse(&event).ok_or_else(bad)?,
                Step::parse(&step).ok_or_else(bad)?,
                at,
                who,
            ));
        }
        out.push(Escalation { row, notices: told });
    }
    Ok(out)
}

#[async_trait]
impl Escalations for PgStore {
    async fn escalate_due(&self, now_ms: i64) -> StoreResult<usize> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // Another instance stepping the same escalations skips them.
        let due = rows(
            &mut tx,
            "WHERE x.next_step_at_ms IS NOT NULL AND x.next_step_at_ms <= $1
             ORDER BY x.next_step_at_ms LIMIT 100 FOR UPDATE OF x SKIP LOCKED",
            now_ms,
        )
        .await?;
        for mut r in due.iter().cloned() {
            r.team = team_of(&mut tx, stored_patient(r.patient).unwrap_or(-1), now_ms).await?;
            apply(&mut tx, step_due(&r, now_ms)).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(due.len())
    }

    async fn silence_alarm(
        &self,
        patient: PatientId,
        escalation: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let row = row_of(&mut tx, patient, escalation).await?;
        apply(&mut tx, silenced(row.as_ref(), actor, now_ms)?).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn acknowledge_escalation(
        &self,
        patient: PatientId,
        escalation: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let row = row_of(&mut tx, patient, escalation).await?;
        let Some(effects) = acknowledged(row.as_ref(), actor, now_ms)? else {
            return Ok(false);
        };
        // A pump's alarm leaves the open alarms with its escalation.
        if let Some(event) = row.and_then(|r| r.event_id) {
            sqlx::query(
                "INSERT INTO alarm_acks (event_id, acked_at_ms, acked_by) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(event)
            .bind(now_ms)
            .bind(actor)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn escalations(&self, patient: PatientId, limit: u32) -> StoreResult<Vec<Escalation>> {
        let Some(pid) = stored_patient(patient) else {
            return Ok(Vec::new());
        };
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        escalations(&mut conn, pid, limit).await
    }

    async fn set_patient_nurse(
        &self,
        patient: PatientId,
        nurse: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let pid = stored_patient(patient).unwrap_or(-1);
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let (username, ward): (String, Option<i64>) = sqlx::query_as(
            "SELECT a.username, p.ward_id FROM patients p JOIN accounts a ON a.id = p.account_id
             WHERE p.id = $1 FOR UPDATE OF p",
        )
        .bind(pid)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .ok_or_else(|| StoreError::NotFound(format!("no patient {}", patient.0)))?;
        let found = match nurse {
            Some(n) => {
                let row: Option<(i64, String, Option<i64>)> = sqlx::query_as(
                    "SELECT a.id, a.role, (SELECT ward_id FROM nurses WHERE account_id = a.id)
                     FROM accounts a WHERE a.username = $1",
                )
                .bind(n)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                match row {
                    Some((id, role, w)) => Some((id, stored_role(&role)?, w.map(WardId))),
                    None => None,
                }
            }
            None => None,
        };
        let effects = nurse_set(
            nurse,
            found.as_ref().map(|f| (f.1, f.2)),
            ward.map(WardId),
            patient,
            &username,
            actor,
            now_ms,
        )?;
        sqlx::query("UPDATE patients SET nurse_id = $2 WHERE id = $1")
            .bind(pid)
            .bind(found.map(|f| f.0))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn set_escalation_policy(
        &self,
        ward: &str,
        policy: Policy,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM wards WHERE lower(name) = lower($1) FOR UPDATE")
                .bind(ward)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
        let effects = policy_set(ward, found.is_some(), &policy, actor, now_ms)?;
        sqlx::query(
            "UPDATE wards SET to_ward_after_ms = $2, to_physician_after_ms = $3 WHERE id = $1",
        )
        .bind(found)
        .bind(policy.to_ward_after_ms)
        .bind(policy.to_physician_after_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        apply(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }
}
