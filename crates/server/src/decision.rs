//! The decision algorithm: recent vital signs in, a suggested prescription
//! change (or none) out. Behind a trait so that a validated clinical
//! algorithm can replace the default; whatever it proposes is clamped to
//! the patient's limits here and checked again by the store, and changes
//! nothing until a physician approves it.
//!
//! The default, [`TremorRule`], is deliberately simple and documented so a
//! physician can check every suggestion against the vitals shown beside it:
//!
//! - it needs the [`TremorRule::WINDOW`] newest vitals readings and a
//!   running prescription;
//! - if the newest SpO2 is below 92 %, it suggests lowering the rate by
//!   20 % (oxygen saturation trumps symptom control);
//! - else, if the mean tremor score of the window is 60 or more, it
//!   suggests raising the rate by 10 %;
//! - else, if that mean is 10 or less, it suggests lowering it by 10 %;
//! - the rate is clamped to the patient's limits and the volume kept (or
//!   clamped to the volume limit); if that is the current prescription,
//!   there is no suggestion.
//!
//! Integer arithmetic only, like the rest of the control path.

use infusion_protocol::{EventBody, InfusionState, PatientId, PatientLimits, Vitals};
use infusion_store::{NewSuggestion, Prescription, StoreError, StoreResult};

use crate::AppState;
use crate::clock::now_ms;

/// What an algorithm proposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Volume, µL.
    pub volume_ul: u32,
    /// Rate, µL/h.
    pub rate_ul_h: u32,
    /// Why, for the physician.
    pub reason: String,
}

/// Turns recent vitals into a suggested change.
pub trait DecisionAlgorithm: Send + Sync + 'static {
    /// A proposal for `current` given `vitals` (newest first), or `None`.
    /// Implementations may propose anything; [`suggest`] clamps it.
    fn propose(
        &self,
        vitals: &[Vitals],
        current: &Prescription,
        limits: &PatientLimits,
    ) -> Option<Proposal>;
}

/// The default rule; see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct TremorRule;

impl TremorRule {
    /// How many of the newest readings are averaged.
    pub const WINDOW: usize = 3;
}

fn scaled(rate: u32, percent: u32) -> u32 {
    u32::try_from(u64::from(rate) * u64::from(percent) / 100).unwrap_or(u32::MAX)
}

impl DecisionAlgorithm for TremorRule {
    fn propose(
        &self,
        vitals: &[Vitals],
        current: &Prescription,
        _limits: &PatientLimits,
    ) -> Option<Proposal> {
        if current.state != InfusionState::Run || vitals.len() < Self::WINDOW {
            return None;
        }
        let window = &vitals[..Self::WINDOW];
        let mean_tremor = window
            .iter()
            .map(|v| u32::from(v.tremor_score))
            .sum::<u32>()
            / Self::WINDOW as u32;
        let newest = window[0];
        let (percent, reason) = if newest.spo2_pct < 92 {
            (
                80,
                format!(
                    "SpO2 {} % is below 92 %: lower the rate by 20 %",
                    newest.spo2_pct
                ),
            )
        } else if mean_tremor >= 60 {
            (
                110,
                format!(
                    "mean tremor score {mean_tremor} over the last {} readings is 60 or more: raise the rate by 10 %",
                    Self::WINDOW
                ),
            )
        } else if mean_tremor <= 10 {
            (
                90,
                format!(
                    "mean tremor score {mean_tremor} over the last {} readings is 10 or less: lower the rate by 10 %",
                    Self::WINDOW
                ),
            )
        } else {
            return None;
        };
        Some(Proposal {
            volume_ul: current.volume_ul,
            rate_ul_h: scaled(current.rate_ul_h, percent),
            reason,
        })
    }
}

/// Runs `algorithm` and makes its proposal safe: clamped to `limits`, and
/// `None` when that is no change.
pub fn suggest(
    algorithm: &dyn DecisionAlgorithm,
    vitals: &[Vitals],
    current: &Prescription,
    limits: &PatientLimits,
) -> Option<Proposal> {
    if limits.min_rate_ul_h > limits.max_rate_ul_h {
        return None;
    }
    let mut p = algorithm.propose(vitals, current, limits)?;
    p.rate_ul_h = p
        .rate_ul_h
        .clamp(limits.min_rate_ul_h, limits.max_rate_ul_h);
    p.volume_ul = p.volume_ul.clamp(1, limits.max_volume_ul.max(1));
    if !limits.allows(p.volume_ul, p.rate_ul_h)
        || (p.volume_ul == current.volume_ul && p.rate_ul_h == current.rate_ul_h)
    {
        return None;
    }
    Some(p)
}

/// How many recent events are searched for vitals readings.
const RECENT: u32 = 100;

