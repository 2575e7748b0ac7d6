//! What people read for the codes the wire and the database use: alarms,
//! states of an infusion and audit actions, each as a clinician would say
//! it. The codes stay the contract (API, exports, `admin` commands); every
//! page and audit entry a person reads uses these words.

use infusion_protocol::{Alarm, InfusionState, StateChange};

use crate::AuditAction;

/// An alarm by its stored code (a pump's, or the server's
/// `pump_silent`), as a nurse would say it.
pub fn alarm_code_words(code: &str) -> &'static str {
    match Alarm::parse(code) {
        Some(a) => alarm_words(a),
        None if code == crate::PUMP_SILENT => "Pump silent: no word from the pump",
        None => "Alarm",
    }
}

/// An alarm as a nurse would say it.
pub fn alarm_words(a: Alarm) -> &'static str {
    match a {
        Alarm::Occlusion => "Occlusion: the line is blocked",
        Alarm::SyringeEmpty => "Syringe empty",
        Alarm::BatteryLow => "Battery low",
        Alarm::MotorFault => "Motor fault",
        Alarm::CommLost => "No contact with the server",
        Alarm::LimitsRefused => "Order refused by the pump: outside its limits",
        Alarm::IndexUnverified => {
            "Order refused by the pump: it could not verify that this server sent it"
        }
        Alarm::Restarted => "Pump restarted: it waits for the order to be continued",
    }
}

/// What a pump's report of a change of state means.
pub fn state_change_words(s: StateChange) -> &'static str {
    match s {
        StateChange::Started => "running",
        StateChange::Adjusted => "running at a new rate",
        StateChange::Paused => "paused",
        StateChange::Resumed => "running again",
        StateChange::Completed => "finished: the whole volume was given",
    }
}

/// What a prescription version tells the pump to do.
pub fn order_words(s: InfusionState) -> &'static str {
    match s {
        InfusionState::Run => "run",
        InfusionState::Hold => "on hold",
    }
}

impl AuditAction {
    /// The action as a sentence's start: "Prescription changed".
    pub fn words(self) -> &'static str {
        match self {
            AuditAction::DeviceLogin => "Pump logged in",
            AuditAction::DeviceLoginRefused => "Pump login refused",
            AuditAction::TokenRefused => "Pump request refused",
            AuditAction::AccountCreated => "Account created",
            AuditAction::DeviceBound => "Pump assigned",
            AuditAction::LimitsChanged => "Limits changed",
            AuditAction::PrescriptionChanged => "Prescription changed",
            AuditAction::Alarm => "Alarm",
            AuditAction::WebLogin => "Logged in",
            AuditAction::WebLoginRefused => "Login refused",
            AuditAction::WebLogout => "Logged out",
            AuditAction::AlarmAcknowledged => "Alarm acknowledged",
            AuditAction::SuggestionMade => "Change suggested",
            AuditAction::SuggestionApproved => "Suggestion approved",
            AuditAction::SuggestionRejected => "Suggestion rejected",
            AuditAction::TokenReplayed => "Pump token used twice: chain revoked",
            AuditAction::LoginLockedOut => "Login locked for a while",
            AuditAction::DeviceProofFailed => "Pump failed to prove its identity",
            AuditAction::LoginReplayed => "Pump login replayed",
            AuditAction::ServerKeysMoved => "Server keys moved",
            AuditAction::RetiredTokenUsed => "Retired pump token used",
            AuditAction::LoginSlowed => "Logins slowed",
            AuditAction::SoftLimitConfirmed => "Order beyond the usual range confirmed",
            AuditAction::PasswordChanged => "Password changed",
            AuditAction::AccountDisabled => "Account disabled",
            AuditAction::AccountEnabled => "Account enabled",
            AuditAction::SecondFactorEnabled => "Two-step login set up",
            AuditAction::RecoveryCodeUsed => "Recovery code used",
            AuditAction::SecondFactorReset => "Two-step login removed",
            AuditAction::RecordViewed => "Record viewed",
            AuditAction::DrugAdded => "Drug added to the library",
            AuditAction::DrugWithdrawn => "Drug withdrawn from the library",
            AuditAction::TimeZoneSet => "Time zone set",
            AuditAction::DeviceUnbound => "Pump unbound",
            AuditAction::PatientMoved => "Patient moved to another physician",
            AuditAction::PasswordReset => "Password reset by an administrator",
            AuditAction::PatientNoteSet => "Note for the patient",
            AuditAction::PumpSilent => "Pump silent",
            AuditAction::PumpHeardAgain => "Pump heard from again",
            AuditAction::WardCreated => "Ward created",
            AuditAction::WardAssigned => "Patient put on a ward",
            AuditAction::CaregiverGranted => "Caregiver given access",
            AuditAction::CaregiverRevoked => "Caregiver's access revoked",
            AuditAction::AlarmSent => "Alarm sent to the care team",
            AuditAction::AlarmEscalated => "Alarm escalated",
            AuditAction::AlarmSilenced => "Alarm silenced",
            AuditAction::PatientNurseSet => "Nurse looking after the patient",
            AuditAction::EscalationPolicySet => "Escalation policy set",
            AuditAction::EmailSet => "Alarm email address set",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_sentences() {
        assert_eq!(
            crate::sentence("the volume must be more than 0 mL"),
            "The volume must be more than 0 mL."
        );
        assert_eq!(crate::sentence("Saved."), "Saved.");
        assert_eq!(crate::sentence("9 mL at 9.75 mL/h"), "9 mL at 9.75 mL/h.");
        assert_eq!(crate::uncapitalised("This is common."), "this is common");
    }

    #[test]
    fn every_code_has_words_that_are_not_the_code() {
        for a in AuditAction::ALL {
            assert_ne!(a.words(), a.as_str());
            assert!(!a.words().contains('_'), "{}", a.words());
        }
        for a in Alarm::ALL {
            assert!(!alarm_words(*a).contains('_'), "{}", alarm_words(*a));
        }
        for s in StateChange::ALL {
            assert!(!state_change_words(*s).contains('_'));
        }
    }
}
