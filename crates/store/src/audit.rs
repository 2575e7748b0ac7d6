//! The audit log: what each entry records, and the trait that appends to
//! and reads the log. The chain that makes it tamper-evident is in
//! [`crate::audit_chain`]; the words of each entry are in `wording`.

use async_trait::async_trait;
use infusion_protocol::PatientId;

use crate::{AuditHead, ChainedAudit, StoreResult};

/// Reading and appending to the audit log, one transaction per method.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends one entry to the audit log (for refusals decided outside a
    /// store transaction, such as a wrong password).
    async fn append_audit(&self, entry: NewAudit) -> StoreResult<()>;

    /// The newest audit entries, newest first, of one patient or of all.
    async fn audit_log(
        &self,
        patient_id: Option<PatientId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>>;

    /// The newest security events ([`AuditAction::SECURITY`]), newest
    /// first, of one patient or of all: what the patient's physician and
    /// administrators are shown.
    async fn security_events(
        &self,
        patient_id: Option<PatientId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>>;

    /// Audit rows with their chain columns, in id order, after `after_id`,
    /// at most `limit`: what `audit_chain::Verifier` walks.
    async fn audit_chain(&self, after_id: i64, limit: u32) -> StoreResult<Vec<ChainedAudit>>;

    /// The audit chain's head, as the last insert left it.
    async fn audit_head(&self) -> StoreResult<AuditHead>;
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// A device logged in.
    DeviceLogin,
    /// A device login was refused (unknown user, wrong password, wrong MAC).
    DeviceLoginRefused,
    /// A token was refused (unknown, used, expired, wrong patient).
    TokenRefused,
    /// An account was created.
    AccountCreated,
    /// A device was bound to an account.
    DeviceBound,
    /// A patient's limits changed.
    LimitsChanged,
    /// A new prescription version was written.
    PrescriptionChanged,
    /// A device raised an alarm.
    Alarm,
    /// Someone logged in to the web application.
    WebLogin,
    /// A web login was refused (unknown user or wrong password).
    WebLoginRefused,
    /// Someone logged out of the web application.
    WebLogout,
    /// A physician acknowledged a device alarm.
    AlarmAcknowledged,
    /// The decision algorithm suggested a prescription change.
    SuggestionMade,
    /// A physician approved a suggestion (a new prescription version).
    SuggestionApproved,
    /// A physician rejected a suggestion.
    SuggestionRejected,
    /// A token that had been used was presented again: a replay of a
    /// captured token (or a pump resending a request whose answer it lost).
    /// Every live token of that device was revoked with it. A security
    /// event: shown to the patient's physician and to administrators.
    TokenReplayed,
    /// Failed logins locked a username or a client address out for a while
    /// (the first lockout of a window): a guessing attack, or someone who
    /// forgot their password. A security event.
    LoginLockedOut,
    /// The right username, password and MAC, but no valid proof of the
    /// device secret: a cloned device, or a pump whose secret was
    /// replaced. A security event.
    DeviceProofFailed,
    /// A login proof was presented again (its nonce was already used or
    /// is older than one used): a captured login replayed. A security
    /// event.
    LoginReplayed,
    /// The server's keys were moved out of the database into a key file
    /// (`infusion admin export-keys`): from then on only servers given
    /// that file can sign an index. A security event.
    ServerKeysMoved,
    /// A token of a chain that had ended was presented: the pump logged
    /// in again since (one live chain per device) or was bound again with
    /// a new secret. Whoever holds such a token copied it, or is a pump
    /// that lost track of its own login. A security event.
    RetiredTokenUsed,
    /// Many logins from one client address within an hour: its further
    /// attempts now take turns (the first pacing of a window). Everyone
    /// behind that address is slowed, no one is locked out. A security
    /// event.
    LoginSlowed,
    /// An order crossing a soft limit (or changing the rate by more than
    /// the allowed factor) was given with its prescriber's reason.
    SoftLimitConfirmed,
    /// An account's owner changed its password; its other sessions ended.
    PasswordChanged,
    /// An administrator disabled an account: its sessions and device
    /// chains ended, and it logs in nowhere. A security event.
    AccountDisabled,
    /// An administrator enabled a disabled account again. A security
    /// event.
    AccountEnabled,
    /// An account enrolled an authenticator (TOTP). A security event.
    SecondFactorEnabled,
    /// A login used a recovery code in place of an authenticator code. A
    /// security event.
    RecoveryCodeUsed,
    /// An administrator removed an account's authenticator (a lost
    /// phone). A security event.
    SecondFactorReset,
    /// Someone read a patient's record (HIPAA §164.312(b)): once per
    /// reader and patient in a quarter hour.
    RecordViewed,
    /// An administrator added a drug to the institution's library.
    DrugAdded,
    /// An administrator withdrew a drug from the institution's library.
    DrugWithdrawn,
    /// An administrator set the institution's time zone.
    TimeZoneSet,
    /// An administrator unbound a patient's pump.
    DeviceUnbound,
    /// An administrator moved a patient to another physician.
    PatientMoved,
    /// An administrator reset an account's password, to be changed at
    /// its next login. A security event.
    PasswordReset,
    /// A physician wrote or removed the note shown to the patient.
    PatientNoteSet,
    /// The server's watchdog found a pump silent (`pump_silent`).
    PumpSilent,
    /// A silent pump was heard from again, or unbound.
    PumpHeardAgain,
    /// An administrator created a ward.
    WardCreated,
    /// An administrator put a patient on a ward.
    WardAssigned,
    /// A physician let a caregiver follow a patient until an end date.
    CaregiverGranted,
    /// A physician ended a caregiver's access before its end date.
    CaregiverRevoked,
    /// An alarm was sent to the first of its care team (and the
    /// caregivers), naming whom.
    AlarmSent,
    /// No one acknowledged an alarm in time: its next step was told.
    AlarmEscalated,
    /// A nurse or the physician silenced an alarm for a while.
    AlarmSilenced,
    /// A nurse took over a patient (or gave it up): told of alarms first.
    PatientNurseSet,
    /// An administrator set a ward's escalation policy.
    EscalationPolicySet,
    /// An account's address for alarm emails was set or removed.
    EmailSet,
}

impl AuditAction {
    /// Every action, for parsing.
    pub const ALL: &'static [AuditAction] = &[
        AuditAction::DeviceLogin,
        AuditAction::DeviceLoginRefused,
        AuditAction::TokenRefused,
        AuditAction::AccountCreated,
        AuditAction::DeviceBound,
        AuditAction::LimitsChanged,
        AuditAction::PrescriptionChanged,
        AuditAction::Alarm,
        AuditAction::WebLogin,
        AuditAction::WebLoginRefused,
        AuditAction::WebLogout,
        AuditAction::AlarmAcknowledged,
        AuditAction::SuggestionMade,
        AuditAction::SuggestionApproved,
        AuditAction::SuggestionRejected,
        AuditAction::TokenReplayed,
        AuditAction::LoginLockedOut,
        AuditAction::DeviceProofFailed,
        AuditAction::LoginReplayed,
        AuditAction::ServerKeysMoved,
        AuditAction::RetiredTokenUsed,
        AuditAction::LoginSlowed,
        AuditAction::SoftLimitConfirmed,
        AuditAction::PasswordChanged,
        AuditAction::AccountDisabled,
        AuditAction::AccountEnabled,
        AuditAction::SecondFactorEnabled,
        AuditAction::RecoveryCodeUsed,
        AuditAction::SecondFactorReset,
        AuditAction::RecordViewed,
        AuditAction::DrugAdded,
        AuditAction::DrugWithdrawn,
        AuditAction::TimeZoneSet,
        AuditAction::DeviceUnbound,
        AuditAction::PatientMoved,
        AuditAction::PasswordReset,
        AuditAction::PatientNoteSet,
        AuditAction::PumpSilent,
        AuditAction::PumpHeardAgain,
        AuditAction::WardCreated,
        AuditAction::WardAssigned,
        AuditAction::CaregiverGranted,
        AuditAction::CaregiverRevoked,
        AuditAction::AlarmSent,
        AuditAction::AlarmEscalated,
        AuditAction::AlarmSilenced,
        AuditAction::PatientNurseSet,
        AuditAction::EscalationPolicySet,
        AuditAction::EmailSet,
    ];

    /// The actions a security review looks for first, shown to physicians
    /// and administrators as security events.
    pub const SECURITY: &'static [AuditAction] = &[
        AuditAction::TokenReplayed,
        AuditAction::LoginLockedOut,
        AuditAction::DeviceProofFailed,
        AuditAction::LoginReplayed,
        AuditAction::ServerKeysMoved,
        AuditAction::RetiredTokenUsed,
        AuditAction::LoginSlowed,
        AuditAction::AccountDisabled,
        AuditAction::AccountEnabled,
        AuditAction::SecondFactorEnabled,
        AuditAction::RecoveryCodeUsed,
        AuditAction::SecondFactorReset,
        AuditAction::PasswordReset,
        AuditAction::DeviceUnbound,
    ];

    /// The action as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::DeviceLogin => "device_login",
            AuditAction::DeviceLoginRefused => "device_login_refused",
            AuditAction::TokenRefused => "token_refused",
            AuditAction::AccountCreated => "account_created",
            AuditAction::DeviceBound => "device_bound",
            AuditAction::LimitsChanged => "limits_changed",
            AuditAction::PrescriptionChanged => "prescription_changed",
            AuditAction::Alarm => "alarm",
            AuditAction::WebLogin => "web_login",
            AuditAction::WebLoginRefused => "web_login_refused",
            AuditAction::WebLogout => "web_logout",
            AuditAction::AlarmAcknowledged => "alarm_acknowledged",
            AuditAction::SuggestionMade => "suggestion_made",
            AuditAction::SuggestionApproved => "suggestion_approved",
            AuditAction::SuggestionRejected => "suggestion_rejected",
            AuditAction::TokenReplayed => "token_replayed",
            AuditAction::LoginLockedOut => "login_locked_out",
            AuditAction::DeviceProofFailed => "device_proof_failed",
            AuditAction::LoginReplayed => "login_replayed",
            AuditAction::ServerKeysMoved => "server_keys_moved",
            AuditAction::RetiredTokenUsed => "retired_token_used",
            AuditAction::LoginSlowed => "login_slowed",
            AuditAction::SoftLimitConfirmed => "soft_limit_confirmed",
            AuditAction::PasswordChanged => "password_changed",
            AuditAction::AccountDisabled => "account_disabled",
            AuditAction::AccountEnabled => "account_enabled",
            AuditAction::SecondFactorEnabled => "second_factor_enabled",
            AuditAction::RecoveryCodeUsed => "recovery_code_used",
            AuditAction::SecondFactorReset => "second_factor_reset",
            AuditAction::RecordViewed => "record_viewed",
            AuditAction::DrugAdded => "drug_added",
            AuditAction::DrugWithdrawn => "drug_withdrawn",
            AuditAction::TimeZoneSet => "time_zone_set",
            AuditAction::DeviceUnbound => "device_unbound",
            AuditAction::PatientMoved => "patient_moved",
            AuditAction::PasswordReset => "password_reset",
            AuditAction::PatientNoteSet => "patient_note_set",
            AuditAction::PumpSilent => "pump_silent",
            AuditAction::PumpHeardAgain => "pump_silent_cleared",
            AuditAction::WardCreated => "ward_created",
            AuditAction::WardAssigned => "ward_assigned",
            AuditAction::CaregiverGranted => "caregiver_granted",
            AuditAction::CaregiverRevoked => "caregiver_revoked",
            AuditAction::AlarmSent => "alarm_sent",
            AuditAction::AlarmEscalated => "alarm_escalated",
            AuditAction::AlarmSilenced => "alarm_silenced",
            AuditAction::PatientNurseSet => "patient_nurse_set",
            AuditAction::EscalationPolicySet => "escalation_policy_set",
            AuditAction::EmailSet => "email_set",
        }
    }

    /// The inverse of [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

