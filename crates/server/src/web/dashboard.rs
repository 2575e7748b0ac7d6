//! `/dashboard`: a physician's patients at a glance, and what the newest
//! events say about a pump (shared with the patient page).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use infusion_protocol::EventBody;
use infusion_store::{BOARD_RECENT, PatientSummary, Priority, Role, StoredEvent, highest};
use maud::{Markup, html};

use crate::AppState;
use crate::clock::now_ms;
use crate::web::format::{ago, alarm_item, identifiers, milli, prescription_text, silent_item};
use crate::web::glance::{duration, glance};
use crate::web::layout::{alert_controls, page};
use crate::web::session::WebUser;
use crate::web::{WebError, access};

/// What the newest events say about a pump: rate and delivered volume
/// (its state in words is the [`crate::web::glance`]'s).
pub(crate) struct Latest {
    pub rate_ul_h: Option<u32>,
    pub delivered_ul: Option<u32>,
}

pub(crate) fn latest(events: &[StoredEvent]) -> Latest {
    let mut l = Latest {
        rate_ul_h: None,
        delivered_ul: None,
    };
    // Newest first.
    for e in events {
        match e.body {
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
    let patients = access::visible_patients(&app, &user.session).await?;
    let board = board(&app, &user, patients, "My patients").await?;
    let body = html! {
        h1 { "My patients" }
        (alert_controls())
        @if board.is_none() { p { "No patients are assigned to you." } }
        @if let Some(b) = board { (b) }
    };
    Ok(page("My patients", &user, "/dashboard", None, body).into_response())
}

/// `/ward`: a nurse's ward, every pump of it at once, the most urgent
/// alarm first.
pub async fn ward(State(app): State<AppState>, user: WebUser) -> Result<Response, WebError> {
    let Some(ward) = user
        .session
        .ward
        .clone()
        .filter(|_| user.session.role == Role::Nurse)
    else {
        return Err(WebError::forbidden("see a ward"));
    };
    let patients = access::visible_patients(&app, &user.session).await?;
    let title = format!("Ward {}", ward.name);
    let board = board(&app, &user, patients, &title).await?;
    let body = html! {
        h1 { (title) }
        (alert_controls())
        @if board.is_none() { p { "No patients are on this ward." } }
        @if let Some(b) = board { (b) }
    };
    Ok(page(&title, &user, "/ward", None, body).into_response())
}

/// The table of `patients` (`None` when there are none), labelled
/// `label`: one row per patient, the most urgent first.
async fn board(
    app: &AppState,
    user: &WebUser,
    patients: Vec<PatientSummary>,
    label: &str,
) -> Result<Option<Markup>, WebError> {
    if patients.is_empty() {
        return Ok(None);
    }
    let now = now_ms();
    let zone = user.zone();
    let reviews = access::may_treat(&user.session);
    let mut rows = Vec::new();
    // A physician's patients, and a ward's, are of one institution: one
    // library serves every row.
    let drugs = match patients.first() {
        Some(p) => app.store.drugs_for(p.patient_id).await?,
        None => Vec::new(),
    };
    // Three statements for the whole board, whatever its size.
    let ids: Vec<_> = patients.iter().map(|p| p.patient_id).collect();
    let mut board = app.store.board(&ids, BOARD_RECENT).await?;
    for p in patients {
        let events = board.recent.remove(&p.patient_id).unwrap_or_default();
        let alarms = board.alarms.remove(&p.patient_id).unwrap_or_default();
        let pending = board.pending.get(&p.patient_id).copied().unwrap_or(0);
        rows.push((p, latest(&events), alarms, pending, events));
    }
    // Patients with open alarms first (the most urgent alarm first, then
    // the most alarms), then by name: what needs someone comes to the top
    // on every screen.
    let urgency = |p: &PatientSummary, alarms: &[StoredEvent]| {
        let silent = p.silent_since_ms.map(|_| Priority::SILENT);
        highest(alarms).into_iter().chain(silent).min()
    };
    rows.sort_by(|a, b| {
        let (ua, ub) = (urgency(&a.0, &a.2), urgency(&b.0, &b.2));
        (ua.is_none(), ua)
            .cmp(&(ub.is_none(), ub))
            .then_with(|| b.2.len().cmp(&a.2.len()))
            .then_with(|| a.0.last_name.cmp(&b.0.last_name))
            .then_with(|| a.0.first_name.cmp(&b.0.first_name))
    });
    Ok(Some(html! {
        {
            div class="table cards" id="patients" tabindex="0" role="region" aria-label=(label) data-live {
                table {
                    caption class="hint" { "Newest report of each pump, updated live; patients with open alarms first. Volumes in mL, rates in mL/h." }
                    thead { tr {
                        th scope="col" { "Patient" } th scope="col" { "Open alarms" } th scope="col" { "Prescription" }
                        th scope="col" { "Pump state" } th scope="col" { "Rate" } th scope="col" { "Delivered" }
                        th scope="col" { "Last contact" }
                        // Suggestions are the physician's to review.
                        @if reviews { th scope="col" { "Suggestions" } }
                    } }
                    tbody {
                        @for (p, l, alarms, pending, events) in &rows {
                            tr class=[(!alarms.is_empty() || p.silent_since_ms.is_some()).then_some("alarmed")] {
                                th scope="row" {
                                    a href={ "/patients/" (p.username) } { (p.last_name) ", " (p.first_name) }
                                    // Identifiers: two patients may share a name.
                                    br; span class="hint" { (identifiers(p)) }
                                }
                                td data-label="Open alarms" {
                                    @if let Some(t) = p.silent_since_ms { (silent_item(t, &zone)) br; }
                                    @if alarms.is_empty() { @if p.silent_since_ms.is_none() { "none" } }
                                    @else {
                                        @for a in alarms { (alarm_item(a, &format!("{} {}", p.first_name, p.last_name))) br; }
                                        a href={ "/patients/" (p.username) "#alarms" } { "acknowledge" }
                                    }
                                }
                                td data-label="Prescription" { (prescription_text(p.prescription.as_ref(), &drugs)) }
                                @let g = glance(p.prescription.as_ref(), events);
                                td data-label="Pump state" {
                                    @if g.refused { strong class="alarm" { (g.state) } } @else { (g.state) }
                                    @if let (Some(left), Some(m)) = (g.remaining_ul, g.minutes_left) {
                                        br; span class="hint" { (milli(left)) " mL left, about " (duration(m)) }
                                    }
                                }
                                td data-label="Rate" { @if let Some(r) = l.rate_ul_h { (milli(r)) " mL/h" } @else { "—" } }
                                td data-label="Delivered" { @if let Some(d) = l.delivered_ul { (milli(d)) " mL" } @else { "—" } }
                                td data-label="Last contact" {
                                    @if let Some(t) = p.last_contact_ms { (ago(t, now)) } @else { "never" }
                                    @if let Some(t) = g.battery_low_ms { br; strong class="alarm" { "Battery low" } " (" (ago(t, now)) ")" }
                                }
                                @if reviews {
                                    td data-label="Suggestions" {
                                        @if *pending == 0 { "none" }
                                        @else { a href={ "/patients/" (p.username) "#suggestions" } { (pending) " to review" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }))
}
