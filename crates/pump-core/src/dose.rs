//! The dose planner: from syringe geometry and drive to volume per motor
//! step, and from a prescription to a step count and a step schedule that
//! does not drift.
//!
//! Units are integers throughout: micrometres for the syringe, nanometres
//! for the lead screw's full step, attolitres (1 aL = 10⁻¹⁸ L, so one µL is
//! 10¹² aL) for the volume of one microstep, microseconds for time. π is
//! the rational 355/113 (relative error 8.5·10⁻⁸, far below any syringe's
//! tolerance).
//!
//! The [`Schedule`] is an error-accumulating (Bresenham) stepper: it keeps
//! `err = elapsed · rate − steps · step_volume` (scaled to integers) in
//! `[0, step_volume)`, so the number of steps taken is always the floor of
//! the ideal, exact line: never more than the ideal, never a whole step
//! behind, after any number of hours and any pattern of calls.

/// The syringe loaded in the pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syringe {
    /// Inner diameter of the barrel, µm (a 10 mL syringe: about 14,500).
    pub inner_diameter_um: u32,
    /// How far the plunger can travel from full to empty, µm.
    pub travel_um: u32,
}

/// Microstep settings of the DRV8834 (M0/M1 pins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Microsteps {
    /// Full steps.
    X1 = 1,
    /// Half steps.
    X2 = 2,
    /// Quarter steps.
    X4 = 4,
    /// Eighth steps.
    X8 = 8,
    /// Sixteenth steps.
    X16 = 16,
    /// Thirty-second steps.
    X32 = 32,
}

impl Microsteps {
    /// Microsteps per full step.
    pub const fn per_full_step(self) -> u32 {
        self as u32
    }
}

/// The drive: linear travel of one full motor step, and the microstep
/// setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drive {
    /// Plunger travel per full step, nm (Actuonix P8 with its 165:1 gear:
    /// 0.0018 mm = 1,800 nm).
    pub full_step_nm: u32,
    /// Microstep setting.
    pub microsteps: Microsteps,
}

/// Why a plan or schedule cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanError {
    /// A zero diameter, travel or step: no volume per step.
    Geometry,
    /// A rate of zero.
    NoRate,
    /// More volume than the syringe holds.
    ExceedsSyringe,
}

/// The paper's syringe: a 10 mL syringe of 14.5 mm bore with 60 mm of
/// plunger travel.
pub const PAPER_SYRINGE: Syringe = Syringe {
    inner_diameter_um: 14_500,
    travel_um: 60_000,
};

/// The paper's drive: the Actuonix P8 (0.0018 mm per full step through its
/// 165:1 gear) on a DRV8834 at 1/16 microsteps.
pub const PAPER_DRIVE: Drive = Drive {
    full_step_nm: 1_800,
    microsteps: Microsteps::X16,
};

/// Attolitres per microlitre.
pub const AL_PER_UL: u64 = 1_000_000_000_000;
/// Microseconds per hour.
pub const US_PER_H: u64 = 3_600_000_000;

/// Volume per step and capacity of one syringe on one drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DosePlan {
    al_per_step: u64,
    capacity_steps: u64,
}

impl DosePlan {
    /// The paper's pump with its 10 mL syringe: 0.018577 µL per microstep,
    /// 533,333 microsteps of travel.
    pub const PAPER: DosePlan = match DosePlan::new(PAPER_SYRINGE, PAPER_DRIVE) {
        Ok(plan) => plan,
        Err(_) => panic!("the paper's geometry is valid"),
    };

    /// Plans for `syringe` on `drive`. A `const fn`, so a pump's fixed
    /// hardware can be planned at compile time ([`DosePlan::PAPER`]).
    pub const fn new(syringe: Syringe, drive: Drive) -> Result<DosePlan, PlanError> {
        let d = syringe.inner_diameter_um as u128;
        let step_nm = drive.full_step_nm as u128;
        let micro = drive.microsteps.per_full_step() as u128;
        if step_nm == 0 {
            return Err(PlanError::Geometry);
        }
        // Volume of one microstep: π d²/4 (µm²) × step (nm) / microsteps,
        // in µm²·nm = aL, with π = 355/113.
        let num = 355 * d * d * step_nm;
        let den = 113 * 4 * micro;
        let al_per_step = (num + den / 2) / den;
        if al_per_step == 0 || al_per_step > u64::MAX as u128 || syringe.travel_um == 0 {
            return Err(PlanError::Geometry);
        }
        // Whole microsteps of travel: travel (µm → nm) / nm per microstep.
        let capacity_steps = (syringe.travel_um as u128) * 1000 * micro / step_nm;
        Ok(DosePlan {
            // Both checked to fit above (the capacity is below 2^32 · 2^5).
            al_per_step: al_per_step as u64,
            capacity_steps: capacity_steps as u64,
        })
    }

