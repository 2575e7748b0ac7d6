//! The command-line arguments of the benches and the accuracy analysis:
//! clap derives, so that `infusion` parses them and the benches take them
//! as they are.

use clap::Args;

/// `infusion accuracy analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The scale log: one `time_s,mass_g` reading per line, from the start
    /// of the infusion.
    #[arg(long)]
    pub log: std::path::PathBuf,
    /// The volume the pump was set to infuse, mL.
    #[arg(long)]
    pub volume_ml: f64,
    /// The rate the pump was set to, mL/h.
    #[arg(long)]
    pub rate_ml_h: f64,
    /// Density of the fluid, g/mL (water at 20 °C: 0.998).
    #[arg(long, default_value_t = 0.998)]
    pub density_g_ml: f64,
    /// IEC sampling interval S, s.
    #[arg(long, default_value_t = 30.0)]
    pub interval_s: f64,
    /// Also write the start-up and trumpet curves as SVG into this directory.
    #[arg(long)]
    pub plots: Option<std::path::PathBuf>,
}

/// How `bench load` drives its users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadMode {
    /// The paper's protocol: each user sends about one request a second,
    /// waiting for each answer.
    Paper,
    /// The same users as fast as the server answers: saturation.
    Closed,
    /// `--pumps` pumps polling every `--poll-interval` on a fixed schedule
    /// (open loop), response time from the scheduled time.
    Fleet,
    /// One ward: `--pumps` pumps each reporting every `--poll-interval`,
    /// watched by `--dashboards` nurses' open ward views, each re-read as
    /// its page's script does while the ward keeps changing (every
    /// 300 ms).
    Ward,
}

/// `infusion bench load`.
#[derive(Debug, Args)]
pub struct BenchLoadArgs {
    /// paper, closed or fleet.
    #[arg(long, value_enum, default_value = "paper")]
    pub mode: LoadMode,
    /// Users per measurement (paper and closed), a list; see
    /// `--physicians-every` for how many are physicians.
    #[arg(long, value_delimiter = ',', default_value = "20,50,100")]
    pub users: Vec<u32>,
    /// One user in this many is a physician (paper and closed); 0 makes
    /// every user a pump.
    #[arg(long, default_value_t = 10)]
    pub physicians_every: u32,
    /// Pumps per measurement (fleet), a list.
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    pub pumps: Vec<u32>,
    /// Most requests in flight at once (a load balancer's connection
    /// limit); waiting for a slot counts in the response time.
    #[arg(long, default_value_t = 1_000)]
    pub max_in_flight: usize,
    /// Open ward views (ward mode).
    #[arg(long, default_value_t = 10)]
    pub dashboards: u32,
    /// How often each fleet pump polls its index.
    #[arg(long, default_value = "10s")]
    pub poll_interval: humantime::Duration,
    /// How long each measurement lasts (the paper: 10m).
    #[arg(long, default_value = "30s")]
    pub duration: humantime::Duration,
    /// How long the health-check baseline of each measurement lasts (at
    /// most the measurement's duration).
    #[arg(long, default_value = "10s")]
    pub baseline: humantime::Duration,
    /// Store backends, each on a fresh database: sqlite, postgres or both.
    #[arg(long, value_delimiter = ',', default_value = "sqlite")]
    pub backend: Vec<BenchBackend>,
    /// PostgreSQL server for `--backend postgres` (a role that may create
    /// databases).
    #[arg(long, env = "INFUSION_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// Directory for results.json and the figures (SVG).
    #[arg(long, default_value = "load-report")]
    pub out: std::path::PathBuf,
    /// Users start evenly over this span, each with its login, as a load
    /// tool's ramp-up does (it counts in `--duration`). Default: 10s for
    /// paper, or a third of a shorter `--duration` (ten Argon2id logins a
    /// second instead of a hundred at once),
    /// 0s for closed (saturation from the start), one `--poll-interval`
    /// for fleet.
    #[arg(long)]
    pub ramp_up: Option<humantime::Duration>,
    /// Load a server already running at this URL (`http://HOST:PORT`)
    /// instead of starting one. The accounts are seeded into
    /// `--database-url`, which must be that server's database and hold no
    /// bench accounts yet; one size per run, and the server's CPU and
    /// memory are not measured (it may be on another machine).
    #[arg(long, conflicts_with = "backend")]
    pub server: Option<String>,
}

