//! A physician's decision on a suggestion of the decision algorithm.

use axum::extract::{Path, State};
use axum::response::Response;
use infusion_store::{Decision, StoreError, Verdict, user_actor};

use crate::AppState;
use crate::clock::now_ms;
use crate::web::form::{Button, Submitted};
use crate::web::patient::answer;
use crate::web::{WebError, access, refusal};

/// `POST /patients/{username}/suggestions/{id}/{approve|reject}`.
pub async fn decide_suggestion(
    State(app): State<AppState>,
    Path((username, id, decision)): Path<(String, i64, String)>,
    Submitted { user, .. }: Submitted<Button>,
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
        })
        .await
    {
        Ok(Decision::Approved(v)) => Ok(format!(
            "Suggestion approved as version {v}; the pump applies it at its next poll."
        )),
        Ok(Decision::Rejected) => Ok("Suggestion rejected.".to_owned()),
        Err(StoreError::NotFound(_)) => return Err(WebError::no_suggestion()),
        Err(e) => Err(refusal(e)?),
    };
    answer(&app, &user, &p, outcome).await
}
