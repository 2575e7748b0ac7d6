//! `infusion bench alarms`: how long an alarm takes to reach people. A
//! server process (`infusion serve --webhook-url`, and `--smtp-url` when
//! `--smtp-python` names a Python with aiosmtpd) on a fresh database;
//! `--alarms` pumps each log in and report an occlusion, spaced
//! `--spacing` apart; a webhook receiver (and the SMTP server) note when
//! each notification arrives. The delay is from the moment the pump sent
//! its report to the moment the receiver had the notification: the
//! report's transaction, the outbox, the sender's wake-up and the
//! delivery.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hdrhistogram::Histogram;
use infusion_protocol::DeviceSecret;
use infusion_server::clock::now_ms;
use infusion_server::identity::new_device_secret;
use infusion_server::password::PasswordParams;
use infusion_store::Store;
use infusion_store_postgres::PgConfig;
use serde_json::{Value, json};

use crate::args::BenchAlarmsArgs;
use crate::error::{Context, bail};
use crate::index::fresh;
use crate::load::server::ServerProcess;
use crate::load::users::pump_account;
use crate::seed;

const PASSWORD: &str = "alarm-bench-password";
const SECRET: &str = "alarm bench webhook secret";
const NURSE_EMAIL: &str = "nurse@alarms.bench";

/// When each patient's notification arrived (ms since the epoch), by
/// patient username.
type Arrivals = Arc<Mutex<HashMap<String, i64>>>;

/// Seeds `n` pumps of one physician on one ward with one nurse (who has
/// an email address).
async fn seed_ward(store: &Arc<dyn Store>, n: u32) -> crate::BenchResult<Vec<DeviceSecret>> {
    let secrets = (0..n)
        .map(|_| new_device_secret())
        .collect::<Result<Vec<_>, _>>()?;
    let patients: Vec<seed::Patient> = (0..n)
        .map(|i| {
            let (username, mac) = pump_account(i);
            seed::Patient {
                username,
                first_name: "Bench".into(),
                mac,
                secret: secrets[i as usize].clone(),
                limits: None,
                volume_ul: 9_000,
                rate_ul_h: 4_000,
                identifiers: Default::default(),
            }
        })
        .collect();
    let fast = PasswordParams::INSECURE_FAST;
    seed::seed(
        store,
        "bench.physician",
        "Bench",
        PASSWORD,
        &patients,
        "bench",
        fast,
    )
    .await?;
    store.create_ward("Bench ward", None, "bench", 0).await?;
    let nurse = infusion_store::NewNurse {
        username: "bench.nurse".into(),
        first_name: "Bench".into(),
        last_name: "Nurse".into(),
        ward: "Bench ward".into(),
        password_hash: fast.hash_blocking(PASSWORD)?,
        must_change_password: false,
    };
    store.create_nurse(nurse, "bench", 0).await?;
    store
        .set_email("bench.nurse", Some(NURSE_EMAIL), "bench", 0)
        .await?;
    for i in 0..n {
        let id = store.patient_id(&pump_account(i).0).await?;
        store.assign_ward(id, "Bench ward", "bench", 0).await?;
    }
    Ok(secrets)
}

/// A webhook receiver noting each `raised` notification's arrival by
/// patient; its URL.
async fn receiver(arrivals: Arrivals) -> crate::BenchResult<String> {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let arrivals = arrivals.clone();
            async move {
                let at = now_ms();
                if let Ok(v) = serde_json::from_slice::<Value>(&body)
                    && v["event"] == "raised"
                    && let Some(p) = v["patient"].as_str()
                    && let Ok(mut a) = arrivals.lock()
                {
                    a.entry(p.to_owned()).or_insert(at);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/hook"))
}

/// aiosmtpd (`tests/smtp/sink.py`) noting each alarm email's arrival by
/// patient; the child and its port.
fn smtp_sink(python: &str, arrivals: Arrivals) -> crate::BenchResult<(std::process::Child, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/smtp/sink.py");
    let mut child = std::process::Command::new(python)
        .args([script, &port.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting aiosmtpd")?;
    let stdout = child.stdout.take().context("aiosmtpd's output")?;
    let (ready, is_ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line == "ready" {
                let _ = ready.send(());
                continue;
            }
            let at = now_ms();
            let data = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|v| v["data"].as_str().map(str::to_owned))
                .unwrap_or_default();
            // "Patient: Bench Patient (load.17)"
            let who = data.lines().find_map(|l| {
                let rest = l.strip_prefix("Patient: ")?;
                Some(rest.rsplit_once('(')?.1.trim_end_matches(')').to_owned())
            });
            if let (Some(who), Ok(mut a)) = (who, arrivals.lock()) {
                a.entry(who).or_insert(at);
            }
        }
    });
    is_ready
        .recv_timeout(Duration::from_secs(20))
        .context("aiosmtpd did not start within 20 s")?;
    Ok((child, port))
}

/// Delays in ms of `arrivals` after each patient's report, into a
/// histogram (µs).
fn delays(sent: &HashMap<String, i64>, arrivals: &Arrivals) -> crate::BenchResult<Histogram<u64>> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let got = arrivals
        .lock()
        .map_err(|_| crate::BenchError::Invalid("a receiver panicked".into()))?;
    for (p, at) in got.iter() {
        if let Some(t) = sent.get(p) {
            h.saturating_record(u64::try_from((at - t).max(0) * 1_000).unwrap_or(0).max(1));
        }
    }
    Ok(h)
}

