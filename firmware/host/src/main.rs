//! The host board: the pump's firmware application ([`infusion_firmware_app`])
//! run unchanged as a process, on embassy's std executor.
//!
//! What stands in for the hardware, in [`board`]: the host's own network
//! (real TCP sockets, no Wi-Fi to join), a flash image file the
//! persistence layer writes as it would the chip's flash, the DRV8834's
//! pins with the STEP pulses counted, sensors that read all clear, a
//! watchdog thread that ends the process (exit code 3) when the control
//! loop stops feeding it, and the console on standard input and output.
//!
//! `infusion-pump-host --flash pump.img --mac 02:00:00:00:00:01`: the
//! first boot asks for the provisioning on standard input
//! ([`infusion_firmware_app::provision`]); later boots resume from the
//! image.

mod board;

use std::path::PathBuf;

use clap::Parser;
use embassy_executor::Spawner;
use infusion_firmware_app::{Parts, run};
use infusion_protocol::MacAddress;
use infusion_pump_core::DosePlan;

use board::{Console, FileFlash, HostInputs, HostMotor, HostNet, HostWatchdog};

/// The pump's firmware on the host.
#[derive(Parser, Debug)]
#[command(name = "infusion-pump-host")]
struct Args {
    /// The flash image file (created erased if missing).
    #[arg(long)]
    flash: PathBuf,
    /// The pump's MAC address, as `infusion admin bind-device` was given.
    #[arg(long, value_parser = parse_mac)]
    mac: MacAddress,
    /// Provision again over standard input, as holding the board's button
    /// at boot does.
    #[arg(long)]
    provision: bool,
    /// A bench file the sensors and buttons are read from (see
    /// `board::Bench`); without it they read all clear.
    #[arg(long)]
    bench: Option<PathBuf>,
    /// For the watchdog's test: after this many ms, a task spins without
    /// ever yielding, as a driver hung in a loop would, so that nothing
    /// else runs.
    #[arg(long, hide = true)]
    hang_after_ms: Option<u64>,
}

fn parse_mac(s: &str) -> Result<MacAddress, String> {
    MacAddress::parse(s).map_err(|_| format!("{s:?} is not a MAC address (AA:BB:CC:DD:EE:FF)"))
}

type HostParts = Parts<HostNet, HostMotor, HostInputs, HostWatchdog, FileFlash, Console>;

#[embassy_executor::task]
async fn pump(parts: HostParts) {
    let halt = run(parts).await;
    eprintln!("infusion-pump-host: stopped: {halt:?}");
    std::process::exit(2);
}

/// Takes the executor and never gives it back (`--hang-after-ms`).
#[embassy_executor::task]
async fn hang(after_ms: u64) {
    embassy_time::Timer::after_millis(after_ms).await;
    eprintln!("infusion-pump-host: hanging on purpose");
    loop {
        std::hint::spin_loop();
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args = Args::parse();
    let flash = match FileFlash::open(&args.flash) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("infusion-pump-host: {}: {e}", args.flash.display());
            std::process::exit(2);
        }
    };
    let bench = board::Bench::new(args.bench.clone());
    let Some(motor) = board::motor(bench.clone()) else {
        eprintln!("infusion-pump-host: the motor driver did not start");
        std::process::exit(2);
    };
    let parts = Parts {
        network: HostNet::new(args.mac),
        motor,
        inputs: HostInputs::new(bench),
        watchdog: HostWatchdog::default(),
        flash,
        flash_range: 0..board::FLASH_BYTES,
        console: Console,
        provision: args.provision,
        plan: DosePlan::PAPER,
        random: board::random,
    };
    match pump(parts) {
        Ok(token) => spawner.spawn(token),
        Err(e) => {
            eprintln!("infusion-pump-host: {e:?}");
            std::process::exit(2);
        }
    }
    if let Some(ms) = args.hang_after_ms
        && let Ok(token) = hang(ms)
    {
        spawner.spawn(token);
    }
}
