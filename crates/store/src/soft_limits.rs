//! A patient's limits as hospital drug libraries keep them: **hard**
//! limits no order may cross, and **soft** limits inside them that an
//! order may cross only when its prescriber confirms why. A change of the
//! running rate by more than a factor is confirmed the same way. A new
//! patient has no limits a physician has set, and no order is written
//! until one has (red team round 2, finding 7: limits failed open, at the
//! whole hardware range).
//!
//! The pump knows only the hard limits (they are in its signed login
//! answer); soft limits and confirmations are the server's.

use infusion_protocol::{InfusionState, PatientLimits};

use crate::units::{milli, ml, ml_h, parse_milli};
use crate::{NewPrescription, Prescription, StoreError};

/// A patient's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// What no order may cross; what the pump enforces too.
    pub hard: PatientLimits,
    /// What an order crosses only with a confirmed reason; inside `hard`.
    /// Equal to `hard` when the physician set no soft limits.
    pub soft: PatientLimits,
    /// False until a physician (or an administrator) set these limits; a
    /// new patient starts at the hardware range, and with no order until
    /// then.
    pub set: bool,
}

impl Limits {
    /// Hard limits with no soft zone inside them, as set by someone.
    pub fn hard_only(hard: PatientLimits) -> Limits {
        Limits {
            hard,
            soft: hard,
            set: true,
        }
    }
}

impl From<PatientLimits> for Limits {
    fn from(hard: PatientLimits) -> Limits {
        Limits::hard_only(hard)
    }
}

/// Checks that soft limits lie inside the hard ones.
pub fn check_soft(l: &Limits) -> Result<(), StoreError> {
    let (h, s) = (&l.hard, &l.soft);
    if s.min_rate_ul_h < h.min_rate_ul_h
        || s.max_rate_ul_h > h.max_rate_ul_h
        || s.min_rate_ul_h > s.max_rate_ul_h
    {
        return Err(StoreError::OutsideLimits(format!(
            "the soft rate limits {} to {} must lie within the hard ones, {} to {}",
            ml_h(s.min_rate_ul_h),
            ml_h(s.max_rate_ul_h),
            ml_h(h.min_rate_ul_h),
            ml_h(h.max_rate_ul_h)
        )));
    }
    if s.max_volume_ul == 0 || s.max_volume_ul > h.max_volume_ul {
        return Err(StoreError::OutsideLimits(format!(
            "the soft volume limit {} must lie within the hard one, {}",
            ml(s.max_volume_ul),
            ml(h.max_volume_ul)
        )));
    }
    Ok(())
}

/// How far one order may move the rate from the current prescription's
/// without a confirmed reason: by at most `factor_permille / 1000` up or
/// down (2000: to at most double, or at least half).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStep {
    /// The factor, in thousandths; at least 1000.
    pub factor_permille: u32,
}

impl RateStep {
    /// The default: a rate at most doubled or halved without confirming.
    pub const DEFAULT: RateStep = RateStep {
        factor_permille: 2_000,
    };

    /// Parses a factor as typed ("2", "1.5", "1.25"), with at most three
    /// decimals and at least 1, in integers.
    pub fn parse(text: &str) -> Option<RateStep> {
        parse_milli(text)
            .filter(|&f| f >= 1000)
            .map(|factor_permille| RateStep { factor_permille })
    }

    /// True when going from `from` to `to` µL/h is a bigger step.
    fn exceeded(self, from: u32, to: u32) -> bool {
        let f = u64::from(self.factor_permille);
        let (from, to) = (u64::from(from), u64::from(to));
        to * 1000 > from * f || to * f < from * 1000
    }
}

impl Default for RateStep {
    fn default() -> RateStep {
        RateStep::DEFAULT
    }
}

/// What the prescriber said with an order, and the rate-step policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confirmation {
    /// Why the order crosses a soft limit, as typed; `None` when the order
    /// was sent without one.
    pub reason: Option<String>,
    /// The rate step allowed without a reason.
    pub rate_step: RateStep,
}

/// Longest reason kept, in bytes.
pub const REASON_MAX: usize = 500;

impl Confirmation {
    /// No reason given, under `rate_step`.
    pub fn none(rate_step: RateStep) -> Confirmation {
        Confirmation {
            reason: None,
            rate_step,
        }
    }

