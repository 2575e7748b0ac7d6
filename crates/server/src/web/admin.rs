//! `/admin`: the administrator's pages. Accounts and device registration,
//! what `infusion admin` does, for an administrator in a browser; no
//! clinical data (an administrator sees no patient page, limits or
//! prescriptions).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use infusion_protocol::MacAddress;
use infusion_store::{
    NewPatient, NewPhysician, PatientIdentifiers, Role, StoreError, check_password, user_actor,
};
use maud::html;
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::admin_scope::Scope;
use crate::web::form::{Button, Path, Submitted};
use crate::web::layout::page;
use crate::web::notice::{Flash, Notice, see_other};
use crate::web::session::WebUser;
use crate::web::{WebError, refusal};

/// `GET /admin`, with the notice of the form that led here.
pub async fn overview(
    State(app): State<AppState>,
    user: WebUser,
    flash: Flash,
) -> Result<Response, WebError> {
    Scope::of(&app, &user).await?;
    let notice = flash.notice(&user);
    Ok((flash, render(&app, &user, notice).await?).into_response())
}

async fn render(
    app: &AppState,
    user: &WebUser,
    notice: Option<Notice>,
) -> Result<Response, WebError> {
    let scope = Scope::of(app, user).await?;
    let accounts = &scope.accounts;
    let mut security = app.store.security_events(None, 200).await?;
    security.retain(|r| scope.may_see(&r.entry.actor));
    security.truncate(50);
    let physicians: Vec<_> = scope.of_role(Role::Physician).collect();
    let patients: Vec<_> = scope.of_role(Role::Patient).collect();
    let drugs = app.store.drugs(&scope.institution).await?;
    let wards = app.store.wards(&scope.institution).await?;
    // The institution's own patients' notifications only.
    let mut deliveries = app.store.deliveries(200).await?;
    deliveries.retain(|d| patients.iter().any(|p| p.username == d.username));
    deliveries.truncate(50);
    let body = html! {
        h1 { "Accounts and devices" }
        p class="hint" { "Of " (scope.institution) "." }
        @if let Some(n) = &notice { (n.render(user)) }
        div class="table" tabindex="0" role="region" aria-label="Accounts" {
            table {
                thead { tr {
                    th scope="col" { "Username" } th scope="col" { "Role" } th scope="col" { "Name" }
                    th scope="col" { "Institution" } th scope="col" { "Physician" } th scope="col" { "Device" }
                    th scope="col" { "Status and actions" }
                } }
                tbody { @for a in accounts { tr {
                    td { (a.username) } td { (a.role.as_str()) } td { (a.last_name) ", " (a.first_name) }
                    td { (a.institution.as_deref().unwrap_or("—")) }
                    td { (a.physician.as_deref().unwrap_or("—")) }
                    td { (a.device.as_deref().unwrap_or("—")) }
                    td {
                        @if a.disabled { strong { "Disabled" } } @else { "Active" }
                        @if a.has_second_factor {
                            " · two-step login"
                            form class="inline" method="post" action={ "/admin/accounts/" (a.username) "/reset-two-factor" } {
                                input type="hidden" name="csrf" value=(user.csrf);
                                button type="submit" aria-label={ "Reset two-step login of " (a.username) } { "Reset two-step" }
                            }
                        }
                        @if a.disabled {
                            form class="inline" method="post" action={ "/admin/accounts/" (a.username) "/enable" } {
                                input type="hidden" name="csrf" value=(user.csrf);
                                button type="submit" aria-label={ "Enable " (a.username) } { "Enable" }
                            }
                        } @else if a.username != user.session.username {
                            // Two steps: a slip must not end a patient's pump tokens.
                            details class="inline" {
                                summary { "Disable…" }
                                form method="post" action={ "/admin/accounts/" (a.username) "/disable" } {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    button type="submit" {
                                        "Disable " (a.username) " now"
                                        @if a.role == Role::Patient { ": its pump must log in again once enabled" }
                                    }
                                }
                            }
                        }
                        (crate::web::admin_care::row_actions(a, user, &physicians))
                    }
                } } }
            }
        }
        h2 id="security-events" { "Security events" }
        @if security.is_empty() { p { "None." } }
        @else { (crate::web::patient::security_table(&security)) }
        h2 id="new-physician" { "New physician" }
        form class="edit" method="post" action="/admin/physicians" aria-labelledby="new-physician" {
            input type="hidden" name="csrf" value=(user.csrf);
            label for="ph-username" { "Username" } input id="ph-username" name="username" required autocomplete="off";
            label for="ph-first" { "First name" } input id="ph-first" name="first_name" required;
            label for="ph-last" { "Last name" } input id="ph-last" name="last_name" required;
            input type="hidden" name="institution" value=(scope.institution);
            label for="ph-password" { "Initial password (12 to 128 characters)" }
            input id="ph-password" name="password" type="password" required autocomplete="new-password";
            button type="submit" { "Create physician" }
        }
        h2 id="new-patient" { "New patient" }
        form class="edit" method="post" action="/admin/patients" aria-labelledby="new-patient" {
            input type="hidden" name="csrf" value=(user.csrf);
            label for="pa-username" { "Username (the pump logs in with it)" } input id="pa-username" name="username" required autocomplete="off";
            label for="pa-first" { "First name" } input id="pa-first" name="first_name" required;
            label for="pa-last" { "Last name" } input id="pa-last" name="last_name" required;
            label for="pa-record" { "Record number" } input id="pa-record" name="record_number" required maxlength="32" autocomplete="off";
            label for="pa-birth" { "Date of birth" } input id="pa-birth" name="birth_date" type="date" required;
            label for="pa-physician" { "Physician" }
            select id="pa-physician" name="physician" required {
                @for ph in &physicians { option value=(ph.username) { (ph.last_name) ", " (ph.first_name) " (" (ph.username) ")" } }
            }
            label for="pa-password" { "Initial password (12 to 128 characters)" }
            input id="pa-password" name="password" type="password" required autocomplete="new-password";
            button type="submit" { "Create patient" }
        }
        (crate::web::drug_library::section(&drugs, user))
        (crate::web::time_zone::section(user))
        (crate::web::ward_policy::section(&wards, user))
        (crate::web::admin_notify::section(&deliveries, &user.zone()))
        h2 id="bind" { "Register a pump" }
        p class="hint" { "Binding a pump replaces the patient's previous pump; a pump serves one patient at a time." }
        form class="edit" method="post" action="/admin/devices" aria-labelledby="bind" {
            input type="hidden" name="csrf" value=(user.csrf);
            label for="dev-patient" { "Patient" }
            select id="dev-patient" name="patient" required {
                @for pa in &patients { option value=(pa.username) { (pa.last_name) ", " (pa.first_name) " (" (pa.username) ")" } }
            }
            label for="dev-mac" { "MAC address (AA:BB:CC:DD:EE:FF)" } input id="dev-mac" name="mac" required autocomplete="off";
            button type="submit" { "Register pump" }
        }
    };
    let status = match &notice {
        Some(n) if n.is_refusal() => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    Ok((status, page("Administration", user, "/admin", None, body)).into_response())
}

/// How an administrator's form ends: `303` back to `/admin` with what was
/// done, or the page with the refusal, answered 422.
pub async fn finish(
    app: &AppState,
    user: &WebUser,
    outcome: Result<String, StoreError>,
) -> Result<Response, WebError> {
    match outcome {
        Ok(done) => Ok(see_other(app, user, "/admin", Notice::Done(done))),
        Err(e) => render(app, user, Some(Notice::Refused(refusal(e)?))).await,
    }
}

/// Checks a new password (against `context`: the account's username and
/// names) and hashes it (Argon2id, on the bounded blocking pool).
pub async fn new_password_hash(
    app: &AppState,
    password: &str,
    context: &[&str],
) -> Result<String, StoreError> {
    check_password(password, context)?;
    app.passwords
        .hash(password)
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))
}

