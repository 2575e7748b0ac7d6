//! The command line: every flag, its environment variable and its reason.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use infusion_bench::args::{
    AnalyzeArgs, BenchAccuracyArgs, BenchAlarmsArgs, BenchIndexArgs, BenchLoadArgs,
};

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
    pub fn database(&self) -> anyhow::Result<infusion_bench::database::Database> {
        Ok(infusion_bench::database::Database {
            url: infusion_bench::database::DatabaseUrl::parse(&self.database_url)?,
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

/// `infusion bench ...`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Closed-loop throughput and latency of the index chain on a fresh SQLite file.
    Index(BenchIndexArgs),
    /// The paper's load test (Table II, Figs. 7 and 8), closed-loop
    /// saturation and an open-loop fleet, each beside a health-check
    /// baseline measured in the same run.
    Load(BenchLoadArgs),
    /// How long an alarm takes from the pump's report to a webhook
    /// receiver and (with --smtp-python) a mailbox: p50 and p99.
    Alarms(BenchAlarmsArgs),
    /// The paper's gravimetric test (Table III, Figs. 10 to 13) and the
    /// IEC 60601-2-24 curves, with simulated pumps on a simulated bench
    /// against a real server, on virtual time.
    Accuracy(BenchAccuracyArgs),
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

    /// A reverse proxy or load balancer in front of this server: an
    /// address or a range (CIDR), repeated or comma-separated for several.
    /// Only requests from these peers have `X-Forwarded-For` believed
    /// (the client address that login throttling counts; without this,
    /// everyone behind the proxy shares one count) and
    /// `X-Forwarded-Proto` (`https` makes cookies `Secure` and adds HSTS).
    #[arg(long = "trusted-proxy", value_name = "CIDR", env = "INFUSION_TRUSTED_PROXIES",
          value_delimiter = ',', value_parser = parse_network)]
    pub trusted_proxy: Vec<ipnet::IpNet>,

    /// How far one order may change a patient's running rate, up or down,
    /// before the prescriber must confirm it with a reason (audited):
    /// `2` lets a rate double or halve; at least 1, up to three decimals.
    #[arg(long, value_name = "FACTOR", env = "INFUSION_RATE_CHANGE_FACTOR", default_value = "2",
          value_parser = parse_rate_step)]
    pub rate_change_factor: infusion_store::RateStep,

    /// How long a pump that should be polling may go unheard before the
    /// server raises `pump_silent` for it (default: three 5 s polls).
    #[arg(long, value_name = "N", env = "INFUSION_SILENT_AFTER_S", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub silent_after_s: u64,

    /// Send every alarm notification (raised, escalated, acknowledged,
    /// cleared) to this URL as signed JSON; repeat for several. Needs the
    /// signing secret in INFUSION_WEBHOOK_SECRET.
    #[arg(long, value_name = "URL")]
    pub webhook_url: Vec<String>,

    /// Send alarm notifications by email through this mail relay,
    /// smtp://host:port (STARTTLS when the relay offers it), to the
    /// people told who have an email address.
    #[arg(long, value_name = "URL", env = "INFUSION_SMTP_URL")]
    pub smtp_url: Option<String>,

    /// The From address of alarm emails.
    #[arg(
        long,
        value_name = "ADDRESS",
        env = "INFUSION_MAIL_FROM",
        default_value = "infusion-alarms@localhost"
    )]
    pub mail_from: String,

    /// Physicians and administrators must log in with an authenticator
    /// code after their password; one without an authenticator enrols one
    /// right after its next login, before anything else.
    #[arg(long, env = "INFUSION_REQUIRE_TWO_FACTOR")]
    pub require_two_factor: bool,

    /// Connections held at once, from all clients; lowered to fit the
    /// open file limit (whose soft value is raised to the hard one at
    /// start). A connection over it is closed as soon as it is accepted.
    #[arg(long, env = "INFUSION_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Connections held at once from one client address (one /64 for
    /// IPv6). Raise it when many pumps or browsers reach the server
    /// through one address (a NAT gateway or a proxy).
    #[arg(long, env = "INFUSION_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections_per_address: u64,
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
        /// The hospital's medical record number, shown with the name on
        /// every page so that look-alike names cannot be confused.
        #[arg(long)]
        record_number: Option<String>,
        /// Date of birth, YYYY-MM-DD.
        #[arg(long)]
        birth_date: Option<String>,
        /// Read the password from standard input (required: never a flag).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Create a ward: a unit of an institution with its own nurses and
    /// patients. Ward names are unique on the server.
    CreateWard {
        /// The ward's name, as the staff call it ("4B", "Neurology").
        #[arg(long)]
        name: String,
        /// The institution; needed only when there are several.
        #[arg(long)]
        institution: Option<String>,
    },
    /// Create a nurse of a ward: sees the ward's patients, acknowledges and
    /// silences their alarms, never changes limits or orders.
    CreateNurse {
        /// Login name.
        #[arg(long)]
        username: String,
        /// First name.
        #[arg(long)]
        first_name: String,
        /// Last name.
        #[arg(long)]
        last_name: String,
        /// The ward's name.
        #[arg(long)]
        ward: String,
        /// Where the nurse's alarm emails go.
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input (required: never a flag).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Set where an account's alarm emails go (or, without --email, stop
    /// them).
    SetEmail {
        /// The account's username.
        #[arg(long)]
        username: String,
        /// The address.
        #[arg(long)]
        email: Option<String>,
    },
    /// Set a ward's escalation policy: how long an unacknowledged alarm
    /// waits before every nurse of the ward is told, then the physician.
    SetEscalation {
        /// The ward's name.
        #[arg(long)]
        ward: String,
        /// Seconds before every nurse of the ward is told (when a nurse
        /// looks after the patient, they are told first).
        #[arg(long, default_value_t = 60)]
        to_ward_after_s: u32,
        /// Seconds more before the physician is told.
        #[arg(long, default_value_t = 120)]
        to_physician_after_s: u32,
    },
    /// Put a patient on a ward: its nurses see the patient from then on.
    AssignWard {
        /// Patient username.
        #[arg(long)]
        patient: String,
        /// The ward's name.
        #[arg(long)]
        ward: String,
    },
    /// Disable an account: its web sessions and its pump's tokens end at
    /// once, and it can log in nowhere until it is enabled again.
    DisableAccount {
        /// The account's username.
        #[arg(long)]
        username: String,
    },
    /// Enable a disabled account again.
    EnableAccount {
        /// The account's username.
        #[arg(long)]
        username: String,
    },
    /// Remove an account's authenticator and recovery codes (a lost
    /// phone): it logs in with its password and enrols a new one.
    ResetTwoFactor {
        /// The account's username.
        #[arg(long)]
        username: String,
    },
    /// Set the time zone in which an institution's staff and patients
    /// read times (the audit trail keeps UTC).
    SetTimeZone {
        /// The institution's name.
        #[arg(long)]
        institution: String,
        /// An IANA time zone name, such as Europe/Madrid.
        #[arg(long)]
        zone: String,
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
    /// Unbind a patient's pump: its tokens stop working and it cannot log
    /// in until a pump is bound to the patient again.
    UnbindDevice {
        /// Patient username.
        #[arg(long)]
        patient: String,
    },
    /// Move a patient to another physician of the same institution.
    MovePatient {
        /// Patient username.
        #[arg(long)]
        patient: String,
        /// The new physician's username.
        #[arg(long)]
        physician: String,
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
        /// Usual lowest rate (soft limit), µL/h; default: the hard one.
        #[arg(long)]
        soft_min_rate_ul_h: Option<u32>,
        /// Usual highest rate (soft limit), µL/h; default: the hard one.
        #[arg(long)]
        soft_max_rate_ul_h: Option<u32>,
        /// Usual largest volume (soft limit), µL; default: the hard one.
        #[arg(long)]
        soft_max_volume_ul: Option<u32>,
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
        /// Why, when the order crosses a soft limit or changes the rate by
        /// more than twice up or down (audited with it).
        #[arg(long)]
        reason: Option<String>,
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
    /// Sequence number of the first event. No longer needed: a pump whose
    /// counter is behind the server's (a restarted simulated pump) numbers
    /// its events from the login answer's `next_seq`. Kept for scripts.
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

/// `--trusted-proxy`: `10.0.0.0/8`, `2001:db8::/32`, or one address.
fn parse_network(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("{s:?} is not an address or an address range such as 10.0.0.0/8"))
}

/// `--rate-change-factor`: `2`, `1.5`; at least 1.
fn parse_rate_step(s: &str) -> Result<infusion_store::RateStep, String> {
    infusion_store::RateStep::parse(s)
        .ok_or_else(|| format!("{s:?} is not a factor of at least 1 with at most three decimals"))
}
