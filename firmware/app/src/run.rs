//! The application's start: flash, provisioning, then the loops.

use core::fmt::Write as _;
use core::ops::Range;

use embassy_futures::join::join5;
use embedded_io_async::{Read, Write};
use embedded_storage_async::nor_flash::NorFlash;
use infusion_protocol::{DeviceSecret, HexBytes};
use infusion_pump_core::{DosePlan, Pump, PumpConfig, Resume};
use infusion_pump_persist::{Kept, Persist, PersistError, Setup};

use crate::board::{Inputs, Motor, Network, Watchdog};
use crate::provision::provision;
use crate::shared::{Reserved, Shared};
use crate::status::say;
use crate::{control, keep, motor, network, status};

/// Everything a board hands the application.
pub struct Parts<N, M, I, W, F, C> {
    /// The network.
    pub network: N,
    /// The motor edge.
    pub motor: M,
    /// The sensor inputs and buttons.
    pub inputs: I,
    /// The hardware watchdog (started by the control loop).
    pub watchdog: W,
    /// The flash, and the range of it the pump keeps its state in (at
    /// least two erase pages, on page boundaries).
    pub flash: F,
    /// See `flash`.
    pub flash_range: Range<u32>,
    /// The serial console: provisioning in, status lines out.
    pub console: C,
    /// Provision again even if the pump was provisioned (the board's
    /// button held at boot).
    pub provision: bool,
    /// The syringe and drive fitted.
    pub plan: DosePlan,
    /// The board's random numbers (a hardware generator): the back-off's
    /// jitter and each TLS handshake's keys.
    pub random: fn() -> u64,
}

/// Why the application stopped before the pump's loops started (the
/// motor never ran). The board says so and stays stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// The flash range or the flash itself failed.
    Flash(PersistError),
    /// The pump is not provisioned and its console closed.
    NotProvisioned,
}

/// Runs the pump. Returns only if the flash fails at boot.
pub async fn run<N, M, I, W, F, C>(parts: Parts<N, M, I, W, F, C>) -> Halt
where
    N: Network,
    M: Motor,
    I: Inputs,
    W: Watchdog,
    F: NorFlash,
    C: Read + Write,
{
    let Parts {
        mut network,
        motor,
        mut inputs,
        mut watchdog,
        flash,
        flash_range,
        mut console,
        provision: force,
        plan,
        random,
    } = parts;
    let mut persist = match Persist::new(flash, flash_range) {
        Ok(p) => p,
        Err(e) => return Halt::Flash(e),
    };
    let (setup, kept) = match boot(&mut persist, &mut console, &network, force).await {
        Ok(Some(found)) => found,
        Ok(None) => return Halt::NotProvisioned,
        Err(e) => return Halt::Flash(e),
    };
    let secret = DeviceSecret::from_bytes(&kept.device_secret);
    let mut cfg = PumpConfig {
        mac: network.mac(),
        server_key: Some(HexBytes(kept.server_key)),
        first_seq: kept.next_seq,
        applied_version: kept.applied_version,
        resume: kept.open.map(|o| Resume {
            delivered_steps: o.delivered_steps,
            plunger_steps: o.plunger_steps,
        }),
        plan,
        // The low half: jitter needs no more.
        seed: random() as u32,
        ..PumpConfig::default()
    };
    if setup.poll_interval_ms > 0 {
        cfg.poll_interval_ms = u64::from(setup.poll_interval_ms);
    }
    let reserved = Reserved {
        version: kept.applied_version,
        steps: kept.open.map_or(0, |o| o.delivered_steps),
    };
    let mut line: heapless::String<160> = heapless::String::new();
    let _ = write!(
        line,
        "boot mac={} server={} next_seq={} applied_version={} resumed_steps={}",
        cfg.mac, setup.server, kept.next_seq, kept.applied_version, reserved.steps
    );
    say(&mut console, &line).await;
    let shared = Shared::new(Pump::new(cfg), motor, reserved);
    join5(
        network::run(&mut network, &shared, &setup, &secret, random),
        motor::run(&shared),
        control::run(&mut inputs, &mut watchdog, &shared),
        keep::run(&mut persist, &shared, kept),
        status::run(&mut console, &shared),
    )
    .await;
    unreachable!("the pump's loops never return")
}

/// The setup and running state from flash, provisioning over the console
/// first when there is none (or the board asks); `None` if the console
/// closed before the pump was provisioned.
async fn boot<F: NorFlash, C: Read + Write, N: Network>(
    persist: &mut Persist<F>,
    console: &mut C,
    network: &N,
    force: bool,
) -> Result<Option<(Setup, Kept)>, PersistError> {
    let setup = persist.load_setup().await?;
    let kept = persist.load().await?;
    if let (Some(setup), Some(kept), false) = (&setup, kept, force) {
        return Ok(Some((setup.clone(), kept)));
    }
    let mut mac: heapless::String<20> = heapless::String::new();
    let _ = write!(mac, "{}", network.mac());
    let Some(p) = provision(console, &mac).await else {
        return Ok(None);
    };
    // A pump provisioned again keeps its counters and its order: it is the
    // same pump, and a restart must still not repeat what it gave.
    let kept = Kept {
        device_secret: p.device_secret,
        server_key: p.server_key,
        ..kept.unwrap_or(Kept {
            next_seq: 1,
            applied_version: 0,
            open: None,
            device_secret: [0; 32],
            server_key: [0; 32],
        })
    };
    persist.save_setup(&p.setup).await?;
    persist.save(&kept).await?;
    say(console, "saved").await;
    Ok(Some((p.setup, kept)))
}