/// An audit entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Who: `admin-cli`, `device:AA:BB:..`, `user:alice`, `anonymous`.
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// The patient concerned, if one is.
    pub patient_id: Option<PatientId>,
    /// Free-text detail for the reader of the log (never a secret).
    pub detail: String,
}

impl NewAudit {
    /// The longest actor stored, bytes (`user:` and a 64-byte name fit).
    pub const ACTOR_MAX: usize = 128;
    /// The longest detail stored, bytes.
    pub const DETAIL_MAX: usize = 1024;

    /// The entry as stored: actor and detail cut to [`Self::ACTOR_MAX`]
    /// and [`Self::DETAIL_MAX`] (at a character boundary, marked `…`), so
    /// that no text an outsider chooses takes more room than that in the
    /// append-only log. Both backends store and chain this form.
    pub fn bounded(&self) -> std::borrow::Cow<'_, NewAudit> {
        if self.actor.len() <= Self::ACTOR_MAX && self.detail.len() <= Self::DETAIL_MAX {
            return std::borrow::Cow::Borrowed(self);
        }
        std::borrow::Cow::Owned(NewAudit {
            actor: cut(&self.actor, Self::ACTOR_MAX),
            detail: cut(&self.detail, Self::DETAIL_MAX),
            ..self.clone()
        })
    }
}

