//! Plausible vital signs for a simulated patient.

use infusion_protocol::Vitals;

/// A seeded random walk around resting values: heart rate 55 to 110 bpm,
/// SpO2 92 to 100 %, tremor 0 to 60. Deterministic per seed, so a
/// simulated patient is the same in every run.
#[derive(Debug, Clone)]
pub struct VitalsModel {
    state: u64,
    heart_rate_bpm: i32,
    spo2_pct: i32,
    tremor_score: i32,
}

impl VitalsModel {
    /// A patient seeded by `seed` (the simulator uses the MAC address).
    pub fn new(seed: u64) -> VitalsModel {
        VitalsModel {
            state: seed | 1,
            heart_rate_bpm: 72,
            spo2_pct: 97,
            tremor_score: 15,
        }
    }

    fn step(&mut self, spread: i32) -> i32 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state % (2 * spread as u64 + 1)) as i32 - spread
    }

    /// The next reading.
    pub fn measure(&mut self) -> Vitals {
        self.heart_rate_bpm = (self.heart_rate_bpm + self.step(3)).clamp(55, 110);
        self.spo2_pct = (self.spo2_pct + self.step(1)).clamp(92, 100);
        self.tremor_score = (self.tremor_score + self.step(4)).clamp(0, 60);
        Vitals {
            heart_rate_bpm: self.heart_rate_bpm as u16,
            spo2_pct: self.spo2_pct as u8,
            tremor_score: self.tremor_score as u8,
        }
    }
}
