//! The words every backend writes: audit entries and refusals. Kept in one
//! place so that the same event reads the same in the audit log and the
//! same refusal reaches the user, whichever database is underneath.

use infusion_protocol::{Alarm, MacAddress, PatientId};

use crate::units::{ml, ml_h};
use crate::{
    AuditAction, Drug, Limits, NewAudit, NewPrescription, NewSuggestion, Prescription, Role,
    StoreError,
};

/// "the rate…" as "The rate…": a refusal's words (written to follow
/// other words) as a sentence of their own.
pub fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// A refusal's words as a sentence of their own: a capital first, a full
/// stop last ("the volume must be more than 0 mL" as "The volume must be
/// more than 0 mL.").
pub fn sentence(s: &str) -> String {
    let mut out = capitalised(s.trim_end());
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// "This is a very common password." as "this is a very common password":
/// a sentence as words that follow other words.
pub fn uncapitalised(s: &str) -> String {
    let mut chars = s.trim_end_matches('.').chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
}

/// A time as the audit trail writes it: `2026-12-06 20:05 UTC`.
pub fn utc_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| format!("{ms} ms"))
}

/// The audit actor of a device: `device:AA:BB:CC:DD:EE:FF`.
pub fn device_actor(mac: &str) -> String {
    format!("device:{mac}")
}

impl NewAudit {
    /// Failed logins locked `key` (`user:NAME` or `addr:IP`) out.
    pub fn locked_out(at_ms: i64, key: &str, attempts: u32, lock_ms: i64) -> NewAudit {
        Self::of(
            at_ms,
            key,
            AuditAction::LoginLockedOut,
            None,
            format!(
                "{attempts} login attempts within an hour; locked for {} s, doubling with each further attempt",
                lock_ms / 1_000
            ),
        )
    }

    /// Logins from the address `key` (`addr:IP`) now take turns.
    pub fn slowed(at_ms: i64, key: &str, attempts: u32, interval_ms: i64) -> NewAudit {
        Self::of(
            at_ms,
            key,
            AuditAction::LoginSlowed,
            None,
            format!(
                "{attempts} login attempts from this address within an hour; each further attempt waits its turn, one every {} s or more",
                interval_ms / 1_000
            ),
        )
    }

    /// An entry with every field given.
    pub fn of(
        at_ms: i64,
        actor: &str,
        action: AuditAction,
        patient: Option<PatientId>,
        detail: String,
    ) -> NewAudit {
        NewAudit {
            at_ms,
            actor: actor.to_owned(),
            action,
            patient_id: patient,
            detail,
        }
    }

    /// A physician or administrator account was created.
    pub fn staff_created(
        at_ms: i64,
        actor: &str,
        role: Role,
        username: &str,
        institution: &str,
    ) -> NewAudit {
        let detail = format!("{} {username} at {institution}", role.as_str());
        Self::of(at_ms, actor, AuditAction::AccountCreated, None, detail)
    }

    /// An account's password was changed (by its owner).
    pub fn password_changed(at_ms: i64, actor: &str, username: &str) -> NewAudit {
        let detail = format!("password of {username} changed; its other sessions ended");
        Self::of(at_ms, actor, AuditAction::PasswordChanged, None, detail)
    }

    /// An administrator reset an account's password.
    pub fn password_reset(at_ms: i64, actor: &str, username: &str) -> NewAudit {
        let detail = format!(
            "password of {username} reset by an administrator; it must be changed at the next \
             login, and its sessions ended"
        );
        Self::of(at_ms, actor, AuditAction::PasswordReset, None, detail)
    }

    /// An administrator disabled or enabled an account.
    pub fn account_enabled(at_ms: i64, actor: &str, username: &str, enabled: bool) -> NewAudit {
        let (action, detail) = if enabled {
            (AuditAction::AccountEnabled, format!("{username} enabled"))
        } else {
            (
                AuditAction::AccountDisabled,
                format!("{username} disabled; its sessions and device tokens ended"),
            )
        };
        Self::of(at_ms, actor, action, None, detail)
    }

    /// An account enrolled an authenticator for its logins.
    pub fn second_factor_enabled(at_ms: i64, actor: &str, username: &str) -> NewAudit {
        let detail = format!("{username} now logs in with an authenticator code too");
        Self::of(at_ms, actor, AuditAction::SecondFactorEnabled, None, detail)
    }

    /// Someone read a patient's record (its page).
    pub fn record_viewed(at_ms: i64, actor: &str, patient: PatientId) -> NewAudit {
        Self::of(
            at_ms,
            actor,
            AuditAction::RecordViewed,
            Some(patient),
            "record viewed".into(),
        )
    }

