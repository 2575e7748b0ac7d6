//! Who may see and treat which patient: one policy, used by every page,
//! every form and the live stream alike.
//!
//! A physician reaches the patients whose physician they are; a nurse,
//! the patients of the nurse's ward; a caregiver, the patients a physician
//! let them follow, while that access lasts; a patient, their own record.
//! Only the physician changes a treatment; the physician and the ward's
//! nurses attend to alarms; caregivers and patients read. An
//! administrator reaches no clinical data. A patient out of reach answers
//! the same 404 as one that does not exist, so usernames cannot be probed.

use std::collections::HashSet;

use infusion_protocol::PatientId;
use infusion_store::{PatientSummary, Role, StoreError, WebSession};

use crate::AppState;
use crate::clock::now_ms;
use crate::web::WebError;

/// The rule itself: may `session` see patient `p`? `followed` is what a
/// caregiver follows now (empty for every other role).
pub fn may_see(session: &WebSession, p: &PatientSummary, followed: &[PatientId]) -> bool {
    match session.role {
        Role::Physician => p.physician_username == session.username,
        Role::Patient => p.username == session.username,
        Role::Nurse => match (&session.ward, &p.ward) {
            (Some(mine), Some(theirs)) => mine.id == theirs.id,
            _ => false,
        },
        Role::Caregiver => followed.contains(&p.patient_id),
        Role::Admin => false,
    }
}

/// May `session` change a patient's treatment it may see (limits,
/// prescriptions, suggestions, the note, caregivers)? Their physician
/// only.
pub fn may_treat(session: &WebSession) -> bool {
    session.role == Role::Physician
}

/// May `session` acknowledge and silence the alarms of a patient it may
/// see? The physician and the ward's nurses: the people who go to the
/// bedside.
pub fn may_attend(session: &WebSession) -> bool {
    matches!(session.role, Role::Physician | Role::Nurse)
}

/// What a caregiver follows now; nothing for any other role (no query).
async fn followed(app: &AppState, session: &WebSession) -> Result<Vec<PatientId>, WebError> {
    Ok(match session.role {
        Role::Caregiver => {
            app.store
                .caregiver_patients(session.account_id, now_ms())
                .await?
        }
        _ => Vec::new(),
    })
}

/// The patient `username` if `session` may see them; the same 404 for a
/// stranger as for no one.
pub async fn visible(
    app: &AppState,
    session: &WebSession,
    username: &str,
) -> Result<PatientSummary, WebError> {
    let found = async {
        let id = app.store.patient_id(username).await?;
        app.store.patient(id).await
    };
    let p = match found.await {
        Ok(p) => p,
        Err(StoreError::NotFound(_)) => return Err(WebError::no_patient()),
        Err(e) => return Err(e.into()),
    };
    if may_see(session, &p, &followed(app, session).await?) {
        Ok(p)
    } else {
        Err(WebError::no_patient())
    }
}

/// The patient `username` if `session` may change their treatment.
pub async fn treatable(
    app: &AppState,
    session: &WebSession,
    username: &str,
) -> Result<PatientSummary, WebError> {
    let p = visible(app, session, username).await?;
    if !may_treat(session) {
        return Err(WebError::forbidden(
            "change a prescription, limits or who follows this patient",
        ));
    }
    Ok(p)
}

/// The patient `username` if `session` may attend to their alarms.
pub async fn attendable(
    app: &AppState,
    session: &WebSession,
    username: &str,
) -> Result<PatientSummary, WebError> {
    let p = visible(app, session, username).await?;
    if !may_attend(session) {
        return Err(WebError::forbidden("acknowledge or silence alarms"));
    }
    Ok(p)
}

