//! Who read which patient's record (HIPAA §164.312(b) asks for audit
//! controls that record access, not only changes). A view of a patient's
//! page is audited as `record_viewed`, once per reader and patient in
//! [`QUIET_MS`] on each instance, so that a physician reading a record
//! all morning leaves one entry per quarter hour, not one per click; what
//! a page fetches by itself (its live refreshes) is no view.

use std::collections::HashMap;
use std::sync::Mutex;

use infusion_protocol::PatientId;
use infusion_store::AccountId;

/// How long after an audited view another by the same reader goes
/// unrecorded.
pub const QUIET_MS: i64 = 15 * 60 * 1000;

/// The last audited view of each (reader, patient).
#[derive(Debug, Default)]
pub struct RecordViews {
    last: Mutex<HashMap<(AccountId, PatientId), i64>>,
}

impl RecordViews {
    /// Whether a view by `reader` of `patient` at `now_ms` is audited
    /// (and, if it is, remembered as the last).
    pub fn audit_now(&self, reader: AccountId, patient: PatientId, now_ms: i64) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.len() > 10_000 {
            last.retain(|_, at| now_ms - *at < QUIET_MS);
        }
        match last.get(&(reader, patient)) {
            Some(at) if now_ms - at < QUIET_MS => false,
            _ => {
                last.insert((reader, patient), now_ms);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_is_recorded_once_per_quarter_hour_per_patient() {
        let v = RecordViews::default();
        let (doc, a, b) = (AccountId(1), PatientId(1), PatientId(2));
        assert!(v.audit_now(doc, a, 0));
        assert!(!v.audit_now(doc, a, QUIET_MS - 1));
        assert!(v.audit_now(doc, b, 5), "another patient");
        assert!(v.audit_now(AccountId(2), a, 5), "another reader");
        assert!(v.audit_now(doc, a, QUIET_MS));
    }
}
