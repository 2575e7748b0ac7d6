//! Floods of login attempts against the real server on both backends
//! (red team round 2, findings 3 and 4; threat T6 of
//! `docs/threat-model.md`): concurrent guesses from one address are
//! counted before they are hashed, the hashing queue is bounded and
//! proven pumps go first, and an address under attack is slowed, never
//! locked, so that the clinicians behind it still get in; a trusted proxy
//! names the client, and no one else can.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::browser::{Browser, Page};
use common::{Backend, MAC_A, PASSWORD, TestApp};
use infusion_protocol::DeviceSecret;
use infusion_server::ServerConfig;
use infusion_server::client::TrustedProxies;
use infusion_server::password::PasswordParams;
use infusion_testkit::{login_body_proved_by, test_config};
use tokio::task::JoinSet;

infusion_testkit::backend_tests!(
    concurrent_guesses_from_one_address_are_counted_before_hashing,
    a_flood_from_many_addresses_is_told_to_wait_and_proven_pumps_go_first,
    a_shared_address_under_attack_is_slowed_and_the_right_password_gets_in,
    a_trusted_proxy_names_the_client_and_the_scheme,
    forwarding_headers_from_anyone_else_are_ignored,
    a_login_form_with_an_empty_csrf_pair_is_refused,
);

/// The floods hash at the production cost; one at a time, so that the
/// two backends' runs do not share the cores and time each other.
static HASHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The test configuration, hashing at the production cost.
fn production_cost() -> ServerConfig {
    ServerConfig {
        password: PasswordParams::default(),
        ..test_config(Duration::from_secs(300))
    }
}

/// An HTTP client whose connections come from `ip` (any 127.x.y.z is this
/// machine).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(ip))
        .build()
        .unwrap()
}

/// A browser whose connections come from `ip`.
fn browser_from(app: &TestApp, ip: [u8; 4]) -> Browser {
    Browser::built(app, |b| b.local_address(IpAddr::from(ip)))
}

/// `n` device logins of unknown users (`nobody{first}`, the next ...),
/// each answering its own challenge
/// with a key that is no device's: what a guesser without a device secret
/// can send. Challenges are fetched first, so that the logins all arrive
/// at once.
async fn guesses(
    http: &reqwest::Client,
    base: &str,
    first: usize,
    n: usize,
) -> Vec<serde_json::Value> {
    let key = DeviceSecret::from_bytes(&[0x66; 32]);
    let mut bodies = Vec::with_capacity(n);
    for i in first..first + n {
        let name = format!("nobody{i}");
        bodies.push(login_body_proved_by(http, base, &name, "guess", MAC_A, &key).await);
    }
    bodies
}

/// Posts every body at once: each answer's (status, `Retry-After`).
fn flood(
    sent: Vec<(reqwest::Client, serde_json::Value)>,
    url: String,
) -> JoinSet<(u16, Option<u64>)> {
    let mut set = JoinSet::new();
    for (http, body) in sent {
        let url = url.clone();
        set.spawn(async move {
            let resp = http.post(url).json(&body).send().await.unwrap();
            let retry = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse().ok());
            (resp.status().as_u16(), retry)
        });
    }
    set
}

/// The real pump of alice logs in (proving its secret): its status and
/// how long it took.
async fn pump_login(app: &TestApp) -> (u16, Duration) {
    let body = app.login_body("alice", PASSWORD, MAC_A).await;
    let t = Instant::now();
    let (status, _) = app.post("/api/v1/device/login", None, &body).await;
    (status, t.elapsed())
}

/// One web login form post from `b`, with the given forwarding headers.
async fn post_login(
    b: &Browser,
    csrf: &str,
    username: &str,
    password: &str,
    forwarded: &[(&str, String)],
) -> Page {
    let mut req = b.http.post(format!("{}/login", b.base)).form(&[
        ("csrf", csrf),
        ("username", username),
        ("password", password),
    ]);
    for (name, value) in forwarded {
        req = req.header(*name, value);
    }
    Browser::page(req.send().await.unwrap()).await
}

/// `n` wrong web logins posted at once from `b` (one login form, whose
/// CSRF pair stays good while logins fail), the `i`-th carrying the
/// headers `forwarded(i)`: their statuses.
async fn web_guesses(
    b: &Browser,
    n: usize,
    forwarded: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> Vec<u16> {
    let csrf = b.get("/login").await.csrf();
    let mut set = JoinSet::new();
    for i in 0..n {
        let b = Browser {
            http: b.http.clone(),
            base: b.base.clone(),
        };
        let (csrf, headers) = (csrf.clone(), forwarded(i));
        set.spawn(async move {
            let name = format!("nobody{i}");
            post_login(&b, &csrf, &name, "guess", &headers).await.status
        });
    }
    set.join_all().await
}

/// The security events' actors of `action`.
async fn actors(app: &TestApp, action: &str) -> Vec<String> {
    let events = app.store.security_events(None, 200).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.entry.action.as_str() == action)
        .map(|e| e.entry.actor)
        .collect()
}

