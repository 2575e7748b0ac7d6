//! The forms that change a patient's treatment: limits and a new
//! prescription version. Typed in mL and mL/h, stored in µL and µL/h.

use axum::extract::State;
use axum::response::Response;
use infusion_protocol::{InfusionState, PatientLimits};
use infusion_store::units::{ml, ml_h};
use infusion_store::{
    Confirmation, Limits, NewPrescription, PatientSummary, RateStep, StoreError, user_actor,
};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::confirm::Confirm;
use crate::web::form::{Path, Submitted, Typed};
use crate::web::format::{milli, parse_milli};
use crate::web::notice::Notice;
use crate::web::patient::answer_with;
use crate::web::session::WebUser;
use crate::web::{WebError, access, outcome, refusal};

/// The limits form's fields, in mL and mL/h as typed. The soft limits may
/// be left empty: then they are the hard ones (no soft zone).
#[derive(Debug, Deserialize)]
pub struct LimitsForm {
    min_rate_ml_h: String,
    max_rate_ml_h: String,
    max_volume_ml: String,
    #[serde(default)]
    soft_min_rate_ml_h: String,
    #[serde(default)]
    soft_max_rate_ml_h: String,
    #[serde(default)]
    soft_max_volume_ml: String,
}

/// A typed number of mL or mL/h in µL or µL/h, or what is wrong with it.
fn number(field: &str, text: &str) -> Result<u32, String> {
    parse_milli(text)
        .ok_or_else(|| format!("{field}: {text:?} is not a number with at most three decimals"))
}

/// An optional typed number: `hard`'s value when left empty.
fn or_hard(field: &str, text: &str, hard: u32) -> Result<u32, String> {
    if text.trim().is_empty() {
        Ok(hard)
    } else {
        number(field, text)
    }
}

impl LimitsForm {
    /// The form as typed, for showing it again after a refusal.
    fn typed(&self) -> Typed {
        Typed::new(vec![
            ("min_rate_ml_h", self.min_rate_ml_h.clone()),
            ("max_rate_ml_h", self.max_rate_ml_h.clone()),
            ("max_volume_ml", self.max_volume_ml.clone()),
            ("soft_min_rate_ml_h", self.soft_min_rate_ml_h.clone()),
            ("soft_max_rate_ml_h", self.soft_max_rate_ml_h.clone()),
            ("soft_max_volume_ml", self.soft_max_volume_ml.clone()),
        ])
    }

