//! Showing integer units to people, and reading them back from forms,
//! without floats: volumes and rates are stored in µL and µL/h and shown
//! (and typed) in mL and mL/h with up to three decimals.

pub use infusion_store::units::{milli, parse_milli};

/// Milliseconds since the epoch as `2026-11-25 14:03:07 UTC`.
pub fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The time of day of `ms` as `14:03` (UTC), for chart axes.
pub fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

/// How long ago `then_ms` was, roughly: `12 s ago`, `5 min ago`.
pub fn ago(then_ms: i64, now_ms: i64) -> String {
    let s = (now_ms - then_ms).max(0) / 1000;
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// A wait in words, rounded up: `5 s`, `15 min`.
pub fn wait(secs: u64) -> String {
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min", secs.div_ceil(60))
    }
}

/// A prescription in words: `5 mL at 4 mL/h, run (version 3)`, in the
/// drug's units too when it names one of `drugs`; or `none`.
pub fn prescription_text(
    p: Option<&infusion_store::Prescription>,
    drugs: &[infusion_store::Drug],
) -> String {
    match p {
        Some(x) => format!(
            "{} (version {})",
            infusion_store::order_text(&x.order(), infusion_store::drug_in(drugs, x.drug)),
            x.version
        ),
        None => "none".into(),
    }
}

/// What tells a patient from another of a like name: "record MRN-0042 ·
/// born 23 Apr 1956 · username amy".
pub fn identifiers(p: &infusion_store::PatientSummary) -> String {
    let ids = &p.identifiers;
    let record = ids
        .record_number
        .as_deref()
        .map_or_else(|| "no record number".to_owned(), |r| format!("record {r}"));
    let born = ids.birth_date.as_deref().map_or_else(
        || "date of birth not recorded".to_owned(),
        |d| format!("born {}", date(d)),
    );
    format!("{record} · {born} · username {}", p.username)
}

/// `1956-04-23` as `23 Apr 1956` (a day no one reads month-first by
/// mistake); anything else as it is.
pub fn date(iso: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = iso.splitn(3, '-');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d)) => match m
            .parse::<usize>()
            .ok()
            .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        {
            Some(month) => format!("{} {month} {y}", d.trim_start_matches('0')),
            None => iso.to_owned(),
        },
        _ => iso.to_owned(),
    }
}

/// The name of an alarm event, in words.
pub fn alarm_name(b: &infusion_protocol::EventBody) -> &'static str {
    match b {
        infusion_protocol::EventBody::Alarm(a) => infusion_store::alarm_words(*a),
        _ => "Alarm",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_in_seconds_then_minutes() {
        assert_eq!(wait(1), "1 s");
        assert_eq!(wait(59), "59 s");
        assert_eq!(wait(60), "1 min");
        assert_eq!(wait(61), "2 min");
        assert_eq!(wait(900), "15 min");
    }

    #[test]
    fn times_are_utc_civil() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_795_960_987_000), "2026-11-29 14:03:07 UTC");
        assert_eq!(ago(0, 65_000), "1 min ago");
    }
}
