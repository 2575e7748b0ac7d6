//! `infusion bench load`: the paper's load test (Table II, Figs. 7 and 8),
//! closed-loop saturation, and an open-loop fleet of pumps.
//!
//! Each measurement gets a fresh database (SQLite file or scratch
//! PostgreSQL database), seeded through the store, and its own server
//! process (`infusion serve`, so the server's CPU and memory are measured
//! apart from the load generator's). It first runs the **baseline**: the
//! same number of users with the same pacing asking `GET /api/v1/health`,
//! what the HTTP stack alone does on this machine. Then the **workload**:
//!
//! - pumps (`users::pump`): log in, poll the index with each answer's
//!   token, report a progress and a vitals event every fifth request, and
//!   log in again when a token is refused;
//! - physicians (`users::physician`, one user in ten in `paper` and
//!   `closed`, `--physicians-every`): log in to the web application, read the dashboard, and
//!   every fifth time open a patient's page and change the prescription.
//!
//! Response times go into HdrHistograms, measured from the moment a
//! request was meant to go: in `fleet` mode requests go on a fixed
//! schedule whether or not the server keeps up, so queueing shows.

pub(crate) mod server;
pub(crate) mod users;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Context, bail};
use infusion_accuracy::plot::{Chart, Series, write_svg};
use infusion_protocol::DeviceSecret;
use infusion_server::identity::new_device_secret;
use infusion_server::password::PasswordParams;
use infusion_store_postgres::PgConfig;
use serde_json::{Value, json};

use crate::args::{BenchLoadArgs, LoadMode};
use crate::database::Database;
use crate::index::fresh;
use crate::seed;
use server::{ServerProcess, cpu_percent};
use users::{Pace, Recorder, Run, Stats, pump_account};

const PASSWORD: &str = "load-password-1";

/// The paper's Table II: users, requests, average, maximum and minimum
/// response time (ms), requests per second.
const PAPER: [(u32, u64, f64, f64, f64, f64); 3] = [
    (20, 10_454, 62.0, 1_305.0, 42.0, 17.02),
    (50, 25_483, 66.0, 2_798.0, 41.0, 41.32),
    (100, 38_875, 184.0, 16_424.0, 42.0, 63.21),
];

/// The shape of one measurement.
#[derive(Debug, Clone, Copy)]
struct Shape {
    pumps: u32,
    physicians: u32,
    /// Open ward views (ward mode); its pumps all on one ward.
    watchers: u32,
    pace: Pace,
}

/// How often an open ward view is read again under constant change: what
/// `static/live.js` gathers into one refresh.
const WATCH_REFRESH: Duration = Duration::from_millis(300);

/// The nurse whose ward view the watchers open.
const NURSE: &str = "load.nurse";

/// Seeds `shape`'s accounts: physician `j` looks after the pumps whose
/// number is `j` modulo the number of physicians (a ward each).
async fn seed_accounts(
    store: &Arc<dyn infusion_store::Store>,
    shape: Shape,
    fleet: bool,
) -> crate::BenchResult<Arc<Vec<DeviceSecret>>> {
    let secrets = (0..shape.pumps)
        .map(|_| new_device_secret())
        .collect::<Result<Vec<_>, _>>()?;
    // A fleet logs in ten thousand pumps; the cost of Argon2 at full
    // strength would be the whole measurement, so fleet accounts use the
    // cheapest parameters (login cost is not what the fleet measures).
    let params = if fleet {
        PasswordParams::INSECURE_FAST
    } else {
        PasswordParams::default()
    };
    let wards = shape.physicians.max(1);
    for j in 0..wards {
        let patients: Vec<seed::Patient> = (0..shape.pumps)
            .filter(|i| i % wards == j)
            .map(|i| {
                let (username, mac) = pump_account(i);
                seed::Patient {
                    username,
                    first_name: "Load".into(),
                    mac,
                    secret: secrets[i as usize].clone(),
                    limits: None,
                    volume_ul: 9_000,
                    rate_ul_h: 4_000,
                    identifiers: Default::default(),
                }
            })
            .collect();
        seed::seed(
            store,
            &format!("load.physician.{j}"),
            "Load",
            PASSWORD,
            &patients,
            "bench",
            params,
        )
        .await?;
    }
    if shape.watchers > 0 {
        ward(store, shape.pumps, params).await?;
    }
    Ok(Arc::new(secrets))
}

