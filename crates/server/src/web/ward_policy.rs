//! The administrator's wards: each ward of the institution with its
//! nurses and patients counted, and its escalation policy, the two waits
//! an unacknowledged alarm makes before every nurse of the ward is told,
//! then the physician (wards, nurses and patients on them are made with
//! `infusion admin create-ward`, `create-nurse`, `assign-ward`).

use axum::extract::State;
use axum::response::Response;
use infusion_store::{Policy, StoreError, WardOverview, user_actor};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::WebError;
use crate::web::admin::finish;
use crate::web::admin_scope::Scope;
use crate::web::form::{Path, Submitted};
use crate::web::session::WebUser;

/// The policy form, in seconds.
#[derive(Debug, Deserialize)]
pub struct PolicyForm {
    to_ward_after_s: String,
    to_physician_after_s: String,
}

fn seconds(typed: &str, what: &str) -> Result<i64, StoreError> {
    typed
        .trim()
        .parse::<u32>()
        .map(|s| i64::from(s) * 1000)
        .map_err(|_| StoreError::Invalid(format!("give the wait {what} in whole seconds")))
}

/// `POST /admin/wards/{name}/escalation`: a ward of the administrator's
/// own institution only.
pub async fn set(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Submitted { user, form }: Submitted<PolicyForm>,
) -> Result<Response, WebError> {
    let scope = Scope::of(&app, &user).await?;
    let outcome = async {
        let wards = app.store.wards(&scope.institution).await?;
        let ward = wards
            .iter()
            .find(|w| w.name == name)
            .ok_or_else(|| StoreError::NotFound(format!("no ward named {name:?} here")))?;
        let policy = Policy {
            to_ward_after_ms: seconds(&form.to_ward_after_s, "before every nurse is told")?,
            to_physician_after_ms: seconds(&form.to_physician_after_s, "before the physician is told")?,
        };
        let actor = user_actor(&user.session.username);
        app.store
            .set_escalation_policy(&ward.name, policy, &actor, now_ms())
            .await?;
        Ok(format!(
            "Ward {}: an unacknowledged alarm now goes to every nurse of the ward after {} s, and to \
             the physician {} s later.",
            ward.name,
            policy.to_ward_after_ms / 1000,
            policy.to_physician_after_ms / 1000
        ))
    }
    .await;
    finish(&app, &user, outcome).await
}

/// `1 nurse`, `2 nurses`.
fn counted(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The admin page's section.
pub fn section(wards: &[WardOverview], user: &WebUser) -> Markup {
    html! {
        section aria-labelledby="wards" {
            h2 id="wards" { "Wards and escalation" }
            p class="hint" { "An alarm goes first to the nurse looking after the patient (or every nurse of the ward), then, while no one acknowledges it, to every nurse of the ward, then to the physician. Each wait is 10 s to an hour." }
            @if wards.is_empty() { p { "No wards yet (infusion admin create-ward)." } }
            @for w in wards {
                form class="edit" method="post" action={ "/admin/wards/" (w.name) "/escalation" } {
                    input type="hidden" name="csrf" value=(user.csrf);
                    fieldset {
                        legend { "Ward " (w.name) ": " (counted(w.nurses, "nurse")) ", " (counted(w.patients, "patient")) }
                        @let id = |what: &str| format!("{what}-{}", w.name);
                        label for=(id("to-ward")) { "Seconds before every nurse of the ward is told" }
                        input id=(id("to-ward")) name="to_ward_after_s" inputmode="numeric" required value=(w.policy.to_ward_after_ms / 1000);
                        label for=(id("to-physician")) { "Seconds more before the physician is told" }
                        input id=(id("to-physician")) name="to_physician_after_s" inputmode="numeric" required value=(w.policy.to_physician_after_ms / 1000);
                        button type="submit" { "Save ward " (w.name) "'s escalation" }
                    }
                }
            }
        }
    }
}
