//! The command line: every flag, its environment variable and its reason.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

/// A secure, remotely managed wearable infusion pump system.
#[derive(Debug, Parser)]
#[command(name = "infusion", version, about)]
pub struct Cli {
    /// Database: `sqlite://PATH` (or a bare path) for the embedded store,
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` for PostgreSQL.
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        default_value = "sqlite://infusion.db"
    )]
    pub database_url: String,

    /// Set when the user named a database (the demo otherwise uses a fresh one).
    #[arg(skip)]
    pub database_url_given: bool,

    /// Print each result as one JSON object (errors too, on stderr).
    #[arg(long, global = true)]
    pub json: bool,

    /// PostgreSQL connection settings.
    #[command(flatten)]
    pub pg: PgArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the command line, noting whether a database was named.
    pub fn parse() -> Cli {
        let matches = <Cli as clap::CommandFactory>::command().get_matches();
        let given = matches!(
            matches.value_source("database_url"),
            Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
        ) || matches.subcommand().is_some_and(|(_, sub)| {
            matches!(
                sub.value_source("database_url"),
                Some(
                    clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable
                )
            )
        });
        let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        };
        cli.database_url_given = given;
        cli
    }
}

/// PostgreSQL pool settings (ignored for SQLite).
#[derive(Debug, Args)]
pub struct PgArgs {
    /// Most pool connections of this instance. Keep the sum over all
    /// instances (plus one listener each) below the database's
    /// `max_connections`.
    #[arg(
        long,
        env = "INFUSION_DB_MAX_CONNECTIONS",
        global = true,
        default_value_t = 16
    )]
    pub db_max_connections: u32,
    /// Cancel any statement running longer (answered 503).
    #[arg(
        long,
        env = "INFUSION_DB_STATEMENT_TIMEOUT_MS",
        global = true,
        default_value_t = 5_000
    )]
    pub db_statement_timeout_ms: u64,
    /// Answer 503 when no connection is free (or can be opened) this soon.
    #[arg(
        long,
        env = "INFUSION_DB_ACQUIRE_TIMEOUT_MS",
        global = true,
        default_value_t = 3_000
    )]
    pub db_acquire_timeout_ms: u64,
}

impl Cli {
    /// The database the flags name, with its pool settings.
    pub fn database(&self) -> anyhow::Result<crate::database::Database> {
        Ok(crate::database::Database {
            url: crate::database::DatabaseUrl::parse(&self.database_url)?,
            pg: infusion_store_postgres::PgConfig {
                max_connections: self.pg.db_max_connections,
                acquire_timeout: std::time::Duration::from_millis(self.pg.db_acquire_timeout_ms),
                statement_timeout: std::time::Duration::from_millis(
                    self.pg.db_statement_timeout_ms,
                ),
            },
        })
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage accounts, devices, limits and prescriptions.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Run one simulated pump against a server.
    Pump(PumpArgs),
    /// Start a server on a fresh SQLite file with demo accounts and two simulated pumps.
    Demo(DemoArgs),
    /// Measure the server and the pump.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Analyse a gravimetric bench's scale log.
    #[command(subcommand)]
    Accuracy(AccuracyCommand),
}

/// `infusion accuracy ...`.
#[derive(Debug, Subcommand)]
pub enum AccuracyCommand {
    /// The paper's Table III figures and the IEC 60601-2-24 curves of one
    /// run, from a scale log (CSV: time_s,mass_g; a header line is allowed).
    Analyze(AnalyzeArgs),
}

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

/// `infusion bench ...`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Closed-loop throughput and latency of the index chain on a fresh SQLite file.
    Index(BenchIndexArgs),
    /// The paper's load test (Table II, Figs. 7 and 8), closed-loop
    /// saturation and an open-loop fleet, each beside a health-check
    /// baseline measured in the same run.
    Load(BenchLoadArgs),
    /// The paper's gravimetric test (Table III, Figs. 10 to 13) and the
    /// IEC 60601-2-24 curves, with simulated pumps on a simulated bench
    /// against a real server, on virtual time.
    Accuracy(BenchAccuracyArgs),
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

/// `infusion serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, env = "INFUSION_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Lifetime of each single-use token, seconds. Keep it well above the
    /// pumps' polling interval (5 s by default).
    #[arg(long, env = "INFUSION_TOKEN_TTL_S", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub token_ttl_s: u64,

    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs
    /// `--tls-key`. Cookies become `Secure` and answers carry HSTS.
    #[arg(long, env = "INFUSION_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The private key of `--tls-cert` (PEM).
    #[arg(long, env = "INFUSION_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Also accept the paper's device login: username, password and MAC,
    /// without the proof of the device secret. A MAC address is set by
    /// firmware at will, so this is all a cloned device needs: only for
    /// reproducing the paper.
    #[arg(long, env = "INFUSION_PAPER_LOGIN")]
    pub paper_login: bool,

