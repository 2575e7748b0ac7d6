//! Suggestions: prescription changes the decision algorithm proposes, and
//! the physician's approval or rejection of each.

use async_trait::async_trait;
use infusion_protocol::{InfusionState, PatientId, PatientLimits};

use crate::{
    Change, Confirmation, Effects, NewAudit, NewPrescription, Standing, StoreError, StoreResult,
    check_prescription, next_version,
};

/// Suggestions and decisions on them, one transaction per method.
#[async_trait]
pub trait Suggestions: Send + Sync {
    /// Stores a suggestion of the decision algorithm, unless one for the
    /// current prescription is pending already (then `None`). A pending
    /// suggestion for an older version is superseded. Refused with
    /// `Conflict` when `based_on_version` is no longer current and with
    /// `OutsideLimits` outside the patient's limits.
    async fn suggest(
        &self,
        patient_id: PatientId,
        suggestion: NewSuggestion,
        now_ms: i64,
    ) -> StoreResult<Option<i64>>;

    /// A patient's pending suggestions (at most one), newest first.
    async fn pending_suggestions(&self, patient_id: PatientId) -> StoreResult<Vec<Suggestion>>;

    /// A physician's decision (`Verdict`) on a pending suggestion.
    /// Approval writes a new prescription version (refused with `Conflict`
    /// when the suggestion is stale, a newer version having been written
    /// since, and with `OutsideLimits` when the limits changed since);
    /// rejection closes it. Both are audited with who and when; `NotFound`
    /// unless it is a pending suggestion of that patient.
    async fn decide_suggestion(&self, verdict: Verdict) -> StoreResult<Decision>;
}

/// A prescription change proposed by the decision algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSuggestion {
    /// The prescription version it would replace; approving it after a
    /// newer version was written is refused.
    pub based_on_version: u32,
    /// Proposed volume, µL.
    pub volume_ul: u32,
    /// Proposed rate, µL/h.
    pub rate_ul_h: u32,
    /// Why, in words a physician can check against the vitals.
    pub reason: String,
}

impl NewSuggestion {
    /// Whether this suggestion may be stored or approved now: made for the
    /// `current` version and within `limits`.
    pub fn check(&self, current: u32, limits: &PatientLimits) -> Result<(), StoreError> {
        if current != self.based_on_version {
            return Err(StoreError::stale_suggestion(self.based_on_version, current));
        }
        check_prescription(&self.as_prescription(), limits)
    }

    /// The prescription approving it writes.
    pub fn as_prescription(&self) -> NewPrescription {
        NewPrescription {
            volume_ul: self.volume_ul,
            rate_ul_h: self.rate_ul_h,
            state: InfusionState::Run,
            drug: None,
        }
    }
}

/// A stored suggestion awaiting a physician.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// Its id.
    pub id: i64,
    /// When it was made.
    pub created_at_ms: i64,
    /// What it proposes.
    pub proposal: NewSuggestion,
}

/// What a physician's decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Approved: written as this prescription version.
    Approved(u32),
    /// Rejected: nothing changed but the suggestion's status.
    Rejected,
}

/// Where a suggestion stands, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuggestionStatus {
    /// Awaiting a physician.
    Pending,
    /// Approved: written as a prescription version.
    Approved,
    /// Rejected by a physician.
    Rejected,
    /// Replaced by a newer suggestion before anyone decided.
    Superseded,
}

impl SuggestionStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionStatus::Pending => "pending",
            SuggestionStatus::Approved => "approved",
            SuggestionStatus::Rejected => "rejected",
            SuggestionStatus::Superseded => "superseded",
        }
    }
}

/// How a new suggestion is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuggestPlan {
    /// One for the current version is pending already: store nothing.
    Skip,
    /// Store it, superseding the pending one (made for an older version)
    /// if any.
    Insert {
        /// The pending suggestion to mark superseded.
        supersede: Option<i64>,
    },
}

