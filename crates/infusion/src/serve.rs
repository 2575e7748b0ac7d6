//! `infusion serve`.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use infusion_server::client::TrustedProxies;
use infusion_server::conn_limit::Caps;
use infusion_server::notify::{NotifyConfig, SmtpConfig};
use infusion_server::{AppState, Application, ServerConfig};

use crate::cli::ServeArgs;
use infusion_bench::database::Database;

/// Logs to stderr (stdout carries only the `listening on` line), filtered
/// by `RUST_LOG`, `info` by default.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(db: &Database, args: ServeArgs) -> anyhow::Result<()> {
    init_logging("info,tower_http=warn");
    let files = infusion_server::conn_limit::raise_open_file_limit();
    tracing::info!(
        soft_at_start = ?files.was,
        soft = ?files.soft,
        hard = ?files.hard,
        "open file limit (None: unlimited or unknown)"
    );
    let store = db.open().await?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(infusion_server::tls::server_config(cert, key)?),
        _ => None,
    };
    let config = ServerConfig {
        token_ttl: Duration::from_secs(args.token_ttl_s),
        secure_cookies: tls.is_some(),
        paper_login: args.paper_login,
        key_file: args.key_file.clone(),
        trusted_proxies: TrustedProxies(args.trusted_proxy.clone()),
        rate_step: args.rate_change_factor,
        silent_after: Duration::from_secs(args.silent_after_s),
        notify: notify_config(&args)?,
        require_second_factor: args.require_two_factor,
        connections: Caps {
            total: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
            per_address: usize::try_from(args.max_connections_per_address).unwrap_or(usize::MAX),
        },
        ..ServerConfig::default()
    };
    // A webhook without its secret, or a bad address, stops here, before
    // the server answers anyone.
    infusion_server::notify::senders(&config.notify).map_err(anyhow::Error::msg)?;
    if args.paper_login {
        tracing::warn!(
            "--paper-login: devices may log in with username, password and MAC alone, which a \
             cloned device knows; for reproducing the paper only"
        );
    }
    if !args.trusted_proxy.is_empty() {
        let ranges: Vec<String> = args.trusted_proxy.iter().map(|n| n.to_string()).collect();
        tracing::info!(trusted_proxies = %ranges.join(", "),
            "X-Forwarded-For and X-Forwarded-Proto believed from these peers only");
        if args.trusted_proxy.iter().any(|n| n.prefix_len() == 0) {
            tracing::warn!(
                "--trusted-proxy covers every address: any client can choose the \
                 address its logins are counted under"
            );
        }
    }
    match &config.key_file {
        Some(path) => tracing::info!(key_file = %path.display(), "server keys from the key file"),
        None => tracing::info!(
            "server keys in the database (`infusion admin export-keys` moves them to a key file)"
        ),
    }
    let state = AppState::new(store, config).await?;
    let mut app = Application::bind(args.bind, state)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(tls) = tls {
        app = app.with_tls(tls);
    }
    let addr = app.local_addr()?;
    // Logged before the `listening on` line, so that whoever starts the
    // server and reads that line has the warning already.
    tracing::info!(%addr, scheme, database = db.url.redacted(), "serving");
    if scheme == "http" && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "serving plain HTTP on a non-loopback address: tokens, passwords and patient data \
             cross the network in clear text; put a TLS-terminating proxy in front or serve \
             only on a trusted, isolated network"
        );
    }
    println!("listening on {scheme}://{addr}");
    std::io::stdout().flush()?;
    app.run_until(shutdown_signal()).await?;
    Ok(())
}

/// Where alarm notifications go, from `--webhook-url`,
/// `INFUSION_WEBHOOK_SECRET`, `--smtp-url` and `--mail-from`.
fn notify_config(args: &ServeArgs) -> anyhow::Result<NotifyConfig> {
    let webhook_secret = std::env::var_os("INFUSION_WEBHOOK_SECRET")
        .map(|s| s.into_encoded_bytes())
        .filter(|s| !s.is_empty());
    let smtp = match &args.smtp_url {
        None => None,
        Some(url) => {
            let rest = url
                .strip_prefix("smtp://")
                .with_context(|| format!("--smtp-url {url}: write it smtp://host:port"))?;
            let (host, port) = match rest.trim_end_matches('/').rsplit_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    p.parse()
                        .with_context(|| format!("--smtp-url {url}: {p:?} is not a port"))?,
                ),
                None => (rest.trim_end_matches('/').to_owned(), 25),
            };
            Some(SmtpConfig {
                host,
                port,
                from: args.mail_from.clone(),
            })
        }
    };
    Ok(NotifyConfig {
        webhooks: args.webhook_url.clone(),
        webhook_secret,
        smtp,
        escalate_every: Duration::from_secs(1),
    })
}