/// `POST /admin/accounts/{username}/{disable|enable|reset-two-factor}`.
/// A disabled account's sessions and its pump's token chain end at once;
/// a reset removes a lost authenticator.
pub async fn account_action(
    State(app): State<AppState>,
    Path((username, verb)): Path<(String, String)>,
    Submitted { user, .. }: Submitted<Button>,
) -> Result<Response, WebError> {
    let scope = Scope::of(&app, &user).await?;
    if let Err(e) = scope.account(&username, None) {
        return finish(&app, &user, Err(e)).await;
    }
    let actor = user_actor(&user.session.username);
    if verb == "reset-two-factor" {
        let outcome = app
            .store
            .reset_second_factor(&username, &actor, now_ms())
            .await
            .map(|_| format!("{username}'s two-step login is reset: it enrols a new authenticator after its password."));
        return finish(&app, &user, outcome).await;
    }
    let enabled = match verb.as_str() {
        "enable" => true,
        "disable" => false,
        _ => {
            return Err(WebError::Api(crate::error::ApiError::new(
                infusion_protocol::ErrorCode::NotFound,
                "no such action on an account",
            )));
        }
    };
    let outcome = app
        .store
        .set_account_enabled(&username, enabled, &actor, now_ms())
        .await
        .map(|()| {
            if enabled {
                format!("{username} is enabled and can log in again.")
            } else {
                format!("{username} is disabled: its sessions and pump tokens have ended, and it cannot log in.")
            }
        });
    finish(&app, &user, outcome).await
}

