//! The care team around a patient besides the physician: wards and the
//! nurses who belong to them, and the caregivers (family members) a
//! physician lets follow one patient until an end date.
//!
//! A nurse reaches the patients of the nurse's ward, acknowledges and
//! silences their alarms, and never changes limits or orders. A caregiver
//! reaches one patient, read only, while the grant lasts: it ends by
//! itself at its end date, or when the physician revokes it. Ward names
//! are unique on the server whatever their case, so that an
//! administrator's `--ward 4B` names one ward.

use async_trait::async_trait;
use infusion_protocol::PatientId;

use crate::{
    AccountId, AccountRecord, AuditAction, Change, Columns, Effects, NewAudit, PatientSummary,
    Role, StoreError, StoreResult, check_account_names, name_fault, patient_at,
};

/// A ward's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WardId(pub i64);

/// A ward: a unit of an institution with its own nurses and patients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ward {
    /// The row.
    pub id: WardId,
    /// Its name, as the staff call it ("4B", "Neurology").
    pub name: String,
}

/// Longest ward name, in characters.
pub const WARD_NAME_MAX: usize = 64;

/// Longest caregiver grant: a year. A family's access is renewed
/// deliberately, not left open.
pub const GRANT_MAX_MS: i64 = 366 * 24 * 3_600_000;

/// A nurse to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNurse {
    /// Login name.
    pub username: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// The ward's name; the nurse joins its institution.
    pub ward: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The password was chosen by whoever creates the account: it is
    /// changed at the first web login.
    pub must_change_password: bool,
}

/// A caregiver's access to one patient, as a physician grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCaregiver {
    /// The patient followed.
    pub patient: PatientId,
    /// Login name: a new caregiver account, or an existing caregiver's
    /// (a family member following a second patient).
    pub username: String,
    /// First name (a new account's).
    pub first_name: String,
    /// Last name (a new account's).
    pub last_name: String,
    /// Argon2id PHC string of a new account's first password (changed at
    /// its first login); `None` for an existing caregiver.
    pub password_hash: Option<String>,
    /// When the access ends by itself, ms since the epoch.
    pub ends_at_ms: i64,
}

/// One caregiver's access to a patient, current or ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaregiverGrant {
    /// The grant's row id.
    pub id: i64,
    /// The patient followed.
    pub patient: PatientId,
    /// The caregiver's account.
    pub account: AccountId,
    /// Login name.
    pub username: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Who granted it (an audit actor).
    pub granted_by: String,
    /// When, ms since the epoch.
    pub granted_at_ms: i64,
    /// When it ends by itself.
    pub ends_at_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
}

impl CaregiverGrant {
    /// The select list of a grant, over `caregivers g` and `accounts a`
    /// (the caregiver's).
    pub const COLUMNS: &'static str = "g.id, g.patient_id, g.account_id, a.username,
        a.first_name, a.last_name, g.granted_by, g.granted_at_ms, g.ends_at_ms, g.revoked_at_ms";

    /// A row selected with [`CaregiverGrant::COLUMNS`].
    pub fn from_row(c: &impl Columns) -> StoreResult<CaregiverGrant> {
        Ok(CaregiverGrant {
            id: c.i64(0)?,
            patient: patient_at(c, 1)?,
            account: AccountId(c.i64(2)?),
            username: c.string(3)?,
            first_name: c.string(4)?,
            last_name: c.string(5)?,
            granted_by: c.string(6)?,
            granted_at_ms: c.i64(7)?,
            ends_at_ms: c.i64(8)?,
            revoked_at_ms: c.int(9)?,
        })
    }

    /// Does it give access at `now_ms`?
    pub fn active(&self, now_ms: i64) -> bool {
        self.revoked_at_ms.is_none() && now_ms < self.ends_at_ms
    }
}

/// One ward as its institution's administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WardOverview {
    /// Its name.
    pub name: String,
    /// Its escalation policy.
    pub policy: crate::Policy,
    /// How many nurses it has.
    pub nurses: u32,
    /// How many patients are on it.
    pub patients: u32,
}

impl WardOverview {
    /// The wards of the institution named `?1`, by name (PostgreSQL with
    /// `$` for `?`).
    pub const QUERY: &'static str = "SELECT w.name, w.to_ward_after_ms, w.to_physician_after_ms,
            (SELECT count(*) FROM nurses n WHERE n.ward_id = w.id),
            (SELECT count(*) FROM patients p WHERE p.ward_id = w.id)
        FROM wards w JOIN institutions i ON i.id = w.institution_id
        WHERE i.name = ?1 ORDER BY lower(w.name)";

    /// A row of [`Self::QUERY`].
    pub fn from_row(c: &impl Columns) -> StoreResult<WardOverview> {
        Ok(WardOverview {
            name: c.string(0)?,
            policy: crate::Policy {
                to_ward_after_ms: c.i64(1)?,
                to_physician_after_ms: c.i64(2)?,
            },
            nurses: c.u32(3)?,
            patients: c.u32(4)?,
        })
    }
}

