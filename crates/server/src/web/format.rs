//! Showing integer units to people, and reading them back from forms,
//! without floats: volumes and rates are stored in µL and µL/h and shown
//! (and typed) in mL and mL/h with up to three decimals.

use jiff::tz::TimeZone;

pub use infusion_store::units::{milli, parse_milli};

/// Milliseconds since the epoch as a ward reads them, in `zone` and
/// naming it: `2026-11-29 15:03:07 CET`.
pub fn time(ms: i64, zone: &TimeZone) -> String {
    in_zone(ms, zone, "%Y-%m-%d %H:%M:%S %Z")
}

/// Milliseconds since the epoch as a patient reads them, in `zone`:
/// `4 Dec 2026 at 21:03`.
pub fn day_time(ms: i64, zone: &TimeZone) -> String {
    in_zone(ms, zone, "%-d %b %Y at %H:%M")
}

/// Milliseconds since the epoch in UTC, `2026-11-29 14:03:07 UTC`: for the
/// audit trail and security events, whose readers compare them across
/// institutions and with logs.
pub fn utc(ms: i64) -> String {
    time(ms, &TimeZone::UTC)
}

/// The time of day of `ms` in `zone` as `14:03`, for chart axes.
pub fn clock(ms: i64, zone: &TimeZone) -> String {
    in_zone(ms, zone, "%H:%M")
}

/// The zone's name as a page says it once: `Europe/Madrid (CET)`.
pub fn zone_name(zone: &TimeZone, now_ms: i64) -> String {
    let short = in_zone(now_ms, zone, "%Z");
    match zone.iana_name() {
        Some(name) if name != short => format!("{name} ({short})"),
        Some(name) => name.to_owned(),
        None => short,
    }
}

fn in_zone(ms: i64, zone: &TimeZone, pattern: &str) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_zoned(zone.clone()).strftime(pattern).to_string(),
        // Beyond jiff's years -9999..=9999: no stored time is.
        Err(_) => format!("{ms} ms after 1970 UTC"),
    }
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
    match iso.parse::<jiff::civil::Date>() {
        Ok(d) => d.strftime("%-d %b %Y").to_string(),
        Err(_) => iso.to_owned(),
    }
}

/// A priority as a symbol and a word, so that it reads without colour
/// (the symbol is not read aloud: the word says it).
pub fn priority_badge(p: infusion_store::Priority) -> maud::Markup {
    maud::html! {
        span class={ "priority " (p.as_str()) } {
            span aria-hidden="true" { (p.symbol()) } " " (p.words())
        }
    }
}

/// An alarm of `patient` (a name) as every alarm list shows it: its
/// priority as a symbol and a word, so that it reads without colour (the
/// symbol is not read aloud: the word says it), then what happened. It
/// carries its id, priority and words for the page's script, which raises
/// an alert when a new high-priority one appears (`static/live.js`).
pub fn alarm_item(e: &infusion_store::StoredEvent, patient: &str) -> maud::Markup {
    let p = infusion_store::Priority::of_event(e);
    let name = alarm_name(&e.body);
    maud::html! {
        span class="alarm-item" data-alarm-id=(e.id) data-alarm-priority=(p.as_str())
            data-alarm-text={ (name) " (" (patient) ")" } {
            (priority_badge(p))
            " "
            span class="alarm" { (name) }
        }
    }
}

/// The server's `pump_silent` as every alarm list shows it, beside the
/// pump's own alarms: `since_ms` is when the pump was last heard from.
pub fn silent_item(since_ms: i64, zone: &TimeZone) -> maud::Markup {
    let p = infusion_store::Priority::SILENT;
    maud::html! {
        span class="alarm-item" data-alarm-priority=(p.as_str()) {
            (priority_badge(p))
            " "
            span class="alarm" { "Pump silent: no word from it since " (clock(since_ms, zone)) }
        }
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
    fn times_are_read_in_the_institutions_zone_and_the_audits_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_795_960_987_000), "2026-11-29 14:03:07 UTC");
        let madrid = TimeZone::get("Europe/Madrid").unwrap();
        assert_eq!(time(1_795_960_987_000, &madrid), "2026-11-29 15:03:07 CET");
        // Summer time: two hours ahead, and named so.
        assert_eq!(time(1_782_738_000_000, &madrid), "2026-06-29 15:00:00 CEST");
        assert_eq!(clock(1_795_960_987_000, &madrid), "15:03");
        assert_eq!(day_time(1_795_960_987_000, &madrid), "29 Nov 2026 at 15:03");
        assert_eq!(zone_name(&madrid, 1_795_960_987_000), "Europe/Madrid (CET)");
        assert_eq!(zone_name(&TimeZone::UTC, 0), "UTC");
        assert_eq!(ago(0, 65_000), "1 min ago");
    }

    #[test]
    fn dates_of_birth_read_day_first() {
        assert_eq!(date("1956-04-23"), "23 Apr 1956");
        assert_eq!(date("2001-12-05"), "5 Dec 2001");
        assert_eq!(date("not a date"), "not a date");
    }
}
