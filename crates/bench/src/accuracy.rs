//! `infusion bench accuracy` and `infusion accuracy analyze`: the paper's
//! gravimetric test, end to end, and the same analysis of a real bench's
//! scale log.
//!
//! The bench starts the server on a fresh SQLite file with one patient and
//! prescription per run, and runs one simulated pump per run: the firmware
//! core on virtual time, logging in and polling the index over HTTP,
//! driving its motor step by step into the simulated syringe, line and
//! scale of `infusion_sim::physics`. Each run's scale log is written as
//! CSV and analysed by `infusion_accuracy`, exactly as `accuracy analyze`
//! would analyse it.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Context, bail};
use infusion_accuracy::analysis::{self, IEC_WINDOWS_MIN};
use infusion_accuracy::plot::{Chart, Series, write_svg};
use infusion_accuracy::{Iec, RunResult, Sample, Setting};
use infusion_protocol::{DeviceSecret, MacAddress};
use infusion_pump_core::PumpConfig;
use infusion_pump_core::dose::{DosePlan, PAPER_DRIVE};
use infusion_server::identity::new_device_secret;
use infusion_server::{AppState, Application, ServerConfig};
use infusion_sim::physics::{Bench, PhysicsConfig};
use infusion_sim::{Credentials, SimConfig, SimPump, Snapshot};
use serde_json::{Value, json};

use crate::args::{AnalyzeArgs, BenchAccuracyArgs, PhysicsArgs};
use crate::database::{Database, DatabaseUrl};
use crate::seed;

const PASSWORD: &str = "accuracy-password-1";

impl From<&PhysicsArgs> for PhysicsConfig {
    fn from(a: &PhysicsArgs) -> Self {
        PhysicsConfig {
            diameter_sd_pct: a.diameter_sd_pct,
            startup_ul: a.startup_ul,
            startup_sd_ul: a.startup_sd_ul,
            lead_pitch_sd_pct: a.lead_pitch_sd_pct,
            lead_periodic_pct: a.lead_periodic_pct,
            lead_period_mm: a.lead_period_mm,
            drop_ul: a.drop_ul,
            drop_sd_ul: a.drop_sd_ul,
            scale_resolution_g: a.scale_resolution_g,
            density_g_ml: a.density_g_ml,
            evaporation_mg_h: a.evaporation_mg_h,
            sample_interval_s: a.sample_interval_s,
        }
    }
}

/// `2@4` → 2 mL at 4 mL/h, in the pump's integer units.
fn parse_setting(s: &str) -> crate::BenchResult<(Setting, u32, u32)> {
    let (v, r) = s
        .split_once('@')
        .with_context(|| format!("{s:?}: a setting is VOLUME_ML@RATE_ML_H, like 2@4"))?;
    let volume_ml: f64 = v.trim().parse().with_context(|| format!("{s:?}: volume"))?;
    let rate_ml_h: f64 = r.trim().parse().with_context(|| format!("{s:?}: rate"))?;
    let volume_ul = (volume_ml * 1_000.0).round();
    let rate_ul_h = (rate_ml_h * 1_000.0).round();
    if !(1.0..=1_000_000.0).contains(&volume_ul) || !(100.0..=200_000.0).contains(&rate_ul_h) {
        bail!("{s:?}: volume must be 0.001 to 1000 mL and rate 0.1 to 200 mL/h");
    }
    Ok((
        Setting {
            volume_ml,
            rate_ml_h,
        },
        volume_ul as u32,
        rate_ul_h as u32,
    ))
}

/// A file-name fragment for a setting: `2ml-4mlh`.
fn slug(s: Setting) -> String {
    format!("{}ml-{}mlh", s.volume_ml, s.rate_ml_h).replace('.', "_")
}

/// One finished run.
struct Run {
    number: u32,
    seed: u64,
    result: RunResult,
    iec: Iec,
    samples: Vec<Sample>,
    drops: u64,
    steps_motor: u64,
    steps_pump: u64,
    requests: u64,
}