    /// Volume of one microstep, aL.
    pub fn al_per_step(&self) -> u64 {
        self.al_per_step
    }

    /// Microsteps from full to empty.
    pub fn capacity_steps(&self) -> u64 {
        self.capacity_steps
    }

    /// What the syringe holds, µL (rounded down).
    pub fn capacity_ul(&self) -> u64 {
        self.ul_for_steps(self.capacity_steps)
    }

    /// Steps that deliver `volume_ul` as closely as whole steps can: the
    /// nearest whole number of steps (at most half a step off).
    pub fn steps_for_ul(&self, volume_ul: u32) -> u64 {
        let al = u128::from(volume_ul) * u128::from(AL_PER_UL);
        let s = u128::from(self.al_per_step);
        u64::try_from((al + s / 2) / s).unwrap_or(u64::MAX)
    }

    /// Volume of `steps`, µL, rounded down.
    pub fn ul_for_steps(&self, steps: u64) -> u64 {
        u64::try_from(u128::from(steps) * u128::from(self.al_per_step) / u128::from(AL_PER_UL))
            .unwrap_or(u64::MAX)
    }

    /// A schedule delivering `volume_ul` at `rate_ul_h`, starting at
    /// `start_us`. Refused when the syringe cannot hold that volume.
    pub fn schedule(
        &self,
        volume_ul: u32,
        rate_ul_h: u32,
        start_us: u64,
    ) -> Result<Schedule, PlanError> {
        let total = self.steps_for_ul(volume_ul);
        if total > self.capacity_steps {
            return Err(PlanError::ExceedsSyringe);
        }
        self.schedule_steps(total, rate_ul_h, start_us)
    }

    /// A schedule of exactly `steps` steps at `rate_ul_h` from `start_us`:
    /// what a rate change mid-infusion makes for the steps that remain.
    pub fn schedule_steps(
        &self,
        steps: u64,
        rate_ul_h: u32,
        start_us: u64,
    ) -> Result<Schedule, PlanError> {
        if rate_ul_h == 0 {
            return Err(PlanError::NoRate);
        }
        Ok(Schedule {
            // Steps per µs = rate (aL/h) / (aL per step × µs per h).
            num: u128::from(rate_ul_h) * u128::from(AL_PER_UL),
            den: u128::from(self.al_per_step) * u128::from(US_PER_H),
            total: steps,
            done: 0,
            err: 0,
            at_us: start_us,
        })
    }
}

/// When to take each step of one infusion segment (one rate): a Bresenham
/// accumulator over exact integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    num: u128,
    den: u128,
    total: u64,
    done: u64,
    /// `elapsed · num − done · den`, always in `[0, den)` until the last
    /// step is taken.
    err: u128,
    at_us: u64,
}

impl Schedule {
    /// Moves the schedule to `now_us` and returns how many steps are due
    /// now (to be taken by the motor before the next call). Times before
    /// the last call count as the last call: steps are never taken back.
    pub fn advance(&mut self, now_us: u64) -> u64 {
        if self.done >= self.total || now_us <= self.at_us {
            self.at_us = self.at_us.max(now_us);
            return 0;
        }
        let dt = u128::from(now_us - self.at_us);
        self.at_us = now_us;
        self.err = self.err.saturating_add(dt.saturating_mul(self.num));
        let due = self.err / self.den;
        let left = u128::from(self.total - self.done);
        let take = due.min(left);
        self.err -= take * self.den;
        // `take` is at most `left`, which fits in u64.
        let take = u64::try_from(take).unwrap_or(0);
        self.done += take;
        take
    }

    /// The same line at a new rate and a new number of steps still to take,
    /// from the last call's time on: what a new index mid-infusion makes.
    /// The part of a step already accumulated is kept, so a rate change
    /// neither loses nor doubles a step, however often it happens.
    pub fn continue_with(&self, remaining: u64, rate_ul_h: u32) -> Result<Schedule, PlanError> {
        if rate_ul_h == 0 {
            return Err(PlanError::NoRate);
        }
        Ok(Schedule {
            num: u128::from(rate_ul_h) * u128::from(AL_PER_UL),
            den: self.den,
            total: remaining,
            done: 0,
            err: self.err.min(self.den.saturating_sub(1)),
            at_us: self.at_us,
        })
    }

    /// Restarts the clock at `now_us` after a pause: paused time delivers
    /// nothing, and the part of a step accumulated before it is kept.
    pub fn resume_at(&mut self, now_us: u64) {
        self.at_us = self.at_us.max(now_us);
    }

    /// When the next step falls due, or `None` when all are taken.
    pub fn next_step_at(&self) -> Option<u64> {
        if self.done >= self.total {
            return None;
        }
        let missing = self.den - self.err.min(self.den);
        let wait = missing.div_ceil(self.num);
        Some(
            self.at_us
                .saturating_add(u64::try_from(wait).unwrap_or(u64::MAX)),
        )
    }

