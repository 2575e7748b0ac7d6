//! The virtual users of `bench load`: pumps that follow their own token
//! chain, physicians that read their dashboard and change prescriptions,
//! and the baseline user that asks the health check.
//!
//! Every user records into the measurement's one [`Recorder`]: a fleet of
//! tens of thousands of users cannot each own a histogram (hundreds of KB
//! apiece), and the lock is held for a few hundred nanoseconds per answer.

use std::time::{Duration, Instant};

use crate::error::Context;
use hdrhistogram::Histogram;
use infusion_protocol::MacAddress;
use serde_json::{Value, json};

/// The shared record of one measurement.
pub type Recorder = std::sync::Arc<std::sync::Mutex<Stats>>;

/// Records one answer into `rec`.
fn note(rec: &Recorder, run: &Run, intended: Instant, kind: &'static str, ok: bool) {
    if let Ok(mut stats) = rec.lock() {
        stats.record(run.start, intended, kind, ok);
    }
}

/// What a measurement saw.
pub struct Stats {
    /// Response times, µs, from the intended send time.
    pub hist: Histogram<u64>,
    /// Answers that were not a success.
    pub errors: u64,
    /// Per second of the run: (answers, sum of response times in µs).
    pub timeline: Vec<(u64, u64)>,
    /// Response times by kind of request (login, index, dashboard...).
    pub kinds: std::collections::BTreeMap<&'static str, Histogram<u64>>,
}

impl Stats {
    /// Empty: 1 µs to 100 s at 3 significant figures; `saturating_record`
    /// keeps anything longer at the top instead of failing.
    pub fn new() -> Result<Stats, hdrhistogram::CreationError> {
        Ok(Stats {
            hist: Histogram::new_with_bounds(1, 100_000_000, 3)?,
            errors: 0,
            timeline: Vec::new(),
            kinds: Default::default(),
        })
    }

    /// Records one answer to a request meant to go at `intended`.
    pub fn record(&mut self, run_start: Instant, intended: Instant, kind: &'static str, ok: bool) {
        let done = Instant::now();
        let us =
            u64::try_from(done.saturating_duration_since(intended).as_micros()).unwrap_or(u64::MAX);
        self.hist.saturating_record(us.max(1));
        if !ok {
            self.errors += 1;
        }
        let empty = || {
            let mut h = self.hist.clone();
            h.reset();
            h
        };
        self.kinds
            .entry(kind)
            .or_insert_with(empty)
            .saturating_record(us.max(1));
        let second =
            usize::try_from(done.saturating_duration_since(run_start).as_secs()).unwrap_or(0);
        if self.timeline.len() <= second {
            self.timeline.resize(second + 1, (0, 0));
        }
        self.timeline[second].0 += 1;
        self.timeline[second].1 += us;
    }
}

/// When each user sends.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// As fast as answers come back.
    Closed,
    /// One request per period, each waiting for the previous answer (the
    /// paper's users, about one request a second).
    Paced(Duration),
    /// One request per period on a fixed schedule, response time counted
    /// from the scheduled time (open loop, no coordinated omission).
    Open(Duration),
}

