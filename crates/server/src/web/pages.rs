//! The physician's and the patient's pages, and the forms that change a
//! patient's limits and prescription.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use infusion_protocol::{EventBody, InfusionState, PatientLimits};
use infusion_store::{NewPrescription, PatientSummary, Role, StoredEvent, user_actor};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::form::Form;
use crate::web::{WebError, chart};

/// How many of a patient's newest events the reports table shows.
const RECENT_TABLE: usize = 100;

/// How many of a patient's newest events the history charts show.
const HISTORY: u32 = 3_000;
use crate::web::format::{ago, milli, parse_milli, time};
use crate::web::layout::page;
use crate::web::session::WebUser;

/// `/`: each role's start page.
pub async fn home(user: WebUser) -> Result<Redirect, WebError> {
    match user.session.role {
        Role::Physician => Ok(Redirect::to("/dashboard")),
        Role::Patient => Ok(Redirect::to(&format!(
            "/patients/{}",
            user.session.username
        ))),
        Role::Admin => Ok(Redirect::to("/admin")),
    }
}

/// What the newest events say about a pump: state, rate, delivered volume,
/// the alarms among them.
struct Latest {
    state: Option<&'static str>,
    rate_ul_h: Option<u32>,
    delivered_ul: Option<u32>,
}

fn latest(events: &[StoredEvent]) -> Latest {
    let mut l = Latest {
        state: None,
        rate_ul_h: None,
        delivered_ul: None,
    };
    // Newest first.
    for e in events {
        match e.body {
            EventBody::State(s) if l.state.is_none() => l.state = Some(s.as_str()),
            EventBody::Progress(p) if l.rate_ul_h.is_none() => {
                l.rate_ul_h = Some(p.rate_ul_h);
                l.delivered_ul = Some(p.delivered_ul);
            }
            _ => {}
        }
    }
    l
}

