//! One-click Hold and Resume on the patient page: a new version of the
//! order that is running, paused or running again, with nothing else
//! changed. A hold is never refused for its rate (stopping is never the
//! risk); a resume of an order beyond the usual range asks for a reason
//! again, as any order there does.

use axum::extract::State;
use axum::response::Response;
use infusion_protocol::InfusionState;
use infusion_store::NewPrescription;

use crate::AppState;
use crate::web::form::{Button, Path, Submitted, Typed};
use crate::web::format::milli;
use crate::web::glance::restarted_in;
use crate::web::notice::Notice;
use crate::web::patient::answer_with;
use crate::web::treatment::{Order, send};
use crate::web::{WebError, access};

/// How many of the newest reports are read for a restart: more than a
/// restarted pump sends before it is continued.
const RESTART_LOOKBACK: u32 = 100;

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
    // A pump that restarted in the middle of the order waits for it to
    // be continued: a new version of the same running order.
    let restarted = to == InfusionState::Run
        && current.state == InfusionState::Run
        && restarted_in(
            &current,
            &app.store
                .recent_events(p.patient_id, RESTART_LOOKBACK)
                .await?,
        );
    if current.state == to && !restarted {
        let done = match to {
            InfusionState::Hold => "The order is on hold already.",
            InfusionState::Run => "The order is running already.",
        };
        return answer_with(&app, &user, &p, Ok(done.to_owned()), Typed::default()).await;
    }
    let rx = NewPrescription {
        state: to,
        ..current.order()
    };
    // Running again beyond the usual range asks for a reason, as the
    // prescription form's orders do, and sends this order through it.
    let mut fields = vec![
        ("volume_ml", milli(rx.volume_ul)),
        ("rate_ml_h", milli(rx.rate_ul_h)),
        ("state", "run".to_owned()),
        ("reviewed", "1".to_owned()),
    ];
    if let Some(d) = rx.drug {
        fields.push(("drug", d.0.to_string()));
    }
    let order = Order {
        rx,
        reason: None,
        fields,
        send: "Resume this order",
    };
    let drugs = app.store.drugs_for(p.patient_id).await?;
    let outcome = send(&app, &user, &p, &drugs, order, |v| match to {
        InfusionState::Hold => format!(
            "On hold (version {v}): the pump pauses at its next poll. Resume continues the same order."
        ),
        InfusionState::Run if restarted => format!(
            "Continued (version {v}): the pump gives the rest of the order at its next poll."
        ),
        InfusionState::Run => format!("Resumed (version {v}): the pump continues at its next poll."),
    })
    .await?;
    answer_with(&app, &user, &p, outcome, Typed::default()).await
}
