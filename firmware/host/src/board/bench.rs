//! The bench the pump stands on: its sensors and buttons, from a file.

use std::path::PathBuf;
use std::sync::Arc;

use infusion_firmware_app::{Inputs, Reading};
use infusion_pump_core::Sensors;

/// The bench the host pump stands on: what its sensors and buttons read,
/// from a file a test (or a person) writes, `name=value` a line:
/// `stalled`, `over_current`, `driver_fault`, `end_of_travel` (0 or 1),
/// `battery_mv`, and `confirm` and `loaded`, counters whose every
/// increase is one press. Without a file, or for a name it lacks: all
/// clear on a full cell.
pub struct Bench {
    path: Option<PathBuf>,
}

/// One reading of the bench file.
#[derive(Debug, Clone, Copy, Default)]
pub struct BenchReading {
    sensors: Sensors,
    pub(super) driver_fault: bool,
    confirm: u64,
    loaded: u64,
}

impl Bench {
    /// The bench read from `path`, if any.
    pub fn new(path: Option<PathBuf>) -> Arc<Bench> {
        Arc::new(Bench { path })
    }

    pub(super) fn read(&self) -> BenchReading {
        let mut r = BenchReading::default();
        let Some(text) = self
            .path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        else {
            return r;
        };
        for line in text.lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let Ok(n) = value.trim().parse::<u64>() else {
                continue;
            };
            match name.trim() {
                "stalled" => r.sensors.stalled = n != 0,
                "over_current" => r.sensors.over_current = n != 0,
                "driver_fault" => r.driver_fault = n != 0,
                "end_of_travel" => r.sensors.end_of_travel = n != 0,
                "battery_mv" => r.sensors.battery_mv = u16::try_from(n).unwrap_or(u16::MAX),
                "confirm" => r.confirm = n,
                "loaded" => r.loaded = n,
                _ => {}
            }
        }
        r
    }
}

/// The sensor inputs and buttons, read from the bench.
pub struct HostInputs {
    bench: Arc<Bench>,
    presses: (u64, u64),
}

impl HostInputs {
    /// The inputs on `bench`; presses counted from what it says now.
    pub fn new(bench: Arc<Bench>) -> Self {
        let r = bench.read();
        HostInputs {
            bench,
            presses: (r.confirm, r.loaded),
        }
    }
}

impl Inputs for HostInputs {
    fn read(&mut self) -> Reading {
        let r = self.bench.read();
        let reading = Reading {
            sensors: r.sensors,
            confirm: r.confirm > self.presses.0,
            syringe_loaded: r.loaded > self.presses.1,
        };
        self.presses = (r.confirm, r.loaded);
        reading
    }
}
