//! An alarm's way to people on the patient page: who has been told, when,
//! and who is next unless someone acknowledges it; the Silence and
//! Acknowledge buttons (the physician and the ward's nurses); and a
//! nurse's "I look after this patient", which makes them the first told.

use axum::extract::State;
use axum::response::Response;
use infusion_store::{Escalation, NoticeEvent, PatientSummary, Role, SILENCE_MS, user_actor};
use jiff::tz::TimeZone;
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::form::{Button, Path, Submitted};
use crate::web::format::{clock, priority_badge};
use crate::web::patient::answer;
use crate::web::session::WebUser;
use crate::web::{WebError, access, refusal};

/// `POST /patients/{username}/escalations/{id}/silence`: no one more is
/// told for two minutes; the alarm stays open.
pub async fn silence(
    State(app): State<AppState>,
    Path((username, id)): Path<(String, i64)>,
    Submitted { user, .. }: Submitted<Button>,
) -> Result<Response, WebError> {
    let p = access::attendable(&app, &user.session, &username).await?;
    let actor = user_actor(&user.session.username);
    let outcome = match app
        .store
        .silence_alarm(p.patient_id, id, &actor, now_ms())
        .await
    {
        Ok(()) => Ok(format!(
            "Alarm silenced for {} minutes: no one more is told until then. It stays open until \
             someone acknowledges it.",
            SILENCE_MS / 60_000
        )),
        Err(e) => Err(refusal(e)?),
    };
    answer(&app, &user, &p, outcome).await
}

/// `POST /patients/{username}/escalations/{id}/acknowledge`: someone is
/// on it; the escalation ends and everyone told learns so.
pub async fn acknowledge(
    State(app): State<AppState>,
    Path((username, id)): Path<(String, i64)>,
    Submitted { user, .. }: Submitted<Button>,
) -> Result<Response, WebError> {
    let p = access::attendable(&app, &user.session, &username).await?;
    let actor = user_actor(&user.session.username);
    let outcome = match app
        .store
        .acknowledge_escalation(p.patient_id, id, &actor, now_ms())
        .await
    {
        Ok(true) => Ok(
            "Alarm acknowledged: no one more is told, and those told learn that you are on it."
                .to_owned(),
        ),
        Ok(false) => Ok("That alarm was acknowledged already.".to_owned()),
        Err(e) => Err(refusal(e)?),
    };
    answer(&app, &user, &p, outcome).await
}

/// The nurse form: take the patient over, or hand them back.
#[derive(Debug, Deserialize)]
pub struct NurseForm {
    /// `take` or `release`.
    action: String,
}

/// `POST /patients/{username}/nurse`: a nurse of the ward looks after
/// the patient from now on (told of alarms first), or no longer.
pub async fn set_nurse(
    State(app): State<AppState>,
    Path(username): Path<String>,
    Submitted { user, form }: Submitted<NurseForm>,
) -> Result<Response, WebError> {
    let p = access::visible(&app, &user.session, &username).await?;
    if user.session.role != Role::Nurse {
        return Err(WebError::forbidden("look after a patient of a ward"));
    }
    let me = user.session.username.clone();
    let (nurse, done) = match form.action.as_str() {
        "take" => (
            Some(me.as_str()),
            "You look after this patient now: you are told of their alarms first.",
        ),
        _ => (
            None,
            "You no longer look after this patient: their alarms go to every nurse of the ward.",
        ),
    };
    let actor = user_actor(&me);
    let outcome = match app
        .store
        .set_patient_nurse(p.patient_id, nurse, &actor, now_ms())
        .await
    {
        Ok(()) => Ok(done.to_owned()),
        Err(e) => Err(refusal(e)?),
    };
    answer(&app, &user, &p, outcome).await
}

/// The nurse's line of the care team: who looks after the patient, and
/// for a nurse of the ward the button that changes it.
pub fn nurse_line(p: &PatientSummary, user: &WebUser) -> Markup {
    let mine = p.nurse.as_deref() == Some(user.session.username.as_str());
    html! {
        li {
            "Nurse looking after the patient: "
            @if let Some(n) = &p.nurse { (n) } @else { "none (alarms go to every nurse of the ward)" }
            @if user.session.role == Role::Nurse {
                form class="inline" method="post" action={ "/patients/" (p.username) "/nurse" } {
                    input type="hidden" name="csrf" value=(user.csrf);
                    @if mine {
                        input type="hidden" name="action" value="release";
                        button type="submit" { "Hand over" }
                    } @else {
                        input type="hidden" name="action" value="take";
                        button type="submit" { "I look after this patient" }
                    }
                }
            }
        }
    }
}

/// What one notification said, in a line.
fn notice_line(event: NoticeEvent, step: infusion_store::Step, who: &[String]) -> String {
    let people = if who.is_empty() {
        "no one with an account".to_owned()
    } else {
        who.join(", ")
    };
    match event {
        NoticeEvent::Raised => format!("raised: told {} ({people})", step.words()),
        NoticeEvent::Escalated => format!("not acknowledged: told {} ({people})", step.words()),
        NoticeEvent::Acknowledged => format!("acknowledged: told everyone told before ({people})"),
        NoticeEvent::Cleared => format!("cleared: told everyone told before ({people})"),
    }
}

/// The patient page's "Who has been told": each recent alarm's way to
/// people, open ones first, with the buttons for the ones still open.
pub fn escalation_section(
    p: &PatientSummary,
    user: &WebUser,
    escalations: &[Escalation],
    attends: bool,
    zone: &TimeZone,
) -> Markup {
    let now = now_ms();
    html! {
        section id="escalations-live" data-live aria-labelledby="escalations" {
            h2 id="escalations" { "Who has been told" }
            @if escalations.is_empty() { p { "No alarm has been sent to anyone yet." } }
            @for e in escalations {
                @let r = &e.row;
                div class="escalation" data-escalation=(r.id) {
                    p {
                        (priority_badge(r.priority)) " "
                        strong { (infusion_store::alarm_code_words(&r.alarm)) }
                        ", raised " (clock(r.raised_at_ms, zone))
                        @if let Some((t, by)) = &r.acknowledged { " — acknowledged by " (by.trim_start_matches("user:")) " at " (clock(*t, zone)) }
                        @else if let Some(t) = r.cleared_at_ms { " — cleared at " (clock(t, zone)) }
                    }
                    ol class="timeline" {
                        @for (event, step, at, who) in &e.notices {
                            li { (clock(*at, zone)) " " (notice_line(*event, *step, who)) }
                        }
                    }
                    @if r.open() {
                        p class="hint" {
                            @if let Some(until) = r.silenced_until_ms.filter(|u| *u > now) {
                                "Silenced until " (clock(until, zone)) ". "
                            }
                            @match (r.team.after(r.step), r.next_step_at_ms) {
                                (Some((next, _)), Some(at)) => { "Unless someone acknowledges it, " (next.words()) " is told at " (clock(at, zone)) "." }
                                _ => { "Everyone on the escalation list has been told; the alarm stays open until someone acknowledges it." }
                            }
                        }
                        @if attends {
                            @for (verb, label) in [("silence", "Silence 2 min"), ("acknowledge", "Acknowledge")] {
                                form class="inline" method="post" action={ "/patients/" (p.username) "/escalations/" (r.id) "/" (verb) } {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    button type="submit" { (label) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
