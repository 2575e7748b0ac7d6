//! Domain types that cross the [`crate::Store`] trait.

use infusion_protocol::limits::{MAX_RATE_UL_H, MAX_VOLUME_UL, MIN_RATE_UL_H};
use infusion_protocol::{
    Alarm, EventBody, Index, InfusionState, MacAddress, PatientId, PatientLimits, PublicKey,
};

/// An account's row id (physician, patient or admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

/// A device registration's row id. Event sequence numbers are unique per
/// device registration, so a re-bound or replaced pump starts a new series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub i64);

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

/// A physician to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPhysician {
    /// Login name.
    pub username: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Institution name; created when new.
    pub institution: String,
    /// Argon2id PHC string.
    pub password_hash: String,
}

/// A patient to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPatient {
    /// Login name, also what the pump logs in with.
    pub username: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// The treating physician's username; the patient joins that physician's
    /// institution.
    pub physician_username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
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

/// What a device login needs about one patient account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    /// The account.
    pub account_id: AccountId,
    /// The patient record of the account.
    pub patient_id: PatientId,
    /// Argon2id PHC string to verify the password against.
    pub password_hash: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Institution name.
    pub institution: String,
    /// The device bound to the account, if any.
    pub device: Option<BoundDevice>,
}

/// The device bound to an account, as a login checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundDevice {
    /// Its record.
    pub id: DeviceId,
    /// Its MAC address (the paper's check).
    pub mac: MacAddress,
    /// The public half of its secret. `None` for a device bound before
    /// device secrets existed: it can log in only to a server started with
    /// `--paper-login` until it is bound again.
    pub public_key: Option<PublicKey>,
    /// The time and randomness of the newest login challenge this device
    /// logged in with: a login whose challenge is not newer is a replay.
    pub login_nonce: Option<[u8; 16]>,
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

/// How a report batch was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportOutcome {
    /// Events stored now.
    pub accepted: u32,
    /// Events that were stored already.
    pub duplicates: u32,
}

/// An event as stored, with the server's receipt time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredEvent {
    /// Row id, increasing in order of arrival.
    pub id: i64,
    /// The device that sent it.
    pub device_id: DeviceId,
    /// The device's sequence number.
    pub seq: u32,
    /// The device's uptime at the event.
    pub uptime_ms: u64,
    /// When the server stored it, ms since the epoch.
    pub received_at_ms: i64,
    /// What happened.
    pub body: EventBody,
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
    ];

    /// The actions a security review looks for first, shown to physicians
    /// and administrators as security events.
    pub const SECURITY: &'static [AuditAction] = &[
        AuditAction::TokenReplayed,
        AuditAction::LoginLockedOut,
        AuditAction::DeviceProofFailed,
        AuditAction::LoginReplayed,
        AuditAction::ServerKeysMoved,
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

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Row id, increasing.
    pub id: i64,
    /// The entry.
    pub entry: NewAudit,
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
pub fn check_limits(l: &PatientLimits) -> Result<(), crate::StoreError> {
    use crate::StoreError::OutsideLimits;
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
pub fn check_prescription(p: &NewPrescription, l: &PatientLimits) -> Result<(), crate::StoreError> {
    if p.volume_ul == 0 {
        return Err(crate::StoreError::OutsideLimits(
            "volume must be at least 1 µL".into(),
        ));
    }
    if !l.allows(p.volume_ul, p.rate_ul_h) {
        return Err(crate::StoreError::OutsideLimits(format!(
            "{} µL at {} µL/h is outside the patient's limits ({}..={} µL/h, at most {} µL)",
            p.volume_ul, p.rate_ul_h, l.min_rate_ul_h, l.max_rate_ul_h, l.max_volume_ul
        )));
    }
    Ok(())
}

/// The alarm, if this event is one (alarms are audited as well as stored).
pub fn alarm_of(body: &EventBody) -> Option<Alarm> {
    match body {
        EventBody::Alarm(a) => Some(*a),
        _ => None,
    }
}

/// Checks the names of a new account against the wire format's limits, so
/// that everything stored can be sent to a pump unchanged. Usernames are
/// 1 to 64 characters of letters, digits and `.`, `_`, `-`, `@`.
pub fn check_account_names(
    username: &str,
    first_name: &str,
    last_name: &str,
) -> Result<(), crate::StoreError> {
    use infusion_protocol::limits::{NAME_MAX, USERNAME_MAX};
    let invalid = |m: String| Err(crate::StoreError::Invalid(m));
    if username.is_empty()
        || username.len() > USERNAME_MAX
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return invalid(format!(
            "a username is 1 to {USERNAME_MAX} letters, digits, '.', '_', '-' or '@'"
        ));
    }
    for (what, v) in [("first name", first_name), ("last name", last_name)] {
        if v.trim().is_empty() || v.len() > NAME_MAX || v.chars().any(char::is_control) {
            return invalid(format!(
                "a {what} is 1 to {NAME_MAX} bytes of printable text"
            ));
        }
    }
    Ok(())
}

