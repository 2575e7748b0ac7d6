//! `infusion pump`: one simulated pump against a running server.

use std::io::BufRead;
use std::time::Duration;

use anyhow::{Context, bail};
use infusion_protocol::{DeviceSecret, MacAddress, PublicKey};
use infusion_pump_core::{CommLossPolicy, PumpConfig};
use infusion_sim::{Credentials, SimConfig, SimPump};

use crate::cli::PumpArgs;
use crate::serve::{init_logging, shutdown_signal};

/// Runs the pump until Ctrl-C, SIGTERM or `--duration-s`.
pub async fn run(args: PumpArgs) -> anyhow::Result<()> {
    init_logging("info");
    let Ok(mac) = MacAddress::parse(&args.mac) else {
        bail!(
            "{:?} is not a MAC address (expected AA:BB:CC:DD:EE:FF)",
            args.mac
        );
    };
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    let cfg = SimConfig {
        pump: PumpConfig {
            poll_interval_ms: args.poll_interval_ms,
            first_seq: args.first_seq,
            applied_version: args.applied_version,
            comm_loss: match args.stop_after_failures {
                Some(n) => CommLossPolicy::StopAfter(n),
                None => CommLossPolicy::Continue,
            },
            ..PumpConfig::default()
        },
        time_scale: args.time_scale,
        ..SimConfig::default()
    };
    let (secret, server_key) = match (&args.device_secret_file, &args.server_key) {
        (Some(file), Some(key)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the device secret {}", file.display()))?;
            let Ok(secret) = DeviceSecret::parse(text.trim()) else {
                bail!(
                    "{} does not hold a device secret (64 hex digits)",
                    file.display()
                );
            };
            let Ok(key) = PublicKey::parse(key.trim()) else {
                bail!("--server-key {key:?} is not a server key (64 hex digits)");
            };
            (Some(secret), Some(key))
        }
        _ if args.paper_login => (None, None),
        _ => bail!("give --device-secret-file and --server-key, or --paper-login"),
    };
    let pump = SimPump::new(
        &args.username,
        &args.server,
        Credentials {
            username: args.username.clone(),
            password,
            mac,
            secret,
            server_key,
        },
        cfg,
    );
    let pump = match &args.ca_cert {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the authority {}", path.display()))?;
            pump.trusting(&args.server, &pem)?
        }
        None => pump,
    };
    let duration = args.duration_s;
    let stop = async move {
        match duration {
            Some(s) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(s)) => {},
                    _ = shutdown_signal() => {},
                }
            }
            None => shutdown_signal().await,
        }
    };
    let last = pump.run(stop).await;
    println!(
        "stopped: {} µL delivered, {} ({} requests ok, {} failed, {} events unacknowledged)",
        last.delivered_ul, last.phase, last.requests_ok, last.requests_failed, last.unacked_events
    );
    Ok(())
}