    /// An administrator removed an account's authenticator.
    pub fn second_factor_reset(at_ms: i64, actor: &str, username: &str) -> NewAudit {
        let detail = format!("{username}'s authenticator and recovery codes removed");
        Self::of(at_ms, actor, AuditAction::SecondFactorReset, None, detail)
    }

    /// A recovery code was used instead of an authenticator code.
    pub fn recovery_code_used(at_ms: i64, actor: &str, username: &str, left: u32) -> NewAudit {
        let detail = format!("{username} logged in with a recovery code; {left} left");
        Self::of(at_ms, actor, AuditAction::RecoveryCodeUsed, None, detail)
    }

    /// A patient account was created.
    pub fn patient_created(
        at_ms: i64,
        actor: &str,
        patient: PatientId,
        username: &str,
        physician: &str,
    ) -> NewAudit {
        let detail = format!("patient {username} of physician {physician}");
        Self::of(
            at_ms,
            actor,
            AuditAction::AccountCreated,
            Some(patient),
            detail,
        )
    }

    /// A device was bound to a patient.
    pub fn device_bound(
        at_ms: i64,
        actor: &str,
        patient: PatientId,
        mac: &str,
        username: &str,
    ) -> NewAudit {
        let detail = format!("device {mac} bound to {username}");
        Self::of(
            at_ms,
            actor,
            AuditAction::DeviceBound,
            Some(patient),
            detail,
        )
    }

    /// A patient's limits changed.
    pub fn limits_changed(at_ms: i64, actor: &str, patient: PatientId, l: &Limits) -> NewAudit {
        let (h, s) = (&l.hard, &l.soft);
        let words = |l: &infusion_protocol::PatientLimits| {
            format!(
                "a rate from {} to {}, a volume of at most {}",
                ml_h(l.min_rate_ul_h),
                ml_h(l.max_rate_ul_h),
                ml(l.max_volume_ul)
            )
        };
        let mut detail = format!("hard limits: {}", words(h));
        if s != h {
            detail += &format!("; usual range: {}", words(s));
        }
        Self::of(
            at_ms,
            actor,
            AuditAction::LimitsChanged,
            Some(patient),
            detail,
        )
    }

    /// A prescription version was written, with the prescriber's reason
    /// when one was given.
    pub fn prescription_changed(
        at_ms: i64,
        actor: &str,
        patient: PatientId,
        version: u32,
        p: &NewPrescription,
        drug: Option<&Drug>,
        reason: Option<&str>,
    ) -> NewAudit {
        let order = crate::order_text(p, drug);
        let detail = match reason {
            Some(r) => format!("version {version}: {order}; reason: {r}"),
            None => format!("version {version}: {order}"),
        };
        Self::of(
            at_ms,
            actor,
            AuditAction::PrescriptionChanged,
            Some(patient),
            detail,
        )
    }

    /// An order crossing soft limits was confirmed with a reason: `note`
    /// names the crossings and the reason.
    pub fn soft_limit_confirmed(
        at_ms: i64,
        actor: &str,
        patient: PatientId,
        version: u32,
        note: &str,
    ) -> NewAudit {
        Self::of(
            at_ms,
            actor,
            AuditAction::SoftLimitConfirmed,
            Some(patient),
            format!("version {version}: {note}"),
        )
    }

    /// A device logged in.
    pub fn device_login(at_ms: i64, mac: &str, patient: PatientId) -> NewAudit {
        Self::of(
            at_ms,
            &device_actor(mac),
            AuditAction::DeviceLogin,
            Some(patient),
            String::new(),
        )
    }

    /// A device login with the right password and MAC failed the proof of
    /// the device secret.
    pub fn device_proof_failed(
        at_ms: i64,
        mac: &str,
        patient: PatientId,
        username: &str,
        why: &str,
    ) -> NewAudit {
        let detail = format!("username {username:?}: {why}; refused");
        Self::of(
            at_ms,
            &device_actor(mac),
            AuditAction::DeviceProofFailed,
            Some(patient),
            detail,
        )
    }

    /// A device login reused a login challenge.
    pub fn login_replayed(at_ms: i64, mac: &str, patient: PatientId, username: &str) -> NewAudit {
        let detail =
            format!("username {username:?}: a used login challenge presented again; refused");
        Self::of(
            at_ms,
            &device_actor(mac),
            AuditAction::LoginReplayed,
            Some(patient),
            detail,
        )
    }

    /// A device reported an alarm (event `seq`).
    pub fn alarm(at_ms: i64, mac: &str, patient: PatientId, alarm: Alarm, seq: u32) -> NewAudit {
        let detail = format!("{} (event {seq})", crate::alarm_words(alarm));
        Self::of(
            at_ms,
            &device_actor(mac),
            AuditAction::Alarm,
            Some(patient),
            detail,
        )
    }
}

