//! The care team on the patient page: the ward the patient is on, and the
//! caregivers (family members) the physician lets follow the patient, read
//! only, until an end date; the physician's grant and revoke forms; and a
//! caregiver's start page, the patients they follow.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use infusion_store::{CaregiverGrant, NewCaregiver, PatientSummary, Role, StoreError, user_actor};
use jiff::tz::TimeZone;
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::admin::new_password_hash;
use crate::web::escalation::nurse_line;
use crate::web::form::{Button, Path, Submitted, Typed};
use crate::web::format::{date, identifiers, time};
use crate::web::layout::page;
use crate::web::notice::Notice;
use crate::web::patient::answer_with;
use crate::web::session::WebUser;
use crate::web::{WebError, access, refusal};

/// The grant form: who, and until which day (in the institution's time
/// zone; the access ends at the end of that day).
#[derive(Debug, Deserialize)]
pub struct GrantForm {
    username: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    /// A new caregiver's first password; empty for an existing caregiver.
    #[serde(default)]
    password: String,
    /// Where their alarm emails go; empty: none (or, for an existing
    /// caregiver, unchanged).
    #[serde(default)]
    email: String,
    /// `YYYY-MM-DD`.
    until: String,
}

impl GrantForm {
    fn typed(&self) -> Typed {
        Typed::new(vec![
            ("cg_username", self.username.clone()),
            ("cg_first_name", self.first_name.clone()),
            ("cg_last_name", self.last_name.clone()),
            ("cg_until", self.until.clone()),
            ("cg_email", self.email.clone()),
        ])
    }
}

/// The first moment after the day `until` (`YYYY-MM-DD`) in `zone`, ms
/// since the epoch: when an access "until 31 January" ends.
fn end_of_day(until: &str, zone: &TimeZone) -> Result<i64, StoreError> {
    let bad = || StoreError::Invalid("give the last day of access as a date".into());
    let day: jiff::civil::Date = until.trim().parse().map_err(|_| bad())?;
    let next = day.tomorrow().map_err(|_| bad())?;
    let at = next.to_zoned(zone.clone()).map_err(|_| bad())?;
    Ok(at.timestamp().as_millisecond())
}

/// `POST /patients/{username}/caregivers`: the physician lets a caregiver
/// follow the patient. A new username becomes a caregiver's account with
/// the first password typed here (changed at its first login); an existing
/// caregiver's needs none.
pub async fn grant(
    State(app): State<AppState>,
    Path(username): Path<String>,
    Submitted { user, form }: Submitted<GrantForm>,
) -> Result<Response, WebError> {
    let p = access::treatable(&app, &user.session, &username).await?;
    let outcome = async {
        let ends_at_ms = end_of_day(&form.until, &user.zone())?;
        let email = Some(form.email.trim()).filter(|e| !e.is_empty());
        if let Some(e) = email {
            infusion_store::check_email(e)?;
        }
        let password_hash = if form.password.is_empty() {
            None
        } else {
            let context = [form.username.as_str(), &form.first_name, &form.last_name];
            Some(new_password_hash(&app, &form.password, &context).await?)
        };
        let new = NewCaregiver {
            patient: p.patient_id,
            username: form.username.trim().to_owned(),
            first_name: form.first_name.trim().to_owned(),
            last_name: form.last_name.trim().to_owned(),
            password_hash,
            ends_at_ms,
        };
        let actor = user_actor(&user.session.username);
        let username = new.username.clone();
        app.store.grant_caregiver(new, &actor, now_ms()).await?;
        if let Some(e) = email {
            app.store
                .set_email(&username, Some(e), &actor, now_ms())
                .await?;
        }
        Ok::<_, StoreError>(format!(
            "{} may now follow {} {}, read only, until the end of {}.",
            form.username.trim(),
            p.first_name,
            p.last_name,
            date(form.until.trim())
        ))
    };
    match outcome.await {
        Ok(done) => answer_with(&app, &user, &p, Ok(done), Typed::default()).await,
        Err(e) => {
            let refused = Notice::Refused(refusal(e)?);
            answer_with(&app, &user, &p, Err(refused), form.typed()).await
        }
    }
}