/// Puts every pump's patient on one ward with one nurse, whose ward view
/// the watchers open.
async fn ward(
    store: &Arc<dyn infusion_store::Store>,
    pumps: u32,
    params: PasswordParams,
) -> crate::BenchResult<()> {
    store.create_ward("Load ward", None, "bench", 0).await?;
    let nurse = infusion_store::NewNurse {
        username: NURSE.into(),
        first_name: "Load".into(),
        last_name: "Nurse".into(),
        ward: "Load ward".into(),
        password_hash: params.hash_blocking(PASSWORD)?,
        must_change_password: false,
    };
    store.create_nurse(nurse, "bench", 0).await?;
    for i in 0..pumps {
        let id = store.patient_id(&pump_account(i).0).await?;
        store.assign_ward(id, "Load ward", "bench", 0).await?;
    }
    Ok(())
}

/// Runs the users of `shape` (or, for the baseline, as many health-check
/// users with the same pacing) against `base` for `duration`.
async fn drive(
    base: &str,
    secrets: &Arc<Vec<DeviceSecret>>,
    shape: Shape,
    duration: Duration,
    ramp_up: Duration,
    baseline: bool,
    max_in_flight: usize,
) -> crate::BenchResult<(Stats, f64)> {
    let rec: Recorder = Arc::new(std::sync::Mutex::new(Stats::new()?));
    let start = Instant::now() + Duration::from_millis(200);
    let run = Run {
        base: base.to_owned(),
        start,
        until: start + duration,
        pace: shape.pace,
        password: PASSWORD,
        secrets: Arc::clone(secrets),
        in_flight: Arc::new(tokio::sync::Semaphore::new(max_in_flight)),
    };
    let users = shape.pumps + shape.physicians + shape.watchers;
    // Users start over the ramp-up, each at its own phase of the period
    // so that they never march in step: user k sends at phase k/users of
    // the period, starting in cycle k mod (ramp-up / period). (Starting
    // user k at k/users of the ramp-up would put ten users on each phase
    // for a 10-period ramp, in bursts that queue behind each other.)
    let period = match shape.pace {
        Pace::Closed => Duration::ZERO,
        Pace::Paced(p) | Pace::Open(p) => p,
    };
    let n = f64::from(users.max(1));
    let first = |k: u32| {
        if period.is_zero() {
            return start + ramp_up.mul_f64(f64::from(k) / n);
        }
        let cycles = (ramp_up.as_secs_f64() / period.as_secs_f64())
            .floor()
            .max(1.0) as u32;
        start + period.mul_f64(f64::from(k % cycles) + f64::from(k) / n)
    };
    // A fleet shares one connection pool (its concurrency is low); paper
    // and closed users each hold their own connection, like pumps.
    // Redirects are not followed: a web login's session cookie comes on
    // its 303.
    let builder = || reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    let shared = builder().build()?;
    let client = || match shape.pace {
        Pace::Open(_) => Ok(shared.clone()),
        _ => builder().pool_max_idle_per_host(1).build(),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..shape.pumps {
        let (stats, http, run) = (Arc::clone(&rec), client()?, run.clone());
        if baseline {
            tasks.spawn(users::health(stats, http, run, first(i)));
        } else {
            // A ward's pumps report every poll: each a change its views
            // show.
            let report_every = if shape.watchers > 0 { 1 } else { 5 };
            tasks.spawn(users::pump(stats, http, run, i, first(i), report_every));
        }
    }
    let wards = shape.physicians;
    for j in 0..wards {
        let (stats, http, run) = (Arc::clone(&rec), client()?, run.clone());
        let k = shape.pumps + j;
        if baseline {
            tasks.spawn(users::health(stats, http, run, first(k)));
        } else {
            let patients = (0..shape.pumps)
                .filter(|i| i % wards == j)
                .map(|i| pump_account(i).0)
                .collect();
            tasks.spawn(users::physician(
                stats,
                http,
                run,
                format!("load.physician.{j}"),
                patients,
                first(k),
            ));
        }
    }
    for w in 0..shape.watchers {
        let (stats, http, run) = (Arc::clone(&rec), client()?, run.clone());
        let k = shape.pumps + shape.physicians + w;
        if baseline {
            tasks.spawn(users::health(stats, http, run, first(k)));
        } else {
            let at = start + WATCH_REFRESH.mul_f64(f64::from(w) / f64::from(shape.watchers));
            tasks.spawn(users::watcher(
                stats,
                http,
                run,
                NURSE.into(),
                at,
                WATCH_REFRESH,
            ));
        }
    }
    tasks.join_all().await;
    let all = Arc::try_unwrap(rec)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .context("the users' record is still shared")?;
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    Ok((all, elapsed))
}

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// The figures of one phase as JSON.
fn figures(stats: &Stats, elapsed: f64) -> Value {
    let h = &stats.hist;
    json!({
        "requests": h.len(),
        "errors": stats.errors,
        "requests_per_s": h.len() as f64 / elapsed,
        "mean_ms": h.mean() / 1_000.0,
        "min_ms": ms(h.min()),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p95_ms": ms(h.value_at_quantile(0.95)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "max_ms": ms(h.max()),
        "by_kind": stats.kinds.iter().map(|(k, h)| (k.to_string(), json!({
            "count": h.len(),
            "p50_ms": ms(h.value_at_quantile(0.50)),
            "p99_ms": ms(h.value_at_quantile(0.99)),
            "max_ms": ms(h.max()),
        }))).collect::<serde_json::Map<String, Value>>(),
    })
}

/// The raw sequential durable-transaction rate of SQLite on this disk:
/// one connection, WAL, `synchronous=FULL`, one-row transactions in a
/// tight loop for two seconds. The bar the group-committing writer must
/// beat.
fn sqlite_durable_rate(dir: &std::path::Path) -> crate::BenchResult<f64> {
    let conn = rusqlite::Connection::open(dir.join("raw-commit-rate.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)", [])?;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        conn.execute_batch("BEGIN; INSERT INTO t (v) VALUES (1); COMMIT;")?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// One measurement: fresh database, server process, baseline, workload.
/// Where a measurement's load goes.
enum Target<'a> {
    /// A fresh database and a server process of our own.
    Own(crate::args::BenchBackend),
    /// `--server URL`, seeded through its database.
    External { base: &'a str, db: &'a Database },
}

async fn measure(
    args: &BenchLoadArgs,
    pg: &PgConfig,
    target: Target<'_>,
    shape: Shape,
) -> crate::BenchResult<(Value, Stats)> {
    let fleet = matches!(shape.pace, Pace::Open(_));
    let (store, fresh_db, url, backend) = match target {
        Target::Own(backend) => {
            let (store, fresh_db, url) = fresh(backend, args.postgres_url.as_deref(), pg).await?;
            (store, Some(fresh_db), url, backend.name())
        }
        Target::External { base, db } => (db.open().await?, None, base.to_owned(), "external"),
    };
    let seeding = Instant::now();
    let secrets = seed_accounts(&store, shape, fleet)
        .await
        .context("seeding the bench accounts (with --server, the database must hold none yet)")?;
    let seed_s = seeding.elapsed().as_secs_f64();
    drop(store);
    let raw_commits = match fresh_db.as_ref().and_then(|f| f.sqlite_dir()) {
        Some(dir) if args.mode == LoadMode::Closed => Some(sqlite_durable_rate(dir)?),
        _ => None,
    };
    let server = match fresh_db {
        Some(_) => Some(ServerProcess::start(&url).await?),
        None => None,
    };
    let base_url = server.as_ref().map_or(url.as_str(), |s| s.base.as_str());
    let duration: Duration = args.duration.into();
    let ramp_up = ramp_up(args, shape);
    let baseline_for: Duration = Duration::from(args.baseline).min(duration);
    let (base_stats, base_elapsed) = drive(
        base_url,
        &secrets,
        shape,
        baseline_for,
        ramp_up.min(baseline_for),
        true,
        args.max_in_flight,
    )
    .await?;
    // Sample the server's memory twice a second while the workload runs.
    let before = server.as_ref().and_then(ServerProcess::sample);
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watch = server.as_ref().map(|server| {
        let peak = Arc::clone(&peak);
        let stop = Instant::now() + duration + Duration::from_millis(200);
        let pid_path = server.status_path();
        tokio::spawn(async move {
            while Instant::now() < stop {
                if let Some(rss) = server::rss_of(&pid_path) {
                    peak.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    });
    let (stats, elapsed) = drive(
        base_url,
        &secrets,
        shape,
        duration,
        ramp_up,
        false,
        args.max_in_flight,
    )
    .await?;
    let after = server.as_ref().and_then(ServerProcess::sample);
    if let Some(watch) = watch {
        let _ = watch.await;
    }
    if let Some(server) = server {
        server.stop().await;
    }
    if let Some(fresh_db) = fresh_db {
        fresh_db.remove().await?;
    }

    let work = figures(&stats, elapsed);
    let base = figures(&base_stats, base_elapsed);
    let ratio = |key: &str| {
        let (w, b) = (
            work[key].as_f64().unwrap_or(0.0),
            base[key].as_f64().unwrap_or(0.0),
        );
        if b > 0.0 { Some(w / b) } else { None }
    };
    let server_figures = match (before, after) {
        (Some(a), Some(b)) => json!({
            "cpu_percent": cpu_percent(&a, &b),
            "rss_mb_end": b.rss_bytes as f64 / 1_048_576.0,
            "rss_mb_peak": peak.load(std::sync::atomic::Ordering::Relaxed).max(b.rss_bytes) as f64 / 1_048_576.0,
        }),
        _ => Value::Null,
    };
    let row = json!({
        "backend": backend,
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "users": shape.pumps + shape.physicians + shape.watchers,
        "pumps": shape.pumps,
        "physicians": shape.physicians,
        "ward_views": shape.watchers,
        "duration_s": elapsed,
        "ramp_up_s": ramp_up.as_secs_f64(),
        "seed_s": seed_s,
        "workload": work,
        "baseline": base,
        "throughput_ratio": ratio("requests_per_s"),
        "p50_ratio": ratio("p50_ms"),
        "p99_ratio": ratio("p99_ms"),
        "sqlite_raw_durable_tx_per_s": raw_commits,
        "server": server_figures,
    });
    Ok((row, stats))
}

/// The ramp-up `--ramp-up` gives, or the mode's default.
fn ramp_up(args: &BenchLoadArgs, shape: Shape) -> Duration {
    match (args.ramp_up, shape.pace) {
        (Some(r), _) => r.into(),
        // Ten seconds, or a third of a shorter run.
        (None, Pace::Paced(_)) => Duration::from_secs(10).min(Duration::from(args.duration) / 3),
        (None, Pace::Closed) => Duration::ZERO,
        (None, Pace::Open(period)) => period,
    }
}

/// Runs every measurement the arguments ask for and reports them.
/// `seed_into` is `--server`'s database.
pub async fn bench(
    args: BenchLoadArgs,
    pg: PgConfig,
    seed_into: Option<Database>,
    json_mode: bool,
) -> crate::BenchResult<()> {
    let sizes = match args.mode {
        LoadMode::Fleet | LoadMode::Ward => &args.pumps,
        LoadMode::Paper | LoadMode::Closed => &args.users,
    };
    if sizes.is_empty() || sizes.contains(&0) {
        bail!("--users and --pumps must list counts of at least 1");
    }
    if let Some(base) = &args.server {
        if sizes.len() != 1 {
            bail!("--server takes one size per run (its database is seeded once)");
        }
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--server must be an http:// or https:// URL, not {base:?}");
        }
    }
    if args
        .ramp_up
        .is_some_and(|r| Duration::from(r) >= Duration::from(args.duration))
    {
        bail!("--ramp-up must be shorter than --duration");
    }
    let poll: Duration = args.poll_interval.into();
    if matches!(args.mode, LoadMode::Fleet | LoadMode::Ward) && poll.is_zero() {
        bail!("--poll-interval must be longer than zero");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let physicians = |n: u32| n.checked_div(args.physicians_every).unwrap_or(0);
    let mut rows = Vec::new();
    let mut timelines: Vec<(String, Stats)> = Vec::new();
    let backends: Vec<Option<crate::args::BenchBackend>> = match &args.server {
        Some(_) => vec![None],
        None => args.backend.iter().copied().map(Some).collect(),
    };
    for &backend in &backends {
        let name = backend.map_or("external", |b| b.name());
        for &n in sizes {
            let shape = match args.mode {
                LoadMode::Fleet => Shape {
                    pumps: n,
                    physicians: 0,
                    watchers: 0,
                    pace: Pace::Open(poll),
                },
                LoadMode::Ward => Shape {
                    pumps: n,
                    physicians: 0,
                    watchers: args.dashboards,
                    pace: Pace::Open(poll),
                },
                LoadMode::Paper => Shape {
                    pumps: n - physicians(n),
                    physicians: physicians(n),
                    watchers: 0,
                    pace: Pace::Paced(Duration::from_secs(1)),
                },
                LoadMode::Closed => Shape {
                    pumps: n - physicians(n),
                    physicians: physicians(n),
                    watchers: 0,
                    pace: Pace::Closed,
                },
            };
            if !json_mode {
                eprintln!(
                    "measuring {name} with {n} {} ...",
                    if matches!(args.mode, LoadMode::Fleet | LoadMode::Ward) {
                        "pumps"
                    } else {
                        "users"
                    }
                );
            }
            let target = match (backend, &args.server, &seed_into) {
                (Some(b), _, _) => Target::Own(b),
                (None, Some(base), Some(db)) => Target::External {
                    base: base.trim_end_matches('/'),
                    db,
                },
                _ => bail!("--server needs the database to seed"),
            };
            let (row, stats) = measure(&args, &pg, target, shape).await?;
            if json_mode {
                println!("{row}");
            }
            timelines.push((format!("{name} {n}"), stats));
            rows.push(row);
        }
    }
    let figures = write_figures(&args.out, &timelines)?;
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(
            &json!({"mode": format!("{:?}", args.mode).to_lowercase(), "rows": rows, "figures": figures}),
        )?,
    )?;
    if !json_mode {
        print_table(&args, &rows);
        println!(
            "figures: {}; results.json in {}",
            figures.join(", "),
            args.out.display()
        );
    }
    Ok(())
}

fn print_table(args: &BenchLoadArgs, rows: &[Value]) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!();
    println!(
        "{:<8} {:>6} {:>9} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>7} {:>6} | {:>9} {:>6} {:>6} {:>7} {:>7}",
        "backend",
        "users",
        "requests",
        "avg ms",
        "max ms",
        "min ms",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "base r/s",
        "x r/s",
        "x p50",
        "cpu %",
        "rss MB"
    );
    for r in rows {
        let w = &r["workload"];
        println!(
            "{:<8} {:>6} {:>9} {:>8.2} {:>8.2} {:>7.2} {:>8.1} {:>7.2} {:>7.2} {:>7.2} {:>6} | {:>9.1} {:>6.2} {:>6.2} {:>7.0} {:>7.1}",
            r["backend"].as_str().unwrap_or(""),
            r["users"].as_u64().unwrap_or(0),
            w["requests"].as_u64().unwrap_or(0),
            f(&w["mean_ms"]),
            f(&w["max_ms"]),
            f(&w["min_ms"]),
            f(&w["requests_per_s"]),
            f(&w["p50_ms"]),
            f(&w["p95_ms"]),
            f(&w["p99_ms"]),
            w["errors"].as_u64().unwrap_or(0),
            f(&r["baseline"]["requests_per_s"]),
            f(&r["throughput_ratio"]),
            f(&r["p50_ratio"]),
            f(&r["server"]["cpu_percent"]),
            f(&r["server"]["rss_mb_peak"]),
        );
        let kinds = &w["by_kind"];
        let kind = |k: &str| {
            let v = &kinds[k];
            format!(
                "{k} p99 {:.2} ms (max {:.2})",
                f(&v["p99_ms"]),
                f(&v["max_ms"])
            )
        };
        if kinds.get("index").is_some() {
            println!("         {}; {}", kind("index"), kind("login"));
        }
        if let Some(v) = kinds.get("ward_refresh") {
            println!(
                "         ward view refresh ({} views): {} refreshes, p50 {:.2} ms, p99 {:.2} ms (max {:.2}); {}",
                r["ward_views"].as_u64().unwrap_or(0),
                v["count"].as_u64().unwrap_or(0),
                f(&v["p50_ms"]),
                f(&v["p99_ms"]),
                f(&v["max_ms"]),
                kind("report")
            );
        }
        if let Some(raw) = r["sqlite_raw_durable_tx_per_s"].as_f64() {
            println!(
                "         raw SQLite durable commits, one connection: {raw:.0}/s; the index chain did {:.2} times that",
                f(&w["requests_per_s"]) / raw
            );
        }
    }
    if args.mode == LoadMode::Paper {
        println!();
        println!("the paper's Table II (10 minutes per row):");
        println!(
            "{:>6} {:>9} {:>8} {:>8} {:>7} {:>8}",
            "users", "requests", "avg ms", "max ms", "min ms", "req/s"
        );
        for (users, requests, avg, max, min, rate) in PAPER {
            println!("{users:>6} {requests:>9} {avg:>8.0} {max:>8.0} {min:>7.0} {rate:>8.2}");
        }
    }
}

/// Figs. 7 and 8: throughput and mean response time per second, one line
/// per measurement.
fn write_figures(
    out: &std::path::Path,
    timelines: &[(String, Stats)],
) -> crate::BenchResult<Vec<String>> {
    let series = |f: &dyn Fn(u64, u64) -> f64| -> Vec<Series> {
        timelines
            .iter()
            .enumerate()
            .map(|(i, (name, stats))| Series {
                name: name.clone(),
                color: i,
                reference: false,
                points: stats
                    .timeline
                    .iter()
                    .enumerate()
                    .filter(|(_, (n, _))| *n > 0)
                    .map(|(s, &(n, sum))| (s as f64, f(n, sum)))
                    .collect(),
            })
            .collect()
    };
    let charts = [
        (
            "throughput.svg",
            "Throughput over the run (Fig. 7)",
            "requests/s",
            series(&|n, _| n as f64),
        ),
        (
            "response-time.svg",
            "Mean response time over the run (Fig. 8)",
            "ms",
            series(&|n, sum| sum as f64 / n as f64 / 1_000.0),
        ),
    ];
    let mut written = Vec::new();
    for (file, title, y, s) in charts {
        write_svg(
            &out.join(file),
            &Chart {
                title: title.into(),
                x_label: "time, s".into(),
                y_label: y.into(),
                series: s,
            },
        )?;
        written.push(file.to_owned());
    }
    Ok(written)
}
