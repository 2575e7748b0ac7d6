//! `/account/password`: a physician or administrator changes their own
//! password. The current password is checked first (a session left open
//! on a ward computer must not be enough to take the account over), the
//! new one for strength, and every other session of the account ends.
//! An account whose first password an administrator chose is sent here
//! after its login and served nothing else until it has changed it.
//!
//! Patients do not change their password here: their pump logs in with
//! it, and an administrator changes it together with the pump.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use infusion_store::{Role, StoreError, user_actor};
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;
use crate::clock::now_ms;
use crate::password::Lane;
use crate::token;
use crate::web::WebError;
use crate::web::admin::new_password_hash;
use crate::web::form::Submitted;
use crate::web::layout::page;
use crate::web::notice::{Flash, Notice, see_other};
use crate::web::session::{SESSION_COOKIE, WebUser};
use crate::web::two_factor;

/// Where this page is.
pub const PATH: &str = "/account/password";

fn staff_only(user: &WebUser) -> Result<(), WebError> {
    match user.session.role {
        Role::Admin | Role::Physician | Role::Nurse | Role::Caregiver => Ok(()),
        Role::Patient => Err(WebError::forbidden(
            "change its password here: your pump logs in with it, so an administrator changes it \
             with the pump",
        )),
    }
}

fn render(user: &WebUser, notice: Option<&Notice>) -> Markup {
    let forced = user.session.must_change_password;
    let body = html! {
        h1 { "Change your password" }
        @if forced {
            p role="alert" class="notice" {
                "An administrator chose your first password. Choose your own before you go on."
            }
        }
        @if let Some(n) = notice { (n.render(user)) }
        p class="hint" {
            "At least 12 characters, and not easy to guess: several unrelated words are strong and "
            "easy to remember. Your other sessions are logged out when it changes."
        }
        form class="edit" method="post" action=(PATH) {
            input type="hidden" name="csrf" value=(user.csrf);
            label for="current" { "Current password" }
            input id="current" name="current" type="password" autocomplete="current-password" required;
            label for="new" { "New password" }
            input id="new" name="new" type="password" autocomplete="new-password" required minlength="12";
            label for="repeat" { "New password again" }
            input id="repeat" name="repeat" type="password" autocomplete="new-password" required minlength="12";
            button type="submit" { "Change password" }
        }
    };
    page("Change your password", user, PATH, None, body)
}

/// `GET /account/password`.
pub async fn form(user: WebUser, flash: Flash) -> Result<Response, WebError> {
    staff_only(&user)?;
    let notice = flash.notice(&user);
    Ok((flash, render(&user, notice.as_ref())).into_response())
}

/// The form's fields.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    repeat: String,
}

/// `POST /account/password`.
pub async fn change(
    State(app): State<AppState>,
    jar: CookieJar,
    Submitted { user, form: f }: Submitted<PasswordForm>,
) -> Result<Response, WebError> {
    staff_only(&user)?;
    let refused = |why: String| {
        let notice = Notice::Refused(why);
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            render(&user, Some(&notice)),
        )
            .into_response()
    };
    let s = &user.session;
    let account = app.store.account(&s.username).await?;
    let hash = account.as_ref().map(|a| a.password_hash.as_str());
    if !app
        .passwords
        .verify(&f.current, hash, Lane::Other([0, 0, 0, 0].into()))
        .await?
    {
        return Ok(refused(
            "The current password is not right; nothing was changed.".into(),
        ));
    }
    if f.new != f.repeat {
        return Ok(refused(
            "The two new passwords differ; nothing was changed.".into(),
        ));
    }
    if f.new == f.current {
        return Ok(refused(
            "The new password is the current one; choose another.".into(),
        ));
    }
    let context = [s.username.as_str(), &s.first_name, &s.last_name];
    let new_hash = match new_password_hash(&app, &f.new, &context).await {
        Ok(h) => h,
        Err(StoreError::Invalid(m)) => {
            return Ok(refused(infusion_store::sentence(&m)));
        }
        Err(e) => return Err(e.into()),
    };
    let keep = jar
        .get(SESSION_COOKIE.get(user.https))
        .and_then(|c| infusion_protocol::Token::parse(c.value()).ok())
        .map(|id| token::hash(&id));
    let ended = app
        .store
        .change_password(
            s.account_id,
            new_hash,
            keep,
            &user_actor(&s.username),
            now_ms(),
        )
        .await?;
    let done = match ended {
        0 => "Your password has changed.".to_owned(),
        1 => "Your password has changed; your other session was logged out.".to_owned(),
        n => format!("Your password has changed; your {n} other sessions were logged out."),
    };
    Ok(see_other(&app, &user, PATH, Notice::Done(done)))
}

/// `GET /account/two-factor`: enrolment, or its state once enrolled.
pub async fn two_factor(State(app): State<AppState>, user: WebUser) -> Result<Response, WebError> {
    staff_only(&user)?;
    match app.store.second_factor(user.session.account_id).await? {
        Some(a) => Ok(two_factor::status_page(&user, a.recovery_left).into_response()),
        None => {
            let page = two_factor::enrol_page(&user, &two_factor::new_secret()?, None)?;
            Ok(([(header::CACHE_CONTROL, "no-store")], page).into_response())
        }
    }
}

/// The enrolment form's fields: the key shown (base32) and a code made
/// from it.
#[derive(Debug, Deserialize)]
pub struct EnrolForm {
    secret: String,
    code: String,
}

/// `POST /account/two-factor`: enrols the key once a code made from it
/// is right; shows the recovery codes once.
pub async fn enrol(
    State(app): State<AppState>,
    Submitted { user, form: f }: Submitted<EnrolForm>,
) -> Result<Response, WebError> {
    staff_only(&user)?;
    let secret = totp_rs::Secret::Encoded(f.secret.trim().to_owned())
        .to_bytes()
        .ok()
        .filter(|s| s.len() == 20);
    let Some(secret) = secret else {
        return Err(WebError::forbidden("enrol a key this server did not make"));
    };
    let now = now_ms();
    let now_s = u64::try_from(now / 1000).unwrap_or(0);
    let Some(step) = two_factor::matching_step(&secret, &f.code, now_s)? else {
        let why = "That is not the code the app shows now. Check that the phone's clock is right, and type the newest code.";
        let page = two_factor::enrol_page(&user, &secret, Some(why))?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let (codes, hashes) = two_factor::new_recovery_codes()?;
    let s = &user.session;
    let actor = user_actor(&s.username);
    match app
        .store
        .enable_second_factor(s.account_id, secret, hashes, &actor, now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(WebError::forbidden("enrol a second authenticator"));
        }
        Err(e) => return Err(e.into()),
    }
    // The code that enrolled it is used.
    app.store.take_step(s.account_id, step).await?;
    Ok(two_factor::enrolled_page(&user, &codes))
}