    /// Take the server's keys (index signing, login challenges) from this
    /// file, readable by its owner only, instead of the database: then a
    /// copy of the database cannot sign a dose. Made by `infusion admin
    /// export-keys`; every server on one database needs the same file.
    #[arg(long, env = "INFUSION_KEY_FILE")]
    pub key_file: Option<std::path::PathBuf>,
}

/// `infusion admin ...`: scriptable; passwords only on standard input.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a physician (and the institution, if new).
    CreatePhysician(StaffArgs),
    /// Create an administrator of the web application (accounts, devices;
    /// no clinical data), and the institution if new.
    CreateAdmin(StaffArgs),
    /// Create a patient treated by a physician; prints the patient_id.
    CreatePatient {
        /// Login name (what the pump logs in with).
        #[arg(long)]
        username: String,
        /// First name.
        #[arg(long)]
        first_name: String,
        /// Last name.
        #[arg(long)]
        last_name: String,
        /// The treating physician's username.
        #[arg(long)]
        physician: String,
        /// Read the password from standard input (required: never a flag).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Bind a pump (by MAC address) to a patient account.
    BindDevice {
        /// Patient username.
        #[arg(long)]
        patient: String,
        /// MAC address, AA:BB:CC:DD:EE:FF.
        #[arg(long)]
        mac: String,
    },
    /// Set a patient's rate and volume limits.
    SetLimits {
        /// Patient username.
        #[arg(long)]
        patient: String,
        /// Lowest rate, µL/h.
        #[arg(long)]
        min_rate_ul_h: u32,
        /// Highest rate, µL/h.
        #[arg(long)]
        max_rate_ul_h: u32,
        /// Largest volume, µL.
        #[arg(long)]
        max_volume_ul: u32,
    },
    /// Write a new prescription version; prints the version.
    SetPrescription {
        /// Patient username.
        #[arg(long)]
        patient: String,
        /// Volume, µL.
        #[arg(long)]
        volume_ul: u32,
        /// Rate, µL/h.
        #[arg(long)]
        rate_ul_h: u32,
        /// Write it in state `hold` instead of `run`.
        #[arg(long)]
        hold: bool,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Check the audit log's hash chain and name every row that was
    /// edited, inserted or deleted; exits non-zero if any was. Prints the
    /// head hash: keep it elsewhere and pass it back as `--anchor` later,
    /// so that even a chain recomputed from scratch is caught.
    VerifyAudit {
        /// A head hash printed by an earlier run (64 hex digits): it must
        /// still be the hash of some row.
        #[arg(long)]
        anchor: Option<String>,
    },
    /// Move the server's keys out of the database into a new key file
    /// (mode 600; an existing file is never overwritten), for `infusion
    /// serve --key-file`. The database keeps only the public index key,
    /// so pumps already provisioned keep working and a server given
    /// another key refuses to start. On a new database the keys are drawn
    /// first. Audited as `server_keys_moved`.
    ExportKeys {
        /// The key file to write.
        #[arg(long)]
        key_file: std::path::PathBuf,
    },
    /// Copy the database to a new file while the server keeps running
    /// (SQLite: online backup API; PostgreSQL: `pg_dump --format=custom`).
    Backup {
        /// The file to write; refused if it exists.
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Replace the database's contents with a backup, after checking it
    /// (SQLite: integrity and schema version; PostgreSQL: `pg_restore` in
    /// one transaction). Stop every server on the database first.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: std::path::PathBuf,
    },
}

/// A physician's or administrator's account.
#[derive(Debug, Args)]
pub struct StaffArgs {
    /// Login name.
    #[arg(long)]
    pub username: String,
    /// First name.
    #[arg(long)]
    pub first_name: String,
    /// Last name.
    #[arg(long)]
    pub last_name: String,
    /// Institution name.
    #[arg(long)]
    pub institution: String,
    /// Read the password from standard input (required: never a flag).
    #[arg(long, required = true)]
    pub password_stdin: bool,
}

/// `infusion pump`.
#[derive(Debug, Args)]
pub struct PumpArgs {
    /// The server, like http://127.0.0.1:8080.
    #[arg(long, env = "INFUSION_SERVER")]
    pub server: String,
    /// Patient username.
    #[arg(long)]
    pub username: String,
    /// The pump's MAC address.
    #[arg(long)]
    pub mac: String,
    /// Read the password from standard input (required: never a flag).
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// Index poll interval, ms of pump time.
    #[arg(long, default_value_t = 5_000)]
    pub poll_interval_ms: u64,
    /// Run pump time this many times faster than real time.
    #[arg(long, default_value_t = 1)]
    pub time_scale: u32,
    /// Sequence number of the first event. A real pump keeps its counter in
    /// flash; give the last run's next number when restarting a simulated
    /// pump on the same database, or new events are taken for duplicates.
    #[arg(long, default_value_t = 1)]
    pub first_seq: u32,
    /// The newest index version this pump applied before (kept in flash
    /// on a real pump): an index not newer is not run again, so a
    /// restarted pump neither repeats its last order nor takes an older
    /// one replayed on the network.
    #[arg(long, default_value_t = 0)]
    pub applied_version: u32,
    /// Stop after this many seconds of real time (default: until Ctrl-C).
    #[arg(long)]
    pub duration_s: Option<u64>,
    /// Stop a running infusion after this many consecutive failed requests
    /// to the server (it resumes when an index answer arrives again).
    /// Without it, the pump keeps infusing to the programmed volume.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub stop_after_failures: Option<u32>,
    /// Talk HTTPS and trust only the certificate authorities in this PEM
    /// file (the one the pump was provisioned with), not the system's.
    #[arg(long)]
    pub ca_cert: Option<std::path::PathBuf>,
    /// A file holding the device secret `infusion admin bind-device`
    /// printed (64 hex digits). Never a flag: command lines are visible to
    /// every user of the machine.
    #[arg(
        long,
        env = "INFUSION_DEVICE_SECRET_FILE",
        required_unless_present = "paper_login"
    )]
    pub device_secret_file: Option<std::path::PathBuf>,
    /// The server's index key `infusion admin bind-device` printed (64 hex
    /// digits): the pump runs only indexes it signed.
    #[arg(
        long,
        env = "INFUSION_SERVER_KEY",
        required_unless_present = "paper_login"
    )]
    pub server_key: Option<String>,
    /// The paper's pump: log in with username, password and MAC only, and
    /// trust any index answer. Only a `--paper-login` server accepts it.
    #[arg(long, conflicts_with_all = ["device_secret_file", "server_key"])]
    pub paper_login: bool,
}

/// `infusion demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to listen on (a free port is taken if this one is busy).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Pump time runs this many times faster than real time, so that the
    /// paper's 30-minute infusion takes 30 s.
    #[arg(long, default_value_t = 60)]
    pub time_scale: u32,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    pub duration_s: Option<u64>,
}
