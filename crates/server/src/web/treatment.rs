//! The forms that change a patient's treatment: limits and a new
//! prescription version. Typed in mL and mL/h, stored in µL and µL/h.

use axum::extract::State;
use axum::response::Response;
use infusion_protocol::{InfusionState, PatientLimits};
use infusion_store::{
    Confirmation, Drug, DrugId, Limits, NewPrescription, PatientSummary, RateStep, Standing,
    StoreError, drug_in, mg_h, order_text, review, user_actor,
};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::confirm::Confirm;
use crate::web::form::{Path, Submitted, Typed};
use crate::web::format::{milli, parse_milli, prescription_text};
use crate::web::notice::Notice;
use crate::web::patient::{answer, answer_with};
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

/// The form that sets a patient's limits to a library drug's defaults.
#[derive(Debug, Deserialize)]
pub struct FromDrugForm {
    drug: String,
}

/// `POST /patients/{username}/limits/from-drug`: the patient's limits
/// become the drug's defaults, in mL/h and mL (rounded inwards, within
/// the pump's range), through the same decision as the limits form.
pub async fn limits_from_drug(
    State(app): State<AppState>,
    Path(username): Path<String>,
    Submitted { user, form }: Submitted<FromDrugForm>,
) -> Result<Response, WebError> {
    let p = access::treatable(&app, &user.session, &username).await?;
    let drugs = app.store.drugs_for(p.patient_id).await?;
    let id = form.drug.trim().parse().ok().map(DrugId);
    let outcome = match drug_in(&drugs, id).filter(|d| !d.withdrawn) {
        None => Err("that drug is not in this hospital's drug library".to_owned()),
        Some(d) => {
            let actor = user_actor(&user.session.username);
            let saved = app
                .store
                .set_limits(p.patient_id, d.limits(), &actor, now_ms());
            outcome(saved.await, |()| {
                format!("Limits set from the drug library's {}.", d.label())
            })?
        }
    };
    answer(&app, &user, &p, outcome).await
}

/// The prescription form's fields: an order by drug (`drug`, with
/// `dose_mg_h` and `amount_mg`) or by volume and rate (`volume_ml`,
/// `rate_ml_h`, naming `drug` too when a confirmation or a resume sends
/// a drug's order again in the pump's units); `reviewed` and `reason`
/// when the order comes from its review (every order is reviewed once
/// before it is sent).
#[derive(Debug, Default, Deserialize)]
pub struct PrescriptionForm {
    #[serde(default)]
    drug: String,
    #[serde(default)]
    dose_mg_h: String,
    #[serde(default)]
    amount_mg: String,
    #[serde(default)]
    volume_ml: String,
    #[serde(default)]
    rate_ml_h: String,
    state: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    reviewed: String,
}

impl PrescriptionForm {
    /// The order's fields as typed: shown again after a refusal, and sent
    /// again unchanged by a confirmation.
    fn fields(&self) -> Vec<(&'static str, String)> {
        [
            ("drug", &self.drug),
            ("dose_mg_h", &self.dose_mg_h),
            ("amount_mg", &self.amount_mg),
            ("volume_ml", &self.volume_ml),
            ("rate_ml_h", &self.rate_ml_h),
            ("state", &self.state),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| (n, v.clone()))
        .collect()
    }

    /// The order, the drug of `drugs` it names (if any) converted to the
    /// pump's µL and µL/h in integers.
    fn parse(&self, drugs: &[Drug]) -> Result<NewPrescription, String> {
        let state = match self.state.as_str() {
            "run" => InfusionState::Run,
            "hold" => InfusionState::Hold,
            other => return Err(format!("state: {other:?} is neither run nor hold")),
        };
        let drug = match self.drug.trim() {
            "" => None,
            id => {
                let found = id
                    .parse()
                    .ok()
                    .and_then(|id| drug_in(drugs, Some(DrugId(id))));
                Some(found.ok_or("that drug is not in this hospital's drug library")?)
            }
        };
        let by_dose = !self.dose_mg_h.trim().is_empty() || !self.amount_mg.trim().is_empty();
        let (volume_ul, rate_ul_h) = match drug {
            Some(d) if by_dose => {
                let too_much = "the amount is beyond what the pump can hold";
                let amount = micrograms("amount", &self.amount_mg)?;
                let dose = micrograms("dose", &self.dose_mg_h)?;
                (
                    d.volume_ul(amount).ok_or(too_much)?,
                    d.rate_ul_h(dose).ok_or(too_much)?,
                )
            }
            None if by_dose => return Err("choose the drug for a dose in mg/h".into()),
            _ => (
                number("volume", &self.volume_ml)?,
                number("rate", &self.rate_ml_h)?,
            ),
        };
        Ok(NewPrescription {
            volume_ul,
            rate_ul_h,
            state,
            drug: drug.map(|d| d.id),
        })
    }
}

