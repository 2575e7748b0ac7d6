//! The physical world of a gravimetric bench: a real syringe is never
//! exactly its nominal bore, the plunger's seal gives before fluid moves,
//! the lead screw is not perfect, fluid leaves the line in drops, and the
//! scale has a resolution and a beaker that evaporates.
//!
//! This is the simulated world, not the pump: it may use floating point.
//! Every random quantity comes from one seeded generator, so a seed names
//! a run exactly. [`PhysicsConfig`] documents each parameter and its
//! default; the `infusion bench accuracy` command has a flag for each.

use infusion_accuracy::Sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// Parameters of the bench. Percentages are of the nominal value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhysicsConfig {
    /// Standard deviation of the syringe's real inner diameter from the
    /// nominal one, %: a new syringe (drawn once per run). Volume goes with
    /// the square, so 0.5 % of diameter is about 1 % of volume. Default 0.5.
    pub diameter_sd_pct: f64,
    /// Plunger start-up compliance: volume the plunger displaces before
    /// any fluid leaves the syringe (seal and stopper compressing, slack in
    /// the drive taken up), µL; mean of a normal draw per run. Default 15.
    pub startup_ul: f64,
    /// Standard deviation of the start-up compliance, µL. Default 5.
    pub startup_sd_ul: f64,
    /// Lead-screw pitch error: standard deviation of the systematic error
    /// of one screw, % (drawn once per run). Default 0.5.
    pub lead_pitch_sd_pct: f64,
    /// Lead-screw periodic error: amplitude of the error that repeats every
    /// turn, % of the local travel. Default 1.
    pub lead_periodic_pct: f64,
    /// Travel of one lead-screw turn, mm (the error's period). Default 1.
    pub lead_period_mm: f64,
    /// Mean drop volume at the end of the line, µL (a 20 G needle gives
    /// about 30). Default 30.
    pub drop_ul: f64,
    /// Standard deviation of the drop volume, µL. Default 2.
    pub drop_sd_ul: f64,
    /// The scale's resolution, g: every reading is rounded to it.
    /// Default 0.01 (the paper's scale).
    pub scale_resolution_g: f64,
    /// Fluid density, g/mL. Default 0.998 (water at 20 °C).
    pub density_g_ml: f64,
    /// Evaporation from the beaker, mg/h. Default 2.
    pub evaporation_mg_h: f64,
    /// The scale is read this often, s (IEC 60601-2-24 samples every
    /// 30 s). Every drop is read as well, with the stopwatch. Default 30.
    pub sample_interval_s: f64,
}

impl Default for PhysicsConfig {
    fn default() -> Self {
        PhysicsConfig {
            diameter_sd_pct: 0.5,
            startup_ul: 15.0,
            startup_sd_ul: 5.0,
            lead_pitch_sd_pct: 0.5,
            lead_periodic_pct: 1.0,
            lead_period_mm: 1.0,
            drop_ul: 30.0,
            drop_sd_ul: 2.0,
            scale_resolution_g: 0.01,
            density_g_ml: 0.998,
            evaporation_mg_h: 2.0,
            sample_interval_s: 30.0,
        }
    }
}

/// A syringe, line and scale for one run.
#[derive(Debug, Clone)]
pub struct Bench {
    cfg: PhysicsConfig,
    rng: ChaCha8Rng,
    /// Real volume per nominal volume (bore area and screw pitch).
    volume_factor: f64,
    /// Nominal volume of one microstep, µL.
    step_ul: f64,
    /// Nominal travel of one microstep, mm.
    step_mm: f64,
    /// Compliance still to take up before flow, µL.
    compliance_ul: f64,
    /// Plunger travel so far, mm.
    travel_mm: f64,
    /// Fluid hanging at the line's end, µL, and the size that falls.
    hanging_ul: f64,
    next_drop_ul: f64,
    /// Fluid in the beaker, µL (before evaporation).
    beaker_ul: f64,
    next_sample_us: u64,
    readings: Vec<Sample>,
    drops: u64,
    steps: u64,
}

impl Bench {
    /// A bench with one syringe and line for a pump whose microstep moves
    /// `step_nm` of plunger and nominally displaces `step_al` attolitres;
    /// everything random is drawn from `seed`.
    pub fn new(cfg: PhysicsConfig, step_nm: f64, step_al: u64, seed: u64) -> Bench {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let diameter = 1.0 + normal(&mut rng, 0.0, cfg.diameter_sd_pct) / 100.0;
        let pitch = 1.0 + normal(&mut rng, 0.0, cfg.lead_pitch_sd_pct) / 100.0;
        let compliance_ul = normal(&mut rng, cfg.startup_ul, cfg.startup_sd_ul).max(0.0);
        let next_drop_ul = drop_size(&mut rng, &cfg);
        let mut bench = Bench {
            cfg,
            rng,
            volume_factor: diameter * diameter * pitch,
            step_ul: step_al as f64 / 1e12,
            step_mm: step_nm / 1e6,
            compliance_ul,
            travel_mm: 0.0,
            hanging_ul: 0.0,
            next_drop_ul,
            beaker_ul: 0.0,
            next_sample_us: 0,
            readings: Vec::new(),
            drops: 0,
            steps: 0,
        };
        bench.sample(0);
        bench
    }

