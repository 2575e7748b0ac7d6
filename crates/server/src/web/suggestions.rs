//! A physician's decision on a suggestion of the decision algorithm.

use axum::extract::State;
use axum::response::Response;
use infusion_store::{Confirmation, Decision, StoreError, Verdict, user_actor};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::confirm::Confirm;
use crate::web::form::{Path, Submitted, Typed};
use crate::web::format::prescription_text;
use crate::web::notice::Notice;
use crate::web::patient::answer_with;
use crate::web::{WebError, access, refusal};

/// The decision's form: a button, with a reason when an approval that
/// crosses a soft limit is confirmed.
#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /patients/{username}/suggestions/{id}/{approve|reject}`.
pub async fn decide_suggestion(
    State(app): State<AppState>,
    Path((username, id, decision)): Path<(String, i64, String)>,
    Submitted { user, form }: Submitted<DecisionForm>,
) -> Result<Response, WebError> {
    let p = access::treatable(&app, &user.session, &username).await?;
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(WebError::no_suggestion()),
    };
    let outcome = match app
        .store
        .decide_suggestion(Verdict {
            patient: p.patient_id,
            id,
            approve,
            actor: user_actor(&user.session.username),
            at_ms: now_ms(),
            confirmation: Confirmation {
                reason: form.reason,
                rate_step: app.config.rate_step,
            },
        })
        .await
    {
        Ok(Decision::Approved(v)) => Ok(format!(
            "Suggestion approved as version {v}; the pump applies it at its next poll."
        )),
        Ok(Decision::Rejected) => Ok("Suggestion rejected.".to_owned()),
        Err(StoreError::NotFound(_)) => return Err(WebError::no_suggestion()),
        Err(StoreError::NeedsConfirmation(crossed)) => Err(Notice::Confirm(Box::new(Confirm {
            order: "the suggested change".to_owned(),
            was: prescription_text(
                p.prescription.as_ref(),
                &app.store.drugs_for(p.patient_id).await?,
            ),
            crossed,
            action: format!("/patients/{}/suggestions/{id}/approve", p.username),
            fields: Vec::new(),
            send: "Approve this suggestion",
        }))),
        Err(e) => Err(Notice::Refused(refusal(e)?)),
    };
    answer_with(&app, &user, &p, outcome, Typed::default()).await
}
