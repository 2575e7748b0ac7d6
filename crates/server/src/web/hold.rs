//! One-click Hold and Resume on the patient page: a new version of the
//! order that is running, paused or running again, with nothing else
//! changed. A hold is never refused for its rate (stopping is never the
//! risk); a resume of an order beyond the usual range asks for a reason
//! again, as any order there does.

use axum::extract::State;
use axum::response::Response;
use infusion_protocol::InfusionState;
use infusion_store::units::{ml, ml_h};
use infusion_store::{Confirmation, NewPrescription, StoreError, user_actor};

use crate::AppState;
use crate::clock::now_ms;
use crate::web::confirm::Confirm;
use crate::web::form::{Button, Path, Submitted, Typed};
use crate::web::format::milli;
use crate::web::notice::Notice;
use crate::web::patient::answer_with;
use crate::web::{WebError, access, refusal};

/// `POST /patients/{username}/hold`.
pub async fn hold(
    State(app): State<AppState>,
    Path(username): Path<String>,
    Submitted { user, .. }: Submitted<Button>,
) -> Result<Response, WebError> {
    switch(app, username, user, InfusionState::Hold).await
}

/// `POST /patients/{username}/resume`.
pub async fn resume(
    State(app): State<AppState>,
    Path(username): Path<String>,
    Submitted { user, .. }: Submitted<Button>,
) -> Result<Response, WebError> {
    switch(app, username, user, InfusionState::Run).await
}

async fn switch(
    app: AppState,
    username: String,
    user: crate::web::session::WebUser,
    to: InfusionState,
) -> Result<Response, WebError> {
    let p = access::treatable(&app, &user.session, &username).await?;
    let Some(current) = p.prescription.clone() else {
        let why = "There is no order to hold or resume yet.".to_owned();
        return answer_with(&app, &user, &p, Err(Notice::Refused(why)), Typed::default()).await;
    };
    if current.state == to {
        let done = match to {
            InfusionState::Hold => "The order is on hold already.",
            InfusionState::Run => "The order is running already.",
        };
        return answer_with(&app, &user, &p, Ok(done.to_owned()), Typed::default()).await;
    }
    let rx = NewPrescription {
        volume_ul: current.volume_ul,
        rate_ul_h: current.rate_ul_h,
        state: to,
    };
    let confirmation = Confirmation {
        reason: None,
        rate_step: app.config.rate_step,
    };
    let actor = user_actor(&user.session.username);
    let saved = app
        .store
        .prescribe(p.patient_id, rx, &confirmation, &actor, now_ms())
        .await;
    let outcome = match saved {
        Ok(v) => Ok(match to {
            InfusionState::Hold => format!(
                "On hold (version {v}): the pump pauses at its next poll. Resume continues the same order."
            ),
            InfusionState::Run => {
                format!("Resumed (version {v}): the pump continues at its next poll.")
            }
        }),
        // Running again beyond the usual range: the same confirmation as
        // the prescription form's, sending this order through it.
        Err(StoreError::NeedsConfirmation(crossed)) => Err(Notice::Confirm(Box::new(Confirm {
            order: format!("{} at {}, run", ml(rx.volume_ul), ml_h(rx.rate_ul_h)),
            crossed,
            action: format!("/patients/{}/prescription", p.username),
            fields: vec![
                ("volume_ml", milli(rx.volume_ul)),
                ("rate_ml_h", milli(rx.rate_ul_h)),
                ("state", "run".to_owned()),
            ],
            send: "Resume this order",
        }))),
        Err(e) => Err(Notice::Refused(refusal(e)?)),
    };
    answer_with(&app, &user, &p, outcome, Typed::default()).await
}