/// `infusion bench accuracy`.
#[derive(Debug, Args)]
pub struct BenchAccuracyArgs {
    /// Runs per setting (the paper: five).
    #[arg(long, default_value_t = 5)]
    pub runs: u32,
    /// Settings, as VOLUME_ML@RATE_ML_H, comma separated (the paper: 2 mL
    /// at 4 mL/h and 5 mL at 5 mL/h).
    #[arg(long, value_delimiter = ',', default_value = "2@4,5@5")]
    pub settings: Vec<String>,
    /// Directory for the scale logs, the figures and summary.json.
    #[arg(long, default_value = "accuracy-report")]
    pub out: std::path::PathBuf,
    /// Seed of the physical model; run k of setting s uses seed + 100 s + k.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The pump's index poll interval, ms of pump time.
    #[arg(long, default_value_t = 5_000)]
    pub poll_interval_ms: u64,
    /// How long the scale keeps reading after the pump completes, s.
    #[arg(long, default_value_t = 60)]
    pub settle_s: u64,
    /// The physical model.
    #[command(flatten)]
    pub physics: PhysicsArgs,
}

/// The simulated bench's parameters (see `infusion_sim::physics`).
#[derive(Debug, Clone, Args)]
pub struct PhysicsArgs {
    /// Syringe bore: standard deviation from nominal, %.
    #[arg(long, default_value_t = 0.5)]
    pub diameter_sd_pct: f64,
    /// Plunger start-up compliance: mean volume taken up before flow, µL.
    #[arg(long, default_value_t = 15.0)]
    pub startup_ul: f64,
    /// Standard deviation of the start-up compliance, µL.
    #[arg(long, default_value_t = 5.0)]
    pub startup_sd_ul: f64,
    /// Lead-screw pitch: standard deviation of its systematic error, %.
    #[arg(long, default_value_t = 0.5)]
    pub lead_pitch_sd_pct: f64,
    /// Lead-screw periodic error amplitude, %.
    #[arg(long, default_value_t = 1.0)]
    pub lead_periodic_pct: f64,
    /// Lead-screw travel per turn, mm.
    #[arg(long, default_value_t = 1.0)]
    pub lead_period_mm: f64,
    /// Mean drop volume at the end of the line, µL.
    #[arg(long, default_value_t = 30.0)]
    pub drop_ul: f64,
    /// Standard deviation of the drop volume, µL.
    #[arg(long, default_value_t = 2.0)]
    pub drop_sd_ul: f64,
    /// Scale resolution, g.
    #[arg(long, default_value_t = 0.01)]
    pub scale_resolution_g: f64,
    /// Fluid density, g/mL.
    #[arg(long, default_value_t = 0.998)]
    pub density_g_ml: f64,
    /// Evaporation from the beaker, mg/h.
    #[arg(long, default_value_t = 2.0)]
    pub evaporation_mg_h: f64,
    /// Scale sampling interval, s (also the IEC interval S).
    #[arg(long, default_value_t = 30.0)]
    pub sample_interval_s: f64,
}

/// `infusion bench index`.
#[derive(Debug, Args)]
pub struct BenchIndexArgs {
    /// Concurrent users, each following its own token chain; a list runs
    /// one measurement per entry.
    #[arg(long, value_delimiter = ',', default_value = "100")]
    pub users: Vec<u32>,
    /// How long to load the server, seconds, per measurement.
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,
    /// Store backends to measure, each on a fresh database, in one run:
    /// `sqlite`, `postgres` or both (`sqlite,postgres`).
    #[arg(long, value_delimiter = ',', default_value = "sqlite")]
    pub backend: Vec<BenchBackend>,
    /// PostgreSQL server for `--backend postgres`, as a URL whose role may
    /// create databases (a scratch database is created and dropped).
    #[arg(long, env = "INFUSION_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
}

/// `infusion bench alarms`.
#[derive(Debug, Args)]
pub struct BenchAlarmsArgs {
    /// Alarms to send, one per pump.
    #[arg(long, default_value_t = 200)]
    pub alarms: u32,
    /// Time between two pumps' reports.
    #[arg(long, default_value = "50ms")]
    pub spacing: humantime::Duration,
    /// A Python with aiosmtpd: email is measured too, through a real SMTP
    /// server (`tests/smtp/sink.py`).
    #[arg(long, env = "INFUSION_TEST_SMTP_PYTHON")]
    pub smtp_python: Option<String>,
    /// Store backends, each on a fresh database.
    #[arg(long, value_delimiter = ',', default_value = "sqlite")]
    pub backend: Vec<BenchBackend>,
    /// PostgreSQL server for `--backend postgres`.
    #[arg(long, env = "INFUSION_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// Directory for alarms.json.
    #[arg(long, default_value = "alarm-report")]
    pub out: std::path::PathBuf,
}

/// A backend `infusion bench` can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchBackend {
    /// A fresh SQLite file in a temporary directory.
    Sqlite,
    /// A scratch database on `--postgres-url`.
    Postgres,
}

impl BenchBackend {
    /// The name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            BenchBackend::Sqlite => "sqlite",
            BenchBackend::Postgres => "postgres",
        }
    }
}
