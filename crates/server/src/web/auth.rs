//! `GET/POST /login` and `POST /logout`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use infusion_store::{AuditAction, NewAudit, NewWebSession, user_actor};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::web::WebError;
use crate::web::form::{Button, Form, Submitted};
use crate::web::layout::bare;
use crate::web::session::{LOGIN_COOKIE, SESSION_COOKIE, cookie, removal, same_secret};
use crate::{throttle, token};

fn form(csrf: &str, username: &str, error: Option<&str>) -> Markup {
    bare(
        "Log in",
        html! {
            h1 { "Log in" }
            @if let Some(e) = error { p role="alert" { (e) } }
            form class="edit" method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="username" { "Username" }
                input id="username" name="username" autocomplete="username" required value=(username);
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Log in" }
            }
        },
    )
}

/// The login page; sets the double-submit cookie its form must match.
pub async fn login_form(State(app): State<AppState>, jar: CookieJar) -> Result<Response, WebError> {
    let (nonce, _) = token::issue()?;
    let jar = jar.add(cookie(
        LOGIN_COOKIE,
        nonce.as_str().to_owned(),
        app.config.secure_cookies,
    ));
    Ok((jar, form(nonce.as_str(), "", None)).into_response())
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    username: String,
    password: String,
}

/// Checks the password (Argon2id; unknown users cost the same), ends any
/// session the browser had, starts a new one and sends the user home.
pub async fn login(
    State(app): State<AppState>,
    jar: CookieJar,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    let secure = app.config.secure_cookies;
    let expected = jar.get(LOGIN_COOKIE).map(|c| c.value().to_owned());
    if !expected.is_some_and(|e| same_secret(&e, &f.csrf)) {
        return Err(WebError::Csrf);
    }
    let now = now_ms();
    let keys = throttle::keys(&f.username, peer, None);
    if let Err(e) = throttle::admit(&app, &keys, now).await {
        let Some(secs) = e.retry_after_s else {
            return Err(e.into());
        };
        let page = form(
            &f.csrf,
            &f.username,
            Some(&format!(
                "Too many login attempts for this account or from this computer. Try again in {secs} s."
            )),
        );
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, secs.to_string())],
            page,
        )
            .into_response());
    }
    let account = app.store.account(&f.username).await?;
    let matched = app
        .passwords
        .verify(
            &f.password,
            account.as_ref().map(|a| a.password_hash.as_str()),
        )
        .await?;
    let Some(account) = account.filter(|_| matched) else {
        app.store
            .append_audit(NewAudit {
                at_ms: now,
                actor: user_actor(&f.username),
                action: AuditAction::WebLoginRefused,
                patient_id: None,
                detail: "unknown username or wrong password".into(),
            })
            .await?;
        app.store.login_failed(keys, now).await?;
        let page = form(
            &f.csrf,
            &f.username,
            Some("Unknown username or wrong password."),
        );
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    };
    // A new session id at every login: an id planted earlier is worthless.
    if let Some(old) = jar
        .get(SESSION_COOKIE)
        .and_then(|c| infusion_protocol::Token::parse(c.value()).ok())
    {
        app.store.end_web_session(token::hash(&old), now).await?;
    }
    let (id, hash) = token::issue()?;
    let absolute = i64::try_from(app.config.session_absolute.as_millis()).unwrap_or(i64::MAX);
    app.store
        .start_web_session(
            account.account_id,
            NewWebSession {
                hash,
                expires_at_ms: now.saturating_add(absolute),
            },
            now,
        )
        .await?;
    app.store.login_succeeded(keys).await?;
    let jar = jar.remove(removal(LOGIN_COOKIE, secure)).add(cookie(
        SESSION_COOKIE,
        id.as_str().to_owned(),
        secure,
    ));
    Ok((jar, Redirect::to("/")).into_response())
}

/// Ends the session in the database (dead on every instance at once) and
/// clears the cookie.
pub async fn logout(
    State(app): State<AppState>,
    jar: CookieJar,
    _: Submitted<Button>,
) -> Result<Response, WebError> {
    if let Some(id) = jar
        .get(SESSION_COOKIE)
        .and_then(|c| infusion_protocol::Token::parse(c.value()).ok())
    {
        app.store
            .end_web_session(token::hash(&id), now_ms())
            .await?;
    }
    let jar = jar.remove(removal(SESSION_COOKIE, app.config.secure_cookies));
    Ok((jar, Redirect::to("/login")).into_response())
}
