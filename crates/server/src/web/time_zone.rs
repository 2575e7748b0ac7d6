//! `/admin/time-zone`: the time zone in which an institution's staff and
//! patients read every time, set by its administrators (the audit trail
//! and security events keep UTC).

use axum::extract::State;
use axum::response::Response;
use infusion_store::user_actor;
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::WebError;
use crate::web::admin::finish;
use crate::web::admin_scope::Scope;
use crate::web::form::Submitted;
use crate::web::format::zone_name;
use crate::web::session::WebUser;

/// The time zone form: an IANA name as typed.
#[derive(Debug, Deserialize)]
pub struct ZoneForm {
    zone: String,
}

/// `POST /admin/time-zone`: for the administrator's own institution.
pub async fn set(
    State(app): State<AppState>,
    Submitted { user, form }: Submitted<ZoneForm>,
) -> Result<Response, WebError> {
    let scope = Scope::of(&app, &user).await?;
    let actor = user_actor(&user.session.username);
    let outcome = app
        .store
        .set_time_zone(&scope.institution, &form.zone, &actor, now_ms())
        .await
        .and_then(|()| infusion_store::time_zone(&form.zone))
        .map(|zone| {
            format!(
                "{} now reads times in {}.",
                scope.institution,
                zone_name(&zone, now_ms())
            )
        });
    finish(&app, &user, outcome).await
}

/// The current zone and the form that sets it, offering the IANA names.
pub fn section(user: &WebUser) -> Markup {
    let names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.to_string())
        .filter(|n| n.contains('/') && !n.starts_with("Etc/"))
        .collect();
    html! {
        h2 id="time-zone" { "Time zone" }
        p { "Staff and patients read times in " (zone_name(&user.zone(), now_ms())) ". The audit trail and security events stay in UTC." }
        form class="edit" method="post" action="/admin/time-zone" aria-labelledby="time-zone" {
            input type="hidden" name="csrf" value=(user.csrf);
            label for="tz-zone" { "Time zone (a name such as Europe/Madrid)" }
            input id="tz-zone" name="zone" list="tz-names" required maxlength="64" autocomplete="off" value=(user.session.time_zone);
            datalist id="tz-names" { @for n in &names { option value=(n) {} } }
            button type="submit" { "Set the time zone" }
        }
    }
}