/// Wards, nurses and caregivers, one transaction per method.
#[async_trait]
pub trait CareTeam: Send + Sync {
    /// Creates the ward `name` at `institution`, as [`ward_created`]
    /// decides (without an institution: the only one there is).
    async fn create_ward(
        &self,
        name: &str,
        institution: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<WardId>;

    /// Creates a nurse of an existing ward, as [`nurse_created`] decides.
    async fn create_nurse(&self, new: NewNurse, actor: &str, now_ms: i64)
    -> StoreResult<AccountId>;

    /// Puts `patient` on the ward `ward`, as [`ward_assigned`] decides.
    async fn assign_ward(
        &self,
        patient: PatientId,
        ward: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Every patient of `ward`.
    async fn ward_patients(&self, ward: WardId) -> StoreResult<Vec<PatientSummary>>;

    /// The wards of the institution named `institution`.
    async fn wards(&self, institution: &str) -> StoreResult<Vec<WardOverview>>;

    /// Lets a caregiver follow a patient, as [`caregiver_granted`]
    /// decides, creating the caregiver's account if the username is new.
    async fn grant_caregiver(
        &self,
        new: NewCaregiver,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId>;

    /// Ends the grant `grant` of `patient` now, as [`caregiver_revoked`]
    /// decides.
    async fn revoke_caregiver(
        &self,
        patient: PatientId,
        grant: i64,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Every grant of `patient`, current and ended, newest first.
    async fn caregivers(&self, patient: PatientId) -> StoreResult<Vec<CaregiverGrant>>;

    /// The patients the caregiver `account` follows at `now_ms`.
    async fn caregiver_patients(
        &self,
        account: AccountId,
        now_ms: i64,
    ) -> StoreResult<Vec<PatientId>>;
}

/// An institution as a backend reads it: row id and name.
pub type InstitutionRow = (i64, String);

/// Decides a new ward: a valid name, not taken, at the institution named
/// `wanted` among `institutions` (every institution there is), or at the
/// only one when none is named. Returns the institution's row id and the
/// audit entry.
pub fn ward_created(
    name: &str,
    wanted: Option<&str>,
    institutions: &[InstitutionRow],
    name_taken: bool,
    actor: &str,
    now_ms: i64,
) -> StoreResult<(i64, Effects)> {
    if let Some(fault) = name_fault(name, WARD_NAME_MAX) {
        return Err(StoreError::Invalid(format!("the ward's name {fault}")));
    }
    let (id, institution) = match wanted {
        Some(w) => institutions
            .iter()
            .find(|(_, n)| n == w)
            .ok_or_else(|| StoreError::NotFound(format!("no institution named {w:?}")))?,
        None => match institutions {
            [only] => only,
            [] => {
                return Err(StoreError::NotFound(
                    "there is no institution yet: create a physician or an administrator first"
                        .into(),
                ));
            }
            _ => {
                return Err(StoreError::Invalid(
                    "there are several institutions: name the ward's with --institution".into(),
                ));
            }
        },
    };
    if name_taken {
        return Err(StoreError::Conflict(format!(
            "there is a ward named {name:?} already"
        )));
    }
    let audit = NewAudit::of(
        now_ms,
        actor,
        AuditAction::WardCreated,
        None,
        format!("ward {name} created at {institution}"),
    );
    Ok((*id, Effects::audit(audit)))
}

/// A ward as a nurse's creation or a patient's assignment finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WardFound {
    /// The ward.
    pub id: WardId,
    /// Its name as stored.
    pub name: String,
    /// Its institution's row id.
    pub institution: i64,
    /// Its institution's name.
    pub institution_name: String,
}

impl WardFound {
    /// The select list, over `wards w` and `institutions i`.
    pub const COLUMNS: &'static str = "w.id, w.name, w.institution_id, i.name";

    /// A row selected with [`WardFound::COLUMNS`].
    pub fn from_row(c: &impl Columns) -> StoreResult<WardFound> {
        Ok(WardFound {
            id: WardId(c.i64(0)?),
            name: c.string(1)?,
            institution: c.i64(2)?,
            institution_name: c.string(3)?,
        })
    }
}

/// Decides a new nurse on `ward` as found (`None`: no ward by that name):
/// valid names, an existing ward, then a free username. Returns the
/// audit entry.
pub fn nurse_created(
    new: &NewNurse,
    ward: Option<&WardFound>,
    username_taken: bool,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Effects> {
    check_account_names(&new.username, &new.first_name, &new.last_name)?;
    let ward = ward.ok_or_else(|| no_ward(&new.ward))?;
    if username_taken {
        return Err(StoreError::username_taken(&new.username));
    }
    let audit = NewAudit::of(
        now_ms,
        actor,
        AuditAction::AccountCreated,
        None,
        format!(
            "nurse {} at {}, ward {}",
            new.username, ward.institution_name, ward.name
        ),
    );
    Ok(Effects::audit(audit))
}

fn no_ward(name: &str) -> StoreError {
    StoreError::NotFound(format!("no ward named {name:?}"))
}

/// What an assignment reads about the patient: username, institution,
/// and the ward it is on now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WardPatient {
    /// The patient record.
    pub patient: PatientId,
    /// The patient's username.
    pub username: String,
    /// The patient's institution's row id.
    pub institution: Option<i64>,
    /// The ward the patient is on now.
    pub ward: Option<WardId>,
}

impl WardPatient {
    /// The select list, over `patients p` and `accounts a` (the
    /// patient's).
    pub const COLUMNS: &'static str = "a.username, a.institution_id, p.ward_id";

    /// `patient` from a row selected with [`WardPatient::COLUMNS`].
    pub fn from_row(patient: PatientId, c: &impl Columns) -> StoreResult<WardPatient> {
        Ok(WardPatient {
            patient,
            username: c.string(0)?,
            institution: c.int(1)?,
            ward: c.int(2)?.map(WardId),
        })
    }
}

/// Decides putting `p` on `ward` as found (`None`: no ward named
/// `wanted`). A ward of another institution is refused as unknown; the
/// ward the patient is on already, as a conflict. Returns the audit entry
/// and a [`Change::Resync`]: whom each open page reaches has changed.
pub fn ward_assigned(
    p: &WardPatient,
    ward: Option<&WardFound>,
    wanted: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Effects> {
    let ward = ward
        .filter(|w| Some(w.institution) == p.institution)
        .ok_or_else(|| no_ward(wanted))?;
    if p.ward == Some(ward.id) {
        return Err(StoreError::Conflict(format!(
            "nothing to do: {} is on ward {} already",
            p.username, ward.name
        )));
    }
    let audit = NewAudit::of(
        now_ms,
        actor,
        AuditAction::WardAssigned,
        Some(p.patient),
        format!("{} put on ward {}", p.username, ward.name),
    );
    Ok(Effects::audit(audit).and_announce(Change::Resync))
}

/// Decides a caregiver's access: an end date after now and at most
/// [`GRANT_MAX_MS`] ahead; for a username already taken, a caregiver's
/// account (`existing`) without a current grant for this patient
/// (`current`); for a new one, valid names and a first password. Returns
/// the audit entry and a [`Change::Resync`] (whom the caregiver's open
/// pages reach has changed).
pub fn caregiver_granted(
    new: &NewCaregiver,
    existing: Option<&AccountRecord>,
    current: Option<&CaregiverGrant>,
    patient_username: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Effects> {
    if new.ends_at_ms <= now_ms {
        return Err(StoreError::Invalid(
            "the access must end after today".into(),
        ));
    }
    if new.ends_at_ms - now_ms > GRANT_MAX_MS {
        return Err(StoreError::Invalid(
            "a caregiver's access lasts at most a year; grant it again when it ends".into(),
        ));
    }
    match existing {
        Some(a) if a.role != Role::Caregiver => {
            return Err(StoreError::username_taken(&new.username));
        }
        Some(_) => {
            if current.is_some_and(|g| g.active(now_ms)) {
                return Err(StoreError::Conflict(format!(
                    "{} follows {patient_username} already; revoke that access first to change \
                     its end",
                    new.username
                )));
            }
        }
        None => {
            check_account_names(&new.username, &new.first_name, &new.last_name)?;
            if new.password_hash.is_none() {
                return Err(StoreError::Invalid(
                    "a new caregiver needs a first password".into(),
                ));
            }
        }
    }
    let audit = NewAudit::of(
        now_ms,
        actor,
        AuditAction::CaregiverGranted,
        Some(new.patient),
        format!(
            "caregiver {} may follow {patient_username}, read only, until {}",
            new.username,
            crate::utc_time(new.ends_at_ms)
        ),
    );
    Ok(Effects::audit(audit).and_announce(Change::Resync))
}

/// Decides revoking `grant` (`None`: no such grant of this patient): a
/// current grant ends now; an ended one is a conflict. Returns the audit
/// entry and a [`Change::Resync`]: the caregiver's open pages reread what
/// they may show, which is no longer this patient.
pub fn caregiver_revoked(
    grant: Option<&CaregiverGrant>,
    patient: PatientId,
    actor: &str,
    now_ms: i64,
) -> StoreResult<Effects> {
    let g = grant.ok_or_else(|| StoreError::NotFound("no such caregiver access".into()))?;
    if !g.active(now_ms) {
        return Err(StoreError::Conflict(format!(
            "{}'s access has ended already",
            g.username
        )));
    }
    let audit = NewAudit::of(
        now_ms,
        actor,
        AuditAction::CaregiverRevoked,
        Some(patient),
        format!("caregiver {}'s access revoked", g.username),
    );
    Ok(Effects::audit(audit).and_announce(Change::Resync))
}

#[cfg(test)]
mod tests;
