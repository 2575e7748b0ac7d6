//! The patient's own page, written for the patient: what the pump is
//! giving now, how much is left and about when it ends, what the pump has
//! warned of, and the note the physician chose to share. Not the
//! clinician's page without its forms: no limits, versions, reports or
//! audit, and every sentence in the second person. Also the physician's
//! form that writes that note.

use axum::extract::State;
use axum::response::Response;
use infusion_protocol::{EventBody, InfusionState, StateChange};
use infusion_store::{Drug, PatientSummary, StoredEvent, alarm_words, drug_in, mg_h, user_actor};
use jiff::tz::TimeZone;
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::form::{Path, Submitted};
use crate::web::format::{ago, clock, day_time, milli};
use crate::web::glance::{Glance, duration, glance};
use crate::web::patient::answer;
use crate::web::session::WebUser;
use crate::web::{WebError, access, outcome};

/// How many of the newest reports the page reads.
const RECENT: u32 = 100;

/// The note form.
#[derive(Debug, Deserialize)]
pub struct NoteForm {
    note: String,
}

/// `POST /patients/{username}/note`: the patient's physician writes (or,
/// empty, removes) the note shown on the patient's own page.
pub async fn set_note(
    State(app): State<AppState>,
    Path(username): Path<String>,
    Submitted { user, form }: Submitted<NoteForm>,
) -> Result<Response, WebError> {
    let p = access::treatable(&app, &user.session, &username).await?;
    let actor = user_actor(&user.session.username);
    let saved = app
        .store
        .set_patient_note(p.patient_id, &form.note, &actor, now_ms())
        .await;
    let empty = form.note.trim().is_empty();
    let done = outcome(saved, |()| {
        if empty {
            "The note for the patient is removed.".to_owned()
        } else {
            "Saved: the patient sees this note on their own page.".to_owned()
        }
    })?;
    answer(&app, &user, &p, done).await
}

/// The physician's form for the note, on the clinician's patient page.
pub fn note_form(p: &PatientSummary, user: &WebUser) -> Markup {
    html! {
        section aria-labelledby="note-for-patient" {
            h2 id="note-for-patient" { "Note for the patient" }
            form class="edit" method="post" action={ "/patients/" (p.username) "/note" } {
                input type="hidden" name="csrf" value=(user.csrf);
                label for="note" { "Shown on the patient's own page, in your words (empty: none)" }
                textarea id="note" name="note" rows="4" maxlength=(infusion_store::NOTE_MAX) {
                    @if let Some(n) = &p.note { (n.text) }
                }
                button type="submit" { "Save the note" }
            }
        }
    }
}

/// The patient's own page body, from `events` (newest first) and the
/// open `alarms`.
/// `alerts`: the reader is told of each new high-priority warning as it
/// comes (a caregiver, away from the pump); the patient hears the pump.
pub fn own_body(
    p: &PatientSummary,
    drugs: &[Drug],
    events: &[StoredEvent],
    alarms: &[StoredEvent],
    zone: &TimeZone,
    alerts: bool,
) -> Markup {
    let now = now_ms();
    let g = glance(p.prescription.as_ref(), events);
    html! {
        section id="own-live" data-live aria-labelledby="own-now" {
            h2 id="own-now" { "Your infusion now" }
            p class="own-state" { (state_sentence(p, drugs, &g, events)) }
            @if let (Some(left), Some(rx)) = (g.remaining_ul, &p.prescription) {
                label for="own-progress" { "Given so far" }
                progress id="own-progress" max=(rx.volume_ul) value=(rx.volume_ul - left) {
                    (g.percent.unwrap_or(0)) " %"
                }
                p {
                    "About " (tenths_ml(left)) " mL left"
                    @if let Some(m) = g.minutes_left {
                        ". At this rate it ends at about " (clock(now + i64::try_from(m).unwrap_or(0) * 60_000, zone))
                        " (in " (duration(m)) ")"
                    }
                    "."
                }
            }
            @if !alarms.is_empty() {
                div role="alert" {
                    p { "Your pump has warned:" }
                    ul { @for a in alarms {
                        @let priority = infusion_store::Priority::of_event(a);
                        li data-alarm-id=[alerts.then_some(a.id)]
                            data-alarm-priority=[alerts.then_some(priority.as_str())]
                            data-alarm-text=[alerts.then(|| format!("{} ({} {})", warning(&a.body), p.first_name, p.last_name))] {
                            (warning(&a.body)) ", " (day_time(a.received_at_ms, zone)) "."
                        }
                    } }
                    p { "Your care team sees these warnings on their screen too." }
                }
            }
            @if let Some(t) = p.silent_since_ms {
                p role="alert" {
                    "Your pump has not checked in since " (clock(t, zone))
                    ". It keeps going as it was set to; your care team can see this. If it shows an alarm, call them."
                }
            }
            @if let Some(v) = vitals(events) { p { (v) } }
            p class="hint" {
                @if let Some(t) = p.last_contact_ms { "Your pump last checked in " (ago(t, now)) "." }
                @else { "Your pump has not checked in yet." }
            }
        }
        section aria-labelledby="own-note" {
            h2 id="own-note" { "From your physician" }
            @if let Some(n) = &p.note {
                p class="note" { (n.text) }
                p class="hint" { "Written " (day_time(n.set_at_ms, zone)) "." }
            } @else {
                p { "Nothing yet." }
            }
        }
        section aria-labelledby="own-help" {
            h2 id="own-help" { "If something is wrong" }
            p { "Do not change the pump's settings yourself. If you feel unwell, or the pump alarms and you do not know why, call your care team." }
        }
    }
}

