//! The infusion itself: how much should have been delivered by now.

use infusion_protocol::{Index, InfusionState, StateChange};

/// Microlitre-milliseconds per hour: the accumulator unit. One µL/h running
/// for one ms adds 1; 3,600,000 of them make one µL.
const UL_MS_PER_UL_H: u64 = 3_600_000;

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
}

/// Integer model of delivery: volume grows by rate × time with the
/// remainder carried between ticks, so no fraction of a microlitre is ever
/// lost or counted twice, however the ticks fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Infusion {
    phase: Phase,
    version: u32,
    target_ul: u32,
    rate_ul_h: u32,
    delivered_ul: u32,
    /// Remainder of delivery below one µL, in µL·ms/h.
    carry: u64,
    last_ms: u64,
}

impl Default for Infusion {
    fn default() -> Self {
        Infusion {
            phase: Phase::Idle,
            version: 0,
            target_ul: 0,
            rate_ul_h: 0,
            delivered_ul: 0,
            carry: 0,
            last_ms: 0,
        }
    }
}

impl Infusion {
    /// The phase now.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The index version being delivered.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Delivered so far in this infusion, µL.
    pub fn delivered_ul(&self) -> u32 {
        self.delivered_ul
    }

    /// The rate the motor runs at now: 0 unless running.
    pub fn current_rate_ul_h(&self) -> u32 {
        if self.phase == Phase::Running {
            self.rate_ul_h
        } else {
            0
        }
    }

    /// Advances delivery to `now_ms`. Returns `Completed` when the total is
    /// reached during this step.
    pub fn advance(&mut self, now_ms: u64) -> Option<StateChange> {
        let dt = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        if self.phase != Phase::Running || dt == 0 {
            return None;
        }
        self.carry += u64::from(self.rate_ul_h) * dt;
        let whole = self.carry / UL_MS_PER_UL_H;
        self.carry %= UL_MS_PER_UL_H;
        let remaining = self.target_ul.saturating_sub(self.delivered_ul);
        let step = u32::try_from(whole).unwrap_or(u32::MAX).min(remaining);
        self.delivered_ul += step;
        if self.delivered_ul >= self.target_ul {
            self.phase = Phase::Completed;
            self.carry = 0;
            return Some(StateChange::Completed);
        }
        None
    }

    /// Applies an index at `now_ms` (advance to `now_ms` first). Returns the
    /// state change it causes, if any. An index of the version already
    /// applied changes nothing.
    pub fn apply(&mut self, index: &Index, now_ms: u64) -> Option<StateChange> {
        self.last_ms = self.last_ms.max(now_ms);
        if index.version == self.version || index.version == 0 {
            return None;
        }
        let starts_new = matches!(self.phase, Phase::Idle | Phase::Completed);
        self.version = index.version;
        self.target_ul = index.volume_ul;
        self.rate_ul_h = index.rate_ul_h;
        if starts_new {
            self.delivered_ul = 0;
            self.carry = 0;
            return match index.state {
                InfusionState::Run if self.delivered_ul < self.target_ul => {
                    self.phase = Phase::Running;
                    Some(StateChange::Started)
                }
                _ => None,
            };
        }
        if self.delivered_ul >= self.target_ul {
            self.phase = Phase::Completed;
            self.carry = 0;
            return Some(StateChange::Completed);
        }
        match (self.phase, index.state) {
            (Phase::Running, InfusionState::Run) => Some(StateChange::Adjusted),
            (Phase::Running, InfusionState::Hold) => {
                self.phase = Phase::Paused;
                Some(StateChange::Paused)
            }
            (Phase::Paused, InfusionState::Run) => {
                self.phase = Phase::Running;
                Some(StateChange::Resumed)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infusion_protocol::PatientLimits;

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

    #[test]
    fn delivers_exactly_rate_times_time_in_any_ticks() {
        let mut a = Infusion::default();
        let mut b = Infusion::default();
        a.apply(&index(1, 10_000, 4_000, InfusionState::Run), 0);
        b.apply(&index(1, 10_000, 4_000, InfusionState::Run), 0);
        a.advance(1_800_000);
        for t in (0..=1_800_000).step_by(7) {
            b.advance(t);
        }
        b.advance(1_800_000);
        assert_eq!(a.delivered_ul(), 2_000);
        assert_eq!(b.delivered_ul(), 2_000);
    }

    #[test]
    fn completes_at_the_total_and_not_beyond() {
        let mut i = Infusion::default();
        assert_eq!(
            i.apply(&index(1, 2_000, 4_000, InfusionState::Run), 0),
            Some(StateChange::Started)
        );
        assert_eq!(i.advance(3_600_000), Some(StateChange::Completed));
        assert_eq!(i.delivered_ul(), 2_000);
        assert_eq!(i.advance(7_200_000), None);
        assert_eq!(i.delivered_ul(), 2_000);
    }

    #[test]
    fn adjusts_pauses_resumes_and_completes_on_a_lower_total() {
        let mut i = Infusion::default();
        i.apply(&index(1, 5_000, 3_600, InfusionState::Run), 0);
        i.advance(1_000_000); // 1000 µL
        assert_eq!(
            i.apply(&index(2, 5_000, 7_200, InfusionState::Run), 1_000_000),
            Some(StateChange::Adjusted)
        );
        i.advance(1_500_000); // +1000 µL
        assert_eq!(i.delivered_ul(), 2_000);
        assert_eq!(
            i.apply(&index(3, 5_000, 7_200, InfusionState::Hold), 1_500_000),
            Some(StateChange::Paused)
        );
        i.advance(9_000_000);
        assert_eq!(i.delivered_ul(), 2_000);
        assert_eq!(
            i.apply(&index(4, 5_000, 7_200, InfusionState::Run), 9_000_000),
            Some(StateChange::Resumed)
        );
        assert_eq!(
            i.apply(&index(5, 1_500, 7_200, InfusionState::Run), 9_000_000),
            Some(StateChange::Completed)
        );
        assert_eq!(i.delivered_ul(), 2_000);
        // The same version again is no change.
        assert_eq!(
            i.apply(&index(5, 1_500, 7_200, InfusionState::Run), 9_000_000),
            None
        );
        // A new run after completion starts a new infusion.
        assert_eq!(
            i.apply(&index(6, 1_000, 7_200, InfusionState::Run), 9_000_000),
            Some(StateChange::Started)
        );
        assert_eq!(i.delivered_ul(), 0);
    }
}
