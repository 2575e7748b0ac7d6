//! A second login factor for physicians and administrators: an
//! authenticator app's six-digit code (TOTP, RFC 6238: SHA-1, 30 s steps,
//! one step of clock drift either way, by the `totp-rs` crate), or one of
//! ten single-use recovery codes.
//!
//! Enrolment (`/account/two-factor`) shows a new secret as a QR code and
//! as text; it is enrolled only once a code made from it is typed back,
//! and the recovery codes are shown once then. At login, a right password
//! of an enrolled account does not open a session: it leaves a short-lived
//! encrypted cookie naming the account, and the code page (`/login/code`)
//! opens the session once a code is right. Codes are counted by the same
//! login throttle as passwords (five free tries, then lockouts that
//! double), and each time step logs in once (the store keeps the newest).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use infusion_store::{AccountId, RECOVERY_CODES, TokenHash};
use maud::{Markup, html};
use qrcode::QrCode;
use qrcode::render::svg;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, TOTP};

use crate::error::ApiError;
use crate::web::layout::page;
use crate::web::session::WebUser;

/// Seconds per code.
const STEP_S: u64 = 30;

/// The authenticator of `secret` (20 bytes).
fn totp(secret: &[u8]) -> Result<TOTP, ApiError> {
    TOTP::new(Algorithm::SHA1, 6, 1, STEP_S, secret.to_vec()).map_err(ApiError::internal)
}

/// The time step whose code `code` is, among the one of `now_s` and its
/// neighbours (a phone's clock a little off); `None` when it is none.
pub fn matching_step(secret: &[u8], code: &str, now_s: u64) -> Result<Option<i64>, ApiError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let t = totp(secret)?;
    let now = now_s / STEP_S;
    let mut found = None;
    // Every candidate is computed and compared, in constant time each.
    for step in [now.saturating_sub(1), now, now + 1] {
        let made = t.generate(step * STEP_S);
        if crate::web::session::same_secret(&made, &code) {
            found = i64::try_from(step).ok();
        }
    }
    Ok(found)
}

/// A new secret: 20 random bytes, as authenticator apps expect.
pub fn new_secret() -> Result<Vec<u8>, ApiError> {
    Ok(crate::identity::random()?[..20].to_vec())
}

/// Letters and digits a person cannot misread (no 0/o, 1/l/i).
const CODE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// New recovery codes (`abcde-23456`, about 49 bits each) and their hashes.
pub fn new_recovery_codes() -> Result<(Vec<String>, Vec<TokenHash>), ApiError> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let r = crate::identity::random()?;
        let chars: String = r[..10]
            .iter()
            .map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()]))
            .collect();
        codes.push(format!("{}-{}", &chars[..5], &chars[5..]));
    }
    let hashes = codes.iter().map(|c| recovery_hash(c)).collect();
    Ok((codes, hashes))
}

/// The stored form of a recovery code as typed: SHA-256 of its letters
/// and digits in lower case (dashes, spaces and case do not matter).
pub fn recovery_hash(typed: &str) -> TokenHash {
    let norm: String = typed
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    TokenHash(Sha256::digest(format!("infusion-recovery\0{norm}").as_bytes()).into())
}

/// The `otpauth://` address an authenticator app reads from the QR code.
fn otpauth(username: &str, secret: &[u8]) -> Result<String, ApiError> {
    let b32 = totp(secret)?.get_secret_base32();
    let label = username.replace('@', "%40");
    Ok(format!(
        "otpauth://totp/Infusion:{label}?secret={b32}&issuer=Infusion&algorithm=SHA1&digits=6&period=30"
    ))
}

/// The enrolment page: the new secret as a QR code and as text, and the
/// form that enrols it with a code made from it.
pub fn enrol_page(user: &WebUser, secret: &[u8], error: Option<&str>) -> Result<Markup, ApiError> {
    let url = otpauth(&user.session.username, secret)?;
    let qr = QrCode::new(url.as_bytes())
        .map_err(ApiError::internal)?
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let b32 = totp(secret)?.get_secret_base32();
    let body = html! {
        h1 { "Two-step login" }
        p { "After your password, you will also type a six-digit code from an authenticator app on your phone (for example FreeOTP, Google Authenticator or Microsoft Authenticator)." }
        @if let Some(e) = error { p role="alert" class="notice" { (e) } }
        p { "In the app, add an account and scan this code:" }
        div class="qr" role="img" aria-label="QR code of the authenticator key" { (maud::PreEscaped(qr)) }
        p { "Or type this key into the app: " code { (b32) } }
        form class="edit" method="post" action="/account/two-factor" {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="secret" value=(b32);
            label for="code" { "The six-digit code the app shows now" }
            input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required maxlength="7";
            button type="submit" { "Turn on two-step login" }
        }
    };
    Ok(page(
        "Two-step login",
        user,
        "/account/two-factor",
        None,
        body,
    ))
}

