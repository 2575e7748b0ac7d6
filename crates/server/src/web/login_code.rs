//! `POST /login/code`: the second step of a login whose account has an
//! authenticator (see [`crate::web::two_factor`]). The right password left
//! an encrypted cookie naming the account for five minutes; a right code
//! (or an unused recovery code) opens the session.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::PrivateCookieJar;
use infusion_store::throttle::Outcome;
use infusion_store::{AccountRecord, AuditAction, NewAudit, user_actor};
use serde::Deserialize;

use crate::AppState;
use crate::client::Client;
use crate::clock::now_ms;
use crate::throttle;
use crate::web::WebError;
use crate::web::auth::{form, open_session, too_many_page};
use crate::web::form::Form;
use crate::web::session::{PENDING_COOKIE, cookie, removal};
use crate::web::two_factor::{PENDING_MS, Pending, code_page, matching_step, recovery_hash};

/// After a right password of an enrolled `account`: the code page, and
/// the cookie that lets `/login/code` finish this login.
pub fn ask(
    app: &AppState,
    csrf: &str,
    account: &AccountRecord,
    now: i64,
    secure: bool,
) -> Result<Response, WebError> {
    let pending = Pending {
        account: account.account_id,
        username: account.username.clone(),
        until_ms: now.saturating_add(PENDING_MS),
    };
    let jar = PrivateCookieJar::new(app.keys.notice_key()).add(cookie(
        PENDING_COOKIE,
        pending.encode(),
        secure,
    ));
    Ok((
        jar,
        code_page(csrf, &account.username, None, StatusCode::OK),
    )
        .into_response())
}

/// The code form's fields.
#[derive(Debug, Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

/// `POST /login/code`.
pub async fn login_code(
    State(app): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    client: Client,
    Form(f): Form<CodeForm>,
) -> Result<Response, WebError> {
    let secure = client.https;
    crate::web::auth::login_csrf(&jar, secure, &f.csrf)?;
    let now = now_ms();
    let private = PrivateCookieJar::from_headers(&headers, app.keys.notice_key());
    let pending = private
        .get(PENDING_COOKIE.get(secure))
        .and_then(|c| Pending::decode(c.value()))
        .filter(|p| p.until_ms > now);
    let Some(p) = pending else {
        let why = "This login took too long or was not started here; log in again.";
        return Ok((StatusCode::UNAUTHORIZED, form(&f.csrf, "", Some(why))).into_response());
    };
    let keys = throttle::keys(&p.username, client.ip, None);
    if let Err(e) = throttle::admit(&app, &keys, now).await {
        let why = "Too many wrong codes for this account or from this network.";
        return too_many_page(&f.csrf, &p.username, e, why);
    }
    let accepted = check(&app, &p, &f.code, now).await?;
    // The account as it is now: disabled since the password, it is refused.
    let account = app
        .store
        .account(&p.username)
        .await?
        .filter(|a| a.account_id == p.account && !a.disabled);
    let (true, Some(account)) = (accepted, account) else {
        app.store
            .append_audit(NewAudit::of(
                now,
                &user_actor(&p.username),
                AuditAction::WebLoginRefused,
                None,
                "wrong or used authenticator code".into(),
            ))
            .await?;
        throttle::settle(&app, &keys, Outcome::Failed).await?;
        let why =
            "That code is not right, or was used already. Type the newest code the app shows.";
        return Ok(code_page(
            &f.csrf,
            &p.username,
            Some(why),
            StatusCode::UNAUTHORIZED,
        ));
    };
    throttle::settle(&app, &keys, Outcome::Succeeded).await?;
    let done = open_session(&app, jar, account.account_id, now, secure).await?;
    let cleared = private.remove(removal(PENDING_COOKIE, secure));
    Ok((cleared, done).into_response())
}

/// Whether `code` logs `p` in: an authenticator code of a time step newer
/// than any used, or an unused recovery code (used up by this).
async fn check(app: &AppState, p: &Pending, code: &str, now: i64) -> Result<bool, WebError> {
    let Some(auth) = app.store.second_factor(p.account).await? else {
        return Ok(false);
    };
    let now_s = u64::try_from(now / 1000).unwrap_or(0);
    if let Some(step) = matching_step(&auth.secret, code, now_s)? {
        return Ok(app.store.take_step(p.account, step).await?);
    }
    let letters = code.chars().filter(char::is_ascii_alphanumeric).count();
    if letters != 10 {
        return Ok(false);
    }
    let actor = user_actor(&p.username);
    Ok(app
        .store
        .use_recovery_code(p.account, recovery_hash(code), &actor, now)
        .await?)
}