    /// The reason given, when it is one: words, not blank, bounded.
    pub fn given(&self) -> Result<Option<&str>, StoreError> {
        let Some(r) = self
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
        else {
            return Ok(None);
        };
        if r.len() > REASON_MAX || r.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "a reason is at most {REASON_MAX} bytes of text on one line"
            )));
        }
        Ok(Some(r))
    }
}

/// The soft limits an order crosses, in words ("the rate 9.75 mL/h is
/// above the soft limit of 8 mL/h"). A hold crosses none: stopping is
/// never the risk.
pub fn crossings(
    p: &NewPrescription,
    l: &Limits,
    current: Option<&Prescription>,
    step: RateStep,
) -> Vec<String> {
    let mut out = Vec::new();
    if p.state == InfusionState::Hold {
        return out;
    }
    let s = &l.soft;
    if p.volume_ul > s.max_volume_ul {
        out.push(format!(
            "the volume {} is above the soft limit of {}",
            ml(p.volume_ul),
            ml(s.max_volume_ul)
        ));
    }
    if p.rate_ul_h > s.max_rate_ul_h {
        out.push(format!(
            "the rate {} is above the soft limit of {}",
            ml_h(p.rate_ul_h),
            ml_h(s.max_rate_ul_h)
        ));
    }
    if p.rate_ul_h < s.min_rate_ul_h {
        out.push(format!(
            "the rate {} is below the soft limit of {}",
            ml_h(p.rate_ul_h),
            ml_h(s.min_rate_ul_h)
        ));
    }
    if let Some(c) = current
        && step.exceeded(c.rate_ul_h, p.rate_ul_h)
    {
        out.push(format!(
            "the rate changes from {} to {}, more than {} times up or down",
            ml_h(c.rate_ul_h),
            ml_h(p.rate_ul_h),
            milli(step.factor_permille)
        ));
    }
    out
}

/// Decides whether an order may be written as far as soft limits go:
/// `Ok(None)` when it crosses none, `Ok(Some(note))` when it crosses some
/// and a reason was given (the note is audited), and
/// [`StoreError::NeedsConfirmation`] naming the crossings otherwise.
pub fn confirmed(
    p: &NewPrescription,
    l: &Limits,
    current: Option<&Prescription>,
    confirmation: &Confirmation,
) -> Result<Option<String>, StoreError> {
    confirmed_with(p, l, current, confirmation, Vec::new())
}

/// [`confirmed`], with `also` the crossings of the drug library's soft
/// limits ([`crate::drug_crossings`]) counted among the patient's.
pub fn confirmed_with(
    p: &NewPrescription,
    l: &Limits,
    current: Option<&Prescription>,
    confirmation: &Confirmation,
    also: Vec<String>,
) -> Result<Option<String>, StoreError> {
    let crossed = soft_crossings(p, l, current, confirmation.rate_step, also)?;
    note_for(&crossed, confirmation)
}

/// Every soft limit an order crosses (the patient's, with `also` the drug
/// library's), in words; refused before the patient's limits are set. What
/// the review before sending shows, and what a reason must answer.
pub fn soft_crossings(
    p: &NewPrescription,
    l: &Limits,
    current: Option<&Prescription>,
    step: RateStep,
    also: Vec<String>,
) -> Result<Vec<String>, StoreError> {
    if !l.set {
        return Err(StoreError::OutsideLimits(
            "this patient's limits have not been set yet: a physician sets them before the first \
             order"
                .into(),
        ));
    }
    let mut crossed = crossings(p, l, current, step);
    crossed.extend(also);
    Ok(crossed)
}

/// The audited note of an order that crossed `crossed`: `Ok(None)` when
/// it crossed none, the crossings and the reason when one was given, and
/// [`StoreError::NeedsConfirmation`] otherwise.
pub(crate) fn note_for(
    crossed: &[String],
    confirmation: &Confirmation,
) -> Result<Option<String>, StoreError> {
    if crossed.is_empty() {
        return Ok(None);
    }
    match confirmation.given()? {
        Some(reason) => Ok(Some(format!("{}; reason: {reason}", crossed.join("; ")))),
        None => Err(StoreError::NeedsConfirmation(crossed.to_vec())),
    }
}

#[cfg(test)]
mod tests;
