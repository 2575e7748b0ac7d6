//! The page shell every page shares, and its stylesheet.
//!
//! One column that reads on a phone and widens on a ward screen; tables
//! scroll sideways inside their own box rather than the page. States and
//! alarms are written out in words (never colour alone), every control has
//! a visible label, and the stylesheet is served by us: no CDN, no inline
//! styles, nothing a Content-Security-Policy has to allow.

use axum::http::header;
use axum::response::IntoResponse;
use maud::{DOCTYPE, Markup, html};

use infusion_protocol::PatientId;
use infusion_store::Role;

use crate::clock::now_ms;
use crate::web::format::zone_name;
use crate::web::session::WebUser;

/// A page for a logged-in user: header with who is logged in and a logout
/// button, then `body`. Its `data-live` regions are refreshed from `path`
/// (the page's own address, also when it is shown as the answer to a
/// form) when the server reports a change (of `patient`'s data only, when
/// given).
pub fn page(
    title: &str,
    user: &WebUser,
    path: &str,
    patient: Option<PatientId>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body data-refresh=(path) data-patient=[patient.map(|p| p.0)] {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    nav aria-label="Main" {
                        a href="/" { "Infusion" }
                        span class="who" {
                            (user.session.first_name) " " (user.session.last_name)
                            " (" (user.session.role.as_str()) ")"
                        }
                        @if user.session.role != Role::Patient {
                            a href="/account/password" { "Password" }
                            a href="/account/two-factor" { "Two-step login" }
                        }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(user.csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main id="main" { (body) }
                footer {
                    p class="hint" {
                        @if user.session.time_zone == infusion_store::DEFAULT_TIME_ZONE {
                            "Times are in UTC."
                        } @else {
                            "Times are in " (zone_name(&user.zone(), now_ms())) ", this institution's time zone"
                            @if user.session.role == Role::Patient { "." } @else { "; the audit trail and security events are in UTC." }
                        }
                    }
                }
                script src="/static/live.js" defer {}
            }
        }
    }
}

/// The controls of a page's alarm alerts, which `static/live.js` wires:
/// mute the sound (kept in this browser), allow desktop notifications. On
/// the pages that watch alarms.
pub fn alert_controls() -> Markup {
    html! {
        div class="alert-controls" {
            button type="button" id="alarm-mute" aria-pressed="false" { "Mute alarm sound" }
            button type="button" id="alarm-notify" hidden { "Allow desktop alerts" }
        }
    }
}

/// A page without a session: the login form and error pages.
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main id="main" { (body) } }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Infusion" }
            link rel="stylesheet" href="/static/app.css";
        }
    }
}

const CSS: &str = r#"
:root { font-family: system-ui, sans-serif; line-height: 1.45; color: #111; background: #fff; }
body { margin: 0; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
footer { max-width: 72rem; margin: 0 auto; padding: 0 1rem 1rem; }
header { background: #1b3a5c; color: #fff; }
header nav { display: flex; flex-wrap: wrap; gap: .75rem; align-items: center; max-width: 72rem; margin: 0 auto; padding: .5rem 1rem; }
header a { color: #fff; font-weight: 600; }
header .who { margin-left: auto; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: .5rem; top: .5rem; background: #fff; color: #000; padding: .5rem; z-index: 1; }
.table { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #bbb; vertical-align: top; }
form.inline { display: inline; margin-left: .5rem; }
form.hold { display: block; margin: .25rem 0 .5rem; }
details.inline { display: inline-block; margin-left: .5rem; }
details.inline summary { cursor: pointer; text-decoration: underline; }
form.edit { display: grid; grid-template-columns: minmax(0, 1fr); gap: .5rem; max-width: 28rem; margin: .5rem 0 1.5rem; }
label { font-weight: 600; }
fieldset { display: grid; gap: .5rem; border: 1px solid #bbb; padding: .5rem .75rem .75rem; margin: 0; }
legend { font-weight: 600; padding: 0 .25rem; }
.confirm form { display: grid; gap: .5rem; max-width: 28rem; margin: .5rem 0; }
.confirm ul { margin: .25rem 0; }
.confirm table.review { width: auto; margin: .25rem 0; }
.confirm table.review th { padding-right: 1rem; }
.qr svg { width: 200px; height: 200px; }
.codes code { font-size: 1.2em; letter-spacing: .05em; }
input, select, button { font: inherit; padding: .4rem .5rem; }
input, select, textarea { max-width: 100%; box-sizing: border-box; }
button { cursor: pointer; }
:focus-visible { outline: 3px solid #c60; outline-offset: 2px; }
.alarm { font-weight: 700; }
.priority { font-weight: 700; white-space: nowrap; border: 2px solid currentColor; border-radius: 3px; padding: 0 .3rem; margin-right: .35rem; }
.alarm-item .alarm::before { content: none; }
.banner { position: sticky; top: 0; z-index: 2; background: #fff; }
.alert-controls { display: flex; flex-wrap: wrap; gap: .5rem; margin: .25rem 0 .75rem; }
button[aria-pressed=true] { background: #1b3a5c; color: #fff; }
.priority.high { color: #a00; }
.priority.medium { color: #8a4b00; }
.alarm::before { content: "⚠ "; }
[role=alert] { border: 2px solid #a00; padding: .5rem; }
[role=status] { border: 2px solid #064; padding: .5rem; }
.suggestion { border: 1px solid #888; padding: .5rem; margin: .5rem 0; }
.chart { margin: .5rem 0 1rem; }
.chart svg.panel { display: block; width: 100%; max-width: 48rem; height: auto; border: 1px solid #ccc; margin: .25rem 0; }
.chart .axis { stroke: #444; stroke-width: 1; }
.chart .line { fill: none; stroke: #1b3a5c; stroke-width: 2; vector-effect: non-scaling-stroke; }
.chart .grid { stroke: #ddd; stroke-width: 1; }
.chart .point { fill: #1b3a5c; }
.chart .tick, .chart .name, .chart .time { font-size: 11px; fill: #111; }
.hint { color: #444; font-size: .9em; }
.columns { display: grid; gap: 0 2.5rem; grid-template-columns: minmax(0, 1fr); }
@media (min-width: 64rem) { .columns { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); } }
.own-state { font-size: 1.25rem; font-weight: 600; max-width: 40rem; }
progress { display: block; width: 100%; max-width: 28rem; height: 1.25rem; margin: .25rem 0; }
.note { white-space: pre-line; border-left: 4px solid #1b3a5c; padding: .25rem .75rem; max-width: 40rem; }
textarea { font: inherit; padding: .4rem .5rem; }
tr.alarmed th[scope=row] { border-left: 4px solid #a00; }
th .hint { font-weight: normal; }
/* On a phone each patient is a card, its cells labelled, with nothing to
   scroll sideways; patients with alarms come first (the page orders them). */
@media (max-width: 40rem) {
  .cards table, .cards tbody, .cards tr, .cards th[scope=row], .cards td { display: block; width: auto; }
  .cards thead { position: absolute; left: -9999px; }
  .cards caption { display: block; text-align: left; }
  .cards tr { border: 1px solid #bbb; border-radius: 4px; margin: 0 0 .75rem; padding: .25rem .5rem; }
  .cards tr.alarmed { border: 2px solid #a00; }
  .cards th[scope=row], .cards td { border: 0; padding: .2rem 0; }
  .cards tr.alarmed th[scope=row] { border-left: 0; }
  .cards td::before { content: attr(data-label) ": "; font-weight: 600; }
}
"#;

/// `GET /static/app.css`.
pub async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}
