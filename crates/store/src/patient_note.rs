//! What a physician chooses to share with the patient: a short note shown
//! on the patient's own page ("Take the morning dose with breakfast",
//! "Call the ward if the tremor returns"). Plain text, kept with the
//! patient, replaced as a whole, audited.

use infusion_protocol::PatientId;

use crate::{AuditAction, Change, Effects, NewAudit, StoreError, StoreResult};

/// Longest note kept, in characters: a few sentences, not a record.
pub const NOTE_MAX: usize = 1_000;

/// The note a physician shared with the patient, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientNote {
    /// The text, as written (lines kept).
    pub text: String,
    /// When it was written, ms since the epoch.
    pub set_at_ms: i64,
}

/// Decides a new note for `patient`: the text to store (`None`: the note
/// is cleared), its audit entry, and the announcement that refreshes the
/// patient's open page. Refused when longer than [`NOTE_MAX`] or holding
/// control characters other than line breaks and tabs.
pub fn note_set(
    text: &str,
    patient: PatientId,
    actor: &str,
    now_ms: i64,
) -> StoreResult<(Option<String>, Effects)> {
    let text = text.trim().replace("\r\n", "\n");
    if text.chars().count() > NOTE_MAX {
        return Err(StoreError::Invalid(format!(
            "a note for the patient is at most {NOTE_MAX} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(StoreError::Invalid(
            "a note for the patient is plain text".into(),
        ));
    }
    let (stored, detail) = if text.is_empty() {
        (None, "note for the patient removed".to_owned())
    } else {
        let detail = format!("note for the patient: {}", text.replace('\n', " / "));
        (Some(text), detail)
    };
    let audit = NewAudit::of(
        now_ms,
        actor,
        AuditAction::PatientNoteSet,
        Some(patient),
        detail,
    );
    Ok((
        stored,
        Effects::audit(audit).and_announce(Change::Events { patient }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_plain_bounded_text_and_an_empty_one_clears_it() {
        let (t, e) = note_set(
            "  Call the ward\r\nif it hurts  ",
            PatientId(1),
            "user:dr",
            5,
        )
        .unwrap();
        assert_eq!(t.as_deref(), Some("Call the ward\nif it hurts"));
        assert_eq!(
            e.audit[0].detail,
            "note for the patient: Call the ward / if it hurts"
        );
        assert_eq!(note_set("   ", PatientId(1), "user:dr", 5).unwrap().0, None);
        for bad in ["a\u{7}b".to_owned(), "x".repeat(NOTE_MAX + 1)] {
            assert!(matches!(
                note_set(&bad, PatientId(1), "user:dr", 5),
                Err(StoreError::Invalid(_))
            ));
        }
    }
}