/// Finding 3. Two hundred concurrent logins of unknown users from one
/// address used to be hashed all (about 30 a second on two cores), and a
/// physician's correct login from elsewhere waited behind them for 6 s, a
/// pump's for 7 s. Now each attempt is counted before it is hashed: twenty
/// go ahead, a few more wait their turn, the rest are answered 429 at
/// once; the physician and the pump get in within a few hashes' time.
async fn concurrent_guesses_from_one_address_are_counted_before_hashing(backend: Backend) {
    let _one = HASHING.lock().await;
    let app = TestApp::spawn_configured(backend, production_cost()).await;
    let attacker = client_from([127, 0, 0, 2]);
    let bodies = guesses(&attacker, &app.url(""), 0, 200).await;
    let sent = bodies.into_iter().map(|b| (attacker.clone(), b)).collect();
    let answers = flood(sent, app.url("/api/v1/device/login"));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let t = Instant::now();
    let page = Browser::new(&app).login("dr.house", PASSWORD).await;
    let physician = t.elapsed();
    let (pump, pump_took) = pump_login(&app).await;
    let answers = answers.join_all().await;
    let hashed = answers.iter().filter(|(s, _)| *s == 401).count();
    let refused = answers
        .iter()
        .filter(|(s, r)| *s == 429 && r.is_some_and(|r| r <= 5))
        .count();
    println!(
        "{backend:?}: 200 concurrent guesses: {hashed} hashed, {refused} refused 429; \
         physician's login {physician:?}, pump's {pump_took:?}"
    );
    assert_eq!(hashed + refused, 200, "{answers:?}");
    assert!(hashed <= 30, "{hashed} guesses were hashed");
    assert_eq!(page.status, 303, "the physician: {}", page.body);
    assert_eq!(pump, 200);
    assert!(
        physician < Duration::from_secs(3),
        "physician {physician:?}"
    );
    assert!(pump_took < Duration::from_secs(3), "pump {pump_took:?}");
    assert_eq!(actors(&app, "login_slowed").await, ["addr:127.0.0.2"]);
}

/// Finding 3, from many addresses, as a botnet would: every address is
/// within its free attempts, so the per-address count does not help. The
/// hashing queue is bounded: what does not fit is answered 429 with
/// `Retry-After: 1` at once instead of queueing for seconds; a pump that
/// proves its secret goes ahead of everything queued; and once the flood
/// is over the physician, told to wait, gets in.
async fn a_flood_from_many_addresses_is_told_to_wait_and_proven_pumps_go_first(backend: Backend) {
    let _one = HASHING.lock().await;
    let app = TestApp::spawn_configured(backend, production_cost()).await;
    let mut sent = Vec::new();
    for host in 10..70u8 {
        let http = client_from([127, 0, 1, host]);
        let first = usize::from(host) * 4;
        for body in guesses(&http, &app.url(""), first, 4).await {
            sent.push((http.clone(), body));
        }
    }
    let answers = flood(sent, app.url("/api/v1/device/login"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (pump, pump_took) = pump_login(&app).await;
    let answers = answers.join_all().await;
    let hashed = answers.iter().filter(|(s, _)| *s == 401).count();
    let busy = answers
        .iter()
        .filter(|(s, r)| *s == 429 && *r == Some(1))
        .count();
    println!(
        "{backend:?}: 240 guesses from 60 addresses: {hashed} hashed, {busy} told to wait; \
         pump's login {pump_took:?}"
    );
    assert_eq!(hashed + busy, 240, "{answers:?}");
    assert!(busy >= 120, "only {busy} of 240 refused");
    assert_eq!(pump, 200);
    assert!(pump_took < Duration::from_secs(3), "pump {pump_took:?}");

    let browser = Browser::new(&app);
    let csrf = browser.get("/login").await.csrf();
    let page = post_login(&browser, &csrf, "dr.house", PASSWORD, &[]).await;
    assert_eq!(page.status, 303, "after the flood: {}", page.body);
}

/// Finding 4. Forty attempts from one address used to lock everyone
/// behind it out for 15 minutes, renewable forever: a physician's right
/// password got `429, Retry-After: 900`. Now the address is slowed: the
/// physician behind it is told to wait a few seconds at most, and gets in;
/// the slowing is a security event.
async fn a_shared_address_under_attack_is_slowed_and_the_right_password_gets_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let attacker = browser_from(&app, [127, 0, 0, 3]);
    let statuses = web_guesses(&attacker, 40, |_| Vec::new()).await;
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "forty at once are paced");

    let colleague = browser_from(&app, [127, 0, 0, 3]);
    let csrf = colleague.get("/login").await.csrf();
    let t = Instant::now();
    let mut tries = 0;
    let page = loop {
        tries += 1;
        let page = post_login(&colleague, &csrf, "dr.house", PASSWORD, &[]).await;
        if page.status != 429 {
            break page;
        }
        let after = page.body.split("Try again in ").nth(1).unwrap();
        let retry: u64 = after.split(' ').next().unwrap().parse().unwrap();
        assert!(retry <= 5, "told to wait {retry} s");
        assert!(t.elapsed() < Duration::from_secs(30), "still refused");
        tokio::time::sleep(Duration::from_secs(retry)).await;
    };
    println!(
        "{backend:?}: after 40 guesses from one address, the right password got in after \
         {tries} tries, {:?}",
        t.elapsed()
    );
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(actors(&app, "login_slowed").await, ["addr:127.0.0.3"]);
}