/// Runs the bench and prints Table III and the IEC figures.
pub async fn bench(args: BenchAccuracyArgs, json_mode: bool) -> crate::BenchResult<()> {
    let began = Instant::now();
    let plan = DosePlan::PAPER;
    let settings = settings(&args, &plan)?;
    let physics = PhysicsConfig::from(&args.physics);
    std::fs::create_dir_all(args.out.join("logs"))
        .with_context(|| format!("creating {}", args.out.display()))?;
    let dir = tempfile::tempdir()?;
    let (server, secrets) = BenchServer::start(&dir, &args, &settings).await?;
    let tasks = spawn_runs(&args, &settings, &server, secrets, plan, physics)?;
    let runs = collect(&args, &settings, tasks, plan, physics).await;
    server.stop().await;
    let mut runs = runs?;

    let mut summary = Vec::new();
    for (s, set_runs) in runs.iter_mut().enumerate() {
        set_runs.sort_by_key(|r| r.number);
        let setting = settings[s].0;
        let curves: Vec<Curve<'_>> = set_runs.iter().map(Run::curve).collect();
        let figures = figures(&args.out, setting, &curves, physics.density_g_ml)?;
        summary.push(report(setting, set_runs, &figures, json_mode));
    }
    let elapsed = began.elapsed().as_secs_f64();
    let all = json!({"settings": summary, "wall_clock_s": elapsed, "seed": args.seed});
    std::fs::write(
        args.out.join("summary.json"),
        serde_json::to_string_pretty(&all)?,
    )?;
    if json_mode {
        println!("{all}");
    } else {
        println!(
            "{} runs in {elapsed:.1} s of wall-clock time; logs, figures and summary.json in {}",
            runs.iter().map(Vec::len).sum::<usize>(),
            args.out.display()
        );
    }
    Ok(())
}

/// The settings to run (setting, volume µL, rate µL/h), each within what
/// the simulated syringe holds.
fn settings(
    args: &BenchAccuracyArgs,
    plan: &DosePlan,
) -> crate::BenchResult<Vec<(Setting, u32, u32)>> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let settings: Vec<(Setting, u32, u32)> = args
        .settings
        .iter()
        .map(|s| parse_setting(s))
        .collect::<crate::BenchResult<_>>()?;
    for &(setting, volume_ul, _) in &settings {
        if u64::from(volume_ul) > plan.capacity_ul() {
            bail!(
                "{} mL is more than the simulated 10 mL syringe holds ({} µL)",
                setting.volume_ml,
                plan.capacity_ul()
            );
        }
    }
    Ok(settings)
}