/// Everything a user needs to know about the run.
#[derive(Clone)]
pub struct Run {
    /// `http://host:port`.
    pub base: String,
    /// The run's start (timeline origin).
    pub start: Instant,
    /// When users stop sending.
    pub until: Instant,
    /// Pacing.
    pub pace: Pace,
    /// The accounts' password.
    pub password: &'static str,
    /// Each pump's device secret, by pump number.
    pub secrets: std::sync::Arc<Vec<infusion_protocol::DeviceSecret>>,
    /// Requests in flight at once across all users, like the connection
    /// limit of a load balancer in front of the server: a request waits
    /// for a slot, and that wait counts in its response time.
    pub in_flight: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Run {
    /// Waits for the next send time and a free in-flight slot; returns the
    /// intended time to measure from and the slot to hold while the
    /// request is out, or `None` when the run ends first. `next` is the
    /// schedule's cursor.
    async fn next_send(
        &self,
        next: &mut Instant,
    ) -> Option<(Instant, tokio::sync::OwnedSemaphorePermit)> {
        let intended = match self.pace {
            Pace::Closed => Instant::now(),
            Pace::Paced(period) => {
                let at = (*next).max(Instant::now());
                *next = at + period;
                at
            }
            Pace::Open(period) => {
                let at = *next;
                *next += period;
                at
            }
        };
        if intended >= self.until {
            return None;
        }
        tokio::time::sleep_until(intended.into()).await;
        let slot = self.in_flight.clone().acquire_owned().await.ok()?;
        Some((intended, slot))
    }
}

/// The pump account `i`'s name and MAC.
pub fn pump_account(i: u32) -> (String, MacAddress) {
    (
        format!("load.{i}"),
        MacAddress([
            0x02,
            0x1D,
            (i >> 24) as u8,
            (i >> 16) as u8,
            (i >> 8) as u8,
            i as u8,
        ]),
    )
}

/// A pump's login state.
struct Chain {
    token: String,
    patient_id: Value,
}

async fn device_login(http: &reqwest::Client, run: &Run, i: u32) -> crate::BenchResult<Chain> {
    let (username, mac) = pump_account(i);
    let secret = run
        .secrets
        .get(i as usize)
        .context("no device secret for this pump")?;
    let r =
        crate::index::device_login(http, &run.base, &username, run.password, mac, secret).await?;
    Ok(Chain {
        token: r["token"]
            .as_str()
            .context("login gave no token")?
            .to_owned(),
        patient_id: r["patient_id"].clone(),
    })
}

/// A pump: logs in, then polls the index and, every `report_every`-th
/// time, reports a progress and a vitals event; logs in again whenever a
/// token is refused. `first` is its first send time (open loop).
pub async fn pump(
    rec: Recorder,
    http: reqwest::Client,
    run: Run,
    i: u32,
    first: Instant,
    report_every: u32,
) {
    let mut next = first;
    let mut chain: Option<Chain> = None;
    let mut seq = 1u32;
    let mut n = 0u32;
    loop {
        let Some((intended, _slot)) = run.next_send(&mut next).await else {
            return;
        };
        let Some(c) = chain.as_mut() else {
            let result = device_login(&http, &run, i).await;
            note(&rec, &run, intended, "login", result.is_ok());
            chain = result.ok();
            continue;
        };
        n += 1;
        let report = report_every > 0 && n.is_multiple_of(report_every);
        let (kind, url, body) = if report {
            let uptime = u64::try_from(run.start.elapsed().as_millis()).unwrap_or(0);
            let body = json!({"patient_id": c.patient_id, "events": [
                {"seq": seq, "uptime_ms": uptime, "kind": "progress", "delivered_ul": n, "rate_ul_h": 4000, "index_version": 1},
                {"seq": seq + 1, "uptime_ms": uptime, "kind": "vitals", "heart_rate_bpm": 72, "spo2_pct": 98, "tremor_score": 5},
            ]});
            seq += 2;
            ("report", "report", body)
        } else {
            ("index", "index", json!({"patient_id": c.patient_id}))
        };
        let answer = http
            .post(format!("{}/api/v1/device/{url}", run.base))
            .bearer_auth(&c.token)
            .json(&body)
            .send()
            .await;
        let next_token = match answer {
            Ok(r) if r.status().is_success() => r
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["token"].as_str().map(str::to_owned)),
            _ => None,
        };
        note(&rec, &run, intended, kind, next_token.is_some());
        match next_token {
            Some(t) => c.token = t,
            None => chain = None,
        }
    }
}

/// The baseline: the same client asking the health check.
pub async fn health(rec: Recorder, http: reqwest::Client, run: Run, first: Instant) {
    let mut next = first;
    loop {
        let Some((intended, _slot)) = run.next_send(&mut next).await else {
            return;
        };
        let ok = match http.get(format!("{}/api/v1/health", run.base)).send().await {
            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        note(&rec, &run, intended, "health", ok);
    }
}

/// The value of `name=value` in a `Set-Cookie` header named `name`.
fn cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
}

/// The value of the first hidden `csrf` field of a page.
fn csrf(page: &str) -> Option<String> {
    let at = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().map(str::to_owned)
}

