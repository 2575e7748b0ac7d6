//! The SQL of escalations: writing a decision's [`AlarmEffect`]s (each
//! with its notification and recipients, in the decision's transaction),
//! the due steps, silences, acknowledgements, the patient's nurse and a
//! ward's policy.

use async_trait::async_trait;
use infusion_protocol::PatientId;
use infusion_store::{
    AccountId, AlarmEffect, AlarmRef, Columns, Escalation, EscalationRow, Escalations, Member,
    NoticeEvent, Policy, Step, StoreError, StoreResult, TOLD_SQL, Team, WardId, acknowledged,
    nurse_set, policy_set, silenced, step_due, stored_patient, stored_role,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::SqliteStore;
use crate::rows::{all, one};
use crate::writer::{Cached, WriteCtx, backend};

/// The team of patient `pid` at `now_ms`: whom its alarms are told to.
pub(crate) fn team_of(conn: &Connection, pid: i64, now_ms: i64) -> StoreResult<Team> {
    let Some(mut team) = one(conn, Team::PATIENT_SQL, [pid], |r| Team::from_row(r))? else {
        return Ok(Team::NONE);
    };
    let member = |r: &crate::rows::Cols<'_, '_>| {
        Member::at(r, 0)?.ok_or_else(|| StoreError::Backend("a member without an id".into()))
    };
    team.ward_nurses = all(conn, Team::WARD_NURSES_SQL, [pid], member)?;
    team.caregivers = all(conn, Team::CAREGIVERS_SQL, params![pid, now_ms], member)?;
    Ok(team)
}

/// Writes one effect of a decision.
pub(crate) fn write(conn: &Connection, effect: &AlarmEffect) -> StoreResult<()> {
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
            let (event, server) = match *source {
                AlarmRef::Reported { device, seq } => (
                    conn.row(
                        "SELECT id FROM events WHERE device_id = ?1 AND seq = ?2",
                        params![device.0, seq],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()
                    .map_err(backend)?,
                    None,
                ),
                AlarmRef::Event(id) => (Some(id), None),
                AlarmRef::Server(id) => (None, Some(id)),
                AlarmRef::Escalation(_) => {
                    return Err(StoreError::Backend("a raise names its alarm".into()));
                }
            };
            let n = conn
                .exec(
                    "INSERT INTO alarm_escalations (patient_id, event_id, server_alarm_id, alarm,
                         priority, raised_at_ms, step, next_step_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                    params![
                        pid,
                        event,
                        server,
                        alarm,
                        priority.as_str(),
                        at_ms,
                        step.as_str(),
                        next_step_at_ms
                    ],
                )
                .map_err(backend)?;
            if n == 1 {
                let esc = conn.last_insert_rowid();
                if let Some(id) = notice(conn, esc, NoticeEvent::Raised, *step, *at_ms)? {
                    tell(conn, id, recipients)?;
                }
            }
            Ok(())
        }
        AlarmEffect::End {
            source,
            event,
            by,
            at_ms,
        } => {
            let Some((esc, step)) = open_escalation(conn, source)? else {
                return Ok(());
            };
            let sql = match event {
                NoticeEvent::Acknowledged => {
                    "UPDATE alarm_escalations SET acknowledged_at_ms = ?2, acknowledged_by = ?3,
                         next_step_at_ms = NULL WHERE id = ?1"
                }
                _ => {
                    "UPDATE alarm_escalations SET cleared_at_ms = ?2, next_step_at_ms = NULL
                     WHERE id = ?1 AND ?3 IS NULL"
                }
            };
            conn.exec(sql, params![esc, at_ms, by]).map_err(backend)?;
            if let Some(id) = notice(conn, esc, *event, step, *at_ms)? {
                // Everyone told of it learns that it ended.
                conn.exec(
                    &format!(
                        "INSERT INTO notification_recipients (notification_id, account_id)
                         SELECT ?2, account_id FROM ({TOLD_SQL}) WHERE true ON CONFLICT DO NOTHING"
                    ),
                    params![esc, id],
                )
                .map_err(backend)?;
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
            conn.exec(
                "UPDATE alarm_escalations SET step = ?2, next_step_at_ms = ?3 WHERE id = ?1",
                params![escalation, step.as_str(), next_step_at_ms],
            )
            .map_err(backend)?;
            if let Some(id) = notice(conn, *escalation, NoticeEvent::Escalated, *step, *at_ms)? {
                tell(conn, id, recipients)?;
            }
            Ok(())
        }
        AlarmEffect::Postpone {
            escalation,
            next_step_at_ms,
            silenced,
        } => {
            let (until, by) = silenced.clone().unzip();
            conn.exec(
                "UPDATE alarm_escalations SET next_step_at_ms = ?2,
                     silenced_until_ms = COALESCE(?3, silenced_until_ms),
                     silenced_by = COALESCE(?4, silenced_by)
                 WHERE id = ?1",
                params![escalation, next_step_at_ms, until, by],
            )
            .map(|_| ())
            .map_err(backend)
        }
    }
}

/// The open escalation `source` names: its id and the step it told last.
fn open_escalation(conn: &Connection, source: &AlarmRef) -> StoreResult<Option<(i64, Step)>> {
    let (filter, a, b) = match *source {
        AlarmRef::Reported { device, seq } => (
            "event_id = (SELECT id FROM events WHERE device_id = ?1 AND seq = ?2)",
            device.0,
            i64::from(seq),
        ),
        AlarmRef::Event(id) => ("event_id = ?1 AND ?2 = 0", id, 0),
        AlarmRef::Server(id) => ("server_alarm_id = ?1 AND ?2 = 0", id, 0),
        AlarmRef::Escalation(id) => ("id = ?1 AND ?2 = 0", id, 0),
    };
    let sql = format!(
        "SELECT id, step FROM alarm_escalations
         WHERE {filter} AND acknowledged_at_ms IS NULL AND cleared_at_ms IS NULL"
    );
    one(conn, &sql, params![a, b], |r| {
        let step = r.string(1)?;
        Ok((
            r.i64(0)?,
            Step::parse(&step)
                .ok_or_else(|| StoreError::Backend(format!("bad stored step {step:?}")))?,
        ))
    })
}

/// Writes the notification `event` of escalation `esc` for `step`; its id,
/// or `None` when it was written already.
fn notice(
    conn: &Connection,
    esc: i64,
    event: NoticeEvent,
    step: Step,
    at_ms: i64,
) -> StoreResult<Option<i64>> {
    let n = conn
        .exec(
            "INSERT INTO notifications (escalation_id, event, step, created_at_ms)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![esc, event.as_str(), step.as_str(), at_ms],
        )
        .map_err(backend)?;
    Ok((n == 1).then(|| conn.last_insert_rowid()))
}

/// Records `recipients` as whom notification `id` is for.
fn tell(conn: &Connection, id: i64, recipients: &[AccountId]) -> StoreResult<()> {
    for a in recipients {
        conn.exec(
            "INSERT INTO notification_recipients (notification_id, account_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            params![id, a.0],
        )
        .map_err(backend)?;
    }
    Ok(())
}

/// The escalations `filter` selects (over `x`, with `?1`).
fn rows(conn: &Connection, filter: &str, arg: i64) -> StoreResult<Vec<EscalationRow>> {
    let sql = format!(
        "SELECT {} FROM alarm_escalations x {} {filter}",
        EscalationRow::COLUMNS,
        EscalationRow::JOINS
    );
    all(conn, &sql, [arg], |r| EscalationRow::from_row(r))
}

/// `patient`'s escalation `id`, if it is theirs.
fn row_of(conn: &Connection, patient: PatientId, id: i64) -> StoreResult<Option<EscalationRow>> {
    Ok(rows(conn, "WHERE x.id = ?1", id)?
        .into_iter()
        .find(|r| r.patient == patient))
}

fn escalate_due(cx: &mut WriteCtx<'_>, now_ms: i64) -> StoreResult<usize> {
    let due = rows(
        cx.conn,
        "WHERE x.next_step_at_ms IS NOT NULL AND x.next_step_at_ms <= ?1
         ORDER BY x.next_step_at_ms LIMIT 100",
        now_ms,
    )?;
    for mut r in due.iter().cloned() {
        r.team = team_of(cx.conn, stored_patient(r.patient).unwrap_or(-1), now_ms)?;
        cx.apply(step_due(&r, now_ms))?;
    }
    Ok(due.len())
}

fn acknowledge(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    id: i64,
    actor: &str,
    now_ms: i64,
) -> StoreResult<bool> {
    let row = row_of(cx.conn, patient, id)?;
    let Some(effects) = acknowledged(row.as_ref(), actor, now_ms)? else {
        return Ok(false);
    };
    // A pump's alarm leaves the open alarms with its escalation.
    if let Some(event) = row.and_then(|r| r.event_id) {
        cx.conn
            .exec(
                "INSERT INTO alarm_acks (event_id, acked_at_ms, acked_by) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                params![event, now_ms, actor],
            )
            .map_err(backend)?;
    }
    cx.apply(effects)?;
    Ok(true)
}

fn set_nurse(
    cx: &mut WriteCtx<'_>,
    patient: PatientId,
    nurse: Option<&str>,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let conn = cx.conn;
    let pid = stored_patient(patient).unwrap_or(-1);
    let (username, ward): (String, Option<i64>) = conn
        .row(
            "SELECT a.username, p.ward_id FROM patients p JOIN accounts a ON a.id = p.account_id
             WHERE p.id = ?1",
            [pid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("no patient {}", patient.0)))?;
    let found = match nurse {
        Some(n) => one(
            conn,
            "SELECT a.id, a.role, (SELECT ward_id FROM nurses WHERE account_id = a.id)
             FROM accounts a WHERE a.username = ?1",
            [n],
            |r| {
                Ok((
                    r.i64(0)?,
                    stored_role(&r.string(1)?)?,
                    r.int(2)?.map(WardId),
                ))
            },
        )?,
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
    conn.exec(
        "UPDATE patients SET nurse_id = ?2 WHERE id = ?1",
        params![pid, found.map(|f| f.0)],
    )
    .map_err(backend)?;
    cx.apply(effects)
}

fn set_policy(
    cx: &mut WriteCtx<'_>,
    ward: &str,
    policy: Policy,
    actor: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let conn = cx.conn;
    let found: Option<i64> = conn
        .row(
            "SELECT id FROM wards WHERE lower(name) = lower(?1)",
            [ward],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    let effects = policy_set(ward, found.is_some(), &policy, actor, now_ms)?;
    conn.exec(
        "UPDATE wards SET to_ward_after_ms = ?2, to_physician_after_ms = ?3 WHERE id = ?1",
        params![found, policy.to_ward_after_ms, policy.to_physician_after_ms],
    )
    .map_err(backend)?;
    cx.apply(effects)
}

/// `patient`'s newest escalations with their notifications.
fn escalations(conn: &Connection, pid: i64, limit: u32) -> StoreResult<Vec<Escalation>> {
    let filter = format!(
        "WHERE x.patient_id = ?1
         ORDER BY (x.acknowledged_at_ms IS NULL AND x.cleared_at_ms IS NULL) DESC,
                  x.raised_at_ms DESC, x.id DESC LIMIT {limit}"
    );
    let mut out = Vec::new();
    // What the next step is: the caregivers (read as of the end of time:
    // none) decide no step.
    let team = team_of(conn, pid, i64::MAX)?;
    for mut row in rows(conn, &filter, pid)? {
        row.team = team.clone();
        let notices = all(
            conn,
            "SELECT n.id, n.event, n.step, n.created_at_ms FROM notifications n
             WHERE n.escalation_id = ?1 ORDER BY n.id",
            [row.id],
            |r| Ok((r.i64(0)?, r.string(1)?, r.string(2)?, r.i64(3)?)),
        )?;
        let mut told = Vec::with_capacity(notices.len());
        for (id, event, step, at) in notices {
            let who = all(
                conn,
                "SELECT a.username FROM notification_recipients r JOIN accounts a ON a.id = r.account_id
                 WHERE r.notification_id = ?1 ORDER BY a.username",
                [id],
                |r| r.string(0),
            )?;
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
impl Escalations for SqliteStore {
    async fn escalate_due(&self, now_ms: i64) -> StoreResult<usize> {
        self.writer.write(move |cx| escalate_due(cx, now_ms)).await
    }

    async fn silence_alarm(
        &self,
        patient: PatientId,
        escalation: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| {
                let row = row_of(cx.conn, patient, escalation)?;
                cx.apply(silenced(row.as_ref(), &actor, now_ms)?)
            })
            .await
    }

    async fn acknowledge_escalation(
        &self,
        patient: PatientId,
        escalation: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let actor = actor.to_owned();
        self.writer
            .write(move |cx| acknowledge(cx, patient, escalation, &actor, now_ms))
            .await
    }

    async fn escalations(&self, patient: PatientId, limit: u32) -> StoreResult<Vec<Escalation>> {
        let Some(pid) = stored_patient(patient) else {
            return Ok(Vec::new());
        };
        self.readers
            .read(move |conn| escalations(conn, pid, limit))
            .await
    }

    async fn set_patient_nurse(
        &self,
        patient: PatientId,
        nurse: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (nurse, actor) = (nurse.map(str::to_owned), actor.to_owned());
        self.writer
            .write(move |cx| set_nurse(cx, patient, nurse.as_deref(), &actor, now_ms))
            .await
    }

    async fn set_escalation_policy(
        &self,
        ward: &str,
        policy: Policy,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let (ward, actor) = (ward.to_owned(), actor.to_owned());
        self.writer
            .write(move |cx| set_policy(cx, &ward, policy, &actor, now_ms))
            .await
    }
}
