//! `/patients/{username}`: one patient's page. What the pump is doing,
//! open alarms and suggestions, the limits and prescription forms (for
//! the physician), charts, versions, reports and the audit trail.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use infusion_protocol::EventBody;
use infusion_store::{
    AuditRecord, CaregiverGrant, Drug, Escalation, NewAudit, PatientSummary, Prescription, Role,
    StoredEvent, Suggestion, drug_in, mg, mg_h, user_actor,
};
use jiff::tz::TimeZone;
use maud::{Markup, html};

use crate::AppState;
use crate::clock::now_ms;
use crate::web::care_team::care_team_section;
use crate::web::dashboard::{Latest, latest};
use crate::web::escalation::escalation_section;
use crate::web::form::{Path, Typed};
use crate::web::format::{
    ago, alarm_item, alarm_name, date, identifiers, milli, prescription_text, silent_item, time,
    utc,
};
use crate::web::glance::{duration, glance, refusal_of};
use crate::web::layout::{alert_controls, page};
use crate::web::notice::{Flash, Notice, see_other};
use crate::web::own_page::{note_form, own_body, own_reads};
use crate::web::session::{LIVE_REFRESH, WebUser};
use crate::web::treatment::{limits_section, prescribe_section};
use crate::web::{WebError, access, chart};

/// How many of a patient's newest events the reports table shows.
const RECENT_TABLE: usize = 100;

/// How many of a patient's newest alarms show who was told.
const ESCALATIONS: u32 = 5;

/// How many of a patient's newest events the history charts show.
const HISTORY: u32 = 3_000;

/// `GET /patients/{username}`, with the notice of the form that led here.
pub async fn patient(
    State(app): State<AppState>,
    user: WebUser,
    flash: Flash,
    headers: axum::http::HeaderMap,
    Path(username): Path<String>,
) -> Result<Response, WebError> {
    let p = access::visible(&app, &user.session, &username).await?;
    let now = now_ms();
    let s = &user.session;
    if !headers.contains_key(LIVE_REFRESH)
        && app.record_views.audit_now(s.account_id, p.patient_id, now)
    {
        let actor = user_actor(&s.username);
        app.store
            .append_audit(NewAudit::record_viewed(now, &actor, p.patient_id))
            .await?;
    }
    let notice = flash.notice(&user);
    let page = patient_page(&app, &user, &p, notice, &Typed::default()).await?;
    Ok((flash, page).into_response())
}

/// Everything the page shows, read before any of it is rendered.
struct View<'a> {
    user: &'a WebUser,
    p: &'a PatientSummary,
    /// May change the treatment (the patient's physician).
    treats: bool,
    /// May acknowledge and silence alarms (the physician, the ward's
    /// nurses).
    attends: bool,
    /// Who else follows the patient (read by the physician only).
    caregivers: Vec<CaregiverGrant>,
    /// The newest alarms' ways to people.
    escalations: Vec<Escalation>,
    versions: Vec<Prescription>,
    /// The newest reports, newest first.
    newest: Vec<StoredEvent>,
    audit: Vec<AuditRecord>,
    security: Vec<AuditRecord>,
    alarms: Vec<StoredEvent>,
    suggestions: Vec<Suggestion>,
    current_version: u32,
    /// The library of the patient's institution, withdrawn drugs too.
    drugs: Vec<Drug>,
    /// The reader's institution's time zone.
    zone: TimeZone,
}

impl View<'_> {
    /// The newest reports the table, state and delivery column use.
    fn recent(&self) -> &[StoredEvent] {
        &self.newest[..self.newest.len().min(RECENT_TABLE)]
    }

    /// `/patients/{username}` and below.
    fn path(&self, tail: &str) -> String {
        format!("/patients/{}{tail}", self.p.username)
    }
}

