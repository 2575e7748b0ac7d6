//! Treatment: a patient's limits and prescription versions, the summary a
//! dashboard shows, and the rules every write of them follows.

use async_trait::async_trait;
use infusion_protocol::limits::{MAX_RATE_UL_H, MAX_VOLUME_UL, MIN_RATE_UL_H};
use infusion_protocol::{InfusionState, MacAddress, PatientId, PatientLimits};

use crate::{Change, Effects, NewAudit, StoreError, StoreResult};

/// Limits, prescriptions and patient summaries, one transaction per
/// method.
#[async_trait]
pub trait Treatment: Send + Sync {
    /// Replaces a patient's limits. Refused with
    /// [`StoreError::OutsideLimits`] when the current prescription would fall
    /// outside them: change the prescription first.
    async fn set_limits(
        &self,
        patient: PatientId,
        limits: PatientLimits,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Writes a new prescription version and returns its number. Refused
    /// with [`StoreError::OutsideLimits`] outside the patient's limits.
    async fn set_prescription(
        &self,
        patient: PatientId,
        prescription: NewPrescription,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u32>;

    /// A patient's account, device, limits and current prescription.
    async fn patient(&self, patient: PatientId) -> StoreResult<PatientSummary>;

    /// Summaries of a physician's patients, by last then first name.
    async fn patients_of(&self, physician_username: &str) -> StoreResult<Vec<PatientSummary>>;

    /// Every prescription version of a patient, oldest first.
    async fn prescriptions(&self, patient: PatientId) -> StoreResult<Vec<Prescription>>;
}

/// A prescription to write: the values of the next index version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewPrescription {
    /// Volume to deliver, µL.
    pub volume_ul: u32,
    /// Rate, µL/h.
    pub rate_ul_h: u32,
    /// Run or hold.
    pub state: InfusionState,
}

/// One stored prescription version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prescription {
    /// Version, from 1.
    pub version: u32,
    /// Volume to deliver, µL.
    pub volume_ul: u32,
    /// Rate, µL/h.
    pub rate_ul_h: u32,
    /// Run or hold.
    pub state: InfusionState,
    /// When it was written, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// Who wrote it.
    pub created_by: String,
    /// When a pump first fetched it through the index API, if one has.
    pub fetched_at_ms: Option<i64>,
}

/// A patient's account, device and current prescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientSummary {
    /// The patient record.
    pub patient_id: PatientId,
    /// Login name.
    pub username: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// The treating physician's username.
    pub physician_username: String,
    /// The bound device, if any.
    pub device: Option<MacAddress>,
    /// Current limits.
    pub limits: PatientLimits,
    /// The newest prescription, if one was written.
    pub prescription: Option<Prescription>,
    /// When the device last presented a valid token, ms since the epoch.
    pub last_contact_ms: Option<i64>,
}

/// The limits a new patient starts with: the pump's hard limits. The
/// physician narrows them; no prescription exists until one is written.
pub const DEFAULT_LIMITS: PatientLimits = PatientLimits {
    min_rate_ul_h: MIN_RATE_UL_H,
    max_rate_ul_h: MAX_RATE_UL_H,
    max_volume_ul: MAX_VOLUME_UL,
};

/// Checks limits against the pump's hard limits and themselves. Shared by
/// every backend so that all refuse the same input with the same words.
pub fn check_limits(l: &PatientLimits) -> Result<(), StoreError> {
    use StoreError::OutsideLimits;
    if l.min_rate_ul_h < MIN_RATE_UL_H || l.max_rate_ul_h > MAX_RATE_UL_H {
        return Err(OutsideLimits(format!(
            "rate limits must lie within the pump's {MIN_RATE_UL_H}..={MAX_RATE_UL_H} µL/h"
        )));
    }
    if l.min_rate_ul_h > l.max_rate_ul_h {
        return Err(OutsideLimits(format!(
            "minimum rate {} µL/h is above maximum rate {} µL/h",
            l.min_rate_ul_h, l.max_rate_ul_h
        )));
    }
    if l.max_volume_ul == 0 || l.max_volume_ul > MAX_VOLUME_UL {
        return Err(OutsideLimits(format!(
            "maximum volume must lie within 1..={MAX_VOLUME_UL} µL"
        )));
    }
    Ok(())
}

/// Checks a prescription against a patient's limits.
pub fn check_prescription(p: &NewPrescription, l: &PatientLimits) -> Result<(), StoreError> {
    if p.volume_ul == 0 {
        return Err(StoreError::OutsideLimits(
            "volume must be at least 1 µL".into(),
        ));
    }
    if !l.allows(p.volume_ul, p.rate_ul_h) {
        return Err(StoreError::OutsideLimits(format!(
            "{} µL at {} µL/h is outside the patient's limits ({}..={} µL/h, at most {} µL)",
            p.volume_ul, p.rate_ul_h, l.min_rate_ul_h, l.max_rate_ul_h, l.max_volume_ul
        )));
    }
    Ok(())
}

