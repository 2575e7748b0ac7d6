//! A patient's care team as an escalation sees it: the nurse looking after
//! the patient, the ward (its policy and its nurses), the physician and the
//! caregivers, each a person an alarm can be told to. A backend reads it
//! (one patient, three statements) when an alarm is raised or a step is
//! due; the decisions in [`crate::escalation`] choose whom each step tells
//! and write their names in the audit trail.

use crate::{AccountId, Columns, StoreResult};

/// A ward's escalation policy: how long an unacknowledged alarm waits
/// before each next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// From the patient's nurse to every nurse of the ward.
    pub to_ward_after_ms: i64,
    /// From the ward's nurses to the physician.
    pub to_physician_after_ms: i64,
}

/// The policy a ward starts with: a minute, then two more.
pub const DEFAULT_POLICY: Policy = Policy {
    to_ward_after_ms: 60_000,
    to_physician_after_ms: 120_000,
};

/// The shortest and longest wait a policy may set: a step sooner than 10 s
/// leaves no time to walk to the bed; one later than an hour is no
/// escalation.
pub const POLICY_RANGE_MS: (i64, i64) = (10_000, 3_600_000);

/// Someone an alarm can be told to (an enabled account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The account.
    pub account: AccountId,
    /// Its username, for the audit and the pages.
    pub username: String,
}

impl Member {
    /// A member from two columns from `i` (id, username); `None` when the
    /// id is NULL (no such person, or a disabled one).
    pub fn at(c: &impl Columns, i: usize) -> StoreResult<Option<Member>> {
        Ok(match c.int(i)? {
            Some(id) => Some(Member {
                account: AccountId(id),
                username: c.string(i + 1)?,
            }),
            None => None,
        })
    }
}

/// A patient's care team now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Team {
    /// The nurse looking after the patient.
    pub nurse: Option<Member>,
    /// The ward's policy, if the patient is on a ward.
    pub ward: Option<Policy>,
    /// Every nurse of the ward.
    pub ward_nurses: Vec<Member>,
    /// The physician.
    pub physician: Option<Member>,
    /// The caregivers whose access lasts.
    pub caregivers: Vec<Member>,
}

impl Team {
    /// No one: what a report without an alarm passes, since it raises
    /// nothing.
    pub const NONE: Team = Team {
        nurse: None,
        ward: None,
        ward_nurses: Vec::new(),
        physician: None,
        caregivers: Vec::new(),
    };

    /// The first read of a team: the patient `?1`'s nurse, ward and
    /// physician (PostgreSQL with `$` for `?`). Disabled accounts are told
    /// nothing.
    pub const PATIENT_SQL: &'static str = "SELECT n.id, n.username, w.id, w.to_ward_after_ms,
            w.to_physician_after_ms, ph.id, ph.username
        FROM patients p LEFT JOIN wards w ON w.id = p.ward_id
        LEFT JOIN accounts n ON n.id = p.nurse_id AND n.disabled_at_ms IS NULL
        LEFT JOIN accounts ph ON ph.id = p.physician_id AND ph.disabled_at_ms IS NULL
        WHERE p.id = ?1";

    /// The nurses of patient `?1`'s ward: id, username.
    pub const WARD_NURSES_SQL: &'static str = "SELECT a.id, a.username FROM patients p
        JOIN nurses x ON x.ward_id = p.ward_id JOIN accounts a ON a.id = x.account_id
        WHERE p.id = ?1 AND a.disabled_at_ms IS NULL ORDER BY a.username";

    /// The caregivers of patient `?1` whose access lasts at `?2`: id,
    /// username.
    pub const CAREGIVERS_SQL: &'static str = "SELECT a.id, a.username FROM caregivers g
        JOIN accounts a ON a.id = g.account_id
        WHERE g.patient_id = ?1 AND g.revoked_at_ms IS NULL AND g.ends_at_ms > ?2
          AND a.disabled_at_ms IS NULL ORDER BY a.username";

    /// A team from a row of [`Self::PATIENT_SQL`], without the ward's
    /// nurses and the caregivers (read next).
    pub fn from_row(c: &impl Columns) -> StoreResult<Team> {
        Ok(Team {
            nurse: Member::at(c, 0)?,
            ward: match c.int(2)? {
                Some(_) => Some(Policy {
                    to_ward_after_ms: c.i64(3)?,
                    to_physician_after_ms: c.i64(4)?,
                }),
                None => None,
            },
            ward_nurses: Vec::new(),
            physician: Member::at(c, 5)?,
            caregivers: Vec::new(),
        })
    }

    /// The steps this team has, in order.
    pub fn steps(&self) -> Vec<crate::Step> {
        use crate::Step;
        match self.ward {
            Some(_) if self.nurse.is_some() => Step::ALL.to_vec(),
            Some(_) => vec![Step::WardNurses, Step::Physician],
            None => vec![Step::Physician],
        }
    }

    /// The first step.
    pub fn first(&self) -> crate::Step {
        self.steps()[0]
    }

    /// The step after `current` (a team may have changed since it was
    /// told: the next is the first of its steps beyond `current`), and how
    /// long it waits.
    pub fn after(&self, current: crate::Step) -> Option<(crate::Step, i64)> {
        use crate::Step;
        let next = self.steps().into_iter().find(|s| *s > current)?;
        let policy = self.ward.unwrap_or(DEFAULT_POLICY);
        let wait = match next {
            Step::PatientNurse => 0,
            Step::WardNurses => policy.to_ward_after_ms,
            Step::Physician => policy.to_physician_after_ms,
        };
        Some((next, wait))
    }

    /// When the step after `current`, told at `at_ms`, falls due.
    pub fn due_after(&self, current: crate::Step, at_ms: i64) -> Option<i64> {
        self.after(current).map(|(_, wait)| at_ms + wait)
    }

    /// Whom `step` tells.
    pub fn told(&self, step: crate::Step) -> Vec<&Member> {
        use crate::Step;
        match step {
            Step::PatientNurse => self.nurse.iter().collect(),
            Step::WardNurses => self.ward_nurses.iter().collect(),
            Step::Physician => self.physician.iter().collect(),
        }
    }
}

/// `members`' usernames, for an audit entry: `nina, nell`, or `no one
/// with an account`.
pub fn names(members: &[&Member]) -> String {
    if members.is_empty() {
        "no one with an account".to_owned()
    } else {
        members
            .iter()
            .map(|m| m.username.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