    /// The motor took `steps` microsteps at `now_us`. Readings that fell
    /// due up to `now_us` are taken first; each drop that falls is read at
    /// once.
    pub fn advance(&mut self, now_us: u64, steps: u64) {
        while self.next_sample_us <= now_us {
            self.sample(self.next_sample_us);
        }
        if steps == 0 {
            return;
        }
        self.steps += steps;
        let period = self.cfg.lead_period_mm.max(1e-6);
        let amplitude = self.cfg.lead_periodic_pct / 100.0;
        let from = self.travel_mm;
        let to = from + steps as f64 * self.step_mm;
        // ∫ (1 + a·sin(2πx/p)) dx from `from` to `to`.
        let tau = std::f64::consts::TAU;
        let periodic =
            amplitude * period / tau * ((tau * from / period).cos() - (tau * to / period).cos());
        let nominal = steps as f64 * self.step_ul;
        let displaced = (nominal + periodic * self.step_ul / self.step_mm) * self.volume_factor;
        self.travel_mm = to;
        let taken = displaced.min(self.compliance_ul);
        self.compliance_ul -= taken;
        self.hanging_ul += displaced - taken;
        while self.hanging_ul >= self.next_drop_ul {
            self.hanging_ul -= self.next_drop_ul;
            self.beaker_ul += self.next_drop_ul;
            self.drops += 1;
            self.next_drop_ul = drop_size(&mut self.rng, &self.cfg);
            self.read(now_us);
        }
    }

    /// When the next periodic reading is due, µs.
    pub fn next_sample_us(&self) -> u64 {
        self.next_sample_us
    }

    fn sample(&mut self, at_us: u64) {
        self.read(at_us);
        let interval = (self.cfg.sample_interval_s.max(0.001) * 1e6) as u64;
        self.next_sample_us = at_us + interval;
    }

    fn read(&mut self, at_us: u64) {
        let hours = at_us as f64 / 3.6e9;
        let grams = self.beaker_ul / 1_000.0 * self.cfg.density_g_ml
            - self.cfg.evaporation_mg_h * hours / 1_000.0;
        let resolution = self.cfg.scale_resolution_g.max(1e-9);
        let shown = (grams.max(0.0) / resolution).round() * resolution;
        self.readings.push(Sample {
            time_s: at_us as f64 / 1e6,
            mass_g: shown,
        });
    }

    /// Every reading so far, in time order.
    pub fn readings(&self) -> &[Sample] {
        &self.readings
    }

    /// Motor steps the plunger has been driven so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Drops fallen so far.
    pub fn drops(&self) -> u64 {
        self.drops
    }

    /// Fluid that left the syringe, µL (in the beaker or hanging).
    pub fn delivered_ul(&self) -> f64 {
        self.beaker_ul + self.hanging_ul
    }
}

fn normal(rng: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    match Normal::new(mean, sd.abs()) {
        Ok(n) => n.sample(rng),
        Err(_) => mean,
    }
}

fn drop_size(rng: &mut ChaCha8Rng, cfg: &PhysicsConfig) -> f64 {
    // Never a drop smaller than a tenth of the mean, whatever the spread.
    let floor = (cfg.drop_ul / 10.0).max(0.1);
    normal(rng, cfg.drop_ul, cfg.drop_sd_ul).max(floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP_AL: u64 = 18_577_122_511;

    fn exact() -> PhysicsConfig {
        PhysicsConfig {
            diameter_sd_pct: 0.0,
            startup_ul: 0.0,
            startup_sd_ul: 0.0,
            lead_pitch_sd_pct: 0.0,
            lead_periodic_pct: 0.0,
            drop_sd_ul: 0.0,
            evaporation_mg_h: 0.0,
            scale_resolution_g: 1e-9,
            density_g_ml: 1.0,
            ..PhysicsConfig::default()
        }
    }

    #[test]
    fn a_perfect_bench_weighs_what_the_steps_displace_in_whole_drops() {
        let mut b = Bench::new(exact(), 112.5, STEP_AL, 1);
        // 2 mL in 107,659 steps over 30 minutes, one step at a time.
        for i in 1..=107_659u64 {
            b.advance(i * 16_718, 1);
        }
        assert!((b.delivered_ul() - 2_000.0).abs() < 0.02);
        assert_eq!(b.drops(), 66, "2,000 µL in drops of 30");
        let last = b.readings().last().copied().unwrap_or(Sample {
            time_s: 0.0,
            mass_g: 0.0,
        });
        assert!((last.mass_g - 1.98).abs() < 1e-6);
        // Readings every 30 s, plus one per drop.
        assert_eq!(b.readings().len(), 1 + 59 + 66);
    }

    #[test]
    fn compliance_delays_the_flow_and_the_seed_names_the_run() {
        let cfg = PhysicsConfig {
            startup_ul: 50.0,
            startup_sd_ul: 0.0,
            ..exact()
        };
        let mut b = Bench::new(cfg, 112.5, STEP_AL, 1);
        b.advance(1, 2_691); // 50 µL
        assert!(b.delivered_ul() < 0.02);
        b.advance(2, 2_691);
        assert!((b.delivered_ul() - 50.0).abs() < 0.05);
        let run = |seed| {
            let mut b = Bench::new(PhysicsConfig::default(), 112.5, STEP_AL, seed);
            b.advance(1_000_000, 100_000);
            b.delivered_ul()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
