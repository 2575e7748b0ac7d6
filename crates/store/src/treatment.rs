//! Treatment: a patient's limits and prescription versions, the summary a
//! dashboard shows, and the rules every write of them follows.

use async_trait::async_trait;
use infusion_protocol::limits::{MAX_RATE_UL_H, MAX_VOLUME_UL, MIN_RATE_UL_H};
use infusion_protocol::{InfusionState, MacAddress, PatientId, PatientLimits};

use crate::soft_limits::{check_soft, note_for, soft_crossings};
use crate::units::{ml, ml_h};
use crate::{
    Change, Confirmation, Drug, DrugId, Effects, Limits, NewAudit, PatientIdentifiers, PatientNote,
    RateStep, StoreError, StoreResult, drug_crossings,
};

/// Limits, prescriptions and patient summaries, one transaction per
/// method.
#[async_trait]
pub trait Treatment: Send + Sync {
    /// Replaces a patient's hard and soft limits (their `set` is ignored:
    /// they are set from now on). Refused with
    /// [`StoreError::OutsideLimits`] when the current prescription would fall
    /// outside the hard ones (change the prescription first), or the soft
    /// ones are not inside the hard ones.
    async fn set_limits(
        &self,
        patient: PatientId,
        limits: Limits,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Writes a new prescription version and returns its number, as
    /// [`next_version`] decides: refused before the patient's limits are
    /// set and outside the hard limits, and with
    /// [`StoreError::NeedsConfirmation`] across a soft limit unless
    /// `confirmation` gives a reason.
    async fn prescribe(
        &self,
        patient: PatientId,
        prescription: NewPrescription,
        confirmation: &Confirmation,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u32>;

    /// [`Treatment::prescribe`] with no reason, under the default rate step.
    async fn set_prescription(
        &self,
        patient: PatientId,
        prescription: NewPrescription,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u32> {
        self.prescribe(
            patient,
            prescription,
            &Confirmation::default(),
            actor,
            now_ms,
        )
        .await
    }

    /// A patient's account, device, limits and current prescription.
    async fn patient(&self, patient: PatientId) -> StoreResult<PatientSummary>;

    /// Replaces the note shown to `patient` on their own page, as
    /// [`note_set`] decides (an empty one removes it).
    async fn set_patient_note(
        &self,
        patient: PatientId,
        text: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;

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
    /// The drug of the institution's library the order names, if any:
    /// then it was typed in the drug's dose unit and is checked against
    /// the drug's limits too.
    pub drug: Option<DrugId>,
}

impl NewPrescription {
    /// An order by volume and rate alone, naming no drug.
    pub fn plain(volume_ul: u32, rate_ul_h: u32, state: InfusionState) -> NewPrescription {
        NewPrescription {
            volume_ul,
            rate_ul_h,
            state,
            drug: None,
        }
    }
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
    /// The drug it names, if any.
    pub drug: Option<DrugId>,
}

impl Prescription {
    /// The order this version gave.
    pub fn order(&self) -> NewPrescription {
        NewPrescription {
            volume_ul: self.volume_ul,
            rate_ul_h: self.rate_ul_h,
            state: self.state,
            drug: self.drug,
        }
    }
}

/// A patient's account, device and current prescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientSummary {
    /// The patient record.
    pub patient_id: PatientId,
    /// The hospital's record number and the date of birth, which tell
    /// look-alike names apart.
    pub identifiers: PatientIdentifiers,
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
    /// Current limits, hard and soft.
    pub limits: Limits,
    /// The newest prescription, if one was written.
    pub prescription: Option<Prescription>,
    /// When the device last presented a valid token, ms since the epoch.
    pub last_contact_ms: Option<i64>,
    /// What the physician shares with the patient, if anything.
    pub note: Option<PatientNote>,
    /// The server's watchdog found the pump silent (`pump_silent`, open):
    /// when it was last heard from.
    pub silent_since_ms: Option<i64>,
    /// The ward the patient is on, if assigned to one.
    pub ward: Option<crate::Ward>,
    /// The nurse looking after the patient now (username), told of
    /// alarms first.
    pub nurse: Option<String>,
}

/// The limits a new patient starts with: the pump's hard limits, stored
/// as not yet set. The physician sets the patient's own; no prescription
/// is written until then.
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
            "rate limits must lie within the pump's range, {} to {}",
            ml_h(MIN_RATE_UL_H),
            ml_h(MAX_RATE_UL_H)
        )));
    }
    if l.min_rate_ul_h > l.max_rate_ul_h {
        return Err(OutsideLimits(format!(
            "the lowest rate, {}, is above the highest, {}",
            ml_h(l.min_rate_ul_h),
            ml_h(l.max_rate_ul_h)
        )));
    }
    if l.max_volume_ul == 0 || l.max_volume_ul > MAX_VOLUME_UL {
        return Err(OutsideLimits(format!(
            "the largest volume must lie within the pump's {}",
            ml(MAX_VOLUME_UL)
        )));
    }
    Ok(())
}

/// Checks a prescription against a patient's limits.
pub fn check_prescription(p: &NewPrescription, l: &PatientLimits) -> Result<(), StoreError> {
    if p.volume_ul == 0 {
        return Err(StoreError::OutsideLimits(
            "the volume must be more than 0 mL".into(),
        ));
    }
    if !l.allows(p.volume_ul, p.rate_ul_h) {
        return Err(StoreError::OutsideLimits(format!(
            "{} at {} is outside this patient's limits (a rate from {} to {}, at most {}); \
             nothing was changed",
            ml(p.volume_ul),
            ml_h(p.rate_ul_h),
            ml_h(l.min_rate_ul_h),
            ml_h(l.max_rate_ul_h),
            ml(l.max_volume_ul)
        )));
    }
    Ok(())
}

