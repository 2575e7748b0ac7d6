//! `infusion bench index`: a quick closed-loop measure of the index chain.
//!
//! For each backend and each user count: seeds that many patients with
//! devices on a fresh database (an SQLite file, or a scratch PostgreSQL
//! database), starts the server in this process, and has every user log in
//! and then poll the index back to back, each with the previous answer's
//! token, for `--duration-s`. Client and server share the machine, as in
//! the paper.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Context, bail};
use infusion_protocol::{ChallengeResponse, DeviceSecret, MacAddress};
use infusion_server::identity::new_device_secret;
use infusion_server::{AppState, Application, ServerConfig};
use infusion_store::Store;
use serde_json::{Value, json};

use infusion_store_postgres::PgConfig;
use infusion_store_postgres::scratch::ScratchDatabase;

use crate::args::{BenchBackend, BenchIndexArgs};
use crate::database::{Database, DatabaseUrl};
use crate::seed;

const PASSWORD: &str = "bench-password-1";

fn mac_of(i: u32) -> MacAddress {
    seed::mac(0, i)
}

/// Seeds `users` patients; returns their device secrets, by user number.
async fn seed(store: &Arc<dyn Store>, users: u32) -> crate::BenchResult<Vec<DeviceSecret>> {
    let patients = (0..users)
        .map(|i| {
            Ok(seed::Patient {
                username: format!("bench.{i}"),
                first_name: "Bench".into(),
                mac: mac_of(i),
                secret: new_device_secret()?,
                limits: None,
                volume_ul: 2_000,
                rate_ul_h: 4_000,
                identifiers: Default::default(),
            })
        })
        .collect::<crate::BenchResult<Vec<_>>>()?;
    seed::seed(
        store,
        "bench.physician",
        "Bench",
        PASSWORD,
        &patients,
        "bench",
        infusion_server::password::PasswordParams::default(),
    )
    .await?;
    Ok(patients.into_iter().map(|p| p.secret).collect())
}

