//! `GET /live`: server-sent events that tell an open page its data changed.
//!
//! The stream carries the store's change feed, filtered to the patients
//! the session may see: a physician's own patients, a patient's own record.
//! Each event names the patient (`data: {"patient": 7, "kind": "alarm"}`);
//! the page's script (`/static/live.js`) then re-fetches the page and puts
//! the new content into its live regions, so what is shown is always rendered by the same
//! code and the same authorization as a full load. With PostgreSQL the feed
//! includes changes made through every other instance (LISTEN/NOTIFY).
//! A browser holds one stream for all its pages and tabs, in a shared
//! worker (`/static/live-worker.js`), and only while one of them is shown.
//!
//! The stream ends when its session does, and tells the page so
//! (`session_ended`), which then goes to the login page: at once on a
//! logout anywhere (the feed announces it), and within `live_recheck` of
//! the idle timeout or the absolute expiry. It reads the session without
//! touching it, so an open page alone never keeps a session alive. It
//! re-reads the physician's patient list when the feed says changes may
//! have been missed.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use infusion_protocol::{PatientId, Token};
use infusion_store::{Change, SessionUse, TokenHash};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::token;
use crate::web::session::{SESSION_COOKIE, WebUser};
use crate::web::{WebError, access, live_slots};

fn kind(change: &Change) -> &'static str {
    match change {
        Change::Prescription { .. } => "prescription",
        Change::Limits { .. } => "limits",
        Change::Events { .. } => "events",
        Change::Alarm { .. } => "alarm",
        Change::AlarmAcknowledged { .. } => "alarm_acknowledged",
        Change::Suggestion { .. } => "suggestion",
        Change::SessionEnded { .. } => "session_ended",
        Change::Resync => "resync",
    }
}

/// The event stream of one page.
pub async fn live(
    State(app): State<AppState>,
    user: WebUser,
    jar: CookieJar,
) -> Result<Response, WebError> {
    let patients = access::visible_ids(&app, &user.session).await?;
    let session_hash = jar
        .get(SESSION_COOKIE.get(user.https))
        .and_then(|c| Token::parse(c.value()).ok())
        .map(|t| token::hash(&t))
        .ok_or(WebError::Login)?;
    let Some(slot) = app.live_slots.take(session_hash) else {
        // The page polls instead (its script retries the stream later).
        return Err(WebError::Api(ApiError {
            retry_after_s: Some(30),
            ..ApiError::new(
                infusion_protocol::ErrorCode::TooManyRequests,
                format!(
                    "this session has {} live views open already: close a tab or two",
                    live_slots::PER_SESSION
                ),
            )
        }));
    };
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(16);
    let stream = Stream {
        _slot: slot,
        feed: app.store.changes(),
        app,
        user,
        session_hash,
        patients,
        tx,
    };
    tokio::spawn(stream.run());
    let mut response = Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response();
    // Like every page: nothing of a patient's is kept in any cache (the
    // event stream's own default is `no-cache`, which allows storing).
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// One open stream: whose, what it may show, and where it sends.
struct Stream {
    /// This stream's place among its session's; given back when it ends.
    _slot: live_slots::Slot,
    app: AppState,
    user: WebUser,
    session_hash: TokenHash,
    patients: std::collections::HashSet<PatientId>,
    feed: broadcast::Receiver<Change>,
    tx: mpsc::Sender<Result<Event, Infallible>>,
}

impl Stream {
    /// Forwards the changes this session may see until the page goes away
    /// or the session ends; then says `session_ended`, which sends the page
    /// to the login page, so that nothing stays on a screen whose session
    /// is over.
    async fn run(mut self) {
        let mut recheck = tokio::time::interval(self.app.config.live_recheck);
        recheck.tick().await;
        loop {
            let change = tokio::select! {
                c = self.feed.recv() => match c {
                    Ok(c) => c,
                    Err(broadcast::error::RecvError::Lagged(_)) => Change::Resync,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = recheck.tick() => {
                    if self.session_over().await {
                        break;
                    }
                    continue;
                }
                _ = self.tx.closed() => return,
            };
            match change {
                Change::SessionEnded { account } => {
                    if account == self.user.session.account_id && self.session_over().await {
                        break;
                    }
                    continue;
                }
                Change::Resync => {
                    if let Ok(p) = access::visible_ids(&self.app, &self.user.session).await {
                        self.patients = p;
                    }
                }
                _ if !change.patient().is_some_and(|p| self.patients.contains(&p)) => continue,
                _ => {}
            }
            let data = match change.patient() {
                Some(p) => format!("{{\"patient\":{},\"kind\":\"{}\"}}", p.0, kind(&change)),
                None => format!("{{\"kind\":\"{}\"}}", kind(&change)),
            };
            if self
                .send(Event::default().event("change").data(data))
                .await
                .is_err()
            {
                return;
            }
        }
        let _ = self
            .send(Event::default().event("session_ended").data("{}"))
            .await;
    }

    /// True when the session has ended, expired or idled out. Read without
    /// touching it: a stream is not the user's activity. A database fault
    /// keeps the stream (the next check decides).
    async fn session_over(&self) -> bool {
        let idle_ms = i64::try_from(self.app.config.session_idle.as_millis()).unwrap_or(i64::MAX);
        let found = self
            .app
            .store
            .web_session(self.session_hash, idle_ms, now_ms(), SessionUse::Background)
            .await;
        matches!(found, Ok(None))
    }

    async fn send(&self, event: Event) -> Result<(), ()> {
        self.tx.send(Ok(event)).await.map_err(|_| ())
    }
}

/// The page script: live regions, one stream per browser, and pages kept
/// out of the back-forward cache (see its comments).
const SCRIPT: &str = include_str!("static/live.js");

/// The shared worker that holds the browser's one stream.
const WORKER: &str = include_str!("static/live-worker.js");

/// `GET /static/live.js`.
pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

/// `GET /static/live-worker.js`.
pub async fn worker() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        WORKER,
    )
}
