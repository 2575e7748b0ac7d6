//! `infusion demo`: the whole system on one machine, with nothing to set up.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use infusion_protocol::{DeviceSecret, InfusionState, MacAddress, PatientLimits};
use infusion_pump_core::PumpConfig;
use infusion_server::clock::now_ms;
use infusion_server::identity::new_device_secret;
use infusion_server::{AppState, Application, ServerConfig};
use infusion_sim::{Credentials, SimConfig, SimPump, Snapshot};
use infusion_store::{NewNurse, NewPrescription, PatientIdentifiers, Store};
use tokio::sync::watch;

use crate::cli::DemoArgs;
use crate::serve::{init_logging, shutdown_signal};
use infusion_bench::database::{Database, DatabaseUrl};
use infusion_bench::seed;

const PHYSICIAN: &str = "dr.demo";
const PASSWORD: &str = "demo-password-1";

/// The demo's ward and its nurse.
const WARD: &str = "Neurology";
const NURSE: &str = "nurse";

/// The two demo patients: the paper's two accuracy settings (Table III).
const PATIENTS: [(&str, &str, &str, u32, u32); 2] = [
    ("patient.one", "Ada", "02:00:00:00:00:01", 2_000, 4_000),
    ("patient.two", "Grace", "02:00:00:00:00:02", 5_000, 5_000),
];

/// The demo patients' record numbers and dates of birth, in the order of
/// [`PATIENTS`].
const IDENTIFIERS: [(&str, &str); 2] = [("DEMO-0001", "1951-12-10"), ("DEMO-0002", "1946-12-09")];

/// Seeds the demo accounts; returns each patient's pump secret, in the
/// order of [`PATIENTS`].
async fn seed(store: &Arc<dyn Store>) -> anyhow::Result<Vec<DeviceSecret>> {
    let mut patients = Vec::new();
    for ((username, first, mac, volume_ul, rate_ul_h), (record, born)) in
        PATIENTS.into_iter().zip(IDENTIFIERS)
    {
        patients.push(seed::Patient {
            username: username.into(),
            first_name: first.into(),
            mac: MacAddress::parse(mac).map_err(|e| anyhow::anyhow!("{e}"))?,
            secret: new_device_secret()?,
            limits: Some(PatientLimits {
                min_rate_ul_h: 1_000,
                max_rate_ul_h: 10_000,
                max_volume_ul: 10_000,
            }),
            volume_ul,
            rate_ul_h,
            identifiers: PatientIdentifiers {
                record_number: Some(record.into()),
                birth_date: Some(born.into()),
            },
        });
    }
    seed::seed(
        store,
        PHYSICIAN,
        "Demo Hospital",
        PASSWORD,
        &patients,
        "demo",
        infusion_server::password::PasswordParams::default(),
    )
    .await?;
    // The paper's disease: the library's foslevodopa/foscarbidopa for a
    // physician to order in mg/h.
    store
        .add_drug("Demo Hospital", seed::foslevodopa(), "demo", now_ms())
        .await?;
    // A ward with its nurse, both patients on it: the ward view, and
    // alarms that escalate to the nurse, then the physician.
    store.create_ward(WARD, None, "demo", now_ms()).await?;
    let hash = tokio::task::spawn_blocking(|| {
        infusion_server::password::PasswordParams::default().hash_blocking(PASSWORD)
    })
    .await??;
    let nurse = NewNurse {
        username: NURSE.into(),
        first_name: "Nora".into(),
        last_name: "Demo".into(),
        ward: WARD.into(),
        password_hash: hash,
        must_change_password: false,
    };
    store.create_nurse(nurse, "demo", now_ms()).await?;
    for p in &patients {
        let id = store.patient_id(&p.username).await?;
        store.assign_ward(id, WARD, "demo", now_ms()).await?;
    }
    Ok(patients.into_iter().map(|p| p.secret).collect())
}

fn describe(name: &str, s: &Snapshot) -> String {
    let index = s.index.map_or("no index yet".to_owned(), |i| {
        format!(
            "index v{} {} µL at {} µL/h ({})",
            i.version,
            i.volume_ul,
            i.rate_ul_h,
            i.state.as_str()
        )
    });
    format!(
        "  {name:<12} pump time {:>6} s | {index} | {:<9} delivered {:>5} µL at {:>5} µL/h | {} ok, {} failed",
        s.now_ms / 1000,
        s.phase,
        s.delivered_ul,
        s.rate_ul_h,
        s.requests_ok,
        s.requests_failed
    )
}