/// The new physician form.
#[derive(Debug, Deserialize)]
pub struct PhysicianForm {
    username: String,
    first_name: String,
    last_name: String,
    institution: String,
    password: String,
}

/// `POST /admin/physicians`.
pub async fn create_physician(
    State(app): State<AppState>,
    Submitted { user, form: f }: Submitted<PhysicianForm>,
) -> Result<Response, WebError> {
    let scope = Scope::of(&app, &user).await?;
    let outcome = async {
        if f.institution.trim() != scope.institution {
            return Err(StoreError::Invalid(format!(
                "you administer {} only: a physician elsewhere is made by that institution's \
                 administrator",
                scope.institution
            )));
        }
        let context = [f.username.as_str(), &f.first_name, &f.last_name];
        let password_hash = new_password_hash(&app, &f.password, &context).await?;
        let new = NewPhysician {
            username: f.username.trim().to_owned(),
            first_name: f.first_name.trim().to_owned(),
            last_name: f.last_name.trim().to_owned(),
            institution: f.institution.trim().to_owned(),
            password_hash,
            // The administrator chose it: its owner replaces it at once.
            must_change_password: true,
        };
        app.store
            .create_physician(new, &user_actor(&user.session.username), now_ms())
            .await?;
        Ok(format!("Physician {} created.", f.username))
    }
    .await;
    finish(&app, &user, outcome).await
}

/// The new patient form.
#[derive(Debug, Deserialize)]
pub struct PatientForm {
    username: String,
    first_name: String,
    last_name: String,
    physician: String,
    password: String,
    record_number: String,
    birth_date: String,
}

/// `POST /admin/patients`.
pub async fn create_patient(
    State(app): State<AppState>,
    Submitted { user, form: f }: Submitted<PatientForm>,
) -> Result<Response, WebError> {
    let scope = Scope::of(&app, &user).await?;
    let outcome = async {
        scope.account(&f.physician, Some(Role::Physician))?;
        let context = [f.username.as_str(), &f.first_name, &f.last_name];
        let password_hash = new_password_hash(&app, &f.password, &context).await?;
        let new = NewPatient {
            username: f.username.trim().to_owned(),
            first_name: f.first_name.trim().to_owned(),
            last_name: f.last_name.trim().to_owned(),
            physician_username: f.physician,
            password_hash,
            identifiers: PatientIdentifiers {
                record_number: Some(f.record_number.trim().to_owned()),
                birth_date: Some(f.birth_date.trim().to_owned()),
            },
        };
        app.store
            .create_patient(new, &user_actor(&user.session.username), now_ms())
            .await?;
        Ok(format!(
            "Patient {} created; register their pump below.",
            f.username
        ))
    }
    .await;
    finish(&app, &user, outcome).await
}

/// The pump registration form.
#[derive(Debug, Deserialize)]
pub struct DeviceForm {
    patient: String,
    mac: String,
}

/// `POST /admin/devices`.
pub async fn bind_device(
    State(app): State<AppState>,
    Submitted { user, form: f }: Submitted<DeviceForm>,
) -> Result<Response, WebError> {
    let scope = Scope::of(&app, &user).await?;
    let outcome = async {
        scope.account(&f.patient, Some(Role::Patient))?;
        let mac = MacAddress::parse(f.mac.trim()).map_err(|_| {
            StoreError::Invalid(format!(
                "{:?} is not a MAC address like AA:BB:CC:DD:EE:FF",
                f.mac
            ))
        })?;
        let secret =
            crate::identity::new_device_secret().map_err(|e| StoreError::Backend(e.to_string()))?;
        let patient = app.store.patient_id(&f.patient).await?;
        app.store
            .bind_device(
                patient,
                mac,
                secret.public_key(),
                &user_actor(&user.session.username),
                now_ms(),
            )
            .await?;
        Ok(format!(
            "Pump {mac} registered to {}. Provision it now with its device secret {} and this \
             server's index key {}. The secret is shown only this once; binding the pump again \
             issues a new one.",
            f.patient,
            secret.to_hex(),
            app.keys.index.public_key()
        ))
    }
    .await;
    finish(&app, &user, outcome).await
}
