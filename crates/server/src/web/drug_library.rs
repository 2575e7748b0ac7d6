//! `/admin/drugs`: the institution's drug library, kept by its
//! administrators. A drug has a concentration and default dose limits in
//! mg/h and mg, typed with up to three decimals and kept in µg/h and µg;
//! it is never edited, only withdrawn (and added again with new values),
//! so that the orders written under it keep reading the same.

use axum::extract::State;
use axum::response::Response;
use infusion_store::units::parse_milli;
use infusion_store::{DoseLimits, Drug, DrugId, NewDrug, StoreError, mg, mg_h, mg_ml, user_actor};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::WebError;
use crate::web::admin::finish;
use crate::web::admin_scope::Scope;
use crate::web::form::{Button, Path, Submitted};
use crate::web::session::WebUser;

/// The new drug form, in mg/mL, mg/h and mg as typed.
#[derive(Debug, Deserialize)]
pub struct DrugForm {
    name: String,
    concentration_mg_ml: String,
    hard_min_mg_h: String,
    hard_max_mg_h: String,
    hard_max_mg: String,
    #[serde(default)]
    soft_min_mg_h: String,
    #[serde(default)]
    soft_max_mg_h: String,
    #[serde(default)]
    soft_max_mg: String,
}

/// A typed amount in mg (or mg/h, mg/mL) as µg, or what is wrong with it.
pub fn micrograms(field: &str, text: &str) -> Result<u32, StoreError> {
    parse_milli(text).ok_or_else(|| {
        StoreError::Invalid(format!(
            "{field}: {text:?} is not a number with at most three decimals"
        ))
    })
}

impl DrugForm {
    fn parse(&self) -> Result<NewDrug, StoreError> {
        let hard = DoseLimits {
            min_ug_h: micrograms("lowest dose", &self.hard_min_mg_h)?,
            max_ug_h: micrograms("highest dose", &self.hard_max_mg_h)?,
            max_ug: micrograms("largest amount", &self.hard_max_mg)?,
        };
        let or_hard = |field: &str, text: &str, hard: u32| {
            if text.trim().is_empty() {
                Ok(hard)
            } else {
                micrograms(field, text)
            }
        };
        Ok(NewDrug {
            name: self.name.trim().to_owned(),
            concentration_ug_ml: micrograms("concentration", &self.concentration_mg_ml)?,
            soft: DoseLimits {
                min_ug_h: or_hard("usual lowest dose", &self.soft_min_mg_h, hard.min_ug_h)?,
                max_ug_h: or_hard("usual highest dose", &self.soft_max_mg_h, hard.max_ug_h)?,
                max_ug: or_hard("usual largest amount", &self.soft_max_mg, hard.max_ug)?,
            },
            hard,
        })
    }
}

/// `POST /admin/drugs`.
pub async fn add(
    State(app): State<AppState>,
    Submitted { user, form }: Submitted<DrugForm>,
) -> Result<Response, WebError> {
    let scope = Scope::of(&app, &user).await?;
    let outcome = async {
        let new = form.parse()?;
        let label = format!("{} {}", new.name, mg_ml(new.concentration_ug_ml));
        let actor = user_actor(&user.session.username);
        app.store
            .add_drug(&scope.institution, new, &actor, now_ms())
            .await?;
        Ok(format!("{label} added to the drug library."))
    }
    .await;
    finish(&app, &user, outcome).await
}

/// `POST /admin/drugs/{id}/withdraw`.
pub async fn withdraw(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    Submitted { user, .. }: Submitted<Button>,
) -> Result<Response, WebError> {
    let scope = Scope::of(&app, &user).await?;
    let actor = user_actor(&user.session.username);
    let outcome = app
        .store
        .withdraw_drug(&scope.institution, DrugId(id), &actor, now_ms())
        .await
        .map(|()| {
            "Drug withdrawn: no new order can name it; orders already written keep it.".to_owned()
        });
    finish(&app, &user, outcome).await
}

/// The library's table and the form that adds a drug.
pub fn section(drugs: &[Drug], user: &WebUser) -> Markup {
    html! {
        h2 id="drug-library" { "Drug library" }
        p class="hint" {
            "Prescribers pick a drug from this list and order it in mg/h and mg; the pump is sent mL/h and mL. "
            "A drug cannot be edited: withdraw it and add it again with the new values."
        }
        @if drugs.is_empty() { p { "No drugs yet." } }
        @else {
            div class="table" tabindex="0" role="region" aria-label="Drug library" {
                table {
                    thead { tr {
                        th scope="col" { "Drug" } th scope="col" { "Concentration" }
                        th scope="col" { "Hard limits" } th scope="col" { "Usual range" } th scope="col" { "Status" }
                    } }
                    tbody { @for d in drugs { tr {
                        th scope="row" { (d.drug.name) }
                        td { (mg_ml(d.drug.concentration_ug_ml)) }
                        td { (limits_words(&d.drug.hard)) }
                        td { (limits_words(&d.drug.soft)) }
                        td {
                            @if d.withdrawn { "Withdrawn" } @else {
                                "In use"
                                details class="inline" {
                                    summary { "Withdraw…" }
                                    form method="post" action={ "/admin/drugs/" (d.id.0) "/withdraw" } {
                                        input type="hidden" name="csrf" value=(user.csrf);
                                        button type="submit" { "Withdraw " (d.drug.name) " now" }
                                    }
                                }
                            }
                        }
                    } } }
                }
            }
        }
        h3 id="new-drug" { "Add a drug" }
        form class="edit" method="post" action="/admin/drugs" aria-labelledby="new-drug" {
            input type="hidden" name="csrf" value=(user.csrf);
            label for="drug-name" { "Name" }
            input id="drug-name" name="name" required maxlength="80" placeholder="Foslevodopa/foscarbidopa";
            label for="drug-conc" { "Concentration (mg/mL)" }
            input id="drug-conc" name="concentration_mg_ml" inputmode="decimal" required placeholder="240";
            fieldset {
                legend { "Hard limits: no order beyond them" }
                label for="drug-hmin" { "Lowest dose (mg/h)" }
                input id="drug-hmin" name="hard_min_mg_h" inputmode="decimal" required;
                label for="drug-hmax" { "Highest dose (mg/h)" }
                input id="drug-hmax" name="hard_max_mg_h" inputmode="decimal" required;
                label for="drug-hvol" { "Largest amount of one order (mg)" }
                input id="drug-hvol" name="hard_max_mg" inputmode="decimal" required;
            }
            fieldset {
                legend { "Usual range (optional): beyond it an order needs a reason" }
                label for="drug-smin" { "Usual lowest dose (mg/h)" }
                input id="drug-smin" name="soft_min_mg_h" inputmode="decimal";
                label for="drug-smax" { "Usual highest dose (mg/h)" }
                input id="drug-smax" name="soft_max_mg_h" inputmode="decimal";
                label for="drug-svol" { "Usual largest amount (mg)" }
                input id="drug-svol" name="soft_max_mg" inputmode="decimal";
            }
            button type="submit" { "Add to the library" }
        }
    }
}

/// "20 mg/h to 250 mg/h, at most 2400 mg".
fn limits_words(d: &DoseLimits) -> String {
    format!(
        "{} to {}, at most {}",
        mg_h(d.min_ug_h),
        mg_h(d.max_ug_h),
        mg(d.max_ug)
    )
}