/// `POST /patients/{username}/caregivers/{grant}/revoke`: the access ends
/// now; the caregiver's open pages stop showing the patient.
pub async fn revoke(
    State(app): State<AppState>,
    Path((username, grant)): Path<(String, i64)>,
    Submitted { user, .. }: Submitted<Button>,
) -> Result<Response, WebError> {
    let p = access::treatable(&app, &user.session, &username).await?;
    let actor = user_actor(&user.session.username);
    let outcome = match app
        .store
        .revoke_caregiver(p.patient_id, grant, &actor, now_ms())
        .await
    {
        Ok(()) => Ok("Access revoked: they no longer see this patient.".to_owned()),
        Err(e) => Err(Notice::Refused(refusal(e)?)),
    };
    answer_with(&app, &user, &p, outcome, Typed::default()).await
}

/// The patient page's care team: the ward and physician for every member
/// of staff; for the physician, the caregivers and the grant form.
pub fn care_team_section(
    p: &PatientSummary,
    user: &WebUser,
    caregivers: &[CaregiverGrant],
    treats: bool,
    zone: &TimeZone,
    typed: &Typed,
) -> Markup {
    let now = now_ms();
    let path = format!("/patients/{}/caregivers", p.username);
    html! {
        section id="care-team" aria-labelledby="care-team-h" {
            h2 id="care-team-h" { "Care team" }
            ul {
                li { "Ward: " @if let Some(w) = &p.ward { (w.name) } @else { "not on a ward (an administrator assigns one)" } }
                li { "Physician: " (p.physician_username) }
                @if p.ward.is_some() { (nurse_line(p, user)) }
            }
            @if treats {
                h3 { "Caregivers" }
                @if caregivers.is_empty() { p { "No one else follows this patient." } }
                @else {
                    ul {
                        @for g in caregivers {
                            li {
                                (g.first_name) " " (g.last_name) " (" (g.username) "): "
                                @if g.active(now) {
                                    "until " (time(g.ends_at_ms, zone))
                                    form class="inline" method="post" action={ (path) "/" (g.id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(user.csrf);
                                        button type="submit" aria-label={ "Revoke " (g.username) "'s access" } { "Revoke" }
                                    }
                                } @else if let Some(t) = g.revoked_at_ms {
                                    "revoked " (time(t, zone))
                                } @else {
                                    "ended " (time(g.ends_at_ms, zone))
                                }
                            }
                        }
                    }
                }
                details open[typed.get("cg_username").is_some()] {
                    summary { "Let a caregiver follow this patient" }
                    form method="post" action=(path) {
                        input type="hidden" name="csrf" value=(user.csrf);
                        p class="hint" { "A family member sees what the patient sees, read only, and is told of alarms, until the end of the day you give. For someone who follows another patient already, give their username and the day only." }
                        label for="cg_username" { "Username" }
                        input id="cg_username" name="username" required autocomplete="off" value=(typed.or("cg_username", String::new));
                        label for="cg_first_name" { "First name" }
                        input id="cg_first_name" name="first_name" autocomplete="off" value=(typed.or("cg_first_name", String::new));
                        label for="cg_last_name" { "Last name" }
                        input id="cg_last_name" name="last_name" autocomplete="off" value=(typed.or("cg_last_name", String::new));
                        label for="cg_password" { "First password (they change it at their first login)" }
                        input id="cg_password" name="password" type="password" autocomplete="new-password";
                        label for="cg_email" { "Email for alarms (optional)" }
                        input id="cg_email" name="email" type="email" autocomplete="off" value=(typed.or("cg_email", String::new));
                        label for="cg_until" { "Last day of access" }
                        input id="cg_until" name="until" type="date" required value=(typed.or("cg_until", String::new));
                        button type="submit" { "Give access" }
                    }
                }
            }
        }
    }
}

/// `GET /following`: a caregiver's start page, the patients they follow
/// now (straight to the one, when there is one).
pub async fn following(State(app): State<AppState>, user: WebUser) -> Result<Response, WebError> {
    if user.session.role != Role::Caregiver {
        return Err(WebError::forbidden("see a caregiver's patients"));
    }
    let patients = access::visible_patients(&app, &user.session).await?;
    if let [only] = patients.as_slice() {
        return Ok(
            axum::response::Redirect::to(&format!("/patients/{}", only.username)).into_response(),
        );
    }
    let body = html! {
        h1 { "The patients you follow" }
        @if patients.is_empty() {
            p { "You do not follow anyone now: your access has ended or was revoked. The patient's physician can give it again." }
        } @else {
            ul {
                @for p in &patients {
                    li { a href={ "/patients/" (p.username) } { (p.first_name) " " (p.last_name) } " " span class="hint" { (identifiers(p)) } }
                }
            }
        }
    };
    Ok(page("Following", &user, "/following", None, body).into_response())
}
