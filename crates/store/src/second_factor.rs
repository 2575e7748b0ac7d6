//! A second login factor for physicians and administrators: a TOTP
//! authenticator (RFC 6238) and single-use recovery codes for when the
//! authenticator is lost. The server computes and compares the codes; the
//! store keeps the secret, the newest time step used (so that a code seen
//! over a shoulder or in a proxy log cannot be used again) and the
//! SHA-256 of each recovery code.

use async_trait::async_trait;

use crate::{AccountId, Columns, Effects, NewAudit, StoreError, StoreResult, TokenHash};

/// Enrolling and using a second factor, one transaction per method.
#[async_trait]
pub trait SecondFactors: Send + Sync {
    /// The account's authenticator, if it has one.
    async fn second_factor(&self, account: AccountId) -> StoreResult<Option<Authenticator>>;

    /// Enrols `secret` as the account's authenticator, with `recovery`
    /// (the hashes of its new recovery codes). Refused with `Conflict`
    /// when the account has one already. Audited as a security event.
    async fn enable_second_factor(
        &self,
        account: AccountId,
        secret: Vec<u8>,
        recovery: Vec<TokenHash>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Takes authenticator time step `step` as used, as [`step_taken`]
    /// decides: true when it is newer than every step used before.
    async fn take_step(&self, account: AccountId, step: i64) -> StoreResult<bool>;

    /// Removes the authenticator and recovery codes of `username` (a lost
    /// phone), as [`reset`] decides: true when it had one. The account
    /// logs in with its password alone until it enrols again (sent to
    /// enrol at once where a second factor is required). Audited as a
    /// security event.
    async fn reset_second_factor(
        &self,
        username: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool>;

    /// Uses recovery code `hash`: true when it was the account's and
    /// unused (it is used from now on). Audited as a security event.
    async fn use_recovery_code(
        &self,
        account: AccountId,
        hash: TokenHash,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<bool>;
}

/// An enrolled authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticator {
    /// The shared secret (20 bytes, as authenticator apps expect).
    pub secret: Vec<u8>,
    /// The newest time step a code was accepted for (0: none yet).
    pub last_step: i64,
    /// Recovery codes not used yet.
    pub recovery_left: u32,
}

impl Authenticator {
    /// The select list of an authenticator, over `second_factors f`.
    pub const COLUMNS: &'static str = "f.totp_secret, f.last_step,
        (SELECT COUNT(*) FROM recovery_codes r WHERE r.account_id = f.account_id AND r.used_at_ms IS NULL)";

    /// A row selected with [`Authenticator::COLUMNS`].
    pub fn from_row(c: &impl Columns) -> StoreResult<Authenticator> {
        Ok(Authenticator {
            secret: c
                .bytes(0)?
                .ok_or_else(|| StoreError::Backend("an authenticator without a secret".into()))?,
            last_step: c.i64(1)?,
            recovery_left: c.u32(2)?,
        })
    }
}

/// How many recovery codes an enrolment gives.
pub const RECOVERY_CODES: usize = 10;

/// Whether a code of time step `step` may log in after `last_step`: only
/// a newer step, so that each code works once.
pub fn step_taken(last_step: i64, step: i64) -> bool {
    step > last_step
}

/// Decides an enrolment: refused when the account has an authenticator
/// already (it must not be replaced by whoever holds a session), checked
/// for its recovery codes; its audit entry.
pub fn enrolled(
    existing: bool,
    username: &str,
    recovery: &[TokenHash],
    actor: &str,
    now_ms: i64,
) -> StoreResult<Effects> {
    if existing {
        return Err(StoreError::Conflict(
            "this account has an authenticator already".into(),
        ));
    }
    if recovery.len() != RECOVERY_CODES {
        return Err(StoreError::Invalid(format!(
            "an enrolment has {RECOVERY_CODES} recovery codes"
        )));
    }
    Ok(Effects::audit(NewAudit::second_factor_enabled(
        now_ms, actor, username,
    )))
}

/// Decides a reset of `username`'s second factor, given its account
/// (`None`: no such account) and whether it has one: the audit entry, or
/// `None` when there is nothing to remove.
pub fn reset(
    account: Option<AccountId>,
    had: bool,
    username: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Option<Effects>> {
    account.ok_or_else(|| StoreError::NotFound(format!("no account named {username:?}")))?;
    Ok(had.then(|| Effects::audit(NewAudit::second_factor_reset(now_ms, actor, username))))
}

/// What a used recovery code leaves: its audit entry (a lost
/// authenticator, or a stolen code: the account's owner should know).
pub fn recovery_used(username: &str, left: u32, actor: &str, now_ms: i64) -> Effects {
    Effects::audit(NewAudit::recovery_code_used(now_ms, actor, username, left))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditAction;

    #[test]
    fn each_step_logs_in_once_and_an_enrolment_is_not_replaced() {
        assert!(step_taken(0, 1));
        assert!(!step_taken(5, 5) && !step_taken(5, 4));
        let codes = vec![TokenHash([0; 32]); RECOVERY_CODES];
        let e = enrolled(false, "doc", &codes, "user:doc", 1).unwrap();
        assert_eq!(e.audit[0].action, AuditAction::SecondFactorEnabled);
        assert!(AuditAction::SECURITY.contains(&AuditAction::SecondFactorEnabled));
        assert!(matches!(
            enrolled(true, "doc", &codes, "user:doc", 1),
            Err(StoreError::Conflict(_))
        ));
        assert!(enrolled(false, "doc", &codes[..3], "user:doc", 1).is_err());
        let e = reset(Some(AccountId(1)), true, "doc", "user:root", 3)
            .unwrap()
            .unwrap();
        assert_eq!(e.audit[0].action, AuditAction::SecondFactorReset);
        assert_eq!(
            reset(Some(AccountId(1)), false, "doc", "user:root", 3),
            Ok(None)
        );
        assert!(reset(None, false, "nobody", "user:root", 3).is_err());
        let e = recovery_used("doc", 9, "user:doc", 2);
        assert_eq!(e.audit[0].action, AuditAction::RecoveryCodeUsed);
        assert!(e.audit[0].detail.contains("9 left"));
    }
}