/// Checks an institution name: 1 to 128 bytes of printable text.
pub fn check_institution(name: &str) -> Result<(), crate::StoreError> {
    use infusion_protocol::limits::INSTITUTION_MAX;
    if name.trim().is_empty() || name.len() > INSTITUTION_MAX || name.chars().any(char::is_control)
    {
        return Err(crate::StoreError::Invalid(format!(
            "an institution is 1 to {INSTITUTION_MAX} bytes of printable text"
        )));
    }
    Ok(())
}

/// Shortest password accepted for an account (OWASP ASVS 2.1.1).
pub const PASSWORD_MIN: usize = 12;

/// Checks a new password's length: 12 to 128 bytes.
pub fn check_password(password: &str) -> Result<(), crate::StoreError> {
    use infusion_protocol::limits::PASSWORD_MAX;
    if password.chars().count() < PASSWORD_MIN || password.len() > PASSWORD_MAX {
        return Err(crate::StoreError::Invalid(format!(
            "a password is {PASSWORD_MIN} to {PASSWORD_MAX} characters"
        )));
    }
    Ok(())
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
}

/// Why a presented token may not be consumed: the error to answer with,
/// the audit entry to keep, and, for a replay, the device whose live
/// tokens must all be revoked. Both backends apply it in a transaction of
/// its own (or a savepoint's rollback), since the refused request itself
/// changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What to answer.
    pub error: crate::StoreError,
    /// What to append to the audit log.
    pub audit: NewAudit,
    /// For a replay: revoke every live token of this device.
    pub revoke_chain_of: Option<DeviceId>,
}

/// Decides whether `found` (the row for the presented token, `None` when no
/// such token is stored) may be consumed now for `patient`, and if not, why
/// not and what to audit. Shared by every backend so that each refuses the
/// same token with the same error, checked in the same order: unknown or
/// retired device, then used (a replay), revoked, expired, and another
/// patient's.
///
/// A used token presented again is treated as refresh-token reuse is in
/// RFC 9700, section 4.14.2: the server cannot tell the genuine pump from
/// whoever copied the token, so it revokes the device's whole chain, and
/// the genuine pump (which alone knows the password and the device secret)
/// logs in again, while the copier is left with nothing.
pub fn check_presented(
    found: Option<&PresentedToken>,
    patient: PatientId,
    now_ms: i64,
) -> Result<(), Box<Refusal>> {
    use crate::StoreError::{Forbidden, TokenExpired, TokenInvalid, TokenRevoked, TokenUsed};
    let refuse = |err: crate::StoreError, actor: String, owner: Option<PatientId>| {
        let entry = NewAudit {
            at_ms: now_ms,
            actor,
            action: AuditAction::TokenRefused,
            patient_id: owner,
            detail: err.to_string(),
        };
        Err(Box::new(Refusal {
            error: err,
            audit: entry,
            revoke_chain_of: None,
        }))
    };
    let Some(t) = found else {
        return refuse(TokenInvalid, "anonymous".to_owned(), None);
    };
    let actor = crate::device_actor(&t.mac);
    let owner = Some(t.owner);
    if t.device_retired {
        return refuse(TokenInvalid, actor, owner);
    }
    if let Some(used) = t.used_at_ms {
        return Err(Box::new(Refusal {
            error: TokenUsed,
            audit: NewAudit {
                at_ms: now_ms,
                actor,
                action: AuditAction::TokenReplayed,
                patient_id: owner,
                detail: format!(
                    "a token used {} ms earlier was presented again; every live token of this device was revoked",
                    now_ms.saturating_sub(used)
                ),
            },
            revoke_chain_of: Some(t.device),
        }));
    }
    if t.revoked {
        return refuse(TokenRevoked, actor, owner);
    }
    if now_ms >= t.expires_at_ms {
        return refuse(TokenExpired, actor, owner);
    }
    if t.owner != patient {
        return refuse(Forbidden, actor, owner);
    }
    Ok(())
}

/// What an account may do in the web application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Institutions, accounts, device registration: what the admin CLI does.
    Admin,
    /// Their own patients.
    Physician,
    /// Their own record, read only.
    Patient,
}

impl Role {
    /// The role as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Physician => "physician",
            Role::Patient => "patient",
        }
    }

    /// The inverse of [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Admin, Role::Physician, Role::Patient]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// What a web login needs about an account of any role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// The account.
    pub account_id: AccountId,
    /// Login name.
    pub username: String,
    /// Its role.
    pub role: Role,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
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
    pub fn check(&self, current: u32, limits: &PatientLimits) -> Result<(), crate::StoreError> {
        if current != self.based_on_version {
            return Err(crate::StoreError::stale_suggestion(
                self.based_on_version,
                current,
            ));
        }
        check_prescription(&self.as_prescription(), limits)
    }

    /// The prescription approving it writes.
    pub fn as_prescription(&self) -> NewPrescription {
        NewPrescription {
            volume_ul: self.volume_ul,
            rate_ul_h: self.rate_ul_h,
            state: InfusionState::Run,
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

/// One account as the administrator's overview shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountOverview {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Institution name, if any.
    pub institution: Option<String>,
    /// A patient's physician.
    pub physician: Option<String>,
    /// A patient's bound device.
    pub device: Option<String>,
}