/// A device login: a challenge from `base`, signed with `secret`.
pub(crate) async fn device_login(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
    mac: MacAddress,
    secret: &DeviceSecret,
) -> crate::BenchResult<Value> {
    let challenge: ChallengeResponse = http
        .post(format!("{base}/api/v1/device/challenge"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let proof = secret.prove(&challenge.nonce, username, mac);
    let body = json!({
        "username": username,
        "password": password,
        "mac": mac.to_string(),
        "nonce": challenge.nonce.to_string(),
        "proof": proof.to_string(),
    });
    Ok(http
        .post(format!("{base}/api/v1/device/login"))
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

async fn user(
    base: String,
    i: u32,
    secret: DeviceSecret,
    until: Instant,
) -> crate::BenchResult<(Vec<u32>, u64)> {
    let http = reqwest::Client::new();
    let login = device_login(
        &http,
        &base,
        &format!("bench.{i}"),
        PASSWORD,
        mac_of(i),
        &secret,
    )
    .await?;
    let mut token = login["token"]
        .as_str()
        .context("login gave no token")?
        .to_owned();
    let patient_id = login["patient_id"].clone();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let url = format!("{base}/api/v1/device/index");
    while Instant::now() < until {
        let t = Instant::now();
        let resp = http
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({"patient_id": patient_id}))
            .send()
            .await?;
        let ok = resp.status().is_success();
        let body: Value = resp.json().await?;
        latencies.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
        match body["token"].as_str() {
            Some(next) if ok => token = next.to_owned(),
            _ => {
                errors += 1;
                break;
            }
        }
    }
    Ok((latencies, errors))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

/// A fresh database for one measurement, deleted afterwards.
pub(crate) enum Fresh {
    Sqlite { dir: tempfile::TempDir },
    Postgres(ScratchDatabase),
}

pub(crate) async fn fresh(
    backend: BenchBackend,
    postgres_url: Option<&str>,
    pg: &PgConfig,
) -> crate::BenchResult<(Arc<dyn Store>, Fresh, String)> {
    match backend {
        BenchBackend::Sqlite => {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("bench.db");
            let url = format!("sqlite://{}", path.display());
            let store = Database {
                url: DatabaseUrl::Sqlite(path),
                pg: pg.clone(),
            }
            .open()
            .await?;
            Ok((store, Fresh::Sqlite { dir }, url))
        }
        BenchBackend::Postgres => {
            let admin = postgres_url.context(
                "--backend postgres needs --postgres-url (or INFUSION_BENCH_POSTGRES_URL)",
            )?;
            let scratch = ScratchDatabase::create(admin, "bench").await?;
            let url = scratch.url().to_owned();
            let store = Database {
                url: DatabaseUrl::Postgres(url.clone()),
                pg: pg.clone(),
            }
            .open()
            .await?;
            Ok((store, Fresh::Postgres(scratch), url))
        }
    }
}

impl Fresh {
    /// The SQLite file's directory, for side measurements next to it.
    pub(crate) fn sqlite_dir(&self) -> Option<&std::path::Path> {
        match self {
            Fresh::Sqlite { dir } => Some(dir.path()),
            Fresh::Postgres(_) => None,
        }
    }

    /// Drops a scratch PostgreSQL database; a SQLite directory goes with
    /// the value.
    pub(crate) async fn remove(self) -> crate::BenchResult<()> {
        if let Fresh::Postgres(scratch) = self {
            scratch.remove().await?;
        }
        Ok(())
    }
}

/// Runs one measurement per backend and user count and prints a table (one
/// JSON object per measurement with `--json`).
pub async fn index(args: BenchIndexArgs, pg: PgConfig, json_mode: bool) -> crate::BenchResult<()> {
    if args.users.is_empty() || args.users.contains(&0) {
        bail!("--users must list counts of at least 1");
    }
    if !json_mode {
        println!(
            "index chain, closed loop, {} s per row; pool {} connections for PostgreSQL",
            args.duration_s, pg.max_connections
        );
        println!(
            "{:<9} {:>5} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8}",
            "backend",
            "users",
            "requests",
            "errors",
            "req/s",
            "mean ms",
            "p50 ms",
            "p99 ms",
            "max ms"
        );
    }
    for &backend in &args.backend {
        for &users in &args.users {
            let (store, fresh_db, _) = fresh(backend, args.postgres_url.as_deref(), &pg).await?;
            let result = measure(store, users, args.duration_s).await?;
            let name = backend.name();
            if json_mode {
                let mut r = result;
                r["backend"] = json!(name);
                println!("{r}");
            } else {
                println!(
                    "{:<9} {:>5} {:>9} {:>7} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                    name,
                    users,
                    result["requests"].as_u64().unwrap_or_default(),
                    result["errors"].as_u64().unwrap_or_default(),
                    result["requests_per_s"].as_f64().unwrap_or_default(),
                    result["mean_ms"].as_f64().unwrap_or_default(),
                    result["p50_ms"].as_f64().unwrap_or_default(),
                    result["p99_ms"].as_f64().unwrap_or_default(),
                    result["max_ms"].as_f64().unwrap_or_default(),
                );
            }
            fresh_db.remove().await?;
        }
    }
    Ok(())
}

async fn measure(store: Arc<dyn Store>, users: u32, duration_s: u64) -> crate::BenchResult<Value> {
    let secrets = seed(&store, users).await?;
    let state = AppState::new(store, ServerConfig::default()).await?;
    let app = Application::bind(([127, 0, 0, 1], 0).into(), state).await?;
    let base = format!("http://{}", app.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let start = Instant::now();
    let until = start + Duration::from_secs(duration_s);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, secret) in (0..users).zip(secrets) {
        tasks.spawn(user(base.clone(), i, secret, until));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for r in tasks.join_all().await {
        let (lat, err) = r?;
        all.extend(lat);
        errors += err;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = stop.send(());
    let _ = server.await;
    all.sort_unstable();
    let rate = all.len() as f64 / elapsed;
    let mean = all.iter().map(|&v| f64::from(v)).sum::<f64>() / all.len().max(1) as f64 / 1000.0;
    Ok(json!({
        "users": users, "duration_s": elapsed, "requests": all.len(), "errors": errors,
        "requests_per_s": rate, "mean_ms": mean,
        "p50_ms": percentile(&all, 50.0), "p99_ms": percentile(&all, 99.0),
        "max_ms": percentile(&all, 100.0),
    }))
}
