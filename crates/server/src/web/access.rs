//! Who may see and treat which patient: one policy, used by every page,
//! every form and the live stream alike.
//!
//! A physician reaches the patients whose physician they are; a patient
//! reaches their own record, read only; an administrator reaches no
//! clinical data. A patient out of reach answers the same 404 as one that
//! does not exist, so usernames cannot be probed.

use std::collections::HashSet;

use infusion_protocol::PatientId;
use infusion_store::{PatientSummary, Role, StoreError, WebSession};

use crate::AppState;
use crate::web::WebError;

/// The rule itself: may `session` see patient `p`?
pub fn may_see(session: &WebSession, p: &PatientSummary) -> bool {
    match session.role {
        Role::Physician => p.physician_username == session.username,
        Role::Patient => p.username == session.username,
        Role::Admin => false,
    }
}

/// May `session` change a patient's treatment it may see (limits,
/// prescriptions, alarms, suggestions)? Their physician only.
pub fn may_treat(session: &WebSession) -> bool {
    session.role == Role::Physician
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
    match found.await {
        Ok(p) if may_see(session, &p) => Ok(p),
        Ok(_) | Err(StoreError::NotFound(_)) => Err(WebError::no_patient()),
        Err(e) => Err(e.into()),
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
            "change a prescription, limits or alarms",
        ));
    }
    Ok(p)
}

/// Every patient `session` may see, for the live stream's filter.
pub async fn visible_ids(
    app: &AppState,
    session: &WebSession,
) -> Result<HashSet<PatientId>, WebError> {
    let candidates = match session.role {
        Role::Physician => app.store.patients_of(&session.username).await?,
        Role::Patient => {
            let id = app.store.patient_id(&session.username).await?;
            vec![app.store.patient(id).await?]
        }
        Role::Admin => Vec::new(),
    };
    Ok(candidates
        .into_iter()
        .filter(|p| may_see(session, p))
        .map(|p| p.patient_id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use infusion_store::{AccountId, DEFAULT_LIMITS};

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
        }
    }

    #[test]
    fn physicians_see_their_patients_patients_themselves_admins_no_one() {
        let alice = patient("alice", "doc");
        assert!(may_see(&session("doc", Role::Physician), &alice));
        assert!(!may_see(&session("other", Role::Physician), &alice));
        assert!(may_see(&session("alice", Role::Patient), &alice));
        assert!(!may_see(&session("bob", Role::Patient), &alice));
        // A physician whose username is a patient's sees nothing by it.
        assert!(!may_see(&session("alice", Role::Physician), &alice));
        assert!(!may_see(&session("doc", Role::Admin), &alice));
        assert!(may_treat(&session("doc", Role::Physician)));
        assert!(!may_treat(&session("alice", Role::Patient)));
    }
}
