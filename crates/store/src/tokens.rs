//! Tokens: the single-use, time-limited chain a device polls with, how a
//! presented token is judged, and the index a poll answers with.

use async_trait::async_trait;
use infusion_protocol::{Index, InfusionState, MacAddress, PatientId, PatientLimits};

use crate::{AuditAction, DeviceId, NewAudit, Prescription, StoreError, StoreResult, device_actor};

/// The index transaction and the token table's upkeep, one transaction
/// per method.
#[async_trait]
pub trait Tokens: Send + Sync {
    /// The index transaction: consumes the presented token (atomically: of
    /// many concurrent requests with one token exactly one succeeds), reads
    /// the patient's index and stores the next token. A refusal (token
    /// unknown, used, expired, or for another patient) changes nothing but
    /// the audit log.
    async fn poll_index(
        &self,
        presented: TokenHash,
        patient_id: PatientId,
        next: NewToken,
        now_ms: i64,
    ) -> StoreResult<PolledIndex>;

    /// Deletes tokens (and web sessions) that expired before `before_ms`,
    /// so the tables do not grow without end. Returns how many were
    /// removed.
    async fn prune_tokens(&self, before_ms: i64) -> StoreResult<u64>;

    /// The state of one token, for diagnostics and tests: `None` when no
    /// such token is stored.
    async fn token_status(&self, hash: TokenHash) -> StoreResult<Option<TokenStatus>>;
}

/// SHA-256 of a token. Only the hash is stored, so a copy of the database
/// does not hold a single usable token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}..)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A token to store: its hash and when it stops being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewToken {
    /// SHA-256 of the token text.
    pub hash: TokenHash,
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// What a stored token looks like now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenStatus {
    /// The device the token was issued to.
    pub device_id: DeviceId,
    /// The patient the token serves.
    pub patient_id: PatientId,
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
    /// When it was presented successfully, if it was.
    pub used_at_ms: Option<i64>,
    /// When it was revoked with its chain after a replay, if it was.
    pub revoked_at_ms: Option<i64>,
}

/// The index a poll answers with and the MAC of the device that polled,
/// which the server's signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolledIndex {
    /// The index.
    pub index: Index,
    /// The polling device.
    pub mac: MacAddress,
}

/// A presented token as found in the database, joined with its device: what
/// deciding whether it may be consumed needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedToken {
    /// The device registration the token was issued to: its chain.
    pub device: DeviceId,
    /// The patient the token serves.
    pub owner: PatientId,
    /// Expiry, ms since the epoch.
    pub expires_at_ms: i64,
    /// When it was consumed, if it was.
    pub used_at_ms: Option<i64>,
    /// The MAC address of the device it was issued to (for the audit).
    pub mac: String,
    /// True when that device registration has been replaced since.
    pub device_retired: bool,
    /// True when the token was revoked with its chain after a replay.
    pub revoked: bool,
    /// True when the token is of an older token generation than its
    /// device's: its chain ended, by a replay, a newer login or a binding.
    pub stale: bool,
    /// True when this token was refused before (and that was audited).
    pub refused_before: bool,
}

/// Why a presented token may not be consumed: the error to answer with,
/// the audit entry to keep, and, for a replay, the device whose live
/// tokens must all be revoked. Both backends apply it in a transaction of
/// its own (or a savepoint's rollback), since the refused request itself
/// changes nothing.
///
/// The append-only audit log must not grow at an anonymous client's will
/// (red team round 2, finding 5: ~750 garbage tokens a second added about
/// 6 GiB a day). So a token that is not stored leaves no audit entry (the
/// server counts it and logs a rate-limited line), and a stored token is
/// audited at its first refusal only, its later ones counted on its row
/// (`count_on_token`); a replay that revokes a chain is audited always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What to answer.
    pub error: StoreError,
    /// When it was refused, ms.
    pub at_ms: i64,
    /// What to append to the audit log, if anything.
    pub audit: Option<NewAudit>,
    /// For a replay: revoke every live token of this device.
    pub revoke_chain_of: Option<DeviceId>,
    /// The presented token is stored: count this refusal on its row.
    pub count_on_token: bool,
}