/// The server the runs' pumps talk to: in process, on a fresh SQLite
/// file, with one patient per run (whose device secrets it hands out once,
/// in the order they were seeded).
struct BenchServer {
    base: String,
    server_key: infusion_protocol::PublicKey,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl BenchServer {
    async fn start(
        dir: &tempfile::TempDir,
        args: &BenchAccuracyArgs,
        settings: &[(Setting, u32, u32)],
    ) -> crate::BenchResult<(BenchServer, Vec<DeviceSecret>)> {
        let store = Database {
            url: DatabaseUrl::Sqlite(dir.path().join("accuracy.db")),
            pg: Default::default(),
        }
        .open()
        .await?;
        let mut patients = Vec::new();
        for (s, &(_, volume_ul, rate_ul_h)) in settings.iter().enumerate() {
            for k in 1..=args.runs {
                patients.push(seed::Patient {
                    username: format!("accuracy.s{s}.r{k}"),
                    first_name: "Bench".into(),
                    mac: mac_of(s, k),
                    secret: new_device_secret()?,
                    limits: None,
                    volume_ul,
                    rate_ul_h,
                    identifiers: Default::default(),
                });
            }
        }
        seed::seed(
            &store,
            "accuracy.physician",
            "Bench",
            PASSWORD,
            &patients,
            "bench",
            infusion_server::password::PasswordParams::default(),
        )
        .await?;
        let state = AppState::new(Arc::clone(&store), ServerConfig::default()).await?;
        let server_key = state.keys.index.public_key();
        let secrets: Vec<_> = patients.into_iter().map(|p| p.secret).collect();
        let app = Application::bind(([127, 0, 0, 1], 0).into(), state).await?;
        let base = format!("http://{}", app.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let server = BenchServer {
            base,
            server_key,
            stop,
            task,
        };
        Ok((server, secrets))
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// What one run's task ends with: its setting and run number, its seed,
/// the pump's last snapshot, the bench, and the volume set.
type Finished = (usize, u32, u64, Snapshot, Bench, u32);

/// Every run at once: each pump has its own virtual clock.
fn spawn_runs(
    args: &BenchAccuracyArgs,
    settings: &[(Setting, u32, u32)],
    server: &BenchServer,
    secrets: Vec<DeviceSecret>,
    plan: DosePlan,
    physics: PhysicsConfig,
) -> crate::BenchResult<tokio::task::JoinSet<Finished>> {
    let mut secrets = secrets.into_iter();
    let mut tasks = tokio::task::JoinSet::new();
    for (s, &(setting, volume_ul, _)) in settings.iter().enumerate() {
        for k in 1..=args.runs {
            let seed = args.seed + 100 * s as u64 + u64::from(k);
            let pump = SimPump::new(
                &format!("accuracy.s{s}.r{k}"),
                &server.base,
                Credentials::provisioned(
                    &format!("accuracy.s{s}.r{k}"),
                    PASSWORD,
                    mac_of(s, k),
                    secrets.next().context("one device secret per seeded run")?,
                    server.server_key,
                ),
                SimConfig {
                    pump: PumpConfig {
                        poll_interval_ms: args.poll_interval_ms,
                        plan,
                        seed: seed as u32 | 1,
                        ..PumpConfig::default()
                    },
                    virtual_time: true,
                    vitals_interval_ms: 60_000,
                    ..SimConfig::default()
                },
            );
            let step_nm = f64::from(PAPER_DRIVE.full_step_nm)
                / f64::from(PAPER_DRIVE.microsteps.per_full_step());
            let bench = Bench::new(physics, step_nm, plan.al_per_step(), seed);
            let settle_ms = args.settle_s * 1_000;
            // Three times the nominal duration, then give up on the run.
            let limit_ms = (setting.volume_ml / setting.rate_ml_h * 3.6e6 * 3.0) as u64 + 600_000;
            tasks.spawn(async move {
                let (snap, bench) = pump
                    .run_bench(bench, move |snap: &Snapshot| {
                        let settled = snap
                            .completed_at_ms
                            .is_some_and(|c| snap.now_ms >= c + settle_ms);
                        (settled && snap.unacked_events == 0) || snap.now_ms > limit_ms
                    })
                    .await;
                (s, k, seed, snap, bench, volume_ul)
            });
        }
    }
    Ok(tasks)
}

/// Waits for every run, writes its scale log and analyses it; the runs of
/// each setting.
async fn collect(
    args: &BenchAccuracyArgs,
    settings: &[(Setting, u32, u32)],
    tasks: tokio::task::JoinSet<Finished>,
    plan: DosePlan,
    physics: PhysicsConfig,
) -> crate::BenchResult<Vec<Vec<Run>>> {
    let mut runs: Vec<Vec<Run>> = settings.iter().map(|_| Vec::new()).collect();
    for (s, k, seed, snap, bench, volume_ul) in tasks.join_all().await {
        let setting = settings[s].0;
        if snap.completed_at_ms.is_none() {
            bail!(
                "{} mL at {} mL/h, run {k}: the pump did not complete (phase {}, {} µL)",
                setting.volume_ml,
                setting.rate_ml_h,
                snap.phase,
                snap.delivered_ul
            );
        }
        let samples = bench.readings().to_vec();
        let log = args
            .out
            .join("logs")
            .join(format!("{}-run{k}.csv", slug(setting)));
        let file = std::fs::File::create(&log).with_context(|| format!("{}", log.display()))?;
        infusion_accuracy::log::write(std::io::BufWriter::new(file), &samples)?;
        let density = physics.density_g_ml;
        runs[s].push(Run {
            number: k,
            seed,
            result: analysis::run_result(&samples, setting, density),
            iec: analysis::iec(
                &samples,
                setting,
                density,
                physics.sample_interval_s,
                &IEC_WINDOWS_MIN,
            ),
            samples,
            drops: bench.drops(),
            steps_motor: bench.steps(),
            steps_pump: plan.steps_for_ul(volume_ul),
            requests: snap.requests_ok,
        });
    }
    Ok(runs)
}

fn mac_of(setting: usize, run: u32) -> MacAddress {
    seed::mac(0xAC, (setting as u32) << 8 | (run & 0xFF))
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (n, sum) = values.fold((0u32, 0.0), |(n, s), v| (n + 1, s + v));
    if n == 0 { f64::NAN } else { sum / f64::from(n) }
}

/// Prints Table III and the IEC figures of one setting; returns them as
/// JSON.
fn report(setting: Setting, runs: &[Run], figures: &[String], json_mode: bool) -> Value {
    let avg_volume = mean(runs.iter().map(|r| r.result.infused_ml));
    let avg_rate = mean(runs.iter().map(|r| r.result.mean_rate_ml_h));
    let avg_volume_err = mean(runs.iter().map(|r| r.result.volume_error_pct.abs()));
    let avg_rate_err = mean(runs.iter().map(|r| r.result.rate_error_pct.abs()));
    let extreme = |pick: fn(&analysis::TrumpetPoint) -> Option<f64>, max: bool, w: usize| {
        let values = runs
            .iter()
            .filter_map(|r| r.iec.trumpet.get(w).and_then(pick));
        if max {
            values.reduce(f64::max)
        } else {
            values.reduce(f64::min)
        }
    };
    let trumpet: Vec<Value> = IEC_WINDOWS_MIN
        .iter()
        .enumerate()
        .map(|(w, p)| {
            json!({"window_min": p,
                   "max_pct": extreme(|t| t.max_pct, true, w),
                   "min_pct": extreme(|t| t.min_pct, false, w)})
        })
        .collect();
    let overall = mean(runs.iter().map(|r| r.iec.overall_error_pct));
    if !json_mode {
        println!();
        println!(
            "Table III: {} mL at {} mL/h, {} runs",
            setting.volume_ml,
            setting.rate_ml_h,
            runs.len()
        );
        println!(
            "{:>4} {:>10} {:>9} {:>10} {:>9} {:>6} {:>8} {:>8}",
            "run", "volume mL", "error %", "rate mL/h", "error %", "drops", "steps", "seed"
        );
        for r in runs {
            println!(
                "{:>4} {:>10.3} {:>+9.2} {:>10.3} {:>+9.2} {:>6} {:>8} {:>8}",
                r.number,
                r.result.infused_ml,
                r.result.volume_error_pct,
                r.result.mean_rate_ml_h,
                r.result.rate_error_pct,
                r.drops,
                r.steps_motor,
                r.seed
            );
        }
        println!(
            "{:>4} {:>10.3} {:>9.2} {:>10.3} {:>9.2}   (averages; errors as mean |error|)",
            "avg", avg_volume, avg_volume_err, avg_rate, avg_rate_err
        );
        let exact = runs.iter().all(|r| r.steps_motor == r.steps_pump);
        println!(
            "pump software: motor steps {} the planned {} in every run",
            if exact { "equal" } else { "DIFFER FROM" },
            runs.first().map_or(0, |r| r.steps_pump)
        );
        println!(
            "IEC 60601-2-24 (S = {} s, whole run): overall error {:+.2} % (mean of runs)",
            runs.first().map_or(0.0, |r| r.iec.interval_s),
            overall
        );
        print!("  window min ");
        for p in IEC_WINDOWS_MIN {
            print!("{p:>8}");
        }
        println!();
        for (label, key) in [("  Ep max %  ", "max_pct"), ("  Ep min %  ", "min_pct")] {
            print!("{label}");
            for t in &trumpet {
                match t[key].as_f64() {
                    Some(v) => print!("{v:>+8.1}"),
                    None => print!("{:>8}", "n/a"),
                }
            }
            println!();
        }
        println!("  figures: {}", figures.join(", "));
    }
    json!({
        "volume_ml": setting.volume_ml,
        "rate_ml_h": setting.rate_ml_h,
        "runs": runs.iter().map(|r| json!({
            "run": r.number, "seed": r.seed,
            "infused_ml": r.result.infused_ml, "volume_error_pct": r.result.volume_error_pct,
            "duration_s": r.result.duration_s,
            "mean_rate_ml_h": r.result.mean_rate_ml_h, "rate_error_pct": r.result.rate_error_pct,
            "drops": r.drops, "motor_steps": r.steps_motor, "planned_steps": r.steps_pump,
            "requests_ok": r.requests,
            "iec_overall_error_pct": r.iec.overall_error_pct,
        })).collect::<Vec<_>>(),
        "avg_infused_ml": avg_volume,
        "avg_volume_error_pct": avg_volume_err,
        "avg_rate_ml_h": avg_rate,
        "avg_rate_error_pct": avg_rate_err,
        "iec_overall_error_pct": overall,
        "trumpet": trumpet,
        "figures": figures,
    })
}

/// The flow over a moving window of `m` sampling intervals (the rate
/// curve of Figs. 11 and 13: single 30 s intervals hold zero or two drops).
fn smoothed(iec: &Iec, m: usize) -> Vec<(f64, f64)> {
    iec.flows
        .windows(m.max(1))
        .map(|w| {
            (
                w[w.len() - 1].0,
                w.iter().map(|f| f.1).sum::<f64>() / w.len() as f64,
            )
        })
        .collect()
}

/// What a figure draws of one run: its readings and their IEC analysis.
struct Curve<'a> {
    number: u32,
    samples: &'a [Sample],
    iec: &'a Iec,
}

impl Run {
    fn curve(&self) -> Curve<'_> {
        Curve {
            number: self.number,
            samples: &self.samples,
            iec: &self.iec,
        }
    }
}

/// Writes the figures of one setting; returns their file names.
fn figures(
    out: &Path,
    setting: Setting,
    runs: &[Curve<'_>],
    density: f64,
) -> crate::BenchResult<Vec<String>> {
    let name = slug(setting);
    let title = format!("{} mL at {} mL/h", setting.volume_ml, setting.rate_ml_h);
    let nominal_min = setting.volume_ml / setting.rate_ml_h * 60.0;
    let run_series = |points: &dyn Fn(&Curve<'_>) -> Vec<(f64, f64)>| -> Vec<Series> {
        runs.iter()
            .enumerate()
            .map(|(i, r)| Series {
                name: format!("run {}", r.number),
                color: i,
                points: points(r),
                reference: false,
            })
            .collect()
    };
    let reference = |name: &str, points: Vec<(f64, f64)>| Series {
        name: name.into(),
        color: 0,
        points,
        reference: true,
    };
    let mut volume = run_series(&|r| {
        let tare = r.samples.first().map_or(0.0, |s| s.mass_g);
        r.samples
            .iter()
            .map(|s| (s.time_s / 60.0, (s.mass_g - tare) / density))
            .collect()
    });
    volume.push(reference(
        "set",
        vec![(0.0, 0.0), (nominal_min, setting.volume_ml)],
    ));
    let mut rate = run_series(&|r| smoothed(r.iec, 10));
    rate.push(reference(
        "set",
        vec![(0.0, setting.rate_ml_h), (nominal_min, setting.rate_ml_h)],
    ));
    let mut startup = run_series(&|r| r.iec.startup().collect());
    startup.push(reference(
        "set",
        vec![(0.0, setting.rate_ml_h), (nominal_min, setting.rate_ml_h)],
    ));
    let mut trumpet = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let pick = |f: fn(&analysis::TrumpetPoint) -> Option<f64>| -> Vec<(f64, f64)> {
            r.iec
                .trumpet
                .iter()
                .filter_map(|t| f(t).map(|v| (t.window_min, v)))
                .collect()
        };
        trumpet.push(Series {
            name: format!("run {} (Ep max, Ep min)", r.number),
            color: i,
            points: pick(|t| t.max_pct),
            reference: false,
        });
        trumpet.push(Series {
            name: String::new(),
            color: i,
            points: pick(|t| t.min_pct),
            reference: false,
        });
    }
    trumpet.push(reference("0 %", vec![(2.0, 0.0), (31.0, 0.0)]));
    let charts = [
        (
            "volume",
            "Infused volume over time",
            "time, min",
            "volume, mL",
            volume,
        ),
        (
            "rate",
            "Infusion rate over time (5 min window)",
            "time, min",
            "rate, mL/h",
            rate,
        ),
        (
            "startup",
            "IEC 60601-2-24 start-up curve (S = 30 s)",
            "time, min",
            "flow, mL/h",
            startup,
        ),
        (
            "trumpet",
            "IEC 60601-2-24 trumpet curve",
            "observation window, min",
            "deviation, %",
            trumpet,
        ),
    ];
    let mut written = Vec::new();
    for (kind, what, x, y, series) in charts {
        let file = format!("{kind}-{name}.svg");
        write_svg(
            &out.join(&file),
            &Chart {
                title: format!("{what}: {title}"),
                x_label: x.into(),
                y_label: y.into(),
                series,
            },
        )?;
        written.push(file);
    }
    Ok(written)
}

/// `infusion accuracy analyze`: the same analysis of one log from a file.
pub fn analyze(args: AnalyzeArgs, json_mode: bool) -> crate::BenchResult<()> {
    let positive = |x: f64| x.is_finite() && x > 0.0;
    let given = [
        args.volume_ml,
        args.rate_ml_h,
        args.density_g_ml,
        args.interval_s,
    ];
    if !given.into_iter().all(positive) {
        bail!("--volume-ml, --rate-ml-h, --density-g-ml and --interval-s must be positive numbers");
    }
    let file = std::fs::File::open(&args.log)
        .with_context(|| format!("opening {}", args.log.display()))?;
    let samples = infusion_accuracy::log::read(std::io::BufReader::new(file))
        .with_context(|| format!("reading {}", args.log.display()))?;
    let setting = Setting {
        volume_ml: args.volume_ml,
        rate_ml_h: args.rate_ml_h,
    };
    let result = analysis::run_result(&samples, setting, args.density_g_ml);
    let iec = analysis::iec(
        &samples,
        setting,
        args.density_g_ml,
        args.interval_s,
        &IEC_WINDOWS_MIN,
    );
    let mut figures = Vec::new();
    if let Some(dir) = &args.plots {
        std::fs::create_dir_all(dir)?;
        let run = Curve {
            number: 1,
            samples: &samples,
            iec: &iec,
        };
        figures = self::figures(dir, setting, &[run], args.density_g_ml)?;
    }
    let trumpet: Vec<Value> = iec
        .trumpet
        .iter()
        .map(|t| json!({"window_min": t.window_min, "max_pct": t.max_pct, "min_pct": t.min_pct}))
        .collect();
    let out = json!({
        "readings": samples.len(),
        "infused_ml": result.infused_ml, "volume_error_pct": result.volume_error_pct,
        "duration_s": result.duration_s,
        "mean_rate_ml_h": result.mean_rate_ml_h, "rate_error_pct": result.rate_error_pct,
        "iec_interval_s": iec.interval_s,
        "iec_overall_error_pct": iec.overall_error_pct,
        "trumpet": trumpet,
        "figures": figures,
    });
    if json_mode {
        println!("{out}");
        return Ok(());
    }
    println!(
        "{} readings; set {} mL at {} mL/h",
        samples.len(),
        setting.volume_ml,
        setting.rate_ml_h
    );
    println!(
        "infused volume {:.3} mL ({:+.2} %), over {:.0} s: mean rate {:.3} mL/h ({:+.2} %)",
        result.infused_ml,
        result.volume_error_pct,
        result.duration_s,
        result.mean_rate_ml_h,
        result.rate_error_pct
    );
    println!(
        "IEC 60601-2-24, S = {} s: overall error {:+.2} %",
        iec.interval_s, iec.overall_error_pct
    );
    for t in &iec.trumpet {
        match (t.max_pct, t.min_pct) {
            (Some(max), Some(min)) => println!(
                "  {:>2} min window: Ep max {max:+.2} %, Ep min {min:+.2} %",
                t.window_min
            ),
            _ => println!(
                "  {:>2} min window: n/a (longer than the run)",
                t.window_min
            ),
        }
    }
    if !figures.is_empty() {
        println!("figures: {}", figures.join(", "));
    }
    Ok(())
}
