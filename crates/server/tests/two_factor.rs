//! Two-step login (TOTP and recovery codes) for physicians and
//! administrators, against the real server on both backends (red team
//! round 2, finding 10; threat T20 of `docs/threat-model.md`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::browser::{Browser, Page, add_admin};
use common::{Backend, PASSWORD, TestApp};
use infusion_store::AuditAction;
use infusion_testkit::test_config;
use totp_rs::{Algorithm, Secret, TOTP};

infusion_testkit::backend_tests!(
    an_enrolled_physician_needs_a_code_and_each_code_works_once,
    recovery_codes_log_in_once_each_and_guessing_codes_is_locked_out,
    a_required_second_factor_is_enrolled_first_and_a_lost_one_is_reset,
);

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The value of the hidden field `name` of a page.
fn field(page: &Page, name: &str) -> String {
    let at = page
        .body
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap();
    let rest = &page.body[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Enrols `b`'s account; returns its authenticator, the time of the code
/// that enrolled it and the recovery codes.
async fn enrol(b: &Browser) -> (TOTP, u64, Vec<String>) {
    let page = b.get("/account/two-factor").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<svg"), "a QR code");
    let secret = field(&page, "secret");
    let totp = TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        Secret::Encoded(secret.clone()).to_bytes().unwrap(),
    )
    .unwrap();
    let csrf = page.csrf();
    let wrong = b
        .post(
            "/account/two-factor",
            &[("csrf", &csrf), ("secret", &secret), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    let at = now_s();
    let code = totp.generate(at);
    let done = b
        .post(
            "/account/two-factor",
            &[("csrf", &csrf), ("secret", &secret), ("code", &code)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let codes: Vec<String> = done
        .body
        .split("<li><code>")
        .skip(1)
        .map(|s| s[..s.find('<').unwrap()].to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{}", done.body);
    (totp, at, codes)
}

/// Logs in with the password; returns the page that asks for the code.
async fn password_step(app: &TestApp) -> (Browser, Page) {
    let b = Browser::new(app);
    let page = b.login("dr.house", PASSWORD).await;
    (b, page)
}

async fn code_step(b: &Browser, asked: &Page, code: &str) -> Page {
    b.post("/login/code", &[("csrf", &asked.csrf()), ("code", code)])
        .await
}

/// Finding 10: a password alone logged a physician in. Enrolled, the
/// password opens nothing until a code is typed; the code used to enrol,
/// or any code once used, is refused; a wrong password never reaches the
/// code page; the code page without its cookie is refused.
async fn an_enrolled_physician_needs_a_code_and_each_code_works_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let (totp, enrolled_at, _) = enrol(&house).await;
    assert!(
        house
            .get("/account/two-factor")
            .await
            .body
            .contains("Two-step login is on")
    );

    let (b, asked) = password_step(&app).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(asked.body.contains("six-digit code"), "{}", asked.body);
    let r = b.get("/dashboard").await;
    assert_eq!(
        (r.status, r.location.as_deref()),
        (303, Some("/login")),
        "no session yet"
    );
    // The code that enrolled is used; so is any older one.
    let used = totp.generate(enrolled_at);
    let r = code_step(&b, &asked, &used).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("used already"), "{}", r.body);
    // The next step's code (a phone a little ahead) logs in, once.
    let next = totp.generate(enrolled_at + 30);
    let r = code_step(&b, &asked, &next).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(b.get("/dashboard").await.status, 200);
    let (b2, asked2) = password_step(&app).await;
    assert_eq!(code_step(&b2, &asked2, &next).await.status, 401);

    let wrong = Browser::new(&app)
        .login("dr.house", "not the password at all")
        .await;
    assert_eq!(wrong.status, 401);
    assert!(!wrong.body.contains("six-digit code"));
    let stranger = Browser::new(&app);
    let form = stranger.get("/login").await;
    let r = stranger
        .post("/login/code", &[("csrf", &form.csrf()), ("code", "123456")])
        .await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("log in again"), "{}", r.body);
    let events = app.store.security_events(None, 20).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.entry.action == AuditAction::SecondFactorEnabled)
    );
}

/// A recovery code logs in once (typed in any case, with or without its
/// dash) and is audited; guessing codes after a right password meets the
/// login lockout.
async fn recovery_codes_log_in_once_each_and_guessing_codes_is_locked_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let house = Browser::logged_in(&app, "dr.house").await;
    let (_, _, codes) = enrol(&house).await;
    let (b, asked) = password_step(&app).await;
    let typed = codes[3].to_uppercase().replace('-', " ");
    let r = code_step(&b, &asked, &typed).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let (b2, asked2) = password_step(&app).await;
    assert_eq!(
        code_step(&b2, &asked2, &codes[3]).await.status,
        401,
        "used once"
    );
    let events = app.store.security_events(None, 20).await.unwrap();
    let used = events
        .iter()
        .find(|e| e.entry.action == AuditAction::RecoveryCodeUsed)
        .unwrap();
    assert!(
        used.entry.detail.contains("9 left"),
        "{}",
        used.entry.detail
    );
    assert!(
        house
            .get("/account/two-factor")
            .await
            .body
            .contains("9 of 10")
    );

    // Guesses: after the free attempts, the account is locked out.
    let (b3, asked3) = password_step(&app).await;
    let mut statuses = Vec::new();
    for guess in 0..8 {
        let r = code_step(&b3, &asked3, &format!("{:06}", 111_111 * (guess % 9))).await;
        statuses.push(r.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

/// With `--require-two-factor`, a physician or administrator without an
/// authenticator is sent to enrol one after the password and served
/// nothing else; an administrator resets a lost one, and the account
/// enrols again at its next login. Patients are not asked.
async fn a_required_second_factor_is_enrolled_first_and_a_lost_one_is_reset(backend: Backend) {
    let mut config = test_config(std::time::Duration::from_secs(300));
    config.require_second_factor = true;
    let app = TestApp::spawn_configured(backend, config).await;
    add_admin(&app).await;
    let house = Browser::logged_in(&app, "dr.house").await;
    for page in ["/", "/dashboard", "/account/password"] {
        let r = house.get(page).await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (303, Some("/account/two-factor")),
            "{page}"
        );
    }
    enrol(&house).await;
    assert_eq!(house.get("/dashboard").await.status, 200);
    let alice = Browser::logged_in(&app, "alice").await;
    assert_eq!(
        alice.get("/patients/alice").await.status,
        200,
        "patients are not asked"
    );

    let root = Browser::logged_in(&app, "root").await;
    enrol(&root).await;
    let overview = root.get("/admin").await;
    assert!(
        overview.body.contains("Reset two-step"),
        "{}",
        overview.body
    );
    let csrf = overview.csrf();
    let r = root
        .post(
            "/admin/accounts/dr.house/reset-two-factor",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // The lost authenticator is gone: the password alone leads to a new
    // enrolment.
    let again = Browser::new(&app);
    let p = again.login("dr.house", PASSWORD).await;
    assert_eq!(p.status, 303, "password only: {}", p.body);
    let r = again.get("/dashboard").await;
    assert_eq!(r.location.as_deref(), Some("/account/two-factor"));
    let events = app.store.security_events(None, 20).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.entry.action == AuditAction::SecondFactorReset)
    );
}