impl NewAudit {
    /// A web login (`login`) or logout by `username`.
    pub fn web_session(at_ms: i64, username: &str, login: bool) -> NewAudit {
        let action = if login {
            AuditAction::WebLogin
        } else {
            AuditAction::WebLogout
        };
        Self::of(at_ms, &user_actor(username), action, None, String::new())
    }
}

impl NewAudit {
    /// A physician acknowledged alarm event `event_id` (`alarm`).
    pub fn alarm_acknowledged(
        at_ms: i64,
        actor: &str,
        patient: PatientId,
        alarm: &str,
        event_id: i64,
    ) -> NewAudit {
        // Stored as its code; read as its words.
        let alarm = match Alarm::parse(alarm) {
            Some(a) => crate::alarm_words(a),
            None => alarm,
        };
        let detail = format!("{alarm} (stored event {event_id}) acknowledged");
        Self::of(
            at_ms,
            actor,
            AuditAction::AlarmAcknowledged,
            Some(patient),
            detail,
        )
    }
}

impl NewAudit {
    /// The decision algorithm suggested `s`.
    pub fn suggestion_made(at_ms: i64, patient: PatientId, id: i64, s: &NewSuggestion) -> NewAudit {
        let detail = format!(
            "suggestion {id} on version {}: {} at {} ({})",
            s.based_on_version,
            ml(s.volume_ul),
            ml_h(s.rate_ul_h),
            s.reason
        );
        Self::of(
            at_ms,
            "decision-algorithm",
            AuditAction::SuggestionMade,
            Some(patient),
            detail,
        )
    }

    /// A physician approved (as `version`) or rejected suggestion `id`.
    pub fn suggestion_decided(
        at_ms: i64,
        actor: &str,
        patient: PatientId,
        id: i64,
        approved_as: Option<u32>,
    ) -> NewAudit {
        let (action, detail) = match approved_as {
            Some(v) => (
                AuditAction::SuggestionApproved,
                format!("suggestion {id} approved as version {v}"),
            ),
            None => (
                AuditAction::SuggestionRejected,
                format!("suggestion {id} rejected"),
            ),
        };
        Self::of(at_ms, actor, action, Some(patient), detail)
    }
}

impl StoreError {
    /// No pending suggestion with this id for this patient.
    pub fn no_suggestion(id: i64) -> StoreError {
        StoreError::NotFound(format!("no pending suggestion {id} for this patient"))
    }

    /// A suggestion made for a version that is no longer current.
    pub fn stale_suggestion(based_on: u32, current: u32) -> StoreError {
        StoreError::Conflict(format!(
            "this suggestion was made for version {based_on}, but version {current} has been written since; it can no longer be approved"
        ))
    }
}

impl StoreError {
    /// No alarm with this id for this patient.
    pub fn no_alarm(event_id: i64) -> StoreError {
        StoreError::NotFound(format!("no alarm {event_id} for this patient"))
    }
}

/// The audit actor of a web user: `user:NAME`.
pub fn user_actor(username: &str) -> String {
    format!("user:{username}")
}

impl StoreError {
    /// The username is taken.
    pub fn username_taken(username: &str) -> StoreError {
        StoreError::Conflict(format!(
            "the username {username:?} is taken (usernames differing only in letter case are one)"
        ))
    }

    /// No patient has this username.
    pub fn no_patient(username: &str) -> StoreError {
        StoreError::NotFound(format!("no patient named {username:?}"))
    }

    /// No physician has this username.
    pub fn no_physician(username: &str) -> StoreError {
        StoreError::NotFound(format!("no physician named {username:?}"))
    }

    /// The MAC address serves another account.
    pub fn device_taken(mac: &MacAddress) -> StoreError {
        StoreError::Conflict(format!("the device {mac} is bound to another account"))
    }

    /// New limits would exclude the current prescription.
    pub fn limits_exclude(p: &Prescription) -> StoreError {
        StoreError::OutsideLimits(format!(
            "the current prescription (version {}: {} at {}) would fall outside these limits; change it first",
            p.version,
            ml(p.volume_ul),
            ml_h(p.rate_ul_h)
        ))
    }
}

impl NewAudit {
    /// `actor` moved the server secrets `names` out of the database.
    pub fn server_keys_moved(at_ms: i64, actor: &str, names: &[&str]) -> NewAudit {
        let detail = format!(
            "{} moved to a key file; only servers given that file can sign an index",
            names.join(", ")
        );
        Self::of(at_ms, actor, AuditAction::ServerKeysMoved, None, detail)
    }
}
