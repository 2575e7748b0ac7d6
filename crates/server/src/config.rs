//! Settings of the server that are not the database or the address.

use std::time::Duration;

use infusion_store::RateStep;

use crate::client::TrustedProxies;
use crate::conn_limit::Caps;
use crate::pace::PaceLimits;
use crate::password::PasswordParams;

/// How the server behaves. Built by the binary from flags and environment;
/// tests build it directly with short lifetimes and cheap hashing.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How long an issued token stays valid. Well above the pumps' polling
    /// interval, so that a pump polling on time never needs to log in again,
    /// and short enough that a stolen token soon stops working.
    pub token_ttl: Duration,
    /// Largest request body accepted, in bytes. A full report batch (128
    /// events) is about 16 KiB.
    pub body_limit: usize,
    /// Argon2id cost for password hashes.
    pub password: PasswordParams,
    /// How often expired tokens are deleted.
    pub prune_interval: Duration,
    /// A web session unused this long ends (OWASP ASVS 3.3.2: 30 minutes
    /// for a clinical application).
    pub session_idle: Duration,
    /// How often an open live stream checks its session (a logout ends
    /// it at once, through the change feed; this catches the idle timeout
    /// and the absolute expiry).
    pub live_recheck: Duration,
    /// A web session ends this long after login however active it is.
    pub session_absolute: Duration,
    /// Served over HTTPS (by us, or by a TLS proxy in front that does not
    /// say so in `X-Forwarded-Proto`): cookies are `Secure` and every
    /// answer carries HSTS. On when serving TLS. A trusted proxy's
    /// `X-Forwarded-Proto: https` does the same for its requests.
    pub secure_cookies: bool,
    /// Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed
    /// (`--trusted-proxy`; see [`crate::client`]). Empty: none.
    pub trusted_proxies: TrustedProxies,
    /// How far one order may move the running rate, up or down, before its
    /// prescriber must give a reason (`--rate-change-factor`).
    pub rate_step: RateStep,
    /// Physicians and administrators must log in with an authenticator
    /// code too (`--require-two-factor`): one without is sent to enrol
    /// right after its password, and served nothing else until it has.
    pub require_second_factor: bool,
    /// How long a client may take to send a request's head: a slow-header
    /// attack holds a connection this long at most.
    pub header_read_timeout: Duration,
    /// How fast a request's body must arrive after its head (see
    /// [`crate::pace`]): with the head's timeout, this bounds a whole
    /// request.
    pub body_pace: PaceLimits,
    /// How many connections are held at once, overall (lowered to fit the
    /// open file limit) and per client address (see
    /// [`crate::conn_limit`]).
    pub connections: Caps,
    /// Accept the paper's device login (username, password and MAC, no
    /// proof of the device secret). Off unless `--paper-login`: a MAC
    /// address is set by firmware at will, so this login is all a cloned
    /// device needs. For reproducing the paper's measurements only.
    pub paper_login: bool,
    /// How long a login challenge may be answered.
    pub challenge_ttl: Duration,
    /// Where the server's keys are kept when not in the database
    /// (`--key-file`; see [`crate::key_file`]).
    pub key_file: Option<std::path::PathBuf>,
    /// How long a pump that should be polling may go unheard before the
    /// watchdog raises `pump_silent` (`--silent-after-s`; see
    /// [`crate::watchdog`]).
    pub silent_after: Duration,
    /// Where alarm notifications go (`--webhook-url`, `--smtp-url`; see
    /// [`crate::notify`]).
    pub notify: crate::notify::NotifyConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            token_ttl: Duration::from_secs(300),
            body_limit: 64 * 1024,
            password: PasswordParams::default(),
            prune_interval: Duration::from_secs(60),
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            live_recheck: Duration::from_secs(30),
            secure_cookies: false,
            trusted_proxies: TrustedProxies::default(),
            rate_step: RateStep::DEFAULT,
            require_second_factor: false,
            header_read_timeout: Duration::from_secs(10),
            body_pace: PaceLimits {
                deadline: Duration::from_secs(10),
                min_bytes_per_s: 1024,
            },
            connections: Caps {
                total: 10_000,
                per_address: 256,
            },
            paper_login: false,
            challenge_ttl: Duration::from_secs(60),
            key_file: None,
            // Three of the pump's 5 s poll intervals.
            silent_after: Duration::from_secs(15),
            notify: crate::notify::NotifyConfig {
                escalate_every: Duration::from_secs(1),
                ..Default::default()
            },
        }
    }
}