/// Decides new limits for `patient`: hard limits within the pump's and
/// consistent, soft ones inside them, and the hard ones not excluding the
/// `current` prescription. Returns the audit entry and the announcement.
pub fn limits_change(
    limits: &Limits,
    current: Option<&Prescription>,
    patient: PatientId,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Effects> {
    check_limits(&limits.hard)?;
    check_soft(limits)?;
    if let Some(p) = current
        && !limits.hard.allows(p.volume_ul, p.rate_ul_h)
    {
        return Err(StoreError::limits_exclude(p));
    }
    Ok(
        Effects::audit(NewAudit::limits_changed(now_ms, actor, patient, limits))
            .and_announce(Change::Limits { patient }),
    )
}

/// What a backend reads before a new order: the patient's limits, the
/// newest version written so far, and the drug the order names as the
/// patient's institution's library holds it.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    /// The patient's limits.
    pub limits: &'a Limits,
    /// The newest version, if any.
    pub current: Option<&'a Prescription>,
    /// The named drug, if the order names one and the library has it.
    pub drug: Option<&'a Drug>,
}

/// What a new order would cross under what was `read`, before any
/// reason: refused outside the hard limits (the patient's and the drug
/// library's) and before the limits are set; else every soft limit it
/// crosses, in words. The review before sending shows this, and
/// [`next_version`] decides by it.
pub fn review(p: &NewPrescription, read: Standing<'_>, step: RateStep) -> StoreResult<Vec<String>> {
    check_prescription(p, &read.limits.hard)?;
    let also = drug_crossings(p, read.drug)?;
    soft_crossings(p, read.limits, read.current, step, also)
}

/// Decides a new prescription for `patient` under what was `read`:
/// [`review`]'s refusals, and across a soft limit (or a rate step beyond
/// the allowed factor) only with a reason. The reason, when given, is
/// audited with the order. An order naming a drug is checked against
/// `drug`, that drug as the patient's institution's library holds it
/// ([`drug_crossings`]). Returns the version to write and its audit
/// entries and announcement.
pub fn next_version(
    p: &NewPrescription,
    read: Standing<'_>,
    confirmation: &Confirmation,
    patient: PatientId,
    actor: &str,
    now_ms: i64,
) -> StoreResult<(u32, Effects)> {
    let crossed = review(p, read, confirmation.rate_step)?;
    let note = note_for(&crossed, confirmation)?;
    let (current, drug) = (read.current, read.drug);
    let reason = confirmation.given()?;
    let version = current
        .map_or(0, |c| c.version)
        .checked_add(1)
        .ok_or_else(|| StoreError::Invalid("no more prescription versions".into()))?;
    let mut effects = Effects::audit(NewAudit::prescription_changed(
        now_ms, actor, patient, version, p, drug, reason,
    ))
    .and_announce(Change::Prescription { patient, version });
    if let Some(note) = note {
        effects = effects.and_audit(NewAudit::soft_limit_confirmed(
            now_ms, actor, patient, version, &note,
        ));
    }
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
            drug: None,
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
            drug: None,
        }
    }

    const HARD: PatientLimits = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 5_000,
        max_volume_ul: 10_000,
    };
    const NARROW: Limits = Limits {
        hard: HARD,
        soft: HARD,
        set: true,
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
        inverted.hard.min_rate_ul_h = 6_000;
        assert!(matches!(
            limits_change(&inverted, None, p, "x", 3),
            Err(StoreError::OutsideLimits(_))
        ));
    }

    #[test]
    fn a_prescription_is_the_next_version_within_the_limits() {
        let p = PatientId(1);
        let none = Confirmation::default();
        let (v, e) = next_version(
            &rx(5_000, 4_000),
            Standing {
                limits: &NARROW,
                current: None,
                drug: None,
            },
            &none,
            p,
            "user:doc",
            9,
        )
        .unwrap();
        assert_eq!(v, 1);
        assert_eq!(
            e.changes,
            [Change::Prescription {
                patient: p,
                version: 1,
            }]
        );
        assert_eq!(e.audit[0].detail, "version 1: 5 mL at 4 mL/h, run");
        assert_eq!(e.audit.len(), 1, "inside the soft limits: no confirmation");
        assert!(
            next_version(
                &rx(0, 4_000),
                Standing {
                    limits: &NARROW,
                    current: None,
                    drug: None
                },
                &none,
                p,
                "x",
                0
            )
            .is_err()
        );
        let last = stored(u32::MAX, rx(5_000, 4_000));
        assert!(
            next_version(
                &rx(5_000, 4_000),
                Standing {
                    limits: &NARROW,
                    current: Some(&last),
                    drug: None
                },
                &none,
                p,
                "x",
                0
            )
            .is_err()
        );
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
        fn written_exactly_when_allowed(volume in 0u32..20_000, rate in 0u32..8_000, current in 1u32..100) {
            let p = rx(volume, rate);
            // Hard limits only, and a rate step that allows anything.
            let any_step = Confirmation::none(RateStep { factor_permille: u32::MAX });
            let newest = stored(current, rx(5_000, 3_000));
            let written = next_version(&p, Standing { limits: &NARROW, current: Some(&newest), drug: None }, &any_step, PatientId(1), "x", 0);
            prop_assert_eq!(written.is_ok(), volume > 0 && HARD.allows(volume, rate));
            if let Ok((v, _)) = written {
                prop_assert_eq!(v, current + 1);
            }
        }
    }
}
