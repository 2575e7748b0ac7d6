//! An administrator's changes to who and what serves an account, from the
//! accounts table: unbind a patient's pump, move a patient to another
//! physician, reset a staff member's password (changed at the next
//! login). Each within the administrator's institution, each in two steps
//! (a `details` to open, then a button that says what it does), each
//! audited by the store.

use axum::extract::State;
use axum::response::Response;
use infusion_store::{AccountOverview, Role, user_actor};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::WebError;
use crate::web::admin::{finish, new_password_hash};
use crate::web::admin_scope::Scope;
use crate::web::form::{Button, Path, Submitted};
use crate::web::session::WebUser;

/// `POST /admin/patients/{username}/unbind`.
pub async fn unbind(
    State(app): State<AppState>,
    Path(username): Path<String>,
    Submitted { user, .. }: Submitted<Button>,
) -> Result<Response, WebError> {
    let scope = Scope::of(&app, &user).await?;
    let outcome = async {
        let device = scope
            .account(&username, Some(Role::Patient))?
            .device
            .clone();
        let patient = app.store.patient_id(&username).await?;
        let actor = user_actor(&user.session.username);
        app.store.unbind_device(patient, &actor, now_ms()).await?;
        Ok(format!(
            "Pump {} unbound from {username}: it can no longer log in or receive orders. Check \
             the pump at the bedside: it carries on or stops as set for a lost connection.",
            device.as_deref().unwrap_or("")
        ))
    }
    .await;
    finish(&app, &user, outcome).await
}

/// The move form: the physician to move the patient to.
#[derive(Debug, Deserialize)]
pub struct MoveForm {
    physician: String,
}

/// `POST /admin/patients/{username}/move`.
pub async fn move_patient(
    State(app): State<AppState>,
    Path(username): Path<String>,
    Submitted { user, form }: Submitted<MoveForm>,
) -> Result<Response, WebError> {
    let scope = Scope::of(&app, &user).await?;
    let outcome = async {
        scope.account(&username, Some(Role::Patient))?;
        scope.account(&form.physician, Some(Role::Physician))?;
        let patient = app.store.patient_id(&username).await?;
        let actor = user_actor(&user.session.username);
        app.store
            .move_patient(patient, &form.physician, &actor, now_ms())
            .await?;
        Ok(format!(
            "Moved: {username} is now {}'s patient; the previous physician no longer sees the \
             record.",
            form.physician
        ))
    }
    .await;
    finish(&app, &user, outcome).await
}

/// The reset form: the temporary password, typed by the administrator.
#[derive(Debug, Deserialize)]
pub struct ResetForm {
    password: String,
}

/// `POST /admin/accounts/{username}/reset-password`.
pub async fn reset_password(
    State(app): State<AppState>,
    Path(username): Path<String>,
    Submitted { user, form }: Submitted<ResetForm>,
) -> Result<Response, WebError> {
    let scope = Scope::of(&app, &user).await?;
    let outcome = async {
        let a = scope.account(&username, None)?;
        let context = [a.username.as_str(), &a.first_name, &a.last_name];
        let hash = new_password_hash(&app, &form.password, &context).await?;
        let actor = user_actor(&user.session.username);
        app.store
            .reset_password(&username, hash, &actor, now_ms())
            .await?;
        Ok(format!(
            "Password reset: {username}'s sessions have ended. Give them the temporary password \
             in person; they choose a new one at their next login."
        ))
    }
    .await;
    finish(&app, &user, outcome).await
}

/// The actions of one row of the accounts table: for a patient, move and
/// unbind; for staff other than oneself, a password reset.
pub fn row_actions(a: &AccountOverview, user: &WebUser, physicians: &[&AccountOverview]) -> Markup {
    let others: Vec<_> = physicians
        .iter()
        .filter(|p| a.physician.as_deref() != Some(p.username.as_str()))
        .collect();
    html! {
        @if a.role == Role::Patient {
            @if !others.is_empty() {
                details class="inline" {
                    summary { "Move…" }
                    form method="post" action={ "/admin/patients/" (a.username) "/move" } {
                        input type="hidden" name="csrf" value=(user.csrf);
                        label for={ "move-" (a.username) } { "New physician of " (a.username) }
                        select id={ "move-" (a.username) } name="physician" required {
                            @for p in &others { option value=(p.username) { (p.last_name) ", " (p.first_name) " (" (p.username) ")" } }
                        }
                        button type="submit" { "Move " (a.username) }
                    }
                }
            }
            @if let Some(mac) = &a.device {
                details class="inline" {
                    summary { "Unbind pump…" }
                    form method="post" action={ "/admin/patients/" (a.username) "/unbind" } {
                        input type="hidden" name="csrf" value=(user.csrf);
                        button type="submit" { "Unbind " (mac) " from " (a.username) " now: it can no longer log in or receive orders" }
                    }
                }
            }
        } @else if a.username != user.session.username {
            details class="inline" {
                summary { "Reset password…" }
                form method="post" action={ "/admin/accounts/" (a.username) "/reset-password" } {
                    input type="hidden" name="csrf" value=(user.csrf);
                    label for={ "reset-" (a.username) } { "Temporary password for " (a.username) " (12 to 128 characters)" }
                    input id={ "reset-" (a.username) } name="password" type="password" required autocomplete="new-password";
                    button type="submit" { "Reset " (a.username) "'s password" }
                }
            }
        }
    }
}