/// Decides whether `found` (the row for the presented token, `None` when no
/// such token is stored) may be consumed now for `patient`, and if not, why
/// not and what to audit. Shared by every backend so that each refuses the
/// same token with the same error, checked in the same order: unknown or
/// retired device, then used (a replay), of an ended chain (revoked, or
/// retired by a newer login or binding), expired, and another patient's.
///
/// A used token presented again is treated as refresh-token reuse is in
/// RFC 9700, section 4.14.2: the server cannot tell the genuine pump from
/// whoever copied the token, so it revokes the device's whole chain, and
/// the genuine pump (which alone knows the password and the device secret)
/// logs in again, while the copier is left with nothing. A replay of a
/// token whose chain has already ended revokes nothing more: otherwise one
/// captured token, presented again and again, would end every chain the
/// genuine pump starts.
///
/// A device has one live chain: a login or a binding raises its token
/// generation, and a token of an older generation that was not revoked
/// after a replay is a retired chain's, a security event of its own.
pub fn check_presented(
    found: Option<&PresentedToken>,
    patient: PatientId,
    now_ms: i64,
) -> Result<(), Box<Refusal>> {
    judge_presented(found, patient, now_ms).map_err(|mut refusal| {
        let audited_before = found.is_none_or(|t| t.refused_before);
        if audited_before && refusal.revoke_chain_of.is_none() {
            refusal.audit = None;
        }
        refusal
    })
}

/// [`check_presented`]'s verdict, every refusal with its audit entry.
fn judge_presented(
    found: Option<&PresentedToken>,
    patient: PatientId,
    now_ms: i64,
) -> Result<(), Box<Refusal>> {
    use StoreError::{Forbidden, TokenExpired, TokenInvalid, TokenRevoked, TokenUsed};
    let refuse = |err: StoreError, action: AuditAction, actor: String, owner, detail: String| {
        Err(Box::new(Refusal {
            at_ms: now_ms,
            audit: Some(NewAudit::of(now_ms, &actor, action, owner, detail)),
            revoke_chain_of: None,
            count_on_token: found.is_some(),
            error: err,
        }))
    };
    let refused = |err: StoreError, actor: String, owner: Option<PatientId>| {
        refuse(
            err.clone(),
            AuditAction::TokenRefused,
            actor,
            owner,
            err.to_string(),
        )
    };
    let Some(t) = found else {
        return refused(TokenInvalid, "anonymous".to_owned(), None);
    };
    let actor = device_actor(&t.mac);
    let owner = Some(t.owner);
    if t.device_retired {
        return refused(TokenInvalid, actor, owner);
    }
    if let Some(used) = t.used_at_ms {
        let ago = now_ms.saturating_sub(used);
        let (detail, revoke) = if t.stale {
            (
                format!(
                    "a token used {ago} ms earlier, of a chain that had already ended, was presented again"
                ),
                None,
            )
        } else {
            (
                format!(
                    "a token used {ago} ms earlier was presented again; every live token of this device was revoked"
                ),
                Some(t.device),
            )
        };
        return Err(Box::new(Refusal {
            error: TokenUsed,
            at_ms: now_ms,
            audit: Some(NewAudit::of(
                now_ms,
                &actor,
                AuditAction::TokenReplayed,
                owner,
                detail,
            )),
            revoke_chain_of: revoke,
            count_on_token: true,
        }));
    }
    if t.revoked {
        return refused(TokenRevoked, actor, owner);
    }
    if t.stale {
        let detail =
            "a token of a chain ended by a newer login or a new binding of this pump was presented"
                .to_owned();
        return refuse(
            TokenRevoked,
            AuditAction::RetiredTokenUsed,
            actor,
            owner,
            detail,
        );
    }
    if now_ms >= t.expires_at_ms {
        return refused(TokenExpired, actor, owner);
    }
    if t.owner != patient {
        return refused(Forbidden, actor, owner);
    }
    Ok(())
}

