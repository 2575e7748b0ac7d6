//! Acknowledging a pump's alarm.

use axum::extract::State;
use axum::response::Response;
use infusion_store::{StoreError, user_actor};

use crate::AppState;
use crate::clock::now_ms;
use crate::web::form::{Button, Path, Submitted};
use crate::web::patient::answer;
use crate::web::{WebError, access, refusal};

/// `POST /patients/{username}/alarms/{event_id}/ack`: the physician or a
/// nurse of the ward has seen the alarm; it leaves the open list, audited
/// with who and when.
pub async fn acknowledge_alarm(
    State(app): State<AppState>,
    Path((username, event_id)): Path<(String, i64)>,
    Submitted { user, .. }: Submitted<Button>,
) -> Result<Response, WebError> {
    let p = access::attendable(&app, &user.session, &username).await?;
    let outcome = match app
        .store
        .acknowledge_alarm(
            p.patient_id,
            event_id,
            &user_actor(&user.session.username),
            now_ms(),
        )
        .await
    {
        Ok(true) => Ok("Alarm acknowledged.".to_owned()),
        Ok(false) => Ok("That alarm was acknowledged already.".to_owned()),
        Err(StoreError::NotFound(_)) => return Err(WebError::no_alarm()),
        Err(e) => Err(refusal(e)?),
    };
    answer(&app, &user, &p, outcome).await
}