/// Runs the demo until Ctrl-C or `--duration-s`.
pub async fn run(db: Option<Database>, args: DemoArgs) -> anyhow::Result<()> {
    init_logging("warn");
    let (db, tmp) = match db {
        Some(db) => (db, None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("infusion-demo-")
                .tempdir()
                .context("creating a directory for the demo database")?;
            let path: PathBuf = dir.path().join("demo.db");
            let db = Database {
                url: DatabaseUrl::Sqlite(path),
                pg: Default::default(),
            };
            (db, Some(dir))
        }
    };
    let db_path = db.url.redacted();
    let store = db.open().await?;
    let secrets = seed(&store)
        .await
        .context("seeding the demo accounts (use a fresh database)")?;

    let state = AppState::new(store.clone(), ServerConfig::default()).await?;
    let state_key = state.keys.index.public_key();
    let app = match Application::bind(args.bind, state.clone()).await {
        Ok(app) => app,
        Err(_) => Application::bind(([127, 0, 0, 1], 0).into(), state).await?,
    };
    let addr = app.local_addr()?;
    let base = format!("http://{addr}");
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(app.run_until(async move {
        let _ = server_stop.wait_for(|s| *s).await;
    }));

    banner(&base, &db_path, tmp.is_none(), args.time_scale);
    let pumps = start_pumps(&base, secrets, state_key, &args, &stop_rx)?;
    watch_pumps(&store, &pumps, &args).await?;
    let _ = stop_tx.send(true);
    for (name, _, task) in pumps {
        if let Ok(last) = task.await {
            println!("stopped {}", describe(name, &last).trim_start());
        }
    }
    let events: usize = {
        let mut n = 0;
        for (username, ..) in PATIENTS {
            let id = store.patient_id(username).await?;
            n += store.events(id, 0, u32::MAX).await?.len();
        }
        n
    };
    println!("{events} events stored in {db_path}");
    server.await??;
    Ok(())
}

/// What the demo prints before it starts: where everything is, and the
/// accounts to log in with.
fn banner(base: &str, db_path: &str, kept: bool, time_scale: u32) {
    println!("Infusion pump system demo");
    println!("  server        {base}   (listening on {base})");
    println!("  web app       {base}/login   (log in with the accounts below)");
    println!("  device API    {base}/api/v1/openapi.json");
    println!("  health        {base}/api/v1/health");
    if kept {
        println!("  database      {db_path}");
    } else {
        println!("  database      {db_path} (deleted on exit; pass --database-url to keep one)");
    }
    println!("  physician     {PHYSICIAN} / {PASSWORD}   (dashboard, limits, prescriptions)");
    println!("  nurse         {NURSE} / {PASSWORD}   (ward {WARD}: every pump, alarms first)");
    for (username, _, mac, volume, rate) in PATIENTS {
        println!("  patient       {username} / {PASSWORD}, pump {mac}, {volume} µL at {rate} µL/h");
    }
    println!(
        "  pump time runs {}x real time; Ctrl-C stops. Try: curl {base}/api/v1/health",
        time_scale
    );
    println!();
}

/// The demo's pump handles: name, live view, task.
type Pumps = Vec<(
    &'static str,
    watch::Receiver<Snapshot>,
    tokio::task::JoinHandle<Snapshot>,
)>;

/// Starts one simulated pump per demo patient, provisioned with its
/// device secret and the server key, until `stop` says so.
fn start_pumps(
    base: &str,
    secrets: Vec<DeviceSecret>,
    server_key: infusion_protocol::PublicKey,
    args: &DemoArgs,
    stop_rx: &watch::Receiver<bool>,
) -> anyhow::Result<Pumps> {
    let mut pumps = Vec::new();
    for ((username, _, mac, _, _), secret) in PATIENTS.into_iter().zip(secrets) {
        let pump = SimPump::new(
            username,
            base,
            Credentials::provisioned(
                username,
                PASSWORD,
                MacAddress::parse(mac).map_err(|e| anyhow::anyhow!("{e}"))?,
                secret,
                server_key,
            ),
            SimConfig {
                pump: PumpConfig::default(),
                time_scale: args.time_scale,
                ..SimConfig::default()
            },
        );
        let view = pump.subscribe();
        let mut stop = stop_rx.clone();
        let task = tokio::spawn(pump.run(async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
        pumps.push((username, view, task));
    }

    Ok(pumps)
}

/// Prints every pump's state every 3 s, changes the first patient's rate
/// after 8 s, until Ctrl-C or `--duration-s`.
async fn watch_pumps(store: &Arc<dyn Store>, pumps: &Pumps, args: &DemoArgs) -> anyhow::Result<()> {
    let deadline = args.duration_s.map(Duration::from_secs);
    let started = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(3));
    let mut changed = false;
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = ticker.tick() => {}
        }
        let elapsed = started.elapsed();
        if !changed && elapsed >= Duration::from_secs(8) {
            changed = true;
            let first = store.patient_id(PATIENTS[0].0).await?;
            let version = store
                .set_prescription(
                    first,
                    NewPrescription {
                        volume_ul: 2_000,
                        rate_ul_h: 6_000,
                        state: InfusionState::Run,
                        drug: None,
                    },
                    PHYSICIAN,
                    now_ms(),
                )
                .await?;
            println!(
                "> {PHYSICIAN} changes {}'s rate to 6000 µL/h (prescription version {version}); the pump picks it up at its next poll",
                PATIENTS[0].0
            );
        }
        println!("after {:>3} s:", elapsed.as_secs());
        for (name, view, _) in pumps {
            println!("{}", describe(name, &view.borrow()));
        }
        if deadline.is_some_and(|d| elapsed >= d) {
            break;
        }
    }
    Ok(())
}