/// Every patient `session` may see: the live stream's filter, and the
/// rows of a physician's dashboard or a nurse's ward view.
pub async fn visible_patients(
    app: &AppState,
    session: &WebSession,
) -> Result<Vec<PatientSummary>, WebError> {
    let followed = followed(app, session).await?;
    let candidates = match session.role {
        Role::Physician => app.store.patients_of(&session.username).await?,
        Role::Patient => {
            let id = app.store.patient_id(&session.username).await?;
            vec![app.store.patient(id).await?]
        }
        Role::Nurse => match &session.ward {
            Some(w) => app.store.ward_patients(w.id).await?,
            None => Vec::new(),
        },
        Role::Caregiver => {
            let mut ps = Vec::with_capacity(followed.len());
            for id in &followed {
                ps.push(app.store.patient(*id).await?);
            }
            ps
        }
        Role::Admin => Vec::new(),
    };
    Ok(candidates
        .into_iter()
        .filter(|p| may_see(session, p, &followed))
        .collect())
}

/// The ids of [`visible_patients`].
pub async fn visible_ids(
    app: &AppState,
    session: &WebSession,
) -> Result<HashSet<PatientId>, WebError> {
    Ok(visible_patients(app, session)
        .await?
        .into_iter()
        .map(|p| p.patient_id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use infusion_store::{AccountId, DEFAULT_LIMITS, Ward, WardId};

    fn session(username: &str, role: Role) -> WebSession {
        WebSession {
            account_id: AccountId(1),
            username: username.into(),
            role,
            first_name: "A".into(),
            last_name: "B".into(),
            created_at_ms: 0,
            expires_at_ms: 1,
            must_change_password: false,
            has_second_factor: false,
            time_zone: "UTC".into(),
            ward: None,
        }
    }

    fn patient(username: &str, physician: &str) -> PatientSummary {
        PatientSummary {
            note: None,
            silent_since_ms: None,
            patient_id: PatientId(1),
            username: username.into(),
            first_name: "P".into(),
            last_name: "Q".into(),
            physician_username: physician.into(),
            device: None,
            limits: DEFAULT_LIMITS.into(),
            prescription: None,
            last_contact_ms: None,
            identifiers: Default::default(),
            ward: None,
            nurse: None,
        }
    }

    fn on_ward(mut s: WebSession, id: i64) -> WebSession {
        s.ward = Some(Ward {
            id: WardId(id),
            name: "4B".into(),
        });
        s
    }

    /// The whole matrix of the pure rule: each role against a patient it
    /// reaches and one it does not.
    #[test]
    fn each_role_reaches_its_own_patients_only() {
        let mut alice = patient("alice", "doc");
        alice.ward = Some(Ward {
            id: WardId(7),
            name: "4B".into(),
        });
        let none: &[PatientId] = &[];
        let see = |s: &WebSession, followed: &[PatientId]| may_see(s, &alice, followed);
        assert!(see(&session("doc", Role::Physician), none));
        assert!(!see(&session("other", Role::Physician), none));
        assert!(see(&session("alice", Role::Patient), none));
        assert!(!see(&session("bob", Role::Patient), none));
        // A physician whose username is a patient's sees nothing by it.
        assert!(!see(&session("alice", Role::Physician), none));
        assert!(!see(&session("doc", Role::Admin), none));
        // A nurse: the ward, not the username, not another ward, not none.
        assert!(see(&on_ward(session("nina", Role::Nurse), 7), none));
        assert!(!see(&on_ward(session("nina", Role::Nurse), 8), none));
        assert!(!see(&session("doc", Role::Nurse), none));
        // A caregiver: what they follow now, and nothing by name.
        assert!(see(&session("carla", Role::Caregiver), &[PatientId(1)]));
        assert!(!see(&session("carla", Role::Caregiver), &[PatientId(2)]));
        assert!(!see(&session("alice", Role::Caregiver), none));
        // A ward does not let anyone but a nurse in.
        assert!(!see(&on_ward(session("x", Role::Caregiver), 7), none));
        for (role, treats, attends) in [
            (Role::Physician, true, true),
            (Role::Nurse, false, true),
            (Role::Caregiver, false, false),
            (Role::Patient, false, false),
            (Role::Admin, false, false),
        ] {
            assert_eq!(may_treat(&session("u", role)), treats, "{role:?}");
            assert_eq!(may_attend(&session("u", role)), attends, "{role:?}");
        }
    }
}
