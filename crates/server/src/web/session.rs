//! Web sessions: the cookie, the logged-in user extractor, and CSRF.
//!
//! The session id is 256 random bits in an `HttpOnly`, `SameSite=Strict`
//! cookie (`Secure` when serving TLS); the database keeps only its SHA-256
//! and enforces the idle and absolute expiry on every request. A new id is
//! issued at every login and the old one ended, so a session id planted
//! before login is worthless. Every form carries a CSRF token derived from
//! the session id (SHA-256 over a domain tag and the id): no state to
//! store, different per session, and a page from another origin cannot read
//! it. The login form, which has no session yet, uses a double-submit
//! cookie instead.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine;
use infusion_protocol::Token;
use infusion_store::{Role, SessionUse, WebSession};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::client::Client;
use crate::clock::now_ms;
use crate::token;
use crate::web::WebError;

/// A cookie's name: plain over HTTP, and with the `__Host-` prefix over
/// HTTPS, which a browser takes only from a secure origin, with `Path=/`
/// and no `Domain`: a sibling subdomain or a plain-HTTP page cannot plant
/// or overwrite such a cookie.
#[derive(Debug, Clone, Copy)]
pub struct CookieName {
    plain: &'static str,
    host: &'static str,
}

impl CookieName {
    /// The name a request over HTTPS (`secure`) or HTTP uses.
    pub fn get(self, secure: bool) -> &'static str {
        if secure { self.host } else { self.plain }
    }
}

/// The session cookie.
pub const SESSION_COOKIE: CookieName = CookieName {
    plain: "infusion_session",
    host: "__Host-infusion_session",
};
/// The login form's double-submit cookie.
pub const LOGIN_COOKIE: CookieName = CookieName {
    plain: "infusion_login",
    host: "__Host-infusion_login",
};
/// The one-time notice of a form that was done.
pub const NOTICE_COOKIE: CookieName = CookieName {
    plain: "infusion_notice",
    host: "__Host-infusion_notice",
};
/// A login waiting for its authenticator code.
pub const PENDING_COOKIE: CookieName = CookieName {
    plain: "infusion_login_code",
    host: "__Host-infusion_login_code",
};

/// The header the live script sends with the page fetches it makes by
/// itself. Sending it can only make a session look less used, so a
/// client gains nothing by forging it.
pub const LIVE_REFRESH: &str = "x-live-refresh";

/// A logged-in user, extracted from the session cookie. Handlers that take
/// one are reachable only with a live session; without one the browser is
/// sent to the login page.

#[derive(Debug, Clone)]
pub struct WebUser {
    /// Whose session this is.
    pub session: WebSession,
    /// The CSRF token every form of this session must carry.
    pub csrf: String,
    /// Reached over HTTPS: the cookies set for this user are `Secure`.
    pub https: bool,
}

impl WebUser {
    /// The time zone this user reads times in: its institution's.
    pub fn zone(&self) -> jiff::tz::TimeZone {
        infusion_store::time_zone_or_utc(&self.session.time_zone)
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, WebError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let https = parts.extensions.get::<Client>().is_some_and(|c| c.https);
        let Some(id) = jar
            .get(SESSION_COOKIE.get(https))
            .and_then(|c| Token::parse(c.value()).ok())
        else {
            return Err(WebError::Login);
        };
        let idle_ms = i64::try_from(app.config.session_idle.as_millis()).unwrap_or(i64::MAX);
        // What a page does by itself is not the user's activity: an
        // unattended screen must reach its idle timeout.
        let used = if parts.uri.path() == "/live" || parts.headers.contains_key(LIVE_REFRESH) {
            SessionUse::Background
        } else {
            SessionUse::Active
        };
        match app
            .store
            .web_session(token::hash(&id), idle_ms, now_ms(), used)
            .await?
        {
            // A first password an administrator chose opens nothing but
            // its own change (and a logout).
            Some(session)
                if session.must_change_password
                    && !matches!(parts.uri.path(), "/account/password" | "/logout") =>
            {
                Err(WebError::ChangePassword)
            }
            // Where a second factor is required, staff without one enrol
            // before anything else.
            Some(session)
                if app.config.require_second_factor
                    && session.role != Role::Patient
                    && !session.has_second_factor
                    && !matches!(parts.uri.path(), "/account/two-factor" | "/logout") =>
            {
                Err(WebError::EnrolSecondFactor)
            }
            Some(session) => Ok(WebUser {
                session,
                csrf: csrf_of(id.as_str()),
                https,
            }),
            None => Err(WebError::Login),
        }
    }
}

/// The CSRF token of a session id.
pub fn csrf_of(session_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"infusion-csrf\0");
    h.update(session_id.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl WebUser {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, presented: &str) -> Result<(), WebError> {
        if same_secret(&self.csrf, presented) {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
    }
}

/// A cookie with the attributes every cookie of ours has.
pub fn cookie(name: CookieName, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name.get(secure), value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .build()
}

/// A cookie that deletes `name` in the browser.
pub fn removal(name: CookieName, secure: bool) -> Cookie<'static> {
    let mut c = cookie(name, String::new(), secure);
    c.make_removal();
    c
}