/// A typed mg or mg/h in µg or µg/h, or what is wrong with it.
fn micrograms(field: &str, text: &str) -> Result<u32, String> {
    crate::web::drug_library::micrograms(field, text).map_err(|e| e.to_string())
}

/// `POST /patients/{username}/prescription`: a new version, reviewed
/// first. An order as typed is answered with its review: the order it
/// replaces and the new one in both units, the soft limits it crosses,
/// and a form that sends it again, marked reviewed, with a reason. Only
/// that is sent to the store, which decides it again as it writes.
pub async fn set_prescription(
    State(app): State<AppState>,
    Path(username): Path<String>,
    Submitted { user, form }: Submitted<PrescriptionForm>,
) -> Result<Response, WebError> {
    let p = access::treatable(&app, &user.session, &username).await?;
    let typed = Typed::new(form.fields());
    let drugs = app.store.drugs_for(p.patient_id).await?;
    let rx = match form.parse(&drugs) {
        Err(m) => return answer_with(&app, &user, &p, Err(Notice::Refused(m)), typed).await,
        Ok(rx) => rx,
    };
    let mut fields = form.fields();
    fields.push(("reviewed", "1".to_owned()));
    let order = Order {
        rx,
        reason: form.reason.clone(),
        fields,
        send: "Send this order",
    };
    let given = form.reason.as_deref().is_some_and(|r| !r.trim().is_empty());
    if form.reviewed != "1" || !given {
        let outcome = review_of(&app, &p, &drugs, order).map(Err)?;
        return answer_with(&app, &user, &p, outcome, typed).await;
    }
    let text = order_text(&rx, drug_in(&drugs, rx.drug));
    let outcome = send(&app, &user, &p, &drugs, order, |v| {
        format!("Saved as version {v}: {text}. The pump applies it at its next poll.")
    })
    .await?;
    answer_with(&app, &user, &p, outcome, typed).await
}

/// The review of `order` for `p` ([`review`]'s decision): its
/// confirmation, or its refusal.
fn review_of(
    app: &AppState,
    p: &PatientSummary,
    drugs: &[Drug],
    order: Order,
) -> Result<Notice, WebError> {
    let read = Standing {
        limits: &p.limits,
        current: p.prescription.as_ref(),
        drug: drug_in(drugs, order.rx.drug),
    };
    Ok(match review(&order.rx, read, app.config.rate_step) {
        Ok(crossed) => review_notice(p, drugs, order, crossed),
        Err(e) => Notice::Refused(refusal(e)?),
    })
}

/// The confirmation `order` for `p` asks for, crossing `crossed`.
fn review_notice(p: &PatientSummary, drugs: &[Drug], order: Order, crossed: Vec<String>) -> Notice {
    Notice::Confirm(Box::new(Confirm {
        order: order_text(&order.rx, drug_in(drugs, order.rx.drug)),
        was: prescription_text(p.prescription.as_ref(), drugs),
        crossed,
        action: format!("/patients/{}/prescription", p.username),
        fields: order.fields,
        send: order.send,
    }))
}

/// An order to send from a form of the patient page.
pub struct Order {
    /// The order.
    pub rx: NewPrescription,
    /// The prescriber's reason, when confirming.
    pub reason: Option<String>,
    /// The prescription form's fields that send it again, for a
    /// confirmation.
    pub fields: Vec<(&'static str, String)>,
    /// What the confirmation's button says.
    pub send: &'static str,
}

/// Sends `order` for `p`: what was done in words (`done` of the new
/// version), or the notice of an order that was not sent (a refusal, or
/// the confirmation an order across a soft limit asks for).
pub async fn send(
    app: &AppState,
    user: &WebUser,
    p: &PatientSummary,
    drugs: &[Drug],
    order: Order,
    done: impl FnOnce(u32) -> String,
) -> Result<Result<String, Notice>, WebError> {
    let confirmation = Confirmation {
        reason: order.reason.clone(),
        rate_step: app.config.rate_step,
    };
    let actor = user_actor(&user.session.username);
    let rx = order.rx;
    let saved = app
        .store
        .prescribe(p.patient_id, rx, &confirmation, &actor, now_ms())
        .await;
    Ok(match saved {
        Ok(v) => Ok(done(v)),
        Err(StoreError::NeedsConfirmation(crossed)) => Err(review_notice(p, drugs, order, crossed)),
        Err(e) => Err(Notice::Refused(refusal(e)?)),
    })
}

/// The limits, and for the patient's physician the form that sets them.
pub fn limits_section(
    p: &PatientSummary,
    user: &WebUser,
    treats: bool,
    drugs: &[Drug],
    typed: &Typed,
) -> Markup {
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
                @if drugs.iter().any(|d| !d.withdrawn) {
                    form class="edit" method="post" action={ "/patients/" (p.username) "/limits/from-drug" } aria-labelledby="from-drug" {
                        h3 id="from-drug" { "Or start from the drug library's limits" }
                        input type="hidden" name="csrf" value=(user.csrf);
                        label for="limits-drug" { "Drug" }
                        select id="limits-drug" name="drug" required {
                            @for d in drugs.iter().filter(|d| !d.withdrawn) {
                                option value=(d.id.0) {
                                    (d.label()) ": " (mg_h(d.drug.hard.min_ug_h)) " to " (mg_h(d.drug.hard.max_ug_h))
                                }
                            }
                        }
                        button type="submit" { "Set limits from the library" }
                    }
                }
            }
        }
    }
}

