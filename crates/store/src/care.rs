//! What an administrator changes about who and what serves a patient:
//! unbinding the patient's pump, and moving the patient to another
//! physician of the same institution. Both audited; both take effect at
//! once (an unbound pump's tokens stop working, a physician who no longer
//! treats the patient no longer reaches the record).

use async_trait::async_trait;
use infusion_protocol::PatientId;

use crate::{AccountId, AuditAction, Change, Effects, NewAudit, StoreError, StoreResult};

/// Reassigning a patient's pump and physician, one transaction per
/// method.
#[async_trait]
pub trait Care: Send + Sync {
    /// Unbinds `patient`'s pump, as [`unbound`] decides: its registration
    /// is retired (its events are kept), so its tokens stop working at once
    /// and it cannot log in until a pump is bound to the patient again.
    async fn unbind_device(&self, patient: PatientId, actor: &str, now_ms: i64) -> StoreResult<()>;

    /// Moves `patient` to the physician named `physician`, as [`moved`]
    /// decides.
    async fn move_patient(
        &self,
        patient: PatientId,
        physician: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;
}

/// Decides unbinding the pump `mac` (`None`: none is bound) from
/// `patient`, named `username`: its audit entry, and the announcement that
/// refreshes the pages showing the patient.
pub fn unbound(
    mac: Option<&str>,
    patient: PatientId,
    username: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Effects> {
    let mac =
        mac.ok_or_else(|| StoreError::NotFound(format!("there is no pump bound to {username}")))?;
    let audit = NewAudit::of(
        now_ms,
        actor,
        AuditAction::DeviceUnbound,
        Some(patient),
        format!("device {mac} unbound from {username}: its tokens stopped working"),
    );
    Ok(Effects::audit(audit).and_announce(Change::Events { patient }))
}

/// A physician account as a move finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicianFound {
    /// The account.
    pub id: AccountId,
    /// Its username.
    pub username: String,
    /// Its institution's row id.
    pub institution: Option<i64>,
}

impl PhysicianFound {
    /// The physician from its row: id, username, institution id (both
    /// backends select these, in this order).
    pub fn from_row((id, username, institution): (i64, String, Option<i64>)) -> Self {
        PhysicianFound {
            id: AccountId(id),
            username,
            institution,
        }
    }
}

/// What a move reads about the patient: its username, institution and
/// current physician's username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovingPatient {
    /// The patient record.
    pub patient: PatientId,
    /// The patient's username.
    pub username: String,
    /// The patient's institution's row id.
    pub institution: Option<i64>,
    /// The physician treating the patient now.
    pub from: String,
}

impl MovingPatient {
    /// `patient` from its row: username, institution id, physician's
    /// username (both backends select these, in this order).
    pub fn from_row(
        patient: PatientId,
        (username, institution, from): (String, Option<i64>, String),
    ) -> Self {
        MovingPatient {
            patient,
            username,
            institution,
            from,
        }
    }
}

/// Decides moving `p` to `to`, the physician named `wanted` as found
/// (`None`: no physician of that name). A physician of another
/// institution is refused as unknown (an administrator does not learn
/// other institutions' usernames); moving to the physician already
/// treating the patient is refused as a conflict. Returns the physician's
/// id to write and the audit entry.
pub fn moved(
    p: &MovingPatient,
    to: Option<&PhysicianFound>,
    wanted: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<(AccountId, Effects)> {
    let to = to
        .filter(|t| t.institution.is_some() && t.institution == p.institution)
        .ok_or_else(|| {
            StoreError::NotFound(format!("no physician named {wanted:?} at this institution"))
        })?;
    if to.username == p.from {
        return Err(StoreError::Conflict(format!(
            "nothing to do: {} is already {}'s patient",
            p.username, p.from
        )));
    }
    let audit = NewAudit::of(
        now_ms,
        actor,
        AuditAction::PatientMoved,
        Some(p.patient),
        format!("{} moved from {} to {}", p.username, p.from, to.username),
    );
    Ok((
        to.id,
        Effects::audit(audit).and_announce(Change::Events { patient: p.patient }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice(institution: Option<i64>) -> MovingPatient {
        MovingPatient::from_row(
            PatientId(7),
            ("alice".into(), institution, "dr.house".into()),
        )
    }

    fn physician(username: &str, institution: Option<i64>) -> PhysicianFound {
        PhysicianFound::from_row((3, username.into(), institution))
    }

    #[test]
    fn a_patient_moves_only_to_another_physician_of_the_same_institution() {
        let (id, effects) = moved(
            &alice(Some(1)),
            Some(&physician("dr.who", Some(1))),
            "dr.who",
            "user:root",
            5,
        )
        .unwrap();
        assert_eq!(id, AccountId(3));
        assert_eq!(
            effects.audit[0].detail,
            "alice moved from dr.house to dr.who"
        );
        for (to, kind) in [
            (None, "unknown"),
            (Some(physician("dr.far", Some(2))), "other institution"),
            (Some(physician("dr.none", None)), "no institution"),
        ] {
            let e = moved(&alice(Some(1)), to.as_ref(), "dr.x", "user:root", 5).unwrap_err();
            assert!(matches!(e, StoreError::NotFound(_)), "{kind}: {e:?}");
        }
        let same = moved(
            &alice(Some(1)),
            Some(&physician("dr.house", Some(1))),
            "dr.house",
            "user:root",
            5,
        );
        assert!(matches!(same, Err(StoreError::Conflict(_))));
    }

    #[test]
    fn only_a_bound_pump_is_unbound() {
        assert!(matches!(
            unbound(None, PatientId(7), "alice", "user:root", 5),
            Err(StoreError::NotFound(_))
        ));
        let e = unbound(
            Some("AA:BB:CC:00:00:01"),
            PatientId(7),
            "alice",
            "user:root",
            5,
        )
        .unwrap();
        assert_eq!(e.audit[0].action, AuditAction::DeviceUnbound);
    }
}