/// Finding 4, behind a TLS proxy: with `--trusted-proxy`, its
/// `X-Forwarded-For` names the client, so an attacker behind the proxy is
/// slowed alone and a clinician behind it gets in at the first try; an
/// IPv6 client counts by its /64, so new addresses in it gain nothing;
/// and the proxy's `X-Forwarded-Proto: https` makes the cookies `Secure`.
async fn a_trusted_proxy_names_the_client_and_the_scheme(backend: Backend) {
    let config = ServerConfig {
        trusted_proxies: TrustedProxies(vec!["127.0.0.1/32".parse().unwrap()]),
        ..test_config(Duration::from_secs(300))
    };
    let app = TestApp::spawn_configured(backend, config).await;
    let proxy = Browser::new(&app);
    let xff = |ip: String| vec![("x-forwarded-for", ip)];
    let statuses = web_guesses(&proxy, 40, |_| xff("203.0.113.66".into())).await;
    assert!(
        statuses.contains(&429),
        "the attacker is paced: {statuses:?}"
    );
    let statuses = web_guesses(&proxy, 40, |i| xff(format!("2001:db8:1:2::{i:x}"))).await;
    assert!(
        statuses.contains(&429),
        "one /64 is one client: {statuses:?}"
    );

    // Over HTTPS (as the proxy says), cookies are `Secure` and carry the
    // `__Host-` prefix, which a browser takes from a secure origin only.
    let clinician = Browser::new(&app);
    let login = clinician
        .http
        .get(format!("{}/login", clinician.base))
        .header("x-forwarded-for", "198.51.100.7")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let login = Browser::page(login).await;
    let host_cookie = |cookies: &[String], name: &str| {
        cookies.iter().any(|c| {
            c.starts_with(&format!("__Host-{name}="))
                && c.contains("Secure")
                && c.contains("Path=/")
        })
    };
    assert!(
        host_cookie(&login.cookies, "infusion_login"),
        "{:?}",
        login.cookies
    );
    let csrf = login.csrf();
    let headers = [
        ("x-forwarded-for", "198.51.100.7".to_owned()),
        ("x-forwarded-proto", "https".to_owned()),
        // A browser sends its `Secure` cookie back only over HTTPS; the
        // test's client speaks plain HTTP to the server, so it is given.
        ("cookie", format!("__Host-infusion_login={csrf}")),
    ];
    let page = post_login(&clinician, &csrf, "dr.house", PASSWORD, &headers).await;
    assert_eq!(page.status, 303, "first try: {}", page.body);
    assert!(
        host_cookie(&page.cookies, "infusion_session"),
        "{:?}",
        page.cookies
    );
    let mut slowed = actors(&app, "login_slowed").await;
    slowed.sort();
    assert_eq!(slowed, ["addr:2001:db8:1:2::", "addr:203.0.113.66"]);
}

/// Anyone can send forwarding headers: from a peer that is not a trusted
/// proxy they are ignored. An attacker who names a new address in every
/// request is still counted on its own, and cannot make its cookies
/// `Secure`-only (nor anyone else's `Secure` ones plain).
async fn forwarding_headers_from_anyone_else_are_ignored(backend: Backend) {
    let config = ServerConfig {
        trusted_proxies: TrustedProxies(vec!["127.0.0.1/32".parse().unwrap()]),
        ..test_config(Duration::from_secs(300))
    };
    let app = TestApp::spawn_configured(backend, config).await;
    let attacker = browser_from(&app, [127, 0, 0, 4]);
    let statuses = web_guesses(&attacker, 40, |i| {
        vec![("x-forwarded-for", format!("192.0.2.{i}"))]
    })
    .await;
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(actors(&app, "login_slowed").await, ["addr:127.0.0.4"]);

    let other = browser_from(&app, [127, 0, 0, 5]);
    let csrf = other.get("/login").await.csrf();
    let https = [("x-forwarded-proto", "https".to_owned())];
    let page = post_login(&other, &csrf, "dr.house", PASSWORD, &https).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(
        page.cookies.iter().all(|c| !c.contains("Secure")),
        "{:?}",
        page.cookies
    );
}

/// Low finding: the login form's double-submit check accepted an empty
/// cookie with an empty field, which a page elsewhere can post (login
/// CSRF: the victim's browser logged in to the attacker's account).
async fn a_login_form_with_an_empty_csrf_pair_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app
        .http
        .post(app.url("/login"))
        .header("cookie", "infusion_login=")
        .form(&[
            ("csrf", ""),
            ("username", "dr.house"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.headers().get("set-cookie").is_none());
}