/// Decides new limits for `patient`: within the pump's hard limits and
/// consistent, and not excluding the `current` prescription. Returns the
/// audit entry and the announcement.
pub fn limits_change(
    limits: &PatientLimits,
    current: Option<&Prescription>,
    patient: PatientId,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Effects> {
    check_limits(limits)?;
    if let Some(p) = current
        && !limits.allows(p.volume_ul, p.rate_ul_h)
    {
        return Err(StoreError::limits_exclude(p));
    }
    Ok(
        Effects::audit(NewAudit::limits_changed(now_ms, actor, patient, limits))
            .and_announce(Change::Limits { patient }),
    )
}

/// Decides a new prescription for `patient` under `limits`, the newest
/// version written so far being `current_version` (0 for none). Returns
/// the version to write and its audit entry and announcement.
pub fn next_version(
    p: &NewPrescription,
    limits: &PatientLimits,
    current_version: u32,
    patient: PatientId,
    actor: &str,
    now_ms: i64,
) -> StoreResult<(u32, Effects)> {
    check_prescription(p, limits)?;
    let version = current_version
        .checked_add(1)
        .ok_or_else(|| StoreError::Invalid("no more prescription versions".into()))?;
    let effects = Effects::audit(NewAudit::prescription_changed(
        now_ms, actor, patient, version, p,
    ))
    .and_announce(Change::Prescription { patient, version });
    Ok((version, effects))
}

/// Decodes an infusion state as stored.
pub fn stored_state(s: &str) -> StoreResult<InfusionState> {
    match s {
        "run" => Ok(InfusionState::Run),
        "hold" => Ok(InfusionState::Hold),
        other => Err(StoreError::Backend(format!("bad stored state {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditAction;
    use proptest::prelude::*;

    fn rx(volume_ul: u32, rate_ul_h: u32) -> NewPrescription {
        NewPrescription {
            volume_ul,
            rate_ul_h,
            state: InfusionState::Run,
        }
    }

    fn stored(version: u32, p: NewPrescription) -> Prescription {
        Prescription {
            version,
            volume_ul: p.volume_ul,
            rate_ul_h: p.rate_ul_h,
            state: p.state,
            created_at_ms: 0,
            created_by: "doc".into(),
            fetched_at_ms: None,
        }
    }

    const NARROW: PatientLimits = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 5_000,
        max_volume_ul: 10_000,
    };

    #[test]
    fn limits_that_exclude_the_current_prescription_are_refused() {
        let p = PatientId(1);
        let e = limits_change(
            &NARROW,
            Some(&stored(2, rx(5_000, 4_000))),
            p,
            "user:doc",
            3,
        )
        .unwrap();
        assert_eq!(e.audit[0].action, AuditAction::LimitsChanged);
        assert_eq!(e.changes, [Change::Limits { patient: p }]);
        let err =
            limits_change(&NARROW, Some(&stored(2, rx(5_000, 6_000))), p, "x", 3).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
        let mut inverted = NARROW;
        inverted.min_rate_ul_h = 6_000;
        assert!(matches!(
            limits_change(&inverted, None, p, "x", 3),
            Err(StoreError::OutsideLimits(_))
        ));
    }

    #[test]
    fn a_prescription_is_the_next_version_within_the_limits() {
        let p = PatientId(1);
        let (v, e) = next_version(&rx(5_000, 4_000), &NARROW, 0, p, "user:doc", 9).unwrap();
        assert_eq!(v, 1);
        assert_eq!(
            e.changes,
            [Change::Prescription {
                patient: p,
                version: 1
            }]
        );
        assert_eq!(e.audit[0].detail, "version 1: 5000 µL at 4000 µL/h, run");
        assert!(next_version(&rx(0, 4_000), &NARROW, 0, p, "x", 0).is_err());
        assert!(next_version(&rx(5_000, 4_000), &NARROW, u32::MAX, p, "x", 0).is_err());
    }

    #[test]
    fn stored_states_decode() {
        assert_eq!(stored_state("run"), Ok(InfusionState::Run));
        assert_eq!(stored_state("hold"), Ok(InfusionState::Hold));
        assert!(stored_state("stop").is_err());
    }

    proptest! {
        /// A prescription is written exactly when the limits allow it, as
        /// the version after the newest.
        #[test]
        fn written_exactly_when_allowed(volume in 0u32..20_000, rate in 0u32..8_000, current in 0u32..100) {
            let p = rx(volume, rate);
            let written = next_version(&p, &NARROW, current, PatientId(1), "x", 0);
            prop_assert_eq!(written.is_ok(), volume > 0 && NARROW.allows(volume, rate));
            if let Ok((v, _)) = written {
                prop_assert_eq!(v, current + 1);
            }
        }
    }
}