/// `s` cut to at most `max` bytes, ending in `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Row id, increasing.
    pub id: i64,
    /// The entry.
    pub entry: NewAudit,
}

/// Decodes an action as stored; a name this build does not know is a
/// fault of the database, not of a request.
pub fn stored_action(s: &str) -> StoreResult<AuditAction> {
    AuditAction::parse(s)
        .ok_or_else(|| crate::StoreError::Backend(format!("bad audit action {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_parses_back_and_security_actions_are_actions() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
        }
        assert!(
            AuditAction::SECURITY
                .iter()
                .all(|s| AuditAction::ALL.contains(s))
        );
        assert!(stored_action("meltdown").is_err());
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_short_text_kept() {
        let e = NewAudit::of(0, "user:x", AuditAction::WebLogin, None, "ok".into());
        assert!(matches!(e.bounded(), std::borrow::Cow::Borrowed(_)));
        let long = NewAudit {
            actor: "é".repeat(100),
            detail: "x".repeat(60_000),
            ..e
        };
        let b = long.bounded();
        assert!(b.actor.len() <= NewAudit::ACTOR_MAX && b.actor.ends_with('…'));
        assert!(b.actor.starts_with("éé"));
        assert_eq!(b.detail.len(), NewAudit::DETAIL_MAX);
    }
}