    fn parse(&self) -> Result<Limits, String> {
        let hard = PatientLimits {
            min_rate_ul_h: number("lowest rate", &self.min_rate_ml_h)?,
            max_rate_ul_h: number("highest rate", &self.max_rate_ml_h)?,
            max_volume_ul: number("largest volume", &self.max_volume_ml)?,
        };
        let soft = PatientLimits {
            min_rate_ul_h: or_hard(
                "usual lowest rate",
                &self.soft_min_rate_ml_h,
                hard.min_rate_ul_h,
            )?,
            max_rate_ul_h: or_hard(
                "usual highest rate",
                &self.soft_max_rate_ml_h,
                hard.max_rate_ul_h,
            )?,
            max_volume_ul: or_hard(
                "usual largest volume",
                &self.soft_max_volume_ml,
                hard.max_volume_ul,
            )?,
        };
        Ok(Limits {
            hard,
            soft,
            set: true,
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
    answer_with(
        &app,
        &user,
        &p,
        outcome.map_err(Notice::Refused),
        form.typed(),
    )
    .await
}

/// The prescription form's fields; `reason` only when confirming an order
/// that crosses a soft limit.
#[derive(Debug, Deserialize)]
pub struct PrescriptionForm {
    volume_ml: String,
    rate_ml_h: String,
    state: String,
    #[serde(default)]
    reason: Option<String>,
}

impl PrescriptionForm {
    /// The form as typed, for showing it again after a refusal.
    fn typed(&self) -> Typed {
        Typed::new(vec![
            ("volume_ml", self.volume_ml.clone()),
            ("rate_ml_h", self.rate_ml_h.clone()),
            ("state", self.state.clone()),
        ])
    }

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

/// `POST /patients/{username}/prescription`: a new version. One that
/// crosses a soft limit without a reason is answered with the crossings
/// and a confirmation of the same order, as typed.
pub async fn set_prescription(
    State(app): State<AppState>,
    Path(username): Path<String>,
    Submitted { user, form }: Submitted<PrescriptionForm>,
) -> Result<Response, WebError> {
    let p = access::treatable(&app, &user.session, &username).await?;
    let typed = form.typed();
    let rx = match form.parse() {
        Err(m) => return answer_with(&app, &user, &p, Err(Notice::Refused(m)), typed).await,
        Ok(rx) => rx,
    };
    let confirmation = Confirmation {
        reason: form.reason.clone(),
        rate_step: app.config.rate_step,
    };
    let actor = user_actor(&user.session.username);
    let saved = app
        .store
        .prescribe(p.patient_id, rx, &confirmation, &actor, now_ms())
        .await;
    let outcome = match saved {
        Ok(v) => Ok(format!(
            "Saved as version {v}; the pump applies it at its next poll."
        )),
        Err(StoreError::NeedsConfirmation(crossed)) => Err(Notice::Confirm(Box::new(Confirm {
            order: format!(
                "{} at {}, {}",
                ml(rx.volume_ul),
                ml_h(rx.rate_ul_h),
                rx.state.as_str()
            ),
            crossed,
            action: format!("/patients/{}/prescription", p.username),
            fields: vec![
                ("volume_ml", form.volume_ml),
                ("rate_ml_h", form.rate_ml_h),
                ("state", form.state),
            ],
            send: "Send this order",
        }))),
        Err(e) => Err(Notice::Refused(refusal(e)?)),
    };
    answer_with(&app, &user, &p, outcome, typed).await
}

/// The limits, and for the patient's physician the form that sets them.
pub fn limits_section(p: &PatientSummary, user: &WebUser, treats: bool, typed: &Typed) -> Markup {
    let Limits { hard, soft, set } = p.limits;
    let soft_zone = soft != hard;
    html! {
        section aria-labelledby="limits" {
            h2 id="limits" { "Limits" }
            div id="limits-live" data-live {
                @if !set {
                    p role="alert" class="notice" {
                        "This patient's limits have not been set. No order can be sent until the physician sets them below."
                    }
                } @else {
                    p {
                        "Never beyond (hard limits): rate " (milli(hard.min_rate_ul_h)) " to " (milli(hard.max_rate_ul_h))
                        " mL/h, volume at most " (milli(hard.max_volume_ul)) " mL."
                    }
                    @if soft_zone {
                        p {
                            "Usual range (soft limits, beyond it an order needs a reason): rate " (milli(soft.min_rate_ul_h))
                            " to " (milli(soft.max_rate_ul_h)) " mL/h, volume at most " (milli(soft.max_volume_ul)) " mL."
                        }
                    }
                }
            }
            @if treats {
                form class="edit" method="post" action={ "/patients/" (p.username) "/limits" } {
                    input type="hidden" name="csrf" value=(user.csrf);
                    fieldset {
                        legend { "Hard limits: no order beyond them" }
                        label for="min_rate" { "Lowest rate (mL/h)" }
                        input id="min_rate" name="min_rate_ml_h" inputmode="decimal" required value=[typed.get("min_rate_ml_h").map(str::to_owned).or_else(|| set.then(|| milli(hard.min_rate_ul_h)))];
                        label for="max_rate" { "Highest rate (mL/h)" }
                        input id="max_rate" name="max_rate_ml_h" inputmode="decimal" required value=[typed.get("max_rate_ml_h").map(str::to_owned).or_else(|| set.then(|| milli(hard.max_rate_ul_h)))];
                        label for="max_volume" { "Largest volume (mL)" }
                        input id="max_volume" name="max_volume_ml" inputmode="decimal" required value=[typed.get("max_volume_ml").map(str::to_owned).or_else(|| set.then(|| milli(hard.max_volume_ul)))];
                    }
                    fieldset {
                        legend { "Usual range (optional): beyond it an order needs a reason" }
                        label for="soft_min_rate" { "Usual lowest rate (mL/h)" }
                        input id="soft_min_rate" name="soft_min_rate_ml_h" inputmode="decimal" value=[typed.get("soft_min_rate_ml_h").map(str::to_owned).or_else(|| soft_zone.then(|| milli(soft.min_rate_ul_h)))];
                        label for="soft_max_rate" { "Usual highest rate (mL/h)" }
                        input id="soft_max_rate" name="soft_max_rate_ml_h" inputmode="decimal" value=[typed.get("soft_max_rate_ml_h").map(str::to_owned).or_else(|| soft_zone.then(|| milli(soft.max_rate_ul_h)))];
                        label for="soft_max_volume" { "Usual largest volume (mL)" }
                        input id="soft_max_volume" name="soft_max_volume_ml" inputmode="decimal" value=[typed.get("soft_max_volume_ml").map(str::to_owned).or_else(|| soft_zone.then(|| milli(soft.max_volume_ul)))];
                    }
                    button type="submit" { "Save limits" }
                }
            }
        }
    }
}

/// The form of a new prescription version, once limits are set.
/// `step` is how far the rate may move without a reason.
pub fn prescribe_section(
    p: &PatientSummary,
    user: &WebUser,
    step: RateStep,
    typed: &Typed,
) -> Markup {
    let current = p.prescription.as_ref();
    let held = typed.get("state").map_or_else(
        || current.is_some_and(|x| x.state == InfusionState::Hold),
        |s| s == "hold",
    );
    html! {
        section aria-labelledby="prescribe" {
            h2 id="prescribe" { "Change the prescription" }
            @if !p.limits.set {
                p { "Set this patient's limits first." }
            } @else {
                p class="hint" {
                    "Within the hard limits above. Beyond the usual range, or at a rate more than "
                    (milli(step.factor_permille)) " times higher or lower than now, you are asked for a reason. "
                    "The pump applies a new version at its next poll."
                }
                form class="edit" method="post" action={ "/patients/" (p.username) "/prescription" } {
                    input type="hidden" name="csrf" value=(user.csrf);
                    label for="volume" { "Volume (mL)" }
                    input id="volume" name="volume_ml" inputmode="decimal" required
                        value=(typed.or("volume_ml", || current.map_or(String::new(), |x| milli(x.volume_ul))));
                    label for="rate" { "Rate (mL/h)" }
                    input id="rate" name="rate_ml_h" inputmode="decimal" required
                        value=(typed.or("rate_ml_h", || current.map_or(String::new(), |x| milli(x.rate_ul_h))));
                    label for="state" { "State" }
                    select id="state" name="state" {
                        option value="run" selected[!held] { "Run" }
                        option value="hold" selected[held] { "Hold (pause the pump)" }
                    }
                    button type="submit" { "Save as a new version" }
                }
            }
        }
    }
}
