//! `GET/POST /login` and `POST /logout`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use infusion_protocol::limits::USERNAME_MAX;
use infusion_store::throttle::{Outcome, address_network};
use infusion_store::{
    AccountId, AuditAction, NewAudit, NewWebSession, is_possible_username, user_actor,
};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::client::Client;
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::password::Lane;
use crate::refusals::Unrecorded;
use crate::web::WebError;
use crate::web::form::{Button, Form, Submitted};
use crate::web::layout::bare;
use crate::web::session::{LOGIN_COOKIE, SESSION_COOKIE, cookie, removal, same_secret};
use crate::{throttle, token};

pub fn form(csrf: &str, username: &str, error: Option<&str>) -> Markup {
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
pub async fn login_form(client: Client, jar: CookieJar) -> Result<Response, WebError> {
    // A browser that has a login page open already keeps its token: two
    // tabs on the login page (or a page reopened while a login was being
    // answered) both work, instead of the older one's form "expiring".
    let kept = jar
        .get(LOGIN_COOKIE.get(client.https))
        .map(|c| c.value().to_owned())
        .filter(|v| infusion_protocol::Token::parse(v).is_ok());
    let value = match kept {
        Some(v) => v,
        None => token::issue()?.0.as_str().to_owned(),
    };
    let jar = jar.add(cookie(LOGIN_COOKIE, value.clone(), client.https));
    Ok((jar, form(&value, "", None)).into_response())
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    username: String,
    password: String,
}

/// Refuses a login form (either step) whose CSRF field is not the login
/// cookie's value. An empty pair matches itself: a page elsewhere could
/// post one, so an empty value never passes.
pub fn login_csrf(jar: &CookieJar, secure: bool, presented: &str) -> Result<(), WebError> {
    let expected = jar.get(LOGIN_COOKIE.get(secure)).map(|c| c.value());
    if expected.is_some_and(|e| !e.is_empty() && same_secret(e, presented)) {
        Ok(())
    } else {
        Err(WebError::Csrf)
    }
}

/// Checks the password (Argon2id; unknown users cost the same), ends any
/// session the browser had, starts a new one and sends the user home.
pub async fn login(
    State(app): State<AppState>,
    jar: CookieJar,
    client: Client,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    let secure = client.https;
    login_csrf(&jar, secure, &f.csrf)?;
    if !is_possible_username(&f.username) {
        // No account has such a name: refused before anything about it is
        // stored (a 60 KB name was stored twice over) or hashed.
        app.refusals.count(Unrecorded::InvalidUsername);
        // Shown back for correcting a typo, unless it is no typo.
        let short = f.username.len() <= USERNAME_MAX && !f.username.chars().any(char::is_control);
        return Ok(refused_page(&f.csrf, if short { &f.username } else { "" }));
    }
    let now = now_ms();
    let keys = throttle::keys(&f.username, client.ip, None);
    if let Err(e) = throttle::admit(&app, &keys, now).await {
        return too_many(
            &f,
            e,
            "Too many login attempts for this account or from this network.",
        );
    }
    let now = now_ms();
    let account = app.store.account(&f.username).await?;
    let hash = account.as_ref().map(|a| a.password_hash.as_str());
    let matched = match throttle::verify(
        &app,
        &keys,
        &f.password,
        hash,
        Lane::Other(address_network(client.ip)),
    )
    .await
    {
        Ok(matched) => matched,
        Err(e) => return too_many(&f, e, "The server is busy with other logins."),
    };
    let known = account.is_some();
    let Some(account) = account.filter(|_| matched) else {
        if known {
            app.store
                .append_audit(NewAudit {
                    at_ms: now,
                    actor: user_actor(&f.username),
                    action: AuditAction::WebLoginRefused,
                    patient_id: None,
                    detail: "wrong password".into(),
                })
                .await?;
        } else {
            app.refusals.count(Unrecorded::UnknownUsername);
        }
        throttle::settle(&app, &keys, Outcome::Failed).await?;
        return Ok(refused_page(&f.csrf, &f.username));
    };
    if account.disabled {
        // Told only to whoever knows the password: no account is revealed.
        app.store
            .append_audit(NewAudit::of(
                now,
                &user_actor(&f.username),
                AuditAction::WebLoginRefused,
                None,
                "account disabled".into(),
            ))
            .await?;
        throttle::settle(&app, &keys, Outcome::Unjudged).await?;
        let why = "This account is disabled. Ask an administrator to enable it.";
        return Ok((StatusCode::FORBIDDEN, form(&f.csrf, &f.username, Some(why))).into_response());
    }
    if app.store.second_factor(account.account_id).await?.is_some() {
        // The password alone opens nothing: its attempt is given back but
        // does not clear the account's count, so that guessing codes after
        // a right password meets the same lockouts.
        throttle::settle(&app, &keys, Outcome::Unjudged).await?;
        return crate::web::login_code::ask(&app, &f.csrf, &account, now, secure);
    }
    throttle::settle(&app, &keys, Outcome::Succeeded).await?;
    open_session(&app, jar, account.account_id, now, secure).await
}

/// Starts a session for `account` whose login is complete: a new session
/// id at every login (an id planted earlier is worthless), the old one
/// ended, the login's CSRF cookie removed; then home.
pub async fn open_session(
    app: &AppState,
    jar: CookieJar,
    account: AccountId,
    now: i64,
    secure: bool,
) -> Result<Response, WebError> {
    if let Some(old) = jar
        .get(SESSION_COOKIE.get(secure))
        .and_then(|c| infusion_protocol::Token::parse(c.value()).ok())
    {
        app.store.end_web_session(token::hash(&old), now).await?;
    }
    let (id, hash) = token::issue()?;
    let absolute = i64::try_from(app.config.session_absolute.as_millis()).unwrap_or(i64::MAX);
    app.store
        .start_web_session(
            account,
            NewWebSession {
                hash,
                expires_at_ms: now.saturating_add(absolute),
            },
            now,
        )
        .await?;
    let jar = jar.remove(removal(LOGIN_COOKIE, secure)).add(cookie(
        SESSION_COOKIE,
        id.as_str().to_owned(),
        secure,
    ));
    Ok((jar, Redirect::to("/")).into_response())
}

/// A login refused: one answer for an unknown name and a wrong password.
fn refused_page(csrf: &str, username: &str) -> Response {
    let page = form(csrf, username, Some("Unknown username or wrong password."));
    (StatusCode::UNAUTHORIZED, page).into_response()
}

/// A login refused 429 (`e`, with its `Retry-After`) as the login page
/// says it: `why`, and when to try again. Any other error is the error.
fn too_many(f: &LoginForm, e: ApiError, why: &str) -> Result<Response, WebError> {
    too_many_page(&f.csrf, &f.username, e, why)
}

/// [`too_many`] for any page of the login: the login form with `why`.
pub fn too_many_page(
    csrf: &str,
    username: &str,
    e: ApiError,
    why: &str,
) -> Result<Response, WebError> {
    let Some(secs) = e.retry_after_s else {
        return Err(e.into());
    };
    let page = form(
        csrf,
        username,
        Some(&format!(
            "{why} Try again in {}.",
            crate::web::format::wait(secs)
        )),
    );
    Ok((
        StatusCode::TOO_MANY_REQUESTS,
        [(axum::http::header::RETRY_AFTER, secs.to_string())],
        page,
    )
        .into_response())
}

/// Ends the session in the database (dead on every instance at once) and
/// clears the cookie.
pub async fn logout(
    State(app): State<AppState>,
    jar: CookieJar,
    client: Client,
    _: Submitted<Button>,
) -> Result<Response, WebError> {
    if let Some(id) = jar
        .get(SESSION_COOKIE.get(client.https))
        .and_then(|c| infusion_protocol::Token::parse(c.value()).ok())
    {
        app.store
            .end_web_session(token::hash(&id), now_ms())
            .await?;
    }
    let jar = jar.remove(removal(SESSION_COOKIE, client.https));
    // Whatever the browser still holds of this site's pages (its caches,
    // the back-forward cache included) goes with the session.
    let clear = [(
        axum::http::HeaderName::from_static("clear-site-data"),
        "\"cache\"",
    )];
    Ok((jar, clear, Redirect::to("/login")).into_response())
}