/// Runs the server's algorithm for `patient` on their newest vitals and
/// stores its suggestion, if any; the id of a new suggestion. Called after
/// a report that carried vitals, off the device's request path.
pub async fn evaluate(app: &AppState, patient: PatientId) -> StoreResult<Option<i64>> {
    let summary = app.store.patient(patient).await?;
    let Some(current) = summary.prescription else {
        return Ok(None);
    };
    let vitals: Vec<Vitals> = app
        .store
        .recent_events(patient, RECENT)
        .await?
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::Vitals(v) => Some(v),
            _ => None,
        })
        .collect();
    let Some(p) = suggest(&*app.decision, &vitals, &current, &summary.limits.soft) else {
        return Ok(None);
    };
    let new = NewSuggestion {
        based_on_version: current.version,
        volume_ul: p.volume_ul,
        rate_ul_h: p.rate_ul_h,
        reason: p.reason,
    };
    match app.store.suggest(patient, new, now_ms()).await {
        Ok(id) => Ok(id),
        // The prescription or limits changed in the meantime: the next
        // vitals will be judged against the new ones.
        Err(StoreError::Conflict(_) | StoreError::OutsideLimits(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rx(rate_ul_h: u32, volume_ul: u32) -> Prescription {
        Prescription {
            version: 1,
            volume_ul,
            rate_ul_h,
            state: InfusionState::Run,
            created_at_ms: 0,
            created_by: "t".into(),
            fetched_at_ms: None,
            drug: None,
        }
    }

    fn v(tremor: u8, spo2: u8) -> Vitals {
        Vitals {
            heart_rate_bpm: 70,
            spo2_pct: spo2,
            tremor_score: tremor,
        }
    }

    const LIMITS: PatientLimits = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 10_000,
        max_volume_ul: 10_000,
    };

    #[test]
    fn the_rule_as_documented() {
        let current = rx(4_000, 2_000);
        let s = |vs: &[Vitals]| suggest(&TremorRule, vs, &current, &LIMITS).map(|p| p.rate_ul_h);
        assert_eq!(s(&[v(70, 97), v(65, 97), v(60, 97)]), Some(4_400));
        assert_eq!(s(&[v(5, 97), v(10, 97), v(0, 97)]), Some(3_600));
        assert_eq!(s(&[v(30, 97), v(30, 97), v(30, 97)]), None, "in between");
        assert_eq!(
            s(&[v(70, 90), v(70, 97), v(70, 97)]),
            Some(3_200),
            "SpO2 first"
        );
        assert_eq!(s(&[v(70, 97), v(70, 97)]), None, "too few readings");
        let held = Prescription {
            state: InfusionState::Hold,
            ..current.clone()
        };
        assert_eq!(suggest(&TremorRule, &[v(70, 97); 3], &held, &LIMITS), None);
        // At the limit: clamped; nothing left to change: no suggestion.
        let top = rx(9_500, 2_000);
        assert_eq!(
            suggest(&TremorRule, &[v(90, 97); 3], &top, &LIMITS).map(|p| p.rate_ul_h),
            Some(10_000)
        );
        let at_max = rx(10_000, 2_000);
        assert_eq!(
            suggest(&TremorRule, &[v(90, 97); 3], &at_max, &LIMITS),
            None
        );
    }

    /// An algorithm that proposes whatever it is told.
    struct Wild(u32, u32);
    impl DecisionAlgorithm for Wild {
        fn propose(&self, _: &[Vitals], _: &Prescription, _: &PatientLimits) -> Option<Proposal> {
            Some(Proposal {
                volume_ul: self.0,
                rate_ul_h: self.1,
                reason: "wild".into(),
            })
        }
    }

    proptest! {
        #[test]
        fn never_outside_the_limits(
            min in 100u32..=200_000, span in 0u32..=200_000, max_volume in 1u32..=1_000_000,
            volume in any::<u32>(), rate in any::<u32>(),
            cur_rate in 100u32..=200_000, cur_volume in 1u32..=1_000_000,
            tremors in proptest::collection::vec((0u8..=100, 0u8..=100), 0..6),
        ) {
            let limits = PatientLimits {
                min_rate_ul_h: min,
                max_rate_ul_h: min.saturating_add(span).min(200_000).max(min),
                max_volume_ul: max_volume,
            };
            let current = rx(cur_rate, cur_volume);
            let vitals: Vec<Vitals> = tremors.iter().map(|&(t, s)| v(t, s)).collect();
            for p in [
                suggest(&Wild(volume, rate), &vitals, &current, &limits),
                suggest(&TremorRule, &vitals, &current, &limits),
            ].into_iter().flatten() {
                prop_assert!(limits.allows(p.volume_ul, p.rate_ul_h), "{p:?} outside {limits:?}");
                prop_assert!(p.volume_ul != current.volume_ul || p.rate_ul_h != current.rate_ul_h);
            }
        }
    }
}