    /// Steps taken so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Steps in the whole segment.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Steps not yet taken.
    pub fn remaining(&self) -> u64 {
        self.total - self.done
    }

    /// True when every step is taken.
    pub fn finished(&self) -> bool {
        self.done >= self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;

    /// A 10 mL syringe (14.5 mm) on the paper's drive at 1/16 steps.
    fn paper() -> DosePlan {
        DosePlan::PAPER
    }

    #[test]
    fn the_paper_pump_in_numbers() {
        let p = paper();
        // π (7.25 mm)² × 1.8 µm / 16 = 0.018577 µL per microstep
        // (355/113 × 7,250² µm² × 112.5 nm).
        assert_eq!(p.al_per_step(), 18_577_122_511);
        assert_eq!(p.capacity_steps(), 533_333);
        assert_eq!(p.capacity_ul(), 9_907);
        // 2 mL is 107,659 microsteps; back to µL within one step.
        assert_eq!(p.steps_for_ul(2_000), 107_659);
        assert_eq!(p.ul_for_steps(107_659), 1_999);
        assert_eq!(p.schedule(20_000, 4_000, 0), Err(PlanError::ExceedsSyringe));
        assert_eq!(p.schedule(2_000, 0, 0), Err(PlanError::NoRate));
    }

    #[test]
    fn two_ml_at_four_ml_per_hour_takes_half_an_hour() {
        let p = paper();
        let mut s = p.schedule(2_000, 4_000, 1_000).unwrap();
        let mut t = 1_000;
        let mut taken = 0;
        while let Some(next) = s.next_step_at() {
            t = next;
            taken += s.advance(t);
        }
        assert_eq!(taken, 107_659);
        assert!(s.finished());
        // The last step falls due when the exact line reaches 107,659 steps
        // (just under 30 minutes: 2 mL is a fraction of a step more).
        let ideal_us =
            107_659u128 * u128::from(p.al_per_step()) * 3_600_000_000 / (4_000 * 1_000_000_000_000);
        assert!(ideal_us > 1_799_000_000 && ideal_us < 1_800_000_000);
        assert!((t - 1_000) as u128 >= ideal_us && (t - 1_000) as u128 <= ideal_us + 1);
    }

    proptest! {
        /// At every instant, over hours, for every rate from 0.1 to 200
        /// mL/h and a wide range of syringes and microstep settings, the
        /// steps taken are the floor of the exact ideal line: within one
        /// step of it, never ahead.
        #[test]
        fn never_drifts_a_step_from_the_ideal_line(
            diameter in 4_000u32..=30_000,
            travel in 20_000u32..=120_000,
            micro in prop::sample::select(vec![Microsteps::X1, Microsteps::X2, Microsteps::X4, Microsteps::X8, Microsteps::X16, Microsteps::X32]),
            rate in 100u32..=200_000,
            gaps in prop::collection::vec(1u64..=600_000_000, 1..60),
        ) {
            let plan = DosePlan::new(
                Syringe { inner_diameter_um: diameter, travel_um: travel },
                Drive { full_step_nm: 1_800, microsteps: micro },
            ).unwrap();
            let steps = plan.capacity_steps();
            let mut s = plan.schedule_steps(steps, rate, 0).unwrap();
            let mut now = 0u64;
            let mut taken = 0u64;
            for gap in gaps {
                now += gap;
                taken += s.advance(now);
                // Exact: floor(elapsed × rate / step volume), capped at the total.
                let exact = u128::from(now) * u128::from(rate) * u128::from(AL_PER_UL)
                    / (u128::from(plan.al_per_step()) * u128::from(US_PER_H));
                let ideal = exact.min(u128::from(steps));
                prop_assert_eq!(u128::from(taken), ideal);
                prop_assert_eq!(taken, s.done());
            }
        }

        /// Stepping exactly at `next_step_at` takes one step at a time and
        /// reaches the total exactly: no lost or doubled step.
        #[test]
        fn stepping_on_schedule_takes_one_step_each_time(
            rate in 100u32..=200_000,
            steps in 1u64..=2_000,
            start in 0u64..=1_000_000_000,
        ) {
            let plan = paper();
            let mut s = plan.schedule_steps(steps, rate, start).unwrap();
            let mut last = start;
            while let Some(t) = s.next_step_at() {
                prop_assert!(t > last || (t == last && s.done() == 0 && t == start));
                let n = s.advance(t);
                prop_assert_eq!(n, 1);
                // Not a microsecond early.
                let ideal_before = u128::from(t - 1 - start.min(t - 1)) * u128::from(rate) * u128::from(AL_PER_UL)
                    / (u128::from(plan.al_per_step()) * u128::from(US_PER_H));
                prop_assert!(ideal_before < u128::from(s.done()));
                last = t;
            }
            prop_assert_eq!(s.done(), steps);
            prop_assert_eq!(s.advance(u64::MAX), 0);
        }
    }
}