/// Decides a new suggestion, given the newest prescription version
/// (`current`, 0 for none), the patient's limits and the pending
/// suggestion if one is (its id and the version it was made for).
pub fn suggest(
    s: &NewSuggestion,
    current: u32,
    limits: &PatientLimits,
    pending: Option<(i64, u32)>,
) -> StoreResult<SuggestPlan> {
    s.check(current, limits)?;
    Ok(match pending {
        Some((_, based_on)) if based_on == current => SuggestPlan::Skip,
        Some((id, _)) => SuggestPlan::Insert {
            supersede: Some(id),
        },
        None => SuggestPlan::Insert { supersede: None },
    })
}

/// What storing suggestion `id` leaves: its audit entry and announcement.
pub fn suggested(patient: PatientId, id: i64, s: &NewSuggestion, now_ms: i64) -> Effects {
    Effects::audit(NewAudit::suggestion_made(now_ms, patient, id, s))
        .and_announce(Change::Suggestion { patient })
}

/// What a physician's decision writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// What is answered.
    pub decision: Decision,
    /// The suggestion's new status.
    pub status: SuggestionStatus,
    /// For an approval: the prescription version to write and its values.
    pub prescription: Option<(u32, NewPrescription)>,
    /// The audit entries and announcements, the prescription's first.
    pub effects: Effects,
}

/// A physician's decision on suggestion `id` of `patient`, as submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whose suggestion.
    pub patient: PatientId,
    /// Which suggestion.
    pub id: i64,
    /// Approve (write it as a prescription) or reject.
    pub approve: bool,
    /// Who decided (the audit actor).
    pub actor: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The physician's reason, for an approval that crosses a soft limit.
    pub confirmation: Confirmation,
}