/// What the pump is doing, said to the patient.
fn state_sentence(
    p: &PatientSummary,
    drugs: &[Drug],
    g: &Glance,
    events: &[StoredEvent],
) -> String {
    let Some(rx) = &p.prescription else {
        return "No infusion has been prescribed for you yet.".into();
    };
    if g.refused {
        return "Your pump did not start the newest order from your physician, so it has stopped. \
                Your care team can see this on their screen. If you feel unwell, call them."
            .into();
    }
    let last_state = events.iter().find_map(|e| match e.body {
        EventBody::State(s) => Some(s),
        _ => None,
    });
    match (rx.state, last_state) {
        (InfusionState::Hold, Some(StateChange::Paused)) => {
            "Your physician has paused your infusion: the pump is not giving anything now.".into()
        }
        (InfusionState::Hold, _) => {
            "Your physician has paused your infusion: the pump stops at its next check-in.".into()
        }
        (_, None) => "Your pump has not reported yet.".into(),
        (_, Some(StateChange::Completed)) => "Your infusion is complete.".into(),
        (_, Some(StateChange::Paused)) => {
            "Your pump has paused. Your care team can see why on their screen.".into()
        }
        (_, Some(StateChange::Started | StateChange::Adjusted | StateChange::Resumed)) => {
            let rate = format!("{} mL an hour", milli(rx.rate_ul_h));
            match drug_in(drugs, rx.drug) {
                Some(d) => format!(
                    "Your pump is giving {} at {} ({rate}).",
                    d.drug.name,
                    mg_h(d.dose_ug_h(rx.rate_ul_h))
                ),
                None => format!("Your pump is giving {rate}."),
            }
        }
    }
}

/// µL as mL to one decimal, rounded: a patient reads "1.7 mL", not
/// "1.731 mL".
fn tenths_ml(ul: u32) -> String {
    let tenths = (ul + 50) / 100;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// An alarm in the patient's words.
fn warning(b: &EventBody) -> String {
    match b {
        EventBody::Alarm(a) => alarm_words(*a).to_owned(),
        _ => "A warning".into(),
    }
}

/// The newest vital signs, in words.
fn vitals(events: &[StoredEvent]) -> Option<String> {
    events.iter().find_map(|e| match e.body {
        EventBody::Vitals(v) => Some(format!(
            "Your latest readings: heart rate {} beats a minute, oxygen {} %, tremor score {} \
             (0 is none, 100 the most).",
            v.heart_rate_bpm, v.spo2_pct, v.tremor_score
        )),
        _ => None,
    })
}

/// The events and alarms the patient's own page reads.
pub async fn own_reads(
    app: &AppState,
    p: &PatientSummary,
) -> Result<(Vec<StoredEvent>, Vec<StoredEvent>), WebError> {
    Ok((
        app.store.recent_events(p.patient_id, RECENT).await?,
        app.store.open_alarms(p.patient_id).await?,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_patient_reads_volumes_to_a_tenth_of_a_millilitre() {
        assert_eq!(super::tenths_ml(1_731), "1.7");
        assert_eq!(super::tenths_ml(1_750), "1.8");
        assert_eq!(super::tenths_ml(40), "0.0");
        assert_eq!(super::tenths_ml(9_000), "9.0");
    }
}
