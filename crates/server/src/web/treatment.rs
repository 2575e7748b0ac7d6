//! The forms that change a patient's treatment: limits and a new
//! prescription version. Typed in mL and mL/h, stored in µL and µL/h.

use axum::extract::{Path, State};
use axum::response::Response;
use infusion_protocol::{InfusionState, PatientLimits};
use infusion_store::{NewPrescription, user_actor};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::form::Submitted;
use crate::web::format::parse_milli;
use crate::web::patient::answer;
use crate::web::{WebError, access, outcome};

/// The limits form's fields, in mL and mL/h as typed.
#[derive(Debug, Deserialize)]
pub struct LimitsForm {
    min_rate_ml_h: String,
    max_rate_ml_h: String,
    max_volume_ml: String,
}

/// A typed number of mL or mL/h in µL or µL/h, or what is wrong with it.
fn number(field: &str, text: &str) -> Result<u32, String> {
    parse_milli(text)
        .ok_or_else(|| format!("{field}: {text:?} is not a number with at most three decimals"))
}

impl LimitsForm {
    fn parse(&self) -> Result<PatientLimits, String> {
        Ok(PatientLimits {
            min_rate_ul_h: number("lowest rate", &self.min_rate_ml_h)?,
            max_rate_ul_h: number("highest rate", &self.max_rate_ml_h)?,
            max_volume_ul: number("largest volume", &self.max_volume_ml)?,
        })
    }
}

/// `POST /patients/{username}/limits`.
pub async fn set_limits(
    State(app): State<AppState>,
    Path(username): Path<String>,
    Submitted { user, form }: Submitted<LimitsForm>,
) -> Result<Response, WebError> {
    let p = access::treatable(&app, &user.session, &username).await?;
    let outcome = match form.parse() {
        Err(m) => Err(m),
        Ok(limits) => {
            let actor = user_actor(&user.session.username);
            let saved = app.store.set_limits(p.patient_id, limits, &actor, now_ms());
            outcome(saved.await, |()| "Limits saved.".to_owned())?
        }
    };
    answer(&app, &user, &p, outcome).await
}

/// The prescription form's fields.
#[derive(Debug, Deserialize)]
pub struct PrescriptionForm {
    volume_ml: String,
    rate_ml_h: String,
    state: String,
}

impl PrescriptionForm {
    fn parse(&self) -> Result<NewPrescription, String> {
        let state = match self.state.as_str() {
            "run" => InfusionState::Run,
            "hold" => InfusionState::Hold,
            other => return Err(format!("state: {other:?} is neither run nor hold")),
        };
        Ok(NewPrescription {
            volume_ul: number("volume", &self.volume_ml)?,
            rate_ul_h: number("rate", &self.rate_ml_h)?,
            state,
        })
    }
}

/// `POST /patients/{username}/prescription`: a new version.
pub async fn set_prescription(
    State(app): State<AppState>,
    Path(username): Path<String>,
    Submitted { user, form }: Submitted<PrescriptionForm>,
) -> Result<Response, WebError> {
    let p = access::treatable(&app, &user.session, &username).await?;
    let outcome = match form.parse() {
        Err(m) => Err(m),
        Ok(rx) => {
            let actor = user_actor(&user.session.username);
            let saved = app
                .store
                .set_prescription(p.patient_id, rx, &actor, now_ms());
            outcome(saved.await, |v| {
                format!("Saved as version {v}; the pump applies it at its next poll.")
            })?
        }
    };
    answer(&app, &user, &p, outcome).await
}
