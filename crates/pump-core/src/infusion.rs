//! The infusion state machine: idle, running, paused, completed, alarm.
//!
//! Delivery is counted in motor microsteps, on the [`Schedule`] of the
//! [`DosePlan`]: the volume delivered is the steps taken times the volume of
//! one step, and the steps taken are always the floor of the ideal line
//! (rate × running time), across rate changes and pauses. Steps that fall
//! due are held in `pending` until the motor edge takes them with
//! [`Infusion::take_steps`], so no step is lost between a bookkeeping call
//! and a motor call, and none is handed out twice.

use infusion_protocol::{Alarm, Index, InfusionState, StateChange};

use crate::dose::{DosePlan, Schedule};

/// Where the infusion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No infusion yet (or index version 0).
    Idle,
    /// Delivering.
    Running,
    /// Stopped by a `hold` index; resumes on `run`.
    Paused,
    /// The prescribed total has been delivered.
    Completed,
    /// Stopped by an alarm; see [`Infusion::clear`] for what ends it.
    Alarm(Alarm),
}

impl Phase {
    /// The phase as displays and logs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Running => "running",
            Phase::Paused => "paused",
            Phase::Completed => "completed",
            Phase::Alarm(_) => "alarm",
        }
    }
}

/// Something the infusion did by itself while advancing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advanced {
    /// The prescribed total was reached.
    Completed,
    /// The plunger reached the end of its travel before the total.
    SyringeEmpty,
}

/// The infusion of one pump, in steps of its drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Infusion {
    plan: DosePlan,
    phase: Phase,
    version: u32,
    /// Run or hold, as the last accepted index said.
    state: InfusionState,
    rate_ul_h: u32,
    /// Steps that make up the prescribed total of this infusion.
    target_steps: u64,
    /// Steps taken in this infusion.
    done_steps: u64,
    /// Steps taken since the syringe was loaded.
    plunger_steps: u64,
    /// Steps due but not yet handed to the motor.
    pending: u64,
    schedule: Option<Schedule>,
    now_us: u64,
}

impl Infusion {
    /// An idle pump with a full syringe described by `plan`.
    pub fn new(plan: DosePlan) -> Self {
        Infusion {
            plan,
            phase: Phase::Idle,
            version: 0,
            state: InfusionState::Hold,
            rate_ul_h: 0,
            target_steps: 0,
            done_steps: 0,
            plunger_steps: 0,
            pending: 0,
            schedule: None,
            now_us: 0,
        }
    }

    /// The order `version`, interrupted by a restart after it gave
    /// `done_steps` (the plunger `plunger_steps` from its start): stopped
    /// by the `restarted` alarm, and on hold, until a newer version of the
    /// order continues it against what it already gave.
    pub fn restored(plan: DosePlan, version: u32, done_steps: u64, plunger_steps: u64) -> Self {
        Infusion {
            phase: Phase::Alarm(Alarm::Restarted),
            version,
            done_steps,
            plunger_steps: plunger_steps.min(plan.capacity_steps()),
            ..Infusion::new(plan)
        }
    }

