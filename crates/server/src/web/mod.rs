//! The web application for physicians and patients: server-rendered HTML
//! (maud, so every value is escaped), a server-side session per login, a
//! CSRF token on every form.
//!
//! Authorization is decided per request from the session's account and
//! role, by one policy ([`access`]): a physician sees and edits only their
//! own patients, a patient sees only their own record (read only). A
//! patient who is not yours answers the same 404 as one that does not
//! exist, so usernames cannot be probed.
//!
//! One module per page or form: `dashboard`, `patient`, `treatment`
//! (limits and prescription), `alarms`, `suggestions`, `admin`, `auth`.
//! Every form of a logged-in page is read by [`form::Submitted`] (session,
//! then form, then CSRF), and a successful one answers `303 See Other`
//! with a one-time [`notice::Notice`] (Post/Redirect/Get).

mod access;
mod account;
mod admin;
mod admin_care;
mod admin_notify;
mod admin_scope;
mod alarms;
mod auth;
mod care_team;
mod chart;
mod confirm;
mod dashboard;
mod drug_library;
mod escalation;
mod form;
mod format;
mod glance;
mod hold;
mod layout;
mod live;
pub mod live_slots;
mod login_code;
mod notice;
mod own_page;
mod patient;
pub mod record_views;
pub mod session;
mod suggestions;
mod time_zone;
mod treatment;
mod two_factor;
mod ward_policy;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use infusion_store::{Role, StoreError};
use maud::html;

use crate::{ApiError, AppState};

/// Routes of the web application.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", get(form_page).post(auth::logout))
        .route("/dashboard", get(dashboard::dashboard))
        .route("/ward", get(dashboard::ward))
        .route("/following", get(care_team::following))
        .route("/patients/{username}", get(patient::patient))
        .route(
            "/patients/{username}/limits",
            get(form_page).post(treatment::set_limits),
        )
        .route(
            "/patients/{username}/limits/from-drug",
            get(form_page).post(treatment::limits_from_drug),
        )
        .route(
            "/patients/{username}/prescription",
            get(form_page).post(treatment::set_prescription),
        )
        .route("/patients/{username}/hold", get(form_page).post(hold::hold))
        .route(
            "/patients/{username}/note",
            get(form_page).post(own_page::set_note),
        )
        .route(
            "/patients/{username}/resume",
            get(form_page).post(hold::resume),
        )
        .route(
            "/patients/{username}/caregivers",
            get(form_page).post(care_team::grant),
        )
        .route(
            "/patients/{username}/caregivers/{grant}/revoke",
            get(form_page).post(care_team::revoke),
        )
        .route(
            "/patients/{username}/escalations/{id}/silence",
            get(form_page).post(escalation::silence),
        )
        .route(
            "/patients/{username}/escalations/{id}/acknowledge",
            get(form_page).post(escalation::acknowledge),
        )
        .route(
            "/patients/{username}/nurse",
            get(form_page).post(escalation::set_nurse),
        )
        .route(
            "/patients/{username}/alarms/{event_id}/ack",
            get(form_page).post(alarms::acknowledge_alarm),
        )
        .route(
            "/patients/{username}/suggestions/{id}/{decision}",
            get(form_page).post(suggestions::decide_suggestion),
        )
        .route("/admin", get(admin::overview))
        .route(
            "/admin/physicians",
            get(form_page).post(admin::create_physician),
        )
        .route(
            "/admin/patients",
            get(form_page).post(admin::create_patient),
        )
        .route("/admin/devices", get(form_page).post(admin::bind_device))
        .route("/admin/drugs", get(form_page).post(drug_library::add))
        .route("/admin/time-zone", get(form_page).post(time_zone::set))
        .route(
            "/admin/wards/{name}/escalation",
            get(form_page).post(ward_policy::set),
        )
        .route(
            "/admin/patients/{username}/unbind",
            get(form_page).post(admin_care::unbind),
        )
        .route(
            "/admin/patients/{username}/move",
            get(form_page).post(admin_care::move_patient),
        )
        .route(
            "/admin/accounts/{username}/reset-password",
            get(form_page).post(admin_care::reset_password),
        )
        .route(
            "/admin/drugs/{id}/withdraw",
            get(form_page).post(drug_library::withdraw),
        )
        .route(
            "/admin/accounts/{username}/{verb}",
            get(form_page).post(admin::account_action),
        )
        .route(account::PATH, get(account::form).post(account::change))
        .route(
            "/account/two-factor",
            get(account::two_factor).post(account::enrol),
        )
        .route("/login/code", get(form_page).post(login_code::login_code))
        .route("/live", get(live::live))
        .route("/static/app.css", get(layout::stylesheet))
        .route("/static/live.js", get(live::script))
        .route("/static/live-worker.js", get(live::worker))
}