/// The page after enrolment: the recovery codes, shown this once.
pub fn enrolled_page(user: &WebUser, codes: &[String]) -> Response {
    let body = html! {
        h1 { "Two-step login is on" }
        p role="status" class="notice" { "From your next login, you will be asked for a code from your authenticator app." }
        h2 { "Your recovery codes" }
        p { "If you lose your phone, each of these logs you in once instead of a code. Print them or keep them somewhere safe now: they are not shown again." }
        ul class="codes" { @for c in codes { li { code { (c) } } } }
        p { a href="/" { "Go on" } }
    };
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        page(
            "Two-step login is on",
            user,
            "/account/two-factor",
            None,
            body,
        ),
    )
        .into_response()
}

/// The page of an enrolled account: on, and how many recovery codes are
/// left.
pub fn status_page(user: &WebUser, left: u32) -> Markup {
    let body = html! {
        h1 { "Two-step login" }
        p role="status" class="notice" { "Two-step login is on for your account." }
        p { (left) " of " (RECOVERY_CODES) " recovery codes are unused." }
        @if left < 3 { p role="alert" class="notice" { "Few recovery codes are left: ask an administrator to reset your two-step login before they run out." } }
    };
    page("Two-step login", user, "/account/two-factor", None, body)
}

/// The login's second step: the code page, for `username`.
pub fn code_page(csrf: &str, username: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        h1 { "Log in: code" }
        p { "Signed in as " strong { (username) } ". Type the six-digit code your authenticator app shows, or one of your recovery codes." }
        @if let Some(e) = error { p role="alert" { (e) } }
        form class="edit" method="post" action="/login/code" {
            input type="hidden" name="csrf" value=(csrf);
            label for="code" { "Code" }
            input id="code" name="code" inputmode="text" autocomplete="one-time-code" required autofocus maxlength="16";
            button type="submit" { "Log in" }
        }
        p { a href="/login" { "Start again" } }
    };
    (status, crate::web::layout::bare("Log in: code", body)).into_response()
}

/// The pending second step, as its encrypted cookie holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Whose password was right.
    pub account: AccountId,
    /// Its username (the throttle's key).
    pub username: String,
    /// Until when the code may be typed, ms.
    pub until_ms: i64,
}

/// How long a right password waits for its code.
pub const PENDING_MS: i64 = 5 * 60 * 1000;

impl Pending {
    /// The cookie's plain text.
    pub fn encode(&self) -> String {
        format!("{}\n{}\n{}", self.account.0, self.until_ms, self.username)
    }

    /// The inverse of [`Pending::encode`]; `None` for anything else.
    pub fn decode(s: &str) -> Option<Pending> {
        let mut parts = s.splitn(3, '\n');
        let account = AccountId(parts.next()?.parse().ok()?);
        let until_ms = parts.next()?.parse().ok()?;
        let username = parts.next()?.to_owned();
        Some(Pending {
            account,
            username,
            until_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_matches_its_step_and_its_neighbours_only() {
        let secret = [7u8; 20];
        let t = totp(&secret).unwrap();
        let now = 1_800_000_000u64;
        let code = t.generate(now);
        assert_eq!(
            matching_step(&secret, &code, now).unwrap(),
            Some((now / 30) as i64)
        );
        assert_eq!(
            matching_step(&secret, &code, now + 30).unwrap(),
            Some((now / 30) as i64)
        );
        assert_eq!(matching_step(&secret, &code, now + 120).unwrap(), None);
        assert_eq!(matching_step(&secret, "12345", now).unwrap(), None);
        assert_eq!(matching_step(&secret, "abcdef", now).unwrap(), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_typed_loosely() {
        let (codes, hashes) = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique: Vec<[u8; 32]> = hashes.iter().map(|h| h.0).collect();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        assert_eq!(
            recovery_hash(&codes[0].to_uppercase().replace('-', " ")),
            hashes[0]
        );
        let p = Pending {
            account: AccountId(3),
            username: "dr.x".into(),
            until_ms: 9,
        };
        assert_eq!(Pending::decode(&p.encode()), Some(p));
        assert_eq!(Pending::decode("x"), None);
    }
}