/// `/dashboard`: the physician's patients at a glance.
pub async fn dashboard(State(app): State<AppState>, user: WebUser) -> Result<Response, WebError> {
    if user.session.role != Role::Physician {
        return Err(WebError::forbidden("see a physician's dashboard"));
    }
    let now = now_ms();
    let mut rows = Vec::new();
    for p in app.store.patients_of(&user.session.username).await? {
        let events = app.store.recent_events(p.patient_id, 50).await?;
        let alarms = app.store.open_alarms(p.patient_id).await?;
        let pending = app.store.pending_suggestions(p.patient_id).await?.len();
        rows.push((p, latest(&events), alarms, pending));
    }
    let body = html! {
        h1 { "My patients" }
        @if rows.is_empty() { p { "No patients are assigned to you." } }
        @else {
            div class="table" id="patients" tabindex="0" role="region" aria-label="My patients" data-live {
                table {
                    caption class="hint" { "Newest report of each pump, updated live. Volumes in mL, rates in mL/h." }
                    thead { tr {
                        th scope="col" { "Patient" } th scope="col" { "Prescription" } th scope="col" { "Pump state" }
                        th scope="col" { "Rate" } th scope="col" { "Delivered" } th scope="col" { "Last contact" }
                        th scope="col" { "Open alarms" } th scope="col" { "Suggestions" }
                    } }
                    tbody {
                        @for (p, l, alarms, pending) in &rows {
                            tr {
                                td { a href={ "/patients/" (p.username) } { (p.last_name) ", " (p.first_name) } }
                                td { (prescription_text(p)) }
                                td { (l.state.unwrap_or("no report yet")) }
                                td { @if let Some(r) = l.rate_ul_h { (milli(r)) " mL/h" } @else { "—" } }
                                td { @if let Some(d) = l.delivered_ul { (milli(d)) " mL" } @else { "—" } }
                                td { @if let Some(t) = p.last_contact_ms { (ago(t, now)) } @else { "never" } }
                                td {
                                    @if alarms.is_empty() { "none" }
                                    @else {
                                        @for a in alarms { span class="alarm" { (alarm_name(&a.body)) } " " }
                                        a href={ "/patients/" (p.username) "#alarms" } { "acknowledge" }
                                    }
                                }
                                td {
                                    @if *pending == 0 { "none" }
                                    @else { a href={ "/patients/" (p.username) "#suggestions" } { (pending) " to review" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page("My patients", &user, "/dashboard", None, body).into_response())
}

fn prescription_text(p: &PatientSummary) -> String {
    match &p.prescription {
        Some(x) => format!(
            "v{}: {} mL at {} mL/h ({})",
            x.version,
            milli(x.volume_ul),
            milli(x.rate_ul_h),
            x.state.as_str()
        ),
        None => "none".into(),
    }
}

/// The patient `username` if `user` may see them: their physician, or the
/// patient themself. Anyone else gets the same 404 as for a stranger.
async fn visible(
    app: &AppState,
    user: &WebUser,
    username: &str,
) -> Result<PatientSummary, WebError> {
    let found = async {
        let id = app.store.patient_id(username).await?;
        app.store.patient(id).await
    };
    let p = match found.await {
        Ok(p) => p,
        Err(infusion_store::StoreError::NotFound(_)) => return Err(WebError::no_patient()),
        Err(e) => return Err(e.into()),
    };
    let s = &user.session;
    let allowed = match s.role {
        Role::Physician => p.physician_username == s.username,
        Role::Patient => p.username == s.username,
        Role::Admin => false,
    };
    if allowed {
        Ok(p)
    } else {
        Err(WebError::no_patient())
    }
}

/// The patient `username` if `user` may change their treatment: their
/// physician only.
async fn editable(
    app: &AppState,
    user: &WebUser,
    username: &str,
) -> Result<PatientSummary, WebError> {
    let p = visible(app, user, username).await?;
    if user.session.role != Role::Physician {
        return Err(WebError::forbidden(
            "change a prescription, limits or alarms",
        ));
    }
    Ok(p)
}

/// `/patients/{username}`.
pub async fn patient(
    State(app): State<AppState>,
    user: WebUser,
    Path(username): Path<String>,
) -> Result<Response, WebError> {
    let p = visible(&app, &user, &username).await?;
    Ok(patient_page(&app, &user, &p, None).await?.into_response())
}

async fn patient_page(
    app: &AppState,
    user: &WebUser,
    p: &PatientSummary,
    notice: Option<(bool, String)>,
) -> Result<Markup, WebError> {
    let physician = user.session.role == Role::Physician;
    let versions = app.store.prescriptions(p.patient_id).await?;
    // One read serves both: the newest HISTORY reports (newest first), of
    // which the table, the state summary and the delivery column use the
    // newest 100, and the charts all of them, oldest first.
    let newest = app.store.recent_events(p.patient_id, HISTORY).await?;
    let events = &newest[..newest.len().min(RECENT_TABLE)];
    let history: Vec<&StoredEvent> = newest.iter().rev().collect();
    let (audit, security) = if physician {
        (
            app.store.audit_log(Some(p.patient_id), 50).await?,
            app.store.security_events(Some(p.patient_id), 10).await?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let l = latest(events);
    let alarms = app.store.open_alarms(p.patient_id).await?;
    let suggestions = app.store.pending_suggestions(p.patient_id).await?;
    let current_version = p.prescription.as_ref().map_or(0, |x| x.version);
    let now = now_ms();
    let title = format!("{} {}", p.first_name, p.last_name);
    let body = html! {
        h1 { (title) }
        @if let Some((ok, text)) = &notice {
            @if *ok { p role="status" { (text) } } @else { p role="alert" { (text) } }
        }
        @if !security.is_empty() {
            section id="security" aria-labelledby="security-events" {
                h2 id="security-events" { "Security events" }
                p role="alert" { "This pump's token chain was replayed and revoked; the pump must log in again. Check the device and the network it uses." }
                (security_table(&security))
            }
        }
        section id="alarms-live" data-live aria-labelledby="alarms" {
            h2 id="alarms" { "Open alarms" }
            @if alarms.is_empty() { p { "None." } }
            @else {
                ul {
                    @for a in &alarms {
                        li {
                            span class="alarm" { (alarm_name(&a.body)) } " at " (time(a.received_at_ms))
                            @if physician {
                                form class="inline" method="post" action={ "/patients/" (p.username) "/alarms/" (a.id) "/ack" } {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    button type="submit" aria-label={ "Acknowledge " (alarm_name(&a.body)) " alarm of " (time(a.received_at_ms)) } { "Acknowledge" }
                                }
                            }
                        }
                    }
                }
            }
        }
        section id="suggestions-live" data-live aria-labelledby="suggestions" {
            h2 id="suggestions" { "Suggested changes" }
            @if suggestions.is_empty() { p { "None pending." } }
            @for sg in &suggestions {
                @let x = &sg.proposal;
                @let stale = x.based_on_version != current_version;
                div class="suggestion" {
                    p {
                        strong { (milli(x.volume_ul)) " mL at " (milli(x.rate_ul_h)) " mL/h" }
                        " instead of version " (x.based_on_version) ", suggested " (time(sg.created_at_ms)) "."
                    }
                    p { "Why: " (x.reason) }
                    @if stale {
                        p role="alert" { "Stale: version " (current_version) " was written since. It can no longer be approved." }
                    }
                    @if physician {
                        @for (decision, label) in [("approve", "Approve"), ("reject", "Reject")] {
                            form class="inline" method="post" action={ "/patients/" (p.username) "/suggestions/" (sg.id) "/" (decision) } {
                                input type="hidden" name="csrf" value=(user.csrf);
                                button type="submit" disabled[stale && decision == "approve"] { (label) " suggestion" }
                            }
                        }
                    }
                }
            }
        }
        section id="now-live" data-live aria-labelledby="now" {
            h2 id="now" { "Now" }
            ul {
                li { "Prescription: " (prescription_text(p)) }
                li { "Pump state: " (l.state.unwrap_or("no report yet")) }
                li { "Rate: " @if let Some(r) = l.rate_ul_h { (milli(r)) " mL/h" } @else { "—" } }
                li { "Delivered: " @if let Some(d) = l.delivered_ul { (milli(d)) " mL" } @else { "—" } }
                li { "Device: " @if let Some(m) = &p.device { (m.to_string()) } @else { "none bound" } }
                li { "Last contact: " @if let Some(t) = p.last_contact_ms { (ago(t, now)) } @else { "never" } }
            }
        }
        section aria-labelledby="limits" {
            h2 id="limits" { "Limits" }
            p id="limits-live" data-live { "Rate " (milli(p.limits.min_rate_ul_h)) " to " (milli(p.limits.max_rate_ul_h)) " mL/h, volume at most " (milli(p.limits.max_volume_ul)) " mL." }
            @if physician {
                form class="edit" method="post" action={ "/patients/" (p.username) "/limits" } {
                    input type="hidden" name="csrf" value=(user.csrf);
                    label for="min_rate" { "Lowest rate (mL/h)" }
                    input id="min_rate" name="min_rate_ml_h" inputmode="decimal" required value=(milli(p.limits.min_rate_ul_h));
                    label for="max_rate" { "Highest rate (mL/h)" }
                    input id="max_rate" name="max_rate_ml_h" inputmode="decimal" required value=(milli(p.limits.max_rate_ul_h));
                    label for="max_volume" { "Largest volume (mL)" }
                    input id="max_volume" name="max_volume_ml" inputmode="decimal" required value=(milli(p.limits.max_volume_ul));
                    button type="submit" { "Save limits" }
                }
            }
        }
        @if physician {
            section aria-labelledby="prescribe" {
                h2 id="prescribe" { "Change the prescription" }
                p class="hint" { "Within the limits above. The pump applies a new version at its next poll." }
                form class="edit" method="post" action={ "/patients/" (p.username) "/prescription" } {
                    input type="hidden" name="csrf" value=(user.csrf);
                    label for="volume" { "Volume (mL)" }
                    input id="volume" name="volume_ml" inputmode="decimal" required
                        value=(p.prescription.as_ref().map_or(String::new(), |x| milli(x.volume_ul)));
                    label for="rate" { "Rate (mL/h)" }
                    input id="rate" name="rate_ml_h" inputmode="decimal" required
                        value=(p.prescription.as_ref().map_or(String::new(), |x| milli(x.rate_ul_h)));
                    label for="state" { "State" }
                    @let held = p.prescription.as_ref().is_some_and(|x| x.state == InfusionState::Hold);
                    select id="state" name="state" {
                        option value="run" selected[!held] { "Run" }
                        option value="hold" selected[held] { "Hold (pause the pump)" }
                    }
                    button type="submit" { "Save as a new version" }
                }
            }
        }
        section id="charts-live" data-live aria-labelledby="charts" {
            h2 id="charts" { "History" }
            (chart::panels("Infusion: delivered volume and rate", &[
                chart::Series { name: "Delivered", unit: "mL", points: history.iter().filter_map(|e| match e.body {
                    EventBody::Progress(p) => Some((e.received_at_ms, i64::from(p.delivered_ul))), _ => None }).collect() },
                chart::Series { name: "Rate", unit: "mL/h", points: history.iter().filter_map(|e| match e.body {
                    EventBody::Progress(p) => Some((e.received_at_ms, i64::from(p.rate_ul_h))), _ => None }).collect() },
            ]))
            (chart::panels("Vital signs", &[
                chart::Series { name: "Heart rate", unit: "bpm", points: history.iter().filter_map(|e| match e.body {
                    EventBody::Vitals(v) => Some((e.received_at_ms, i64::from(v.heart_rate_bpm) * 1000)), _ => None }).collect() },
                chart::Series { name: "SpO2", unit: "%", points: history.iter().filter_map(|e| match e.body {
                    EventBody::Vitals(v) => Some((e.received_at_ms, i64::from(v.spo2_pct) * 1000)), _ => None }).collect() },
                chart::Series { name: "Tremor score", unit: "0 to 100", points: history.iter().filter_map(|e| match e.body {
                    EventBody::Vitals(v) => Some((e.received_at_ms, i64::from(v.tremor_score) * 1000)), _ => None }).collect() },
            ]))
        }
        section aria-labelledby="versions" {
            h2 id="versions" { "Prescription versions" }
            div class="table" id="versions-live" tabindex="0" role="region" aria-label="Prescription versions" data-live { table {
                thead { tr { th scope="col" { "Version" } th scope="col" { "Volume" } th scope="col" { "Rate" } th scope="col" { "State" } th scope="col" { "Written" } th scope="col" { "By" } th scope="col" { "Delivery" } } }
                tbody { @for v in versions.iter().rev() { tr {
                    td { (v.version) } td { (milli(v.volume_ul)) " mL" } td { (milli(v.rate_ul_h)) " mL/h" }
                    td { (v.state.as_str()) } td { (time(v.created_at_ms)) } td { (v.created_by) }
                    td { (delivery(v, current_version, events)) }
                } } }
            } }
        }
        section aria-labelledby="history" {
            h2 id="history" { "Recent pump reports" }
            div class="table" id="history-live" tabindex="0" role="region" aria-label="Recent pump reports" data-live { table {
                thead { tr { th scope="col" { "Received" } th scope="col" { "Event" } th scope="col" { "Detail" } } }
                tbody { @for e in events { tr {
                    td { (time(e.received_at_ms)) }
                    td { (event_kind(&e.body)) }
                    td { (event_detail(&e.body)) }
                } } }
            } }
        }
        @if physician {
            section aria-labelledby="audit" {
                h2 id="audit" { "Audit trail" }
                div class="table" id="audit-live" tabindex="0" role="region" aria-label="Audit trail" data-live { table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Detail" } } }
                    tbody { @for r in &audit { tr {
                        td { (time(r.entry.at_ms)) } td { (r.entry.actor) } td { (r.entry.action.as_str()) } td { (r.entry.detail) }
                    } } }
                } }
            }
        }
    };
    let path = format!("/patients/{}", p.username);
    Ok(page(&title, user, &path, Some(p.patient_id), body))
}

/// Security events (replayed tokens) as a table: when, which device, what.
pub(crate) fn security_table(events: &[infusion_store::AuditRecord]) -> Markup {
    html! {
        div class="table" tabindex="0" role="region" aria-label="Security events" { table {
            thead { tr { th scope="col" { "When" } th scope="col" { "Device" } th scope="col" { "What" } th scope="col" { "Detail" } } }
            tbody { @for r in events { tr {
                td { (time(r.entry.at_ms)) } td { (r.entry.actor) } td { (r.entry.action.as_str()) } td { (r.entry.detail) }
            } } }
        } }
    }
}

/// Where a prescription version is on its way to the patient, from what
/// the pump has said: sent (written, not yet fetched), fetched by the pump
/// (it polled the index since), refused by the pump (a `limits_refused`
/// alarm after fetching it, and no delivery of it), running (progress
/// reports on this version), or replaced.
fn delivery(v: &infusion_store::Prescription, current: u32, events: &[StoredEvent]) -> String {
    let ran = events
        .iter()
        .any(|e| matches!(e.body, EventBody::Progress(p) if p.index_version == v.version));
    let Some(fetched) = v.fetched_at_ms else {
        return if v.version == current {
            "sent; waiting for the pump's next poll".into()
        } else {
            "replaced before the pump fetched it".into()
        };
    };
    let refused = events.iter().any(|e| {
        e.received_at_ms >= fetched
            && matches!(
                e.body,
                EventBody::Alarm(infusion_protocol::Alarm::LimitsRefused)
            )
    });
    match (ran, v.version == current) {
        (true, true) => "running on the pump".into(),
        (true, false) => "delivered, then replaced".into(),
        (false, _) if refused => "refused by the pump (limits_refused alarm)".into(),
        (false, true) => format!("fetched by the pump at {}", time(fetched)),
        (false, false) => "fetched, then replaced".into(),
    }
}

fn alarm_name(b: &EventBody) -> &'static str {
    match b {
        EventBody::Alarm(a) => a.as_str(),
        _ => "alarm",
    }
}

fn event_kind(b: &EventBody) -> &'static str {
    match b {
        EventBody::Progress(_) => "progress",
        EventBody::State(_) => "state",
        EventBody::Alarm(_) => "alarm",
        EventBody::Vitals(_) => "vitals",
    }
}

fn event_detail(b: &EventBody) -> String {
    match b {
        EventBody::Progress(p) => format!(
            "{} mL delivered at {} mL/h (version {})",
            milli(p.delivered_ul),
            milli(p.rate_ul_h),
            p.index_version
        ),
        EventBody::State(s) => s.as_str().to_owned(),
        EventBody::Alarm(a) => format!("ALARM: {}", a.as_str()),
        EventBody::Vitals(v) => format!(
            "heart rate {} bpm, SpO2 {} %, tremor {}",
            v.heart_rate_bpm, v.spo2_pct, v.tremor_score
        ),
    }
}

/// The limits form's fields, in mL and mL/h as typed.
#[derive(Debug, Deserialize)]
pub struct LimitsForm {
    csrf: String,
    min_rate_ml_h: String,
    max_rate_ml_h: String,
    max_volume_ml: String,
}

fn number(field: &str, text: &str) -> Result<u32, String> {
    parse_milli(text)
        .ok_or_else(|| format!("{field}: {text:?} is not a number with at most three decimals"))
}

/// Saves the outcome of a form: back to the patient page with a message
/// (303 on success, the page with the refusal and 422 otherwise).
async fn answer(
    app: &AppState,
    user: &WebUser,
    username: &str,
    outcome: Result<String, String>,
) -> Result<Response, WebError> {
    let p = visible(app, user, username).await?;
    let status = if outcome.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let notice = match outcome {
        Ok(text) => (true, text),
        Err(text) => (false, text),
    };
    Ok((status, patient_page(app, user, &p, Some(notice)).await?).into_response())
}

fn refusal(e: infusion_store::StoreError) -> Result<String, WebError> {
    use infusion_store::StoreError::*;
    match e {
        OutsideLimits(m) | Invalid(m) | Conflict(m) => Ok(m),
        other => Err(other.into()),
    }
}

/// `POST /patients/{username}/limits`.
pub async fn set_limits(
    State(app): State<AppState>,
    user: WebUser,
    Path(username): Path<String>,
    Form(f): Form<LimitsForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&f.csrf)?;
    let patient = editable(&app, &user, &username).await?.patient_id;
    let parsed = (|| {
        Ok::<_, String>(PatientLimits {
            min_rate_ul_h: number("lowest rate", &f.min_rate_ml_h)?,
            max_rate_ul_h: number("highest rate", &f.max_rate_ml_h)?,
            max_volume_ul: number("largest volume", &f.max_volume_ml)?,
        })
    })();
    let outcome = match parsed {
        Err(m) => Err(m),
        Ok(limits) => match app
            .store
            .set_limits(
                patient,
                limits,
                &user_actor(&user.session.username),
                now_ms(),
            )
            .await
        {
            Ok(()) => Ok("Limits saved.".to_owned()),
            Err(e) => Err(refusal(e)?),
        },
    };
    answer(&app, &user, &username, outcome).await
}

/// The prescription form's fields.
#[derive(Debug, Deserialize)]
pub struct PrescriptionForm {
    csrf: String,
    volume_ml: String,
    rate_ml_h: String,
    state: String,
}

/// `POST /patients/{username}/prescription`: a new version.
pub async fn set_prescription(
    State(app): State<AppState>,
    user: WebUser,
    Path(username): Path<String>,
    Form(f): Form<PrescriptionForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&f.csrf)?;
    let patient = editable(&app, &user, &username).await?.patient_id;
    let parsed = (|| {
        let state = match f.state.as_str() {
            "run" => InfusionState::Run,
            "hold" => InfusionState::Hold,
            other => return Err(format!("state: {other:?} is neither run nor hold")),
        };
        Ok(NewPrescription {
            volume_ul: number("volume", &f.volume_ml)?,
            rate_ul_h: number("rate", &f.rate_ml_h)?,
            state,
        })
    })();
    let outcome = match parsed {
        Err(m) => Err(m),
        Ok(p) => match app
            .store
            .set_prescription(patient, p, &user_actor(&user.session.username), now_ms())
            .await
        {
            Ok(v) => Ok(format!(
                "Saved as version {v}; the pump applies it at its next poll."
            )),
            Err(e) => Err(refusal(e)?),
        },
    };
    answer(&app, &user, &username, outcome).await
}

/// The alarm acknowledgement form's fields.
#[derive(Debug, Deserialize)]
pub struct AckForm {
    csrf: String,
}

/// `POST /patients/{username}/alarms/{event_id}/ack`: the physician has
/// seen the alarm; it leaves the open list, audited with who and when.
pub async fn acknowledge_alarm(
    State(app): State<AppState>,
    user: WebUser,
    Path((username, event_id)): Path<(String, i64)>,
    Form(f): Form<AckForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&f.csrf)?;
    let patient = editable(&app, &user, &username).await?.patient_id;
    let outcome = match app
        .store
        .acknowledge_alarm(
            patient,
            event_id,
            &user_actor(&user.session.username),
            now_ms(),
        )
        .await
    {
        Ok(true) => Ok("Alarm acknowledged.".to_owned()),
        Ok(false) => Ok("That alarm was acknowledged already.".to_owned()),
        Err(infusion_store::StoreError::NotFound(_)) => return Err(WebError::no_alarm()),
        Err(e) => Err(refusal(e)?),
    };
    answer(&app, &user, &username, outcome).await
}

/// `POST /patients/{username}/suggestions/{id}/{approve|reject}`.
pub async fn decide_suggestion(
    State(app): State<AppState>,
    user: WebUser,
    Path((username, id, decision)): Path<(String, i64, String)>,
    Form(f): Form<AckForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&f.csrf)?;
    let patient = editable(&app, &user, &username).await?.patient_id;
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(WebError::no_suggestion()),
    };
    let outcome = match app
        .store
        .decide_suggestion(
            patient,
            id,
            approve,
            &user_actor(&user.session.username),
            now_ms(),
        )
        .await
    {
        Ok(infusion_store::Decision::Approved(v)) => Ok(format!(
            "Suggestion approved as version {v}; the pump applies it at its next poll."
        )),
        Ok(infusion_store::Decision::Rejected) => Ok("Suggestion rejected.".to_owned()),
        Err(infusion_store::StoreError::NotFound(_)) => return Err(WebError::no_suggestion()),
        Err(e) => Err(refusal(e)?),
    };
    answer(&app, &user, &username, outcome).await
}