fn summary(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| us as f64 / 1_000.0;
    json!({
        "delivered": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "max_ms": ms(h.max()),
    })
}

/// Runs the measurement on each backend and prints the delays.
pub async fn bench(args: BenchAlarmsArgs, pg: PgConfig, json_mode: bool) -> crate::BenchResult<()> {
    if args.alarms == 0 {
        bail!("--alarms must be at least 1");
    }
    let mut rows = Vec::new();
    for &backend in &args.backend {
        let (store, fresh_db, url) = fresh(backend, args.postgres_url.as_deref(), &pg).await?;
        let secrets = seed_ward(&store, args.alarms).await?;
        drop(store);
        let hooks: Arrivals = Arc::default();
        let mails: Arrivals = Arc::default();
        let hook_url = receiver(hooks.clone()).await?;
        let sink = match &args.smtp_python {
            Some(py) => Some(smtp_sink(py, mails.clone())?),
            None => None,
        };
        let smtp_url = sink
            .as_ref()
            .map(|(_, port)| format!("smtp://127.0.0.1:{port}"));
        let mut serve_args = vec!["--webhook-url", hook_url.as_str()];
        if let Some(u) = &smtp_url {
            serve_args.extend(["--smtp-url", u.as_str()]);
        }
        let server =
            ServerProcess::start_with(&url, &serve_args, &[("INFUSION_WEBHOOK_SECRET", SECRET)])
                .await?;
        let http = reqwest::Client::new();
        let spacing: Duration = args.spacing.into();
        let mut sent = HashMap::new();
        for i in 0..args.alarms {
            let (username, mac) = pump_account(i);
            let login = crate::index::device_login(
                &http,
                &server.base,
                &username,
                PASSWORD,
                mac,
                &secrets[i as usize],
            )
            .await?;
            let token = login["token"].as_str().context("login gave no token")?;
            let report = json!({"patient_id": login["patient_id"], "events": [
                {"seq": 1, "uptime_ms": 10, "kind": "alarm", "alarm": "occlusion"}]});
            let at = now_ms();
            http.post(format!("{}/api/v1/device/report", server.base))
                .bearer_auth(token)
                .json(&report)
                .send()
                .await?
                .error_for_status()?;
            sent.insert(username, at);
            tokio::time::sleep(spacing).await;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let done = |a: &Arrivals| a.lock().map_or(0, |a| a.len()) >= sent.len();
        while Instant::now() < deadline && !(done(&hooks) && (sink.is_none() || done(&mails))) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.stop().await;
        if let Some((mut child, _)) = sink {
            let _ = child.kill();
            let _ = child.wait();
        }
        fresh_db.remove().await?;
        let webhook = summary(&delays(&sent, &hooks)?);
        let email = smtp_url
            .as_ref()
            .map(|_| delays(&sent, &mails))
            .transpose()?;
        let row = json!({
            "backend": backend.name(),
            "alarms": args.alarms,
            "spacing_ms": spacing.as_millis() as u64,
            "webhook": webhook,
            "email": email.as_ref().map(summary),
        });
        if json_mode {
            println!("{row}");
        } else {
            let line = |what: &str, v: &Value| {
                println!(
                    "{:<8} {what:<8} delivered {:>4}/{}  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
                    backend.name(),
                    v["delivered"].as_u64().unwrap_or(0),
                    args.alarms,
                    v["p50_ms"].as_f64().unwrap_or(f64::NAN),
                    v["p99_ms"].as_f64().unwrap_or(f64::NAN),
                    v["max_ms"].as_f64().unwrap_or(f64::NAN),
                );
            };
            line("webhook", &row["webhook"]);
            if !row["email"].is_null() {
                line("email", &row["email"]);
            }
        }
        rows.push(row);
    }
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("alarms.json"),
        serde_json::to_string_pretty(&json!({"rows": rows}))?,
    )?;
    Ok(())
}