impl Verdict {
    /// Decides this verdict, given the pending suggestion of its id
    /// (`None`: no such pending suggestion of this patient) and what was
    /// `read`: the limits now, the newest prescription and the drug it
    /// names. An approved suggestion keeps naming that drug: it changes
    /// the rate, not what is given.
    pub fn decide(
        &self,
        pending: Option<&NewSuggestion>,
        read: Standing<'_>,
    ) -> StoreResult<Decided> {
        let (current_rx, limits) = (read.current, read.limits);
        let current = current_rx.map_or(0, |c| c.version);
        let (patient, id, actor, now_ms) = (self.patient, self.id, self.actor.as_str(), self.at_ms);
        let s = pending.ok_or_else(|| StoreError::no_suggestion(id))?;
        let (decision, status, prescription, effects) = if self.approve {
            s.check(current, &limits.hard)?;
            let p = NewPrescription {
                drug: current_rx.and_then(|c| c.drug),
                ..s.as_prescription()
            };
            let (version, effects) =
                next_version(&p, read, &self.confirmation, patient, actor, now_ms)?;
            (
                Decision::Approved(version),
                SuggestionStatus::Approved,
                Some((version, p)),
                effects,
            )
        } else {
            (
                Decision::Rejected,
                SuggestionStatus::Rejected,
                None,
                Effects::none(),
            )
        };
        let approved_as = prescription.as_ref().map(|(v, _)| *v);
        let effects = effects
            .and_audit(NewAudit::suggestion_decided(
                now_ms,
                actor,
                patient,
                id,
                approved_as,
            ))
            .and_announce(Change::Suggestion { patient });
        Ok(Decided {
            decision,
            status,
            prescription,
            effects,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditAction, DEFAULT_LIMITS, Limits, Prescription};

    fn verdict(patient: PatientId, approve: bool) -> Verdict {
        Verdict {
            patient,
            id: 7,
            approve,
            actor: "user:doc".into(),
            at_ms: 5,
            confirmation: Confirmation::default(),
        }
    }

    /// Version `version` running at 4 mL/h.
    fn running(version: u32) -> Prescription {
        Prescription {
            version,
            volume_ul: 5_000,
            rate_ul_h: 4_000,
            state: InfusionState::Run,
            created_at_ms: 0,
            created_by: "doc".into(),
            fetched_at_ms: None,
            drug: None,
        }
    }

    fn proposal(based_on_version: u32, rate_ul_h: u32) -> NewSuggestion {
        NewSuggestion {
            based_on_version,
            volume_ul: 5_000,
            rate_ul_h,
            reason: "tremor score 8".into(),
        }
    }

    #[test]
    fn a_suggestion_is_skipped_when_one_for_this_version_waits_and_supersedes_an_older_one() {
        let l = DEFAULT_LIMITS;
        assert_eq!(
            suggest(&proposal(2, 4_000), 2, &l, None),
            Ok(SuggestPlan::Insert { supersede: None })
        );
        assert_eq!(
            suggest(&proposal(2, 4_000), 2, &l, Some((7, 2))),
            Ok(SuggestPlan::Skip)
        );
        assert_eq!(
            suggest(&proposal(2, 4_000), 2, &l, Some((7, 1))),
            Ok(SuggestPlan::Insert { supersede: Some(7) })
        );
        assert!(matches!(
            suggest(&proposal(1, 4_000), 2, &l, None),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            suggest(&proposal(2, u32::MAX), 2, &l, None),
            Err(StoreError::OutsideLimits(_))
        ));
    }

    #[test]
    fn approval_writes_the_next_version_and_is_refused_when_stale() {
        let (l, p) = (Limits::hard_only(DEFAULT_LIMITS), PatientId(1));
        let d = verdict(p, true)
            .decide(
                Some(&proposal(2, 4_000)),
                Standing {
                    limits: &l,
                    current: Some(&running(2)),
                    drug: None,
                },
            )
            .unwrap();
        assert_eq!(d.decision, Decision::Approved(3));
        assert_eq!(d.status, SuggestionStatus::Approved);
        assert_eq!(
            d.prescription.map(|(v, rx)| (v, rx.rate_ul_h, rx.state)),
            Some((3, 4_000, InfusionState::Run))
        );
        let actions: Vec<_> = d.effects.audit.iter().map(|a| a.action).collect();
        assert_eq!(
            actions,
            [
                AuditAction::PrescriptionChanged,
                AuditAction::SuggestionApproved
            ]
        );
        assert!(matches!(
            verdict(p, true).decide(
                Some(&proposal(1, 4_000)),
                Standing {
                    limits: &l,
                    current: Some(&running(2)),
                    drug: None
                }
            ),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            verdict(p, false).decide(
                None,
                Standing {
                    limits: &l,
                    current: Some(&running(2)),
                    drug: None
                }
            ),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn an_approval_across_a_soft_limit_needs_the_physicians_reason() {
        let mut l = Limits::hard_only(DEFAULT_LIMITS);
        l.soft.max_rate_ul_h = 4_200;
        let mut v = verdict(PatientId(1), true);
        assert!(matches!(
            v.decide(
                Some(&proposal(2, 4_400)),
                Standing {
                    limits: &l,
                    current: Some(&running(2)),
                    drug: None
                }
            ),
            Err(StoreError::NeedsConfirmation(_))
        ));
        v.confirmation.reason = Some("tremor score 8 for an hour".into());
        let d = v
            .decide(
                Some(&proposal(2, 4_400)),
                Standing {
                    limits: &l,
                    current: Some(&running(2)),
                    drug: None,
                },
            )
            .unwrap();
        assert_eq!(d.decision, Decision::Approved(3));
        let actions: Vec<_> = d.effects.audit.iter().map(|a| a.action).collect();
        assert_eq!(
            actions,
            [
                AuditAction::PrescriptionChanged,
                AuditAction::SoftLimitConfirmed,
                AuditAction::SuggestionApproved
            ]
        );
    }

    #[test]
    fn rejection_writes_no_prescription_even_when_stale() {
        let d = verdict(PatientId(1), false)
            .decide(
                Some(&proposal(1, 4_000)),
                Standing {
                    limits: &Limits::hard_only(DEFAULT_LIMITS),
                    current: Some(&running(2)),
                    drug: None,
                },
            )
            .unwrap();
        assert_eq!(
            (d.decision, d.status, d.prescription),
            (Decision::Rejected, SuggestionStatus::Rejected, None)
        );
        assert_eq!(d.effects.audit[0].detail, "suggestion 7 rejected");
        assert_eq!(
            d.effects.changes,
            [Change::Suggestion {
                patient: PatientId(1)
            }]
        );
    }
}