    /// The syringe and drive.
    pub fn plan(&self) -> &DosePlan {
        &self.plan
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The index version being delivered.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Delivered so far in this infusion, µL (rounded down).
    pub fn delivered_ul(&self) -> u32 {
        u32::try_from(self.plan.ul_for_steps(self.done_steps)).unwrap_or(u32::MAX)
    }

    /// Steps taken so far in this infusion.
    pub fn delivered_steps(&self) -> u64 {
        self.done_steps
    }

    /// Steps that make up the order's total.
    pub fn target_steps(&self) -> u64 {
        self.target_steps
    }

    /// Steps taken since the syringe was loaded.
    pub fn plunger_steps(&self) -> u64 {
        self.plunger_steps
    }

    /// The rate the motor runs at now: 0 unless running.
    pub fn current_rate_ul_h(&self) -> u32 {
        if self.phase == Phase::Running {
            self.rate_ul_h
        } else {
            0
        }
    }

    /// When the next step falls due, µs, while running.
    pub fn next_step_at_us(&self) -> Option<u64> {
        match (self.phase, &self.schedule) {
            (Phase::Running, Some(s)) => s.next_step_at(),
            _ => None,
        }
    }

    /// Advances delivery to `now_us`; steps that fall due wait in
    /// `pending` for [`Infusion::take_steps`]. Times before the last call
    /// count as the last call.
    pub fn advance(&mut self, now_us: u64) -> Option<Advanced> {
        self.now_us = self.now_us.max(now_us);
        let (Phase::Running, Some(schedule)) = (self.phase, self.schedule.as_mut()) else {
            return None;
        };
        let due = schedule.advance(self.now_us);
        // Never past the end of the plunger's travel: steps the schedule
        // counted beyond it are given back to it, to take after a reload.
        let travel_left = self
            .plan
            .capacity_steps()
            .saturating_sub(self.plunger_steps);
        let n = due.min(travel_left);
        if n < due {
            let remaining = self.target_steps.saturating_sub(self.done_steps + n);
            self.schedule = schedule.continue_with(remaining, self.rate_ul_h).ok();
        }
        self.done_steps += n;
        self.plunger_steps += n;
        self.pending += n;
        if self.done_steps >= self.target_steps {
            self.phase = Phase::Completed;
            self.schedule = None;
            return Some(Advanced::Completed);
        }
        if self.plunger_steps >= self.plan.capacity_steps() {
            self.phase = Phase::Alarm(Alarm::SyringeEmpty);
            return Some(Advanced::SyringeEmpty);
        }
        None
    }

    /// Advances to `now_us` and hands the motor every step due and not yet
    /// taken. The motor edge calls this at (or after) each
    /// [`Infusion::next_step_at_us`].
    pub fn take_steps(&mut self, now_us: u64) -> (u64, Option<Advanced>) {
        let event = self.advance(now_us);
        (core::mem::take(&mut self.pending), event)
    }

    /// Applies an accepted index at `now_us` (advance to `now_us` first).
    /// Returns the state change it causes. A version already applied
    /// changes nothing; a new version takes effect from the next step:
    /// the new rate from the part of a step already accumulated, the new
    /// total counted against the steps already taken.
    pub fn apply(&mut self, index: &Index, now_us: u64) -> Option<StateChange> {
        self.now_us = self.now_us.max(now_us);
        if index.version == self.version || index.version == 0 {
            return None;
        }
        let starts_new = matches!(self.phase, Phase::Idle | Phase::Completed);
        let was = self.phase;
        self.version = index.version;
        self.state = index.state;
        self.rate_ul_h = index.rate_ul_h;
        self.target_steps = self.plan.steps_for_ul(index.volume_ul);
        if starts_new {
            self.done_steps = 0;
            self.schedule = None;
            if index.state == InfusionState::Run && self.target_steps > 0 {
                self.schedule = self
                    .plan
                    .schedule_steps(self.target_steps, self.rate_ul_h, self.now_us)
                    .ok();
                if self.schedule.is_some() {
                    self.phase = Phase::Running;
                    return Some(StateChange::Started);
                }
            }
            return None;
        }
        if self.done_steps >= self.target_steps {
            self.phase = Phase::Completed;
            self.schedule = None;
            return Some(StateChange::Completed);
        }
        // Same infusion, new rate and total, from the accumulated part of
        // the next step on.
        let remaining = self.target_steps - self.done_steps;
        self.schedule = match &self.schedule {
            Some(s) => s.continue_with(remaining, self.rate_ul_h).ok(),
            None => self
                .plan
                .schedule_steps(remaining, self.rate_ul_h, self.now_us)
                .ok(),
        };
        if let Phase::Alarm(_) = was {
            // The new values wait for the alarm to be cleared.
            return None;
        }
        self.settle(was)
    }

    /// Puts the phase where the accepted state says, after `was`: running
    /// on `run`, paused on `hold`. Returns the change seen from outside.
    fn settle(&mut self, was: Phase) -> Option<StateChange> {
        let run = self.state == InfusionState::Run && self.schedule.is_some();
        self.phase = if run { Phase::Running } else { Phase::Paused };
        if run && let Some(s) = self.schedule.as_mut() {
            s.resume_at(self.now_us);
        }
        match (was, self.phase) {
            (Phase::Running, Phase::Running) => Some(StateChange::Adjusted),
            (Phase::Running, _) => Some(StateChange::Paused),
            (_, Phase::Running) => Some(StateChange::Resumed),
            _ => None,
        }
    }

    /// Stops the motor for `alarm` at `now_us` (advance first). Returns
    /// `Paused` if the motor was running. An idle or completed pump has
    /// nothing to stop and stays as it is.
    pub fn stop(&mut self, alarm: Alarm, now_us: u64) -> Option<StateChange> {
        self.now_us = self.now_us.max(now_us);
        match self.phase {
            Phase::Running => {
                self.phase = Phase::Alarm(alarm);
                Some(StateChange::Paused)
            }
            Phase::Paused | Phase::Alarm(_) => {
                self.phase = Phase::Alarm(alarm);
                None
            }
            Phase::Idle | Phase::Completed => None,
        }
    }

    /// Ends an alarm stop at `now_us`: the infusion goes back to what the
    /// last accepted index says (running or paused). The caller decides
    /// when that is safe (the hardware condition is gone, a clinician
    /// confirmed, the link is back).
    pub fn clear(&mut self, now_us: u64) -> Option<StateChange> {
        self.now_us = self.now_us.max(now_us);
        let Phase::Alarm(_) = self.phase else {
            return None;
        };
        self.settle(Phase::Paused)
    }

    /// A full syringe was loaded: the plunger is back at the start. An
    /// empty-syringe stop stays an alarm until cleared.
    pub fn load_syringe(&mut self) {
        self.plunger_steps = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dose::{AL_PER_UL, US_PER_H};
    use infusion_protocol::PatientLimits;
    use proptest::prelude::*;

    const H: u64 = 3_600_000_000;

    fn index(version: u32, volume_ul: u32, rate_ul_h: u32, state: InfusionState) -> Index {
        Index {
            version,
            volume_ul,
            rate_ul_h,
            state,
            limits: PatientLimits {
                min_rate_ul_h: 100,
                max_rate_ul_h: 200_000,
                max_volume_ul: 1_000_000,
            },
        }
    }

    fn run(version: u32, volume_ul: u32, rate_ul_h: u32) -> Index {
        index(version, volume_ul, rate_ul_h, InfusionState::Run)
    }

    #[test]
    fn two_ml_at_four_ml_per_hour_in_any_ticks() {
        let mut a = Infusion::new(DosePlan::PAPER);
        let mut b = Infusion::new(DosePlan::PAPER);
        assert_eq!(
            a.apply(&run(1, 2_000, 4_000), 0),
            Some(StateChange::Started)
        );
        b.apply(&run(1, 2_000, 4_000), 0);
        let (steps_a, _) = a.take_steps(H / 4);
        let mut steps_b = 0;
        for t in (0..=H / 4).step_by(7_777) {
            steps_b += b.take_steps(t).0;
        }
        steps_b += b.take_steps(H / 4).0;
        // 1 mL in a quarter hour, to the step.
        assert_eq!(steps_a, steps_b);
        assert_eq!(a.delivered_ul(), 999);
        assert_eq!(
            a.take_steps(H),
            (107_659 - steps_a, Some(Advanced::Completed))
        );
        assert_eq!(a.phase(), Phase::Completed);
        assert_eq!(a.delivered_steps(), 107_659);
        assert_eq!(a.take_steps(2 * H), (0, None));
    }

    #[test]
    fn adjusts_pauses_resumes_and_completes_on_a_lower_total() {
        let mut i = Infusion::new(DosePlan::PAPER);
        i.apply(&run(1, 5_000, 3_600), 0);
        i.take_steps(H / 3);
        assert_eq!(
            i.apply(&run(2, 5_000, 7_200), H / 3),
            Some(StateChange::Adjusted)
        );
        i.take_steps(H / 2);
        assert_eq!(
            i.apply(&index(3, 5_000, 7_200, InfusionState::Hold), H / 2),
            Some(StateChange::Paused)
        );
        let held = i.delivered_steps();
        assert_eq!(i.take_steps(5 * H), (0, None), "nothing moves on hold");
        assert_eq!(i.delivered_steps(), held);
        assert_eq!(
            i.apply(&run(4, 5_000, 7_200), 5 * H),
            Some(StateChange::Resumed)
        );
        assert_eq!(
            i.apply(&run(5, 1_500, 7_200), 5 * H),
            Some(StateChange::Completed)
        );
        assert_eq!(i.apply(&run(5, 1_500, 7_200), 5 * H), None, "same version");
        assert_eq!(
            i.apply(&run(6, 1_000, 7_200), 5 * H),
            Some(StateChange::Started)
        );
        assert_eq!(i.delivered_steps(), 0);
    }

    #[test]
    fn alarms_stop_and_clear_back_to_the_prescribed_state() {
        let mut i = Infusion::new(DosePlan::PAPER);
        i.apply(&run(1, 5_000, 5_000), 0);
        i.take_steps(H / 10);
        assert_eq!(i.stop(Alarm::Occlusion, H / 10), Some(StateChange::Paused));
        assert_eq!(i.phase(), Phase::Alarm(Alarm::Occlusion));
        let before = i.delivered_steps();
        assert_eq!(i.take_steps(H), (0, None));
        assert_eq!(i.delivered_steps(), before);
        assert_eq!(i.clear(H), Some(StateChange::Resumed));
        assert_eq!(i.phase(), Phase::Running);
        // The hour stopped counts for nothing: a tenth of an hour later
        // the pump has delivered two tenths of an hour's worth.
        i.take_steps(H + H / 10);
        let ideal = 2 * 500 * AL_PER_UL / DosePlan::PAPER.al_per_step();
        assert!(i.delivered_steps().abs_diff(ideal) <= 1);
    }

    #[test]
    fn the_end_of_travel_stops_short_of_the_total() {
        let mut i = Infusion::new(DosePlan::PAPER);
        i.apply(&run(1, 9_000, 200_000), 0);
        i.take_steps(H / 20); // 10 mL worth of time, 9 mL prescribed
        assert_eq!(i.phase(), Phase::Completed);
        i.apply(&run(2, 9_000, 200_000), H);
        assert_eq!(i.delivered_steps(), 0);
        let (n, event) = i.take_steps(2 * H);
        assert_eq!(event, Some(Advanced::SyringeEmpty));
        assert_eq!(i.phase(), Phase::Alarm(Alarm::SyringeEmpty));
        assert_eq!(i.plunger_steps(), DosePlan::PAPER.capacity_steps());
        assert_eq!(
            n,
            DosePlan::PAPER.capacity_steps() - DosePlan::PAPER.steps_for_ul(9_000)
        );
        i.load_syringe();
        assert_eq!(i.clear(2 * H), Some(StateChange::Resumed));
        assert_eq!(i.take_steps(3 * H).1, Some(Advanced::Completed));
        assert_eq!(i.delivered_steps(), DosePlan::PAPER.steps_for_ul(9_000));
    }

    proptest! {
        /// However rates change and pauses fall, the steps taken are the
        /// floor of the exact integral of rate over running time: a change
        /// takes effect from the next step with no step lost or doubled,
        /// and every step is handed to the motor exactly once.
        #[test]
        fn rate_changes_and_pauses_lose_or_double_no_step(
            changes in prop::collection::vec((1u64..=900_000_000, 100u32..=200_000, any::<bool>()), 1..40),
        ) {
            let plan = DosePlan::PAPER;
            let mut i = Infusion::new(plan);
            let volume = 9_000;
            i.apply(&run(1, volume, changes[0].1), 0);
            let mut now = 0u64;
            let mut motor = 0u64;
            // ∫ rate dt over running time, in µL/h·µs.
            let mut integral: u128 = 0;
            let mut rate = changes[0].1;
            let mut running = true;
            for (version, (gap, next_rate, hold)) in changes.into_iter().enumerate() {
                // Motor calls at arbitrary points inside the gap.
                motor += i.take_steps(now + gap / 3).0;
                now += gap;
                if running {
                    integral += u128::from(gap) * u128::from(rate);
                }
                motor += i.take_steps(now).0;
                let ideal = integral * u128::from(AL_PER_UL)
                    / (u128::from(plan.al_per_step()) * u128::from(US_PER_H));
                let target = u128::from(plan.steps_for_ul(volume));
                prop_assert_eq!(u128::from(i.delivered_steps()), ideal.min(target));
                prop_assert_eq!(motor, i.delivered_steps());
                if i.phase() == Phase::Completed {
                    break;
                }
                let state = if hold { InfusionState::Hold } else { InfusionState::Run };
                i.apply(&index(u32::try_from(version).unwrap() + 2, volume, next_rate, state), now);
                rate = next_rate;
                running = !hold;
            }
        }
    }
}
