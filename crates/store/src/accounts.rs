//! Accounts: physicians, administrators and patients, their names and
//! roles, and the rules every backend applies when one is created.

use async_trait::async_trait;
use infusion_protocol::{PatientId, PatientLimits};

use crate::{
    Change, DEFAULT_LIMITS, Effects, NewAudit, PatientIdentifiers, StoreError, StoreResult,
    TokenHash, check_identifiers,
};

/// Creating and finding accounts, one transaction per method.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Creates a physician account, and its institution if that name is new.
    async fn create_physician(
        &self,
        new: NewPhysician,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId>;

    /// Creates an administrator account at an institution (the same fields
    /// as a physician's): accounts, institutions and devices, no clinical
    /// data.
    async fn create_admin(
        &self,
        new: NewPhysician,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId>;

    /// Creates a patient account bound to an existing physician, with limits
    /// equal to the pump's hard limits and no prescription (index version 0,
    /// `hold`).
    async fn create_patient(
        &self,
        new: NewPatient,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<PatientId>;

    /// Every physician and administrator account, and every patient, for
    /// the administrator's overview: (account, role, physician of a
    /// patient, bound device of a patient), by role then username.
    async fn accounts(&self) -> StoreResult<Vec<AccountOverview>>;

    /// Any account, by username, for a web login. `None` when unknown.
    async fn account(&self, username: &str) -> StoreResult<Option<AccountRecord>>;

    /// The patient record of a username: how an address such as
    /// `/patients/{username}` or an admin command's `--patient` becomes the
    /// key every other method takes. `NotFound` unless it is a patient's.
    async fn patient_id(&self, username: &str) -> StoreResult<PatientId>;

    /// The username of a patient record (`NotFound` if none).
    async fn username_of(&self, patient_id: PatientId) -> StoreResult<String>;

    /// Replaces an account's password with `password_hash` (already
    /// checked and hashed), clears a forced change, and ends every web
    /// session of the account but `keep` (the one that changed it).
    /// Returns how many sessions were ended. Audited.
    async fn change_password(
        &self,
        account: AccountId,
        password_hash: String,
        keep: Option<TokenHash>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<u64>;

    /// Disables (`enabled: false`) or enables the account `username`, as
    /// [`enabling`] decides. Disabling ends its web sessions and, for a
    /// patient, its pump's token chain at once. Audited as a security
    /// event.
    async fn set_account_enabled(
        &self,
        username: &str,
        enabled: bool,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Gives the account `username` the password `password_hash` (already
    /// checked and hashed), to be changed at its next login, as
    /// [`password_reset`] decides; ends its web sessions. Audited.
    async fn reset_password(
        &self,
        username: &str,
        password_hash: String,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;
}

/// What an account lookup for a login adds to its `WHERE`: disabled
/// accounts log in nowhere (written once for both backends' login
/// queries).
pub const ENABLED: &str = "a.disabled_at_ms IS NULL";

/// Decides a password change of `account` (named `username`): its audit
/// entry, and the announcement that ends the account's other open live
/// streams.
pub fn password_changed(account: AccountId, username: &str, actor: &str, now_ms: i64) -> Effects {
    Effects::audit(NewAudit::password_changed(now_ms, actor, username))
        .and_announce(Change::SessionEnded { account })
}

/// Decides an administrator's reset of `target`'s password (`None`: no
/// such account): its audit entry and the announcement that ends the
/// account's open live streams. A patient's password is refused: the
/// pump logs in with it, so a reset here would stop the pump's logins
/// until someone typed the new one into it. One's own account is changed
/// on the password page, knowing the current password.
pub fn password_reset(
    target: Option<&AccountRecord>,
    username: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<(AccountId, Effects)> {
    let a = target.ok_or_else(|| StoreError::NotFound(format!("no account named {username:?}")))?;
    if a.role == Role::Patient {
        return Err(StoreError::Invalid(format!(
            "this is a patient's account: {username}'s pump logs in with this password, so it is \
             not reset here"
        )));
    }
    if crate::user_actor(&a.username) == actor {
        return Err(StoreError::Invalid(
            "change your own password on the Password page".into(),
        ));
    }
    let audit = NewAudit::password_reset(now_ms, actor, username);
    Ok((
        a.account_id,
        Effects::audit(audit).and_announce(Change::SessionEnded {
            account: a.account_id,
        }),
    ))
}

/// Decides disabling or enabling `target` (`None`: no such account) by
/// `actor` (an audit actor: `user:root`, `admin-cli`). An administrator
/// cannot disable their own account (nobody might be left to enable it).
/// `Ok(None)` when the account is in that state already: nothing to write.
pub fn enabling(
    target: Option<&AccountRecord>,
    username: &str,
    enabled: bool,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Option<Effects>> {
    let a = target.ok_or_else(|| StoreError::NotFound(format!("no account named {username:?}")))?;
    if !enabled && crate::user_actor(&a.username) == actor {
        return Err(StoreError::Invalid(
            "you cannot disable your own account; ask another administrator".into(),
        ));
    }
    if a.disabled != enabled {
        return Ok(None);
    }
    let effects = Effects::audit(NewAudit::account_enabled(
        now_ms,
        actor,
        &a.username,
        enabled,
    ));
    Ok(Some(if enabled {
        effects
    } else {
        effects.and_announce(Change::SessionEnded {
            account: a.account_id,
        })
    }))
}

/// An account's row id (physician, patient or admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

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
    /// The password was chosen by whoever creates the account (an
    /// administrator): its owner must change it at the first web login.
    pub must_change_password: bool,
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
    /// Record number and date of birth.
    pub identifiers: PatientIdentifiers,
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
    /// Their ward's patients: sees them, acknowledges and silences their
    /// alarms; never changes limits or orders.
    Nurse,
    /// A family member a physician let follow one patient, until an end
    /// date: read only, and told of that patient's alarms.
    Caregiver,
}

impl Role {
    /// The role as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Physician => "physician",
            Role::Patient => "patient",
            Role::Nurse => "nurse",
            Role::Caregiver => "caregiver",
        }
    }

    /// The inverse of [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::Admin,
            Role::Physician,
            Role::Patient,
            Role::Nurse,
            Role::Caregiver,
        ]
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
    /// Disabled by an administrator: it can log in nowhere.
    pub disabled: bool,
    /// Its password was set by an administrator and must be changed at
    /// the next web login before anything else.
    pub must_change_password: bool,
    /// It logs in with an authenticator code too.
    pub has_second_factor: bool,
    /// The time zone of its institution (IANA name), in which it reads
    /// times; `UTC` without one.
    pub time_zone: String,
    /// A nurse's ward.
    pub ward: Option<crate::Ward>,
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
    /// Disabled: it logs in nowhere.
    pub disabled: bool,
    /// It logs in with an authenticator code too.
    pub has_second_factor: bool,
}

/// True when `username` could be an account's: 1 to 64 characters of
/// ASCII letters, digits and `.`, `_`, `-`, `@`, at least one a letter or
/// digit (`.` and `..` would name no page). A login naming anything else
/// is refused before anything about it is stored or hashed. Usernames are
/// also unique regardless of letter case (each backend's unique index on
/// `lower(username)`), so `pa.one` and `PA.ONE` cannot be two people.
pub fn is_possible_username(username: &str) -> bool {
    use infusion_protocol::limits::USERNAME_MAX;
    username.len() <= USERNAME_MAX
        && username.chars().any(|c| c.is_ascii_alphanumeric())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// Why a person's name or an institution's cannot be stored, in words
/// for the administrator who typed it; `None` when it can. Each name is
/// shown to clinicians beside patients it must not be confused with, so
/// it must look like what it is:
/// - no invisible characters: controls, formatting characters such as a
///   zero-width space or a right-to-left override (Unicode category C),
///   and no spaces but the plain one, none at either end or two together;
/// - at least one letter;
/// - each word in one script (UTS #39 mixed-script detection, by the
///   unicode-security crate), so a Cyrillic "а" cannot hide in a Latin
///   name. A whole name in Cyrillic or in Han is of course allowed.
pub fn name_fault(name: &str, max: usize) -> Option<String> {
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    use unicode_security::MixedScript;
    let group = |c: char| c.general_category_group();
    if name.trim().is_empty() || name.len() > max {
        return Some(format!("must be 1 to {max} bytes long"));
    }
    if name
        .chars()
        .any(|c| group(c) == GeneralCategoryGroup::Other)
    {
        return Some(
            "contains an invisible character (such as a zero-width space or a text direction \
             mark); please type it again"
                .into(),
        );
    }
    if name
        .chars()
        .any(|c| c != ' ' && group(c) == GeneralCategoryGroup::Separator)
        || name.starts_with(' ')
        || name.ends_with(' ')
        || name.contains("  ")
    {
        return Some("may have single plain spaces between words, and none at either end".into());
    }
    if !name
        .chars()
        .any(|c| group(c) == GeneralCategoryGroup::Letter)
    {
        return Some("must contain a letter".into());
    }
    if let Some(word) = name.split(' ').find(|w| !w.is_single_script()) {
        return Some(format!(
            "mixes alphabets within the word {word:?} (for example a Cyrillic letter among \
             Latin ones); type it in one alphabet"
        ));
    }
    None
}

/// Checks the names of a new account against the wire format's limits, so
/// that everything stored can be sent to a pump unchanged. Usernames are
/// [`is_possible_username`]s.
pub fn check_account_names(
    username: &str,
    first_name: &str,
    last_name: &str,
) -> Result<(), StoreError> {
    use infusion_protocol::limits::{NAME_MAX, USERNAME_MAX};
    let invalid = |m: String| Err(StoreError::Invalid(m));
    if !is_possible_username(username) {
        return invalid(format!(
            "a username is 1 to {USERNAME_MAX} letters, digits, '.', '_', '-' or '@', \
             with at least one letter or digit"
        ));
    }
    for (what, v) in [("first name", first_name), ("last name", last_name)] {
        if let Some(fault) = name_fault(v, NAME_MAX) {
            return invalid(format!("the {what} {fault}"));
        }
    }
    Ok(())
}

/// Checks an institution name: 1 to 128 bytes, as a name (see
/// [`name_fault`]).
pub fn check_institution(name: &str) -> Result<(), StoreError> {
    use infusion_protocol::limits::INSTITUTION_MAX;
    match name_fault(name, INSTITUTION_MAX) {
        Some(fault) => Err(StoreError::Invalid(format!("the institution {fault}"))),
        None => Ok(()),
    }
}

/// Shortest password accepted for an account (OWASP ASVS 2.1.1).
pub const PASSWORD_MIN: usize = 12;

/// Checks a new password: 12 to 128 characters, and not easy to guess.
/// The zxcvbn estimator (Dropbox's, ported to Rust) scores it against
/// common and leaked passwords, dictionary words, keyboard patterns,
/// repeats and dates, and against `context` (the username and names,
/// which an attacker knows); a score below 3 (about 10¹⁰ guesses) is
/// refused with its warning, in words.
pub fn check_password(password: &str, context: &[&str]) -> Result<(), StoreError> {
    use infusion_protocol::limits::PASSWORD_MAX;
    if password.chars().count() < PASSWORD_MIN || password.len() > PASSWORD_MAX {
        return Err(StoreError::Invalid(format!(
            "a password is {PASSWORD_MIN} to {PASSWORD_MAX} characters"
        )));
    }
    let estimate = zxcvbn::zxcvbn(password, context);
    if estimate.score() < zxcvbn::Score::Three {
        let why = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map_or_else(String::new, |w| {
                format!(" ({})", crate::uncapitalised(&w.to_string()))
            });
        return Err(StoreError::Invalid(format!(
            "this password is too easy to guess{why}: choose a longer one, for example four or \
             more unrelated words"
        )));
    }
    Ok(())
}

/// Decides a new physician or administrator: valid names, then a free
/// username. Returns the audit entry the creation leaves.
pub fn new_staff(
    new: &NewPhysician,
    role: Role,
    username_taken: bool,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Effects> {
    check_account_names(&new.username, &new.first_name, &new.last_name)?;
    check_institution(&new.institution)?;
    if username_taken {
        return Err(StoreError::username_taken(&new.username));
    }
    Ok(Effects::audit(NewAudit::staff_created(
        now_ms,
        actor,
        role,
        &new.username,
        &new.institution,
    )))
}

/// Decides a new patient: valid names, an existing physician, then a free
/// username. Returns the limits the patient starts with.
pub fn new_patient(
    new: &NewPatient,
    physician_found: bool,
    username_taken: bool,
    now_ms: i64,
) -> StoreResult<PatientLimits> {
    check_account_names(&new.username, &new.first_name, &new.last_name)?;
    check_identifiers(&new.identifiers, now_ms)?;
    if !physician_found {
        return Err(StoreError::no_physician(&new.physician_username));
    }
    if username_taken {
        return Err(StoreError::username_taken(&new.username));
    }
    Ok(DEFAULT_LIMITS)
}

/// What creating patient `patient` leaves: its audit entry.
pub fn patient_created(patient: PatientId, new: &NewPatient, actor: &str, now_ms: i64) -> Effects {
    Effects::audit(NewAudit::patient_created(
        now_ms,
        actor,
        patient,
        &new.username,
        &new.physician_username,
    ))
}

/// Decodes a role as stored; anything else is a fault of the database.
pub fn stored_role(s: &str) -> StoreResult<Role> {
    Role::parse(s).ok_or_else(|| StoreError::Backend(format!("bad stored role {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditAction;

    fn staff(username: &str) -> NewPhysician {
        NewPhysician {
            username: username.into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            institution: "General".into(),
            password_hash: "$argon2id$x".into(),
            must_change_password: false,
        }
    }

    fn patient(username: &str) -> NewPatient {
        NewPatient {
            username: username.into(),
            first_name: "Pat".into(),
            last_name: "Doe".into(),
            physician_username: "doc".into(),
            password_hash: "$argon2id$x".into(),
            identifiers: PatientIdentifiers {
                record_number: Some("MRN-1".into()),
                birth_date: Some("1956-04-23".into()),
            },
        }
    }

    #[test]
    fn staff_needs_valid_names_before_a_free_username() {
        let e = new_staff(&staff("ann"), Role::Physician, false, "admin-cli", 7).unwrap();
        assert_eq!(e.audit.len(), 1);
        assert_eq!(e.audit[0].action, AuditAction::AccountCreated);
        assert_eq!(e.audit[0].detail, "physician ann at General");
        assert!(e.changes.is_empty());
        assert!(matches!(
            new_staff(&staff("ann"), Role::Admin, true, "x", 0),
            Err(StoreError::Conflict(_))
        ));
        // Invalid names are refused as invalid, whether or not the name is taken.
        assert!(matches!(
            new_staff(&staff("a b"), Role::Admin, true, "x", 0),
            Err(StoreError::Invalid(_))
        ));
        let mut bad = staff("ann");
        bad.institution = " ".into();
        assert!(matches!(
            new_staff(&bad, Role::Admin, false, "x", 0),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn a_patient_needs_a_physician_then_a_free_username_and_starts_at_the_hard_limits() {
        assert_eq!(
            new_patient(&patient("pat"), true, false, 1_796_169_600_000),
            Ok(DEFAULT_LIMITS)
        );
        assert!(matches!(
            new_patient(&patient("pat"), false, true, 0),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            new_patient(&patient("pat"), true, true, 1_796_169_600_000),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            new_patient(&patient(""), false, false, 0),
            Err(StoreError::Invalid(_))
        ));
        let e = patient_created(PatientId(3), &patient("pat"), "admin-cli", 1);
        assert_eq!(e.audit[0].patient_id, Some(PatientId(3)));
        assert_eq!(e.audit[0].detail, "patient pat of physician doc");
    }

    #[test]
    fn names_that_would_look_like_another_are_refused() {
        let fault = |n: &str| name_fault(n, 64);
        for fine in [
            "One",
            "Pat",
            "O'Brien",
            "Jean-Luc",
            "van der Berg",
            "Иван",
            "山田",
            "Zoë",
            "José María",
        ] {
            assert_eq!(fault(fine), None, "{fine}");
        }
        // A Cyrillic "о" in a Latin word, a zero-width space, a
        // right-to-left override, a lone zero-width space, a no-break space.
        for bad in [
            "\u{43e}ne",
            "On\u{200b}e",
            "\u{202e}enO",
            "\u{200b}",
            "Pat\u{a0}One",
        ] {
            assert!(fault(bad).is_some(), "{bad:?}");
        }
        assert!(fault(" One").is_some() && fault("One ").is_some() && fault("A  B").is_some());
        assert!(fault("--").is_some(), "no letter");
        assert!(fault(&"a".repeat(65)).is_some());
        let e = check_account_names("pa.one", "Pat", "\u{41e}ne").unwrap_err();
        assert!(e.to_string().contains("mixes alphabets"), "{e}");
    }

    #[test]
    fn usernames_need_a_letter_or_digit() {
        for bad in [".", "..", "-", "@", "", "a b", "pä"] {
            assert!(!is_possible_username(bad), "{bad:?}");
        }
        for fine in ["pa.one", "PA.ONE", "a", "dr_lee@ward-3"] {
            assert!(is_possible_username(fine), "{fine:?}");
        }
    }

    fn record(username: &str, disabled: bool) -> AccountRecord {
        AccountRecord {
            account_id: AccountId(4),
            username: username.into(),
            role: Role::Physician,
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            password_hash: "$argon2id$x".into(),
            disabled,
            must_change_password: false,
            has_second_factor: false,
            time_zone: "UTC".into(),
            ward: None,
        }
    }

    #[test]
    fn easy_passwords_are_refused_with_a_reason() {
        for weak in ["aaaaaaaaaaaa", "            ", "password1234"] {
            let e = check_password(weak, &["ann", "Ann", "Lee"]).unwrap_err();
            assert!(e.to_string().contains("too easy to guess"), "{weak:?}: {e}");
        }
        assert!(
            check_password("short", &[])
                .unwrap_err()
                .to_string()
                .contains("12 to")
        );
        assert_eq!(
            check_password("lantern orbit pebble meadow", &["ann"]),
            Ok(())
        );
    }

    #[test]
    fn disabling_ends_sessions_and_nobody_disables_themselves() {
        let e = enabling(Some(&record("ann", false)), "ann", false, "user:root", 5)
            .unwrap()
            .unwrap();
        assert_eq!(e.audit[0].action, AuditAction::AccountDisabled);
        assert_eq!(
            e.changes,
            [Change::SessionEnded {
                account: AccountId(4)
            }]
        );
        assert!(AuditAction::SECURITY.contains(&AuditAction::AccountDisabled));
        // Already so: nothing to write.
        assert_eq!(
            enabling(Some(&record("ann", true)), "ann", false, "user:root", 5),
            Ok(None)
        );
        let e = enabling(Some(&record("ann", true)), "ann", true, "admin-cli", 5)
            .unwrap()
            .unwrap();
        assert_eq!(e.audit[0].action, AuditAction::AccountEnabled);
        assert!(e.changes.is_empty());
        assert!(matches!(
            enabling(Some(&record("root", false)), "root", false, "user:root", 5),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            enabling(None, "nobody", false, "user:root", 5),
            Err(StoreError::NotFound(_))
        ));
        let e = password_changed(AccountId(4), "ann", "user:ann", 9);
        assert_eq!(e.audit[0].action, AuditAction::PasswordChanged);
        assert_eq!(
            e.changes,
            [Change::SessionEnded {
                account: AccountId(4)
            }]
        );
    }
}