/// Why a consumption that updated nothing was refused: the refusal
/// [`check_presented`] gives for the row as read now, or, when the token
/// looks valid now, a concurrent request that took it a moment before
/// (PostgreSQL, where consuming is one conditional statement and the
/// reason is read after it).
pub fn refusal_after_miss(
    found: Option<&PresentedToken>,
    patient: PatientId,
    now_ms: i64,
) -> Refusal {
    match check_presented(found, patient, now_ms) {
        Err(refusal) => *refusal,
        Ok(()) => Refusal {
            error: StoreError::TokenUsed,
            at_ms: now_ms,
            audit: Some(NewAudit::of(
                now_ms,
                "anonymous",
                AuditAction::TokenRefused,
                Some(patient),
                StoreError::TokenUsed.to_string(),
            )),
            revoke_chain_of: None,
            count_on_token: true,
        },
    }
}

/// The index a poll answers with, from the patient's newest prescription
/// (`None`: none written yet, answered as version 0, `hold`, nothing to
/// deliver) and limits; and the version to mark as fetched, when this is
/// the first poll to see it.
pub fn index_of(current: Option<&Prescription>, limits: PatientLimits) -> (Index, Option<u32>) {
    match current {
        Some(p) => (
            Index {
                version: p.version,
                volume_ul: p.volume_ul,
                rate_ul_h: p.rate_ul_h,
                state: p.state,
                limits,
            },
            p.fetched_at_ms.is_none().then_some(p.version),
        ),
        None => (
            Index {
                version: 0,
                volume_ul: 0,
                rate_ul_h: 0,
                state: InfusionState::Hold,
                limits,
            },
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn token(owner: u64) -> PresentedToken {
        PresentedToken {
            device: DeviceId(4),
            owner: PatientId(owner),
            expires_at_ms: 1_000,
            used_at_ms: None,
            mac: "AA:BB:CC:DD:EE:01".into(),
            device_retired: false,
            revoked: false,
            stale: false,
            refused_before: false,
        }
    }

    #[test]
    fn a_live_token_of_this_patient_is_taken() {
        assert_eq!(check_presented(Some(&token(1)), PatientId(1), 999), Ok(()));
    }

    #[test]
    fn refusals_come_in_their_order_and_only_a_replay_revokes() {
        let p = PatientId(1);
        let refused = |t: Option<&PresentedToken>, now| *check_presented(t, p, now).unwrap_err();
        let r = refused(None, 0);
        assert_eq!(
            (r.error, r.audit, r.count_on_token),
            (StoreError::TokenInvalid, None, false),
            "a token that is not stored is counted by the server, not audited"
        );
        let mut t = token(1);
        t.device_retired = true;
        t.used_at_ms = Some(0);
        assert_eq!(refused(Some(&t), 0).error, StoreError::TokenInvalid);
        let mut t = token(2);
        t.used_at_ms = Some(10);
        t.revoked = true;
        let r = refused(Some(&t), 2_000);
        assert_eq!(r.error, StoreError::TokenUsed);
        assert_eq!(audit(&r).action, AuditAction::TokenReplayed);
        assert_eq!(r.revoke_chain_of, Some(DeviceId(4)));
        let mut t = token(2);
        (t.revoked, t.stale) = (true, true);
        let r = refused(Some(&t), 2_000);
        assert_eq!(r.error, StoreError::TokenRevoked);
        assert_eq!(audit(&r).action, AuditAction::TokenRefused);
        let mut t = token(2);
        t.stale = true;
        let r = refused(Some(&t), 0);
        assert_eq!(r.error, StoreError::TokenRevoked);
        assert_eq!(audit(&r).action, AuditAction::RetiredTokenUsed);
        assert!(AuditAction::SECURITY.contains(&audit(&r).action));
        t.used_at_ms = Some(0);
        let r = refused(Some(&t), 0);
        assert_eq!(r.error, StoreError::TokenUsed);
        assert_eq!(audit(&r).action, AuditAction::TokenReplayed);
        assert_eq!(
            r.revoke_chain_of, None,
            "an ended chain's replay revokes nothing more"
        );
        assert_eq!(
            refused(Some(&token(2)), 1_000).error,
            StoreError::TokenExpired
        );
        let r = refused(Some(&token(2)), 0);
        assert_eq!(r.error, StoreError::Forbidden);
        assert_eq!(r.revoke_chain_of, None);
        assert_eq!(audit(&r).patient_id, Some(PatientId(2)));
    }

    /// The action of a refusal's audit entry (every refusal of a token
    /// refused for the first time has one).
    fn audit(r: &Refusal) -> &NewAudit {
        r.audit.as_ref().expect("audited")
    }

    #[test]
    fn a_token_refused_before_is_only_counted_unless_its_replay_revokes_a_chain() {
        let p = PatientId(1);
        let mut t = token(2);
        t.refused_before = true;
        let r = *check_presented(Some(&t), p, 0).unwrap_err();
        assert_eq!(
            (r.error, r.audit, r.count_on_token),
            (StoreError::Forbidden, None, true)
        );
        t.used_at_ms = Some(0);
        let r = *check_presented(Some(&t), p, 10).unwrap_err();
        assert_eq!(r.revoke_chain_of, Some(DeviceId(4)));
        assert_eq!(audit(&r).action, AuditAction::TokenReplayed);
        t.stale = true;
        let r = *check_presented(Some(&t), p, 10).unwrap_err();
        assert_eq!((r.audit, r.revoke_chain_of), (None, None));
    }

    #[test]
    fn a_miss_on_a_token_that_looks_valid_is_a_lost_race() {
        let r = refusal_after_miss(Some(&token(1)), PatientId(1), 0);
        assert_eq!(r.error, StoreError::TokenUsed);
        assert_eq!(r.revoke_chain_of, None);
        let r = refusal_after_miss(None, PatientId(1), 0);
        assert_eq!(r.error, StoreError::TokenInvalid);
    }

    #[test]
    fn no_prescription_is_version_0_on_hold_and_a_new_one_is_marked_fetched_once() {
        let limits = crate::DEFAULT_LIMITS;
        let (index, fetched) = index_of(None, limits);
        assert_eq!(
            (index.version, index.state, fetched),
            (0, InfusionState::Hold, None)
        );
        let mut p = Prescription {
            version: 3,
            volume_ul: 1_000,
            rate_ul_h: 4_000,
            state: InfusionState::Run,
            created_at_ms: 0,
            created_by: "doc".into(),
            fetched_at_ms: None,
            drug: None,
        };
        let (index, fetched) = index_of(Some(&p), limits);
        assert_eq!(
            (index.version, index.rate_ul_h, fetched),
            (3, 4_000, Some(3))
        );
        p.fetched_at_ms = Some(1);
        assert_eq!(index_of(Some(&p), limits).1, None);
    }

    proptest! {
        /// Whatever the row, a token is taken only when it is live and this
        /// patient's, and a refusal is audited with the token's owner.
        #[test]
        fn only_a_live_token_of_this_patient_is_taken(
            owner in 1u64..4, patient in 1u64..4, expires in 0i64..100, now in 0i64..100,
            used in proptest::option::of(0i64..100), retired: bool, revoked: bool, stale: bool,
        ) {
            let t = PresentedToken {
                device: DeviceId(1), owner: PatientId(owner), expires_at_ms: expires,
                used_at_ms: used, mac: "AA:BB:CC:DD:EE:01".into(), device_retired: retired, revoked,
                stale, refused_before: false,
            };
            let verdict = check_presented(Some(&t), PatientId(patient), now);
            let live = !retired && used.is_none() && !revoked && !stale && now < expires
                && owner == patient;
            prop_assert_eq!(verdict.is_ok(), live);
            if let Err(r) = verdict {
                prop_assert_eq!(r.audit.as_ref().and_then(|a| a.patient_id), Some(PatientId(owner)));
                prop_assert_eq!(r.revoke_chain_of.is_some(), !retired && !stale && used.is_some());
            }
        }
    }
}
