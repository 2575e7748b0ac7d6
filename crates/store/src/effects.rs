//! What a store decision leaves behind besides its own rows: the audit
//! entries to append, the changes to announce, and what it does to the
//! alarm tables (an escalation raised, stepped or ended, each with its
//! notification in the outbox: in the decision's transaction, so that a
//! stored alarm always has its notification).
//!
//! Every decision function of this crate returns its effects instead of
//! writing them, so that both backends write the same entries in the same
//! order and announce the same changes, each in its own way (SQLite's
//! writer announces after the batch's COMMIT; PostgreSQL sends
//! `pg_notify` inside the transaction and appends the audit entries last,
//! since the audit head's lock must be the last lock a transaction takes).

use crate::{AlarmEffect, Change, NewAudit};

/// Audit entries and change announcements, in the order they are to be
/// applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use = "effects that are not applied leave no audit entry and no announcement"]
pub struct Effects {
    /// Appended to the audit chain, in order.
    pub audit: Vec<NewAudit>,
    /// Announced on the change feed once the transaction commits.
    pub changes: Vec<Change>,
    /// Written to the escalation and notification tables, in order,
    /// before the audit entries.
    pub alarms: Vec<AlarmEffect>,
}

impl Effects {
    /// No effects.
    pub fn none() -> Effects {
        Effects::default()
    }

    /// One audit entry and nothing announced.
    pub fn audit(entry: NewAudit) -> Effects {
        Effects {
            audit: vec![entry],
            ..Effects::default()
        }
    }

    /// Adds an audit entry after those already here.
    pub fn and_audit(mut self, entry: NewAudit) -> Effects {
        self.audit.push(entry);
        self
    }

    /// Adds a change to announce.
    pub fn and_announce(mut self, change: Change) -> Effects {
        self.changes.push(change);
        self
    }

    /// Adds what to write to the alarm tables.
    pub fn and_alarm(mut self, effect: AlarmEffect) -> Effects {
        self.alarms.push(effect);
        self
    }

    /// These effects followed by `later`'s.
    pub fn then(mut self, mut later: Effects) -> Effects {
        self.audit.append(&mut later.audit);
        self.changes.append(&mut later.changes);
        self.alarms.append(&mut later.alarms);
        self
    }
}