/// The patient page for `p`, with `notice` at the top and a refused
/// form's `typed` values in its fields.
pub async fn patient_page(
    app: &AppState,
    user: &WebUser,
    p: &PatientSummary,
    notice: Option<Notice>,
    typed: &Typed,
) -> Result<Markup, WebError> {
    if matches!(user.session.role, Role::Patient | Role::Caregiver) {
        return own_page(app, user, p, notice).await;
    }
    let treats = access::may_treat(&user.session);
    let caregivers = if treats {
        app.store.caregivers(p.patient_id).await?
    } else {
        Vec::new()
    };
    let (audit, security) = if treats {
        (
            app.store.audit_log(Some(p.patient_id), 50).await?,
            app.store.security_events(Some(p.patient_id), 10).await?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let v = View {
        user,
        p,
        treats,
        attends: access::may_attend(&user.session),
        caregivers,
        escalations: app.store.escalations(p.patient_id, ESCALATIONS).await?,
        versions: app.store.prescriptions(p.patient_id).await?,
        // One read serves the table, the state summary and the delivery
        // column (the newest 100) and the charts (all of them).
        newest: app.store.recent_events(p.patient_id, HISTORY).await?,
        audit,
        security,
        alarms: app.store.open_alarms(p.patient_id).await?,
        suggestions: app.store.pending_suggestions(p.patient_id).await?,
        current_version: p.prescription.as_ref().map_or(0, |x| x.version),
        drugs: app.store.drugs_for(p.patient_id).await?,
        zone: user.zone(),
    };
    let title = format!("{} {}", p.first_name, p.last_name);
    let body = html! {
        h1 { (title) }
        // Identifiers: two patients may share a name.
        p class="identifiers" { (identifiers(p)) }
        @if let Some(n) = &notice { (n.render(user)) }
        @if v.attends { (alert_controls()) }
        (security_section(&v))
        // On a ward screen what is happening (alarms, suggestions, the
        // pump now) sits beside what to do about it (limits, the order);
        // on a phone one follows the other, in that order.
        div class="columns" {
            div {
                (alarms_section(&v))
                (escalation_section(p, user, &v.escalations, v.attends, &v.zone))
                (suggestions_section(&v))
                (now_section(&v, &latest(v.recent())))
            }
            div {
                // The order first: it changes daily, the limits seldom.
                @if v.treats { (prescribe_section(p, user, app.config.rate_step, &v.drugs, typed)) }
                (limits_section(p, user, v.treats, &v.drugs, typed))
                @if v.treats { (note_form(p, user)) }
                (care_team_section(p, user, &v.caregivers, v.treats, &v.zone, typed))
            }
        }
        (charts_section(&v))
        (versions_section(&v))
        (reports_section(&v))
        @if v.treats { (audit_section(&v)) }
    };
    Ok(page(&title, user, &v.path(""), Some(p.patient_id), body))
}

/// The patient's own page ([`own_body`]).
async fn own_page(
    app: &AppState,
    user: &WebUser,
    p: &PatientSummary,
    notice: Option<Notice>,
) -> Result<Markup, WebError> {
    let (events, alarms) = own_reads(app, p).await?;
    let drugs = app.store.drugs_for(p.patient_id).await?;
    let title = format!("{} {}", p.first_name, p.last_name);
    let born = p.identifiers.birth_date.as_deref().map(date);
    let body = html! {
        h1 { (title) }
        @if let Some(b) = born { p class="identifiers" { "Born " (b) } }
        @if let Some(n) = &notice { (n.render(user)) }
        @if user.session.role == Role::Caregiver {
            p class="hint" { "You follow " (title) " as a caregiver: this is the page " (p.first_name) " sees, read only. A new alarm shows here as it happens." }
            (alert_controls())
        }
        (own_body(p, &drugs, &events, &alarms, &user.zone(), user.session.role == Role::Caregiver))
    };
    Ok(page(
        &title,
        user,
        &format!("/patients/{}", p.username),
        Some(p.patient_id),
        body,
    ))
}

fn security_section(v: &View<'_>) -> Markup {
    html! {
        @if !v.security.is_empty() {
            section id="security" aria-labelledby="security-events" {
                h2 id="security-events" { "Security events" }
                p role="alert" { "This pump's token chain was replayed and revoked; the pump must log in again. Check the device and the network it uses." }
                (security_table(&v.security))
            }
        }
    }
}

fn alarms_section(v: &View<'_>) -> Markup {
    html! {
        section id="alarms-live" data-live aria-labelledby="alarms" {
            h2 id="alarms" { "Open alarms" }
            @if v.alarms.is_empty() && v.p.silent_since_ms.is_none() { p { "None." } }
            @else {
                ul {
                    @if let Some(t) = v.p.silent_since_ms {
                        li { (silent_item(t, &v.zone)) ". It clears when the pump is heard from again." }
                    }
                    @for a in &v.alarms {
                        li {
                            (alarm_item(a, &format!("{} {}", v.p.first_name, v.p.last_name))) " at " (time(a.received_at_ms, &v.zone))
                            @if v.attends {
                                form class="inline" method="post" action=(v.path(&format!("/alarms/{}/ack", a.id))) {
                                    input type="hidden" name="csrf" value=(v.user.csrf);
                                    button type="submit" aria-label={ "Acknowledge " (alarm_name(&a.body)) " alarm of " (time(a.received_at_ms, &v.zone)) } { "Acknowledge" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn suggestions_section(v: &View<'_>) -> Markup {
    html! {
        section id="suggestions-live" data-live aria-labelledby="suggestions" {
            h2 id="suggestions" { "Suggested changes" }
            @if v.suggestions.is_empty() { p { "None pending." } }
            @for sg in &v.suggestions {
                @let x = &sg.proposal;
                @let stale = x.based_on_version != v.current_version;
                div class="suggestion" {
                    p {
                        strong { (milli(x.volume_ul)) " mL at " (milli(x.rate_ul_h)) " mL/h" }
                        " instead of version " (x.based_on_version) ", suggested " (time(sg.created_at_ms, &v.zone)) "."
                    }
                    p { "Why: " (x.reason) }
                    @if stale {
                        p role="alert" { "Stale: version " (v.current_version) " was written since. It can no longer be approved." }
                    }
                    @if v.treats {
                        @for (decision, label) in [("approve", "Approve"), ("reject", "Reject")] {
                            form class="inline" method="post" action=(v.path(&format!("/suggestions/{}/{decision}", sg.id))) {
                                input type="hidden" name="csrf" value=(v.user.csrf);
                                button type="submit" disabled[stale && decision == "approve"] { (label) " suggestion" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn now_section(v: &View<'_>, l: &Latest) -> Markup {
    let p = v.p;
    let g = glance(p.prescription.as_ref(), v.recent());
    html! {
        section id="now-live" data-live aria-labelledby="now" {
            h2 id="now" { "Now" }
            @if g.refused { p role="alert" { "The pump did not run this order. Send a new one (or hold) after checking it." } }
            @if v.treats { (hold_or_resume(v, g.restarted)) }
            ul {
                li { "Prescription: " (prescription_text(p.prescription.as_ref(), &v.drugs)) }
                li { "Pump state: " @if g.refused { strong class="alarm" { (g.state) } } @else { (g.state) } }
                li {
                    "Left to give: "
                    @if let Some(left) = g.remaining_ul {
                        (milli(left)) " mL"
                        @if let Some(m) = g.minutes_left { ", about " (duration(m)) " at the current rate" }
                        @if let Some(pc) = g.percent { " (" (pc) " % given)" }
                    } @else { "—" }
                }
                li { "Rate: " @if let Some(r) = l.rate_ul_h { (milli(r)) " mL/h" } @else { "—" } }
                li { "Delivered: " @if let Some(d) = l.delivered_ul { (milli(d)) " mL" } @else { "—" } }
                li { "Device: " @if let Some(m) = &p.device { (m.to_string()) } @else { "none bound" } }
                li { "Last contact: " @if let Some(t) = p.last_contact_ms { (ago(t, now_ms())) } @else { "never" } }
                li {
                    "Battery: "
                    @if let Some(t) = g.battery_low_ms { strong class="alarm" { "low" } ", reported " (time(t, &v.zone)) }
                    @else { "no low-battery warning" }
                }
            }
        }
    }
}

/// One button that pauses the running order, resumes a held one, or
/// continues one a restarted pump stopped.
fn hold_or_resume(v: &View<'_>, restarted: bool) -> Markup {
    let Some(current) = &v.p.prescription else {
        return html! {};
    };
    let (verb, label) = match current.state {
        infusion_protocol::InfusionState::Run if restarted => ("resume", "Continue the order"),
        infusion_protocol::InfusionState::Run => ("hold", "Hold: pause the pump"),
        infusion_protocol::InfusionState::Hold => ("resume", "Resume the order"),
    };
    html! {
        form class="inline hold" method="post" action=(v.path(&format!("/{verb}"))) {
            input type="hidden" name="csrf" value=(v.user.csrf);
            button type="submit" { (label) }
        }
    }
}

/// The points of one reading of the newest reports, oldest first, in
/// thousandths (the chart's fixed point).
fn series(
    v: &View<'_>,
    (name, unit, min_span): (&'static str, &'static str, i64),
    reading: impl Fn(&EventBody) -> Option<i64>,
) -> chart::Series {
    let points = v
        .newest
        .iter()
        .rev()
        .filter_map(|e| reading(&e.body).map(|y| (e.received_at_ms, y)))
        .collect();
    chart::Series {
        name,
        unit,
        points,
        min_span,
    }
}

fn charts_section(v: &View<'_>) -> Markup {
    let progress = |f: fn(&infusion_protocol::Progress) -> u32| {
        move |b: &EventBody| match b {
            EventBody::Progress(p) => Some(i64::from(f(p))),
            _ => None,
        }
    };
    let vitals = |f: fn(&infusion_protocol::Vitals) -> i64| {
        move |b: &EventBody| match b {
            EventBody::Vitals(x) => Some(f(x) * 1000),
            _ => None,
        }
    };
    html! {
        section id="charts-live" data-live aria-labelledby="charts" {
            h2 id="charts" { "History" }
            (chart::panels("Infusion: delivered volume and rate", &v.zone, &[
                series(v, ("Delivered", "mL", 1_000), progress(|p| p.delivered_ul)),
                series(v, ("Rate", "mL/h", 1_000), progress(|p| p.rate_ul_h)),
            ]))
            (chart::panels("Vital signs", &v.zone, &[
                series(v, ("Heart rate", "bpm", 20_000), vitals(|x| i64::from(x.heart_rate_bpm))),
                series(v, ("SpO2", "%", 10_000), vitals(|x| i64::from(x.spo2_pct))),
                series(v, ("Tremor score", "0 to 100", 20_000), vitals(|x| i64::from(x.tremor_score))),
            ]))
        }
    }
}

fn versions_section(v: &View<'_>) -> Markup {
    html! {
        section aria-labelledby="versions" {
            h2 id="versions" { "Prescription versions" }
            div class="table" id="versions-live" tabindex="0" role="region" aria-label="Prescription versions" data-live { table {
                thead { tr { th scope="col" { "Version" } th scope="col" { "Drug" } th scope="col" { "Volume" } th scope="col" { "Rate" } th scope="col" { "State" } th scope="col" { "Written" } th scope="col" { "By" } th scope="col" { "Delivery" } } }
                tbody { @for x in v.versions.iter().rev() { tr {
                    @let drug = drug_in(&v.drugs, x.drug);
                    td { (x.version) }
                    td { @if let Some(d) = drug { (d.label()) } @else { "—" } }
                    td { @if let Some(d) = drug { (mg(d.amount_ug(x.volume_ul))) " (" } (milli(x.volume_ul)) " mL" @if drug.is_some() { ")" } }
                    td { @if let Some(d) = drug { (mg_h(d.dose_ug_h(x.rate_ul_h))) " (" } (milli(x.rate_ul_h)) " mL/h" @if drug.is_some() { ")" } }
                    td { (infusion_store::order_words(x.state)) } td { (time(x.created_at_ms, &v.zone)) } td { (x.created_by) }
                    td { (delivery(x, v, v.recent())) }
                } } }
            } }
        }
    }
}

fn reports_section(v: &View<'_>) -> Markup {
    html! {
        section aria-labelledby="history" {
            h2 id="history" { "Recent pump reports" }
            div class="table" id="history-live" tabindex="0" role="region" aria-label="Recent pump reports" data-live { table {
                thead { tr { th scope="col" { "Received" } th scope="col" { "Event" } th scope="col" { "Detail" } } }
                tbody { @for e in v.recent() { tr {
                    td { (time(e.received_at_ms, &v.zone)) }
                    td { (event_kind(&e.body)) }
                    td { (event_detail(&e.body)) }
                } } }
            } }
        }
    }
}

fn audit_section(v: &View<'_>) -> Markup {
    html! {
        section aria-labelledby="audit" {
            h2 id="audit" { "Audit trail" }
            div class="table" id="audit-live" tabindex="0" role="region" aria-label="Audit trail" data-live { table {
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Detail" } } }
                tbody { @for r in &v.audit { tr {
                    td { (utc(r.entry.at_ms)) } td { (r.entry.actor) } td { (r.entry.action.words()) } td { (r.entry.detail) }
                } } }
            } }
        }
    }
}

/// Security events as a table: when, who (a device, a username or an
/// address), what. Repeats of one event (the same who and what, one after
/// another) are one row with their count and first time, so that a flood
/// of them does not push every other event off the page.
pub(crate) fn security_table(events: &[infusion_store::AuditRecord]) -> Markup {
    html! {
        div class="table" tabindex="0" role="region" aria-label="Security events" { table {
            thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Detail" } } }
            tbody { @for (r, times, first_ms) in repeats_grouped(events) { tr {
                td {
                    (utc(r.entry.at_ms))
                    @if times > 1 { br; small { (times) " times since " (utc(first_ms)) } }
                }
                td { (r.entry.actor) } td { (r.entry.action.words()) } td { (r.entry.detail) }
            } } }
        } }
    }
}

/// `events` (newest first) with each run of one actor's one action made
/// one: its newest entry, how many, and the oldest one's time.
fn repeats_grouped(
    events: &[infusion_store::AuditRecord],
) -> Vec<(&infusion_store::AuditRecord, usize, i64)> {
    let mut grouped: Vec<(&infusion_store::AuditRecord, usize, i64)> = Vec::new();
    for r in events {
        match grouped.last_mut() {
            Some((newest, times, first))
                if newest.entry.actor == r.entry.actor && newest.entry.action == r.entry.action =>
            {
                *times += 1;
                *first = r.entry.at_ms;
            }
            _ => grouped.push((r, 1, r.entry.at_ms)),
        }
    }
    grouped
}

/// Where a prescription version is on its way to the patient, from what
/// the pump has said: sent (written, not yet fetched), fetched by the pump
/// (it polled the index since), refused by the pump (a limits-refused
/// alarm after fetching it, and no delivery of it), running (progress
/// reports on this version), or replaced.
fn delivery(v: &infusion_store::Prescription, view: &View<'_>, events: &[StoredEvent]) -> String {
    let current = view.current_version;
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
    match (ran, v.version == current, refusal_of(v, events)) {
        (true, true, _) => "running on the pump".into(),
        (true, false, _) => "delivered, then replaced".into(),
        (false, _, Some(infusion_protocol::Alarm::IndexUnverified)) => {
            "refused by the pump: it could not verify that this server sent it".into()
        }
        (false, _, Some(_)) => "refused by the pump: outside its limits".into(),
        (false, true, None) => format!("fetched by the pump at {}", time(fetched, &view.zone)),
        (false, false, None) => "fetched, then replaced".into(),
    }
}

fn event_kind(b: &EventBody) -> &'static str {
    match b {
        EventBody::Progress(_) => "Progress",
        EventBody::State(_) => "State",
        EventBody::Alarm(_) => "Alarm",
        EventBody::Vitals(_) => "Vital signs",
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
        EventBody::State(s) => infusion_store::state_change_words(*s).to_owned(),
        EventBody::Alarm(a) => infusion_store::alarm_words(*a).to_owned(),
        EventBody::Vitals(v) => format!(
            "heart rate {} bpm, SpO2 {} %, tremor {}",
            v.heart_rate_bpm, v.spo2_pct, v.tremor_score
        ),
    }
}

/// How a form of the patient page ends: `303` back to the page with what
/// was done (so that a reload repeats nothing), or the page as it is now
/// with the refusal, answered 422.
pub async fn answer(
    app: &AppState,
    user: &WebUser,
    p: &PatientSummary,
    outcome: Result<String, String>,
) -> Result<Response, WebError> {
    answer_with(
        app,
        user,
        p,
        outcome.map_err(Notice::Refused),
        Typed::default(),
    )
    .await
}

/// [`answer`] with any notice for a form that did nothing (a refusal, or a
/// confirmation asked for), and what that form held as `typed`.
pub async fn answer_with(
    app: &AppState,
    user: &WebUser,
    p: &PatientSummary,
    outcome: Result<String, Notice>,
    typed: Typed,
) -> Result<Response, WebError> {
    let path = format!("/patients/{}", p.username);
    match outcome {
        Ok(done) => Ok(see_other(app, user, &path, Notice::Done(done))),
        Err(notice) => {
            let now = access::visible(app, &user.session, &p.username).await?;
            let page = patient_page(app, user, &now, Some(notice), &typed).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use infusion_store::{AuditAction, AuditRecord, NewAudit};

    fn event(id: i64, actor: &str, action: AuditAction) -> AuditRecord {
        AuditRecord {
            id,
            entry: NewAudit::of(id * 1_000, actor, action, None, String::new()),
        }
    }

    #[test]
    fn runs_of_one_event_are_one_row_with_their_count() {
        use AuditAction::{LoginLockedOut as Locked, TokenReplayed as Replayed};
        let events = [
            event(9, "device:A", Replayed),
            event(8, "device:A", Replayed),
            event(7, "device:A", Replayed),
            event(6, "user:x", Locked),
            event(5, "device:A", Replayed),
        ];
        let grouped: Vec<(i64, usize, i64)> = super::repeats_grouped(&events)
            .into_iter()
            .map(|(r, n, first)| (r.id, n, first))
            .collect();
        assert_eq!(grouped, [(9, 3, 7_000), (6, 1, 6_000), (5, 1, 5_000)]);
    }
}