/// The forms of a new prescription version, once limits are set: by a
/// drug of the library in mg/h and mg, and by volume and rate in mL/h and
/// mL. `step` is how far the rate may move without a reason.
pub fn prescribe_section(
    p: &PatientSummary,
    user: &WebUser,
    step: RateStep,
    drugs: &[Drug],
    typed: &Typed,
) -> Markup {
    let current = p.prescription.as_ref();
    let held = typed.get("state").map_or_else(
        || current.is_some_and(|x| x.state == InfusionState::Hold),
        |s| s == "hold",
    );
    let in_use: Vec<&Drug> = drugs.iter().filter(|d| !d.withdrawn).collect();
    let current_drug = current.and_then(|x| drug_in(drugs, x.drug));
    let by_drug = !in_use.is_empty();
    let action = format!("/patients/{}/prescription", p.username);
    html! {
        section aria-labelledby="prescribe" {
            h2 id="prescribe" { "Change the prescription" }
            @if !p.limits.set {
                p { "Set this patient's limits first." }
            } @else {
                p class="hint" {
                    "Within this patient's hard limits. Every order is shown beside the current one before it is sent, and sent with your reason; "
                    "the review says when it is beyond the usual range or changes the rate more than "
                    (milli(step.factor_permille)) " times up or down. The pump applies a new version at its next poll."
                }
                @if by_drug {
                    form class="edit" method="post" action=(action) aria-labelledby="by-drug" {
                        h3 id="by-drug" { "Order a drug (mg/h and mg)" }
                        input type="hidden" name="csrf" value=(user.csrf);
                        label for="rx-drug" { "Drug" }
                        select id="rx-drug" name="drug" required {
                            @for d in &in_use {
                                @let chosen = typed.get("drug").map_or(current_drug.is_some_and(|c| c.id == d.id), |t| t == d.id.0.to_string());
                                option value=(d.id.0) selected[chosen] {
                                    (d.label()) ": usual " (mg_h(d.drug.soft.min_ug_h)) " to " (mg_h(d.drug.soft.max_ug_h))
                                }
                            }
                        }
                        label for="rx-dose" { "Dose rate (mg/h)" }
                        input id="rx-dose" name="dose_mg_h" inputmode="decimal" required
                            value=(typed.or("dose_mg_h", || current_drug.zip(current).map_or(String::new(), |(d, x)| milli(d.dose_ug_h(x.rate_ul_h)))));
                        label for="rx-amount" { "Amount to give (mg)" }
                        input id="rx-amount" name="amount_mg" inputmode="decimal" required
                            value=(typed.or("amount_mg", || current_drug.zip(current).map_or(String::new(), |(d, x)| milli(d.amount_ug(x.volume_ul)))));
                        (state_select("rx-state", held))
                        p class="hint" { "The pump is sent the same order in mL/h and mL, to the nearest 0.001 mL/h; the saved order shows both." }
                        button type="submit" { "Review this order" }
                    }
                }
                details open[!by_drug || (current.is_some() && current_drug.is_none())] {
                    summary { "Order by volume and rate (mL/h and mL)" @if by_drug { ", naming no drug" } }
                    form class="edit" method="post" action=(action) {
                        input type="hidden" name="csrf" value=(user.csrf);
                        label for="volume" { "Volume (mL)" }
                        input id="volume" name="volume_ml" inputmode="decimal" required
                            value=(typed.or("volume_ml", || current.map_or(String::new(), |x| milli(x.volume_ul))));
                        label for="rate" { "Rate (mL/h)" }
                        input id="rate" name="rate_ml_h" inputmode="decimal" required
                            value=(typed.or("rate_ml_h", || current.map_or(String::new(), |x| milli(x.rate_ul_h))));
                        (state_select("state", held))
                        button type="submit" { "Review this order" }
                    }
                }
            }
        }
    }
}

/// The run-or-hold choice of an order form.
fn state_select(id: &str, held: bool) -> Markup {
    html! {
        label for=(id) { "State" }
        select id=(id) name="state" {
            option value="run" selected[!held] { "Run" }
            option value="hold" selected[held] { "Hold (pause the pump)" }
        }
    }
}
