//! Web sessions: stored server-side (only the SHA-256 of the cookie), so
//! that a session works at every instance and a logout anywhere ends it
//! everywhere.

use async_trait::async_trait;

use crate::{
    AccountId, AccountRecord, Effects, NewAudit, Role, StoreError, StoreResult, TokenHash,
};

/// Starting, checking and ending web sessions, one transaction per method.
#[async_trait]
pub trait WebSessions: Send + Sync {
    /// Stores a new web session for `account` (after its password was
    /// verified) and audits the login.
    async fn start_web_session(
        &self,
        account: AccountId,
        session: NewWebSession,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// The live session with this id hash; `None` when unknown, ended,
    /// past its absolute expiry, or idle for `idle_timeout_ms` or longer.
    /// With [`SessionUse::Active`] it is touched as used now (the user did
    /// something); with [`SessionUse::Background`] only read, so that what
    /// a page does by itself (its live stream, its live refreshes) never
    /// keeps an unattended screen logged in. Stored in the database, so a
    /// session started through one instance works at every other, and one
    /// ended anywhere is dead everywhere at once.
    async fn web_session(
        &self,
        hash: TokenHash,
        idle_timeout_ms: i64,
        now_ms: i64,
        used: SessionUse,
    ) -> StoreResult<Option<WebSession>>;

    /// Ends a session (logout); true when it was live. Audited.
    async fn end_web_session(&self, hash: TokenHash, now_ms: i64) -> StoreResult<bool>;
}

/// Whether a session look-up is the user's doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionUse {
    /// A request the user made: it counts as activity.
    Active,
    /// A request the page made by itself: it does not.
    Background,
}

/// A web session to store. Only the SHA-256 of the session id (the cookie
/// value) is stored, like device tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewWebSession {
    /// SHA-256 of the session id.
    pub hash: TokenHash,
    /// Absolute expiry, ms since the epoch: the session ends then however
    /// active it is.
    pub expires_at_ms: i64,
}

/// A live web session and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The account logged in.
    pub account_id: AccountId,
    /// Its login name.
    pub username: String,
    /// Its role.
    pub role: Role,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// When the session began.
    pub created_at_ms: i64,
    /// Absolute expiry.
    pub expires_at_ms: i64,
    /// The account's password was set by an administrator: nothing but
    /// changing it is served until it is.
    pub must_change_password: bool,
    /// It logs in with an authenticator code too.
    pub has_second_factor: bool,
    /// Its institution's time zone (IANA name): the pages it is served
    /// show times in it.
    pub time_zone: String,
    /// A nurse's ward: the patients the nurse reaches.
    pub ward: Option<crate::Ward>,
}

/// The session a live session row of account `a` is: `None` when the
/// account was disabled since (its sessions end with it, whatever rows
/// are left).
pub fn session_of(a: AccountRecord, created_at_ms: i64, expires_at_ms: i64) -> Option<WebSession> {
    (!a.disabled).then_some(WebSession {
        account_id: a.account_id,
        username: a.username,
        role: a.role,
        first_name: a.first_name,
        last_name: a.last_name,
        created_at_ms,
        expires_at_ms,
        must_change_password: a.must_change_password,
        has_second_factor: a.has_second_factor,
        time_zone: a.time_zone,
        ward: a.ward,
    })
}

/// Decides a session start for the account named `username` (`None`: no
/// such account any more): its login audit entry.
pub fn started(username: Option<&str>, now_ms: i64) -> StoreResult<Effects> {
    let username = username.ok_or_else(|| StoreError::NotFound("no such account".into()))?;
    Ok(Effects::audit(NewAudit::web_session(
        now_ms, username, true,
    )))
}

/// What ending a session leaves, given the account whose live session it
/// was (`None`: it was not live): whether it was, the logout's audit
/// entry, and the announcement that ends the session's open live streams.
pub fn ended(account: Option<(AccountId, &str)>, now_ms: i64) -> (bool, Effects) {
    match account {
        Some((account, username)) => (
            true,
            Effects::audit(NewAudit::web_session(now_ms, username, false))
                .and_announce(crate::Change::SessionEnded { account }),
        ),
        None => (false, Effects::none()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditAction;

    #[test]
    fn logins_and_logouts_are_audited_and_a_dead_session_ends_quietly() {
        let e = started(Some("doc"), 3).unwrap();
        assert_eq!(
            (e.audit[0].action, e.audit[0].actor.as_str()),
            (AuditAction::WebLogin, "user:doc")
        );
        assert!(matches!(started(None, 3), Err(StoreError::NotFound(_))));
        let (live, e) = ended(Some((AccountId(3), "doc")), 4);
        assert!(live);
        assert_eq!(e.audit[0].action, AuditAction::WebLogout);
        assert_eq!(
            e.changes,
            [crate::Change::SessionEnded {
                account: AccountId(3)
            }]
        );
        assert_eq!(ended(None, 4), (false, Effects::none()));
    }
}
