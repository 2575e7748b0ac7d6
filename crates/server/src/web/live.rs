//! `GET /live`: server-sent events that tell an open page its data changed.
//!
//! The stream carries the store's change feed, filtered to the patients
//! the session may see: a physician's own patients, a patient's own record.
//! Each event names the patient (`data: {"patient": 7, "kind": "alarm"}`);
//! the page's script (`/static/live.js`) then re-fetches the page and swaps
//! in its live regions, so what is shown is always rendered by the same
//! code and the same authorization as a full load. With PostgreSQL the feed
//! includes changes made through every other instance (LISTEN/NOTIFY).
//!
//! The stream re-checks the session every `RECHECK` and ends when it has
//! ended (logout anywhere, expiry), and it re-reads the physician's patient
//! list when the feed says changes may have been missed.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use infusion_protocol::Token;
use infusion_store::Change;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::clock::now_ms;
use crate::token;
use crate::web::session::{SESSION_COOKIE, WebUser};
use crate::web::{WebError, access};

/// How often a live stream checks that its session is still alive.
const RECHECK: Duration = Duration::from_secs(30);

fn kind(change: &Change) -> &'static str {
    match change {
        Change::Prescription { .. } => "prescription",
        Change::Limits { .. } => "limits",
        Change::Events { .. } => "events",
        Change::Alarm { .. } => "alarm",
        Change::AlarmAcknowledged { .. } => "alarm_acknowledged",
        Change::Suggestion { .. } => "suggestion",
        Change::Resync => "resync",
    }
}

/// The event stream of one page.
pub async fn live(
    State(app): State<AppState>,
    user: WebUser,
    jar: CookieJar,
) -> Result<Response, WebError> {
    let mut patients = access::visible_ids(&app, &user.session).await?;
    let mut feed = app.store.changes();
    let session_hash = jar
        .get(SESSION_COOKIE)
        .and_then(|c| Token::parse(c.value()).ok())
        .map(|t| token::hash(&t))
        .ok_or(WebError::Login)?;
    let idle_ms = i64::try_from(app.config.session_idle.as_millis()).unwrap_or(i64::MAX);
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(16);
    tokio::spawn(async move {
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.tick().await;
        loop {
            let change = tokio::select! {
                c = feed.recv() => match c {
                    Ok(c) => c,
                    Err(broadcast::error::RecvError::Lagged(_)) => Change::Resync,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = recheck.tick() => {
                    match app.store.web_session(session_hash, idle_ms, now_ms()).await {
                        Ok(Some(_)) => continue,
                        // Ended or expired: the page's next request goes to the login page.
                        Ok(None) => break,
                        Err(_) => continue,
                    }
                }
                _ = tx.closed() => break,
            };
            if change == Change::Resync {
                if let Ok(p) = access::visible_ids(&app, &user.session).await {
                    patients = p;
                }
            } else if !change.patient().is_some_and(|p| patients.contains(&p)) {
                continue;
            }
            let data = match change.patient() {
                Some(p) => format!("{{\"patient\":{},\"kind\":\"{}\"}}", p.0, kind(&change)),
                None => format!("{{\"kind\":\"{}\"}}", kind(&change)),
            };
            if tx
                .send(Ok(Event::default().event("change").data(data)))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response())
}

const SCRIPT: &str = r#"// Live regions: when the server says this page's data changed, fetch the
// page again and swap in every element marked data-live (forms are never
// live regions, so what the user is typing is kept).
(function () {
  var patient = document.body.getAttribute("data-patient");
  // The page's own address: after a form, location is the form's target.
  var path = document.body.getAttribute("data-refresh") || location.pathname;
  var pending = null;
  function refresh() {
    pending = null;
    fetch(path, { credentials: "same-origin" }).then(function (r) {
      if (r.redirected || r.status === 303) { location.href = "/login"; return null; }
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) return;
      var doc = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("[data-live]").forEach(function (el) {
        var fresh = doc.getElementById(el.id);
        if (fresh) el.replaceWith(fresh);
      });
    });
  }
  var source = new EventSource("/live");
  source.addEventListener("change", function (e) {
    var msg = JSON.parse(e.data);
    if (patient && msg.patient !== undefined && String(msg.patient) !== patient) return;
    if (!pending) pending = setTimeout(refresh, 300);
  });
})();
"#;

/// `GET /static/live.js`.
pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}