async fn web_login(
    http: &reqwest::Client,
    run: &Run,
    username: &str,
) -> crate::BenchResult<String> {
    let form = http.get(format!("{}/login", run.base)).send().await?;
    let login_cookie = cookie(&form, "infusion_login").context("no login cookie")?;
    let token = csrf(&form.text().await?).context("no login csrf")?;
    let r = http
        .post(format!("{}/login", run.base))
        .header(
            reqwest::header::COOKIE,
            format!("infusion_login={login_cookie}"),
        )
        .form(&[
            ("username", username),
            ("password", run.password),
            ("csrf", &token),
        ])
        .send()
        .await?;
    let session = cookie(&r, "infusion_session").context("login refused")?;
    Ok(format!("infusion_session={session}"))
}

/// A nurse's open ward view: logs in as `username`, then reads `/ward`
/// as the page's live script does while the ward keeps changing: once
/// every `every` (the script gathers the changes of 300 ms into one
/// refresh), on a fixed schedule, as a page's own refresh (it does not
/// keep the session alive).
pub async fn watcher(
    rec: Recorder,
    http: reqwest::Client,
    run: Run,
    username: String,
    first: Instant,
    every: Duration,
) {
    let mut next = first;
    let mut session: Option<String> = None;
    loop {
        let intended = next;
        next += every;
        if intended >= run.until {
            return;
        }
        tokio::time::sleep_until(intended.into()).await;
        let Ok(_slot) = run.in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(cookie_header) = session.clone() else {
            let result = web_login(&http, &run, &username).await;
            note(&rec, &run, intended, "web_login", result.is_ok());
            session = result.ok();
            continue;
        };
        let r = http
            .get(format!("{}/ward", run.base))
            .header(reqwest::header::COOKIE, &cookie_header)
            .header("X-Live-Refresh", "1")
            .send()
            .await;
        let ok = match r {
            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        note(&rec, &run, intended, "ward_refresh", ok);
        if !ok {
            session = None;
        }
    }
}

/// A physician: logs in to the web application, then reads the dashboard;
/// every fifth time also opens a patient's page and changes the
/// prescription (alternating 2 mL at 4 and 5 mL/h).
pub async fn physician(
    rec: Recorder,
    http: reqwest::Client,
    run: Run,
    username: String,
    patients: Vec<String>,
    first: Instant,
) {
    let mut next = first;
    let mut session: Option<String> = None;
    let mut n = 0usize;
    loop {
        let Some((intended, _slot)) = run.next_send(&mut next).await else {
            return;
        };
        let Some(cookie_header) = session.clone() else {
            let result = web_login(&http, &run, &username).await;
            note(&rec, &run, intended, "web_login", result.is_ok());
            session = result.ok();
            continue;
        };
        n += 1;
        let ok = if n.is_multiple_of(5) && !patients.is_empty() {
            let patient = &patients[(n / 5) % patients.len()];
            let page = http
                .get(format!("{}/patients/{patient}", run.base))
                .header(reqwest::header::COOKIE, &cookie_header)
                .send()
                .await;
            let token = match page {
                Ok(p) if p.status().is_success() => p.text().await.ok().and_then(|t| csrf(&t)),
                _ => None,
            };
            note(&rec, &run, intended, "patient_page", token.is_some());
            let Some(token) = token else {
                session = None;
                continue;
            };
            let rate = if n.is_multiple_of(10) { "4" } else { "5" };
            let sent = Instant::now();
            let r = http
                .post(format!("{}/patients/{patient}/prescription", run.base))
                .header(reqwest::header::COOKIE, &cookie_header)
                .form(&[
                    ("csrf", token.as_str()),
                    ("volume_ml", "2"),
                    ("rate_ml_h", rate),
                    ("state", "run"),
                    // As sent from the review every new order shows.
                    ("reviewed", "1"),
                    ("reason", "load test"),
                ])
                .send()
                .await;
            let ok = r.is_ok_and(|r| r.status().is_success() || r.status().is_redirection());
            note(&rec, &run, sent, "prescription", ok);
            ok
        } else {
            let r = http
                .get(format!("{}/dashboard", run.base))
                .header(reqwest::header::COOKIE, &cookie_header)
                .send()
                .await;
            let ok = match r {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            note(&rec, &run, intended, "dashboard", ok);
            ok
        };
        if !ok {
            session = None;
        }
    }
}
