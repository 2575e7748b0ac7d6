//! What tells one patient from another with a like name (issue 17: two
//! patients of one ward may share one): the hospital's record number and
//! the date of birth, shown beside the name on every row and page.

use crate::{StoreError, StoreResult};

/// What tells one patient from another with a like name: the record
/// number the hospital gave and the date of birth. `None` for a patient
/// created before they were recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientIdentifiers {
    /// The hospital's medical record number, as the hospital writes it.
    pub record_number: Option<String>,
    /// Date of birth, `YYYY-MM-DD`.
    pub birth_date: Option<String>,
}

/// Longest record number, in characters.
pub const RECORD_NUMBER_MAX: usize = 32;

/// Checks a patient's identifiers: a record number of letters, digits,
/// `-`, `/` and `.`, and a date of birth that is a real day, not after
/// today (UTC), written `YYYY-MM-DD`.
pub fn check_identifiers(ids: &PatientIdentifiers, now_ms: i64) -> StoreResult<()> {
    if let Some(r) = &ids.record_number
        && (r.is_empty()
            || r.chars().count() > RECORD_NUMBER_MAX
            || !r
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '/' | '.')))
    {
        return Err(StoreError::Invalid(format!(
            "a record number is 1 to {RECORD_NUMBER_MAX} letters or digits (and - / .)"
        )));
    }
    if let Some(d) = &ids.birth_date {
        let Some(days) = days_of_date(d) else {
            return Err(StoreError::Invalid(format!(
                "the date of birth {d:?} is not a date written as year-month-day, such as 1956-04-23"
            )));
        };
        if days > now_ms.div_euclid(86_400_000) {
            return Err(StoreError::Invalid(format!(
                "the date of birth {d} is after today"
            )));
        }
    }
    Ok(())
}

/// `YYYY-MM-DD` as days since 1970-01-01; `None` unless it is a real day
/// from 1880 on.
fn days_of_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y < 1880 || !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    // Days from civil (H. Hinnant), with March as the year's first month.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_a_record_number_and_a_real_past_day() {
        let now = 1_796_169_600_000; // 2026-12-02
        let ids = |r: Option<&str>, d: Option<&str>| PatientIdentifiers {
            record_number: r.map(Into::into),
            birth_date: d.map(Into::into),
        };
        assert_eq!(days_of_date("1970-01-01"), Some(0));
        assert_eq!(days_of_date("2000-03-01"), Some(11_017));
        assert!(check_identifiers(&ids(Some("MRN-00/42"), Some("2000-02-29")), now).is_ok());
        assert!(check_identifiers(&ids(None, None), now).is_ok());
        for (r, d) in [
            (Some(""), None),
            (Some("MRN 42"), None),
            (Some("0123456789012345678901234567890123"), None),
            (None, Some("1999-02-29")),
            (None, Some("1956-13-01")),
            (None, Some("23/04/1956")),
            (None, Some("1956-4-23")),
            (None, Some("2026-12-03")),
            (None, Some("1850-01-01")),
        ] {
            assert!(
                matches!(
                    check_identifiers(&ids(r, d), now),
                    Err(StoreError::Invalid(_))
                ),
                "{r:?} {d:?}"
            );
        }
        assert!(check_identifiers(&ids(None, Some("2026-12-02")), now).is_ok());
    }
}