/// `GET` of a form's own address (a bookmarked or reloaded form target, a
/// link pasted from the address bar): the page the form is on, never an
/// empty 405 or raw JSON. Changes nothing.
async fn form_page(uri: axum::http::Uri) -> Redirect {
    let path = uri.path();
    let mut parts = path.trim_start_matches('/').split('/');
    let to = match (parts.next(), parts.next()) {
        (Some("patients"), Some(username)) if !username.is_empty() => {
            format!("/patients/{username}")
        }
        (Some("admin"), _) => "/admin".to_owned(),
        (Some("login"), _) => "/login".to_owned(),
        _ => "/".to_owned(),
    };
    Redirect::to(&to)
}

/// `/`: each role's start page.
async fn home(user: session::WebUser) -> Redirect {
    match user.session.role {
        Role::Physician => Redirect::to("/dashboard"),
        Role::Patient => Redirect::to(&format!("/patients/{}", user.session.username)),
        Role::Admin => Redirect::to("/admin"),
        Role::Nurse => Redirect::to("/ward"),
        Role::Caregiver => Redirect::to("/following"),
    }
}

/// The one mapping of a store refusal to what a form shows: a refusal the
/// user can act on (outside the limits, invalid, taken, not found) is its
/// message; anything else (a fault, the database away) stays an error
/// page.
fn refusal(e: StoreError) -> Result<String, WebError> {
    match e {
        StoreError::OutsideLimits(m)
        | StoreError::Invalid(m)
        | StoreError::Conflict(m)
        | StoreError::NotFound(m) => Ok(m),
        e @ StoreError::NeedsConfirmation(_) => Ok(e.to_string()),
        other => Err(other.into()),
    }
}

/// What a form shows for a store operation's result: `Ok` with `done`'s
/// words for what was done, `Err` with the words of a [`refusal`].
fn outcome<T>(
    result: Result<T, StoreError>,
    done: impl FnOnce(T) -> String,
) -> Result<Result<String, String>, WebError> {
    match result {
        Ok(v) => Ok(Ok(done(v))),
        Err(e) => Ok(Err(refusal(e)?)),
    }
}

/// Why a web request was not served. Rendered as an HTML page with the
/// status of the underlying [`ApiError`], or as a redirect to the login
/// page; never with internals.
#[derive(Debug)]
pub enum WebError {
    /// No live session: log in (303 to `/login`).
    Login,
    /// The account must change the password an administrator chose
    /// before anything else (303 to `/account/password`).
    ChangePassword,
    /// A second factor is required and the account has none: enrol one
    /// first (303 to `/account/two-factor`).
    EnrolSecondFactor,
    /// A form without this session's CSRF token (403).
    Csrf,
    /// Anything else, with its code and message.
    Api(ApiError),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        WebError::Api(e.into())
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError::Api(e)
    }
}

impl WebError {
    /// A 404 for a patient that does not exist or is not the user's.
    pub fn no_patient() -> WebError {
        WebError::Api(ApiError::new(
            infusion_protocol::ErrorCode::NotFound,
            "no such patient in your care",
        ))
    }

    /// A 404 for an alarm that is not this patient's.
    pub fn no_alarm() -> WebError {
        WebError::Api(ApiError::new(
            infusion_protocol::ErrorCode::NotFound,
            "no such alarm for this patient",
        ))
    }

    /// A 404 for a suggestion that is not this patient's or not pending.
    pub fn no_suggestion() -> WebError {
        WebError::Api(ApiError::new(
            infusion_protocol::ErrorCode::NotFound,
            "no such pending suggestion for this patient",
        ))
    }

    /// A 403 for an action the user's role may not take.
    pub fn forbidden(what: &str) -> WebError {
        WebError::Api(ApiError::new(
            infusion_protocol::ErrorCode::Forbidden,
            format!("your account may not {what}"),
        ))
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            WebError::Login => return Redirect::to("/login").into_response(),
            WebError::ChangePassword => return Redirect::to(account::PATH).into_response(),
            WebError::EnrolSecondFactor => {
                return Redirect::to("/account/two-factor").into_response();
            }
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was not issued by this session (it may be from an old page). Reload the page and try again.".to_owned(),
            ),
            WebError::Api(e) => (e.status(), "Request refused", e.message),
        };
        let body = layout::bare(
            title,
            html! {
                h1 { (title) }
                p role="alert" { (message) }
                p { a href="/" { "Back to the start page" } }
            },
        );
        (status, body).into_response()
    }
}
