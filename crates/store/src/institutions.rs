//! An institution's own settings. For now its time zone: its staff and
//! patients read every time in it (a ward reads "14:03", not an offset
//! from Greenwich), while the audit trail and exports keep UTC, the one
//! clock that never jumps.

use async_trait::async_trait;

use crate::{AuditAction, Effects, NewAudit, StoreError, StoreResult};

/// The time zone of an institution nobody has set one for.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// Longest time zone name accepted (the IANA database's longest is 32).
const ZONE_NAME_MAX: usize = 64;

/// Institutions' settings, one transaction per method.
#[async_trait]
pub trait Institutions: Send + Sync {
    /// Sets `institution`'s time zone to `zone`, an IANA name such as
    /// `Europe/Madrid`, as [`time_zone_set`] decides.
    async fn set_time_zone(
        &self,
        institution: &str,
        zone: &str,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<()>;
}

/// The time zone `name` names in the IANA database (bundled, so that every
/// machine reads it alike), or why it does not.
pub fn time_zone(name: &str) -> StoreResult<jiff::tz::TimeZone> {
    let name = name.trim();
    let unknown = || {
        StoreError::Invalid(format!(
            "{name:?} is not a time zone name: use one of the IANA database, such as \
             Europe/Madrid or America/New_York"
        ))
    };
    if name.is_empty() || name.len() > ZONE_NAME_MAX {
        return Err(unknown());
    }
    jiff::tz::TimeZone::get(name).map_err(|_| unknown())
}

/// The time zone `name` names, UTC when it names none: for reading a
/// stored name, which [`time_zone_set`] checked when it was written.
pub fn time_zone_or_utc(name: &str) -> jiff::tz::TimeZone {
    time_zone(name).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// Decides setting `institution`'s time zone to `zone`, `old` being the
/// one it has (`None`: there is no such institution). Returns the name to
/// store, spelled as the IANA database spells it, and its audit entry.
pub fn time_zone_set(
    old: Option<&str>,
    institution: &str,
    zone: &str,
    actor: &str,
    now_ms: i64,
) -> StoreResult<(String, Effects)> {
    let old = old.ok_or_else(|| StoreError::NotFound(format!("no institution {institution:?}")))?;
    let tz = time_zone(zone)?;
    let name = tz.iana_name().unwrap_or(zone.trim()).to_owned();
    let audit = NewAudit::of(
        now_ms,
        actor,
        AuditAction::TimeZoneSet,
        None,
        format!("{institution}: from {old} to {name}"),
    );
    Ok((name, Effects::audit(audit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_is_stored_as_the_database_spells_it_and_a_wrong_one_is_refused() {
        let (name, _) = time_zone_set(Some("UTC"), "H", " europe/madrid ", "a", 0).unwrap();
        assert_eq!(name, "Europe/Madrid");
        for bad in ["", "Mars/Olympus", "CET; DROP TABLE", &"A/".repeat(40)] {
            let e = time_zone_set(Some("UTC"), "H", bad, "a", 0).unwrap_err();
            assert!(matches!(e, StoreError::Invalid(_)), "{bad:?}: {e:?}");
        }
        let e = time_zone_set(None, "H", "UTC", "a", 0).unwrap_err();
        assert!(matches!(e, StoreError::NotFound(_)));
        assert_eq!(time_zone_or_utc("nowhere"), jiff::tz::TimeZone::UTC);
    }
}
