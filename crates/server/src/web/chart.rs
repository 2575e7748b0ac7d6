//! Server-side SVG line charts: no script, no library to serve, readable
//! without colour (one panel per quantity, each labelled with its name,
//! unit, range and time span) and described for screen readers (`role=img`
//! with a label, plus the numbers in the history table beside it).

use jiff::tz::TimeZone;
use maud::{Markup, html};

use crate::web::format::{clock, time};

/// One quantity over time.
pub struct Series {
    /// What it is, e.g. "Delivered".
    pub name: &'static str,
    /// Its unit, e.g. "mL".
    pub unit: &'static str,
    /// (time ms since the epoch, value in thousandths of the unit), oldest
    /// first; thousandths so that µL plot as mL without floats.
    pub points: Vec<(i64, i64)>,
    /// The smallest range the vertical axis spans, in thousandths: a
    /// heart rate that varies by a beat is drawn on a scale of ten or more,
    /// so that noise does not look like a jump.
    pub min_span: i64,
}

const W: i64 = 640;
const H: i64 = 140;
const PAD_L: i64 = 64;
const PAD_R: i64 = 12;
const PAD_TOP: i64 = 18;
const PAD_BOTTOM: i64 = 22;

/// The shortest time span drawn: one reading gets a minute of axis.
const MIN_SPAN_MS: i64 = 60_000;

/// Points drawn as dots as well as a line, when there are this few.
const DOTS_UP_TO: usize = 60;

fn show(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let m = milli.unsigned_abs();
    let (whole, frac) = (m / 1000, m % 1000);
    if frac == 0 {
        format!("{sign}{whole}")
    } else {
        format!(
            "{sign}{whole}.{}",
            format!("{frac:03}").trim_end_matches('0')
        )
    }
}

/// A round step (1, 2 or 5 times a power of ten) that cuts `span` into at
/// most `most` intervals.
fn nice_step(span: i64, most: i64) -> i64 {
    let mut unit = 1;
    loop {
        for k in [1, 2, 5] {
            let step = k * unit;
            if span <= step * most {
                return step;
            }
        }
        unit = unit.saturating_mul(10);
    }
}

/// The vertical axis for values in `lo..=hi`: round ends at least
/// `min_span` apart and the ticks between them.
fn value_axis(lo: i64, hi: i64, min_span: i64) -> (i64, i64, i64) {
    let (mut lo, mut hi) = (lo, hi);
    let short = min_span.max(1) - (hi - lo);
    if short > 0 {
        lo -= short / 2;
        hi += short - short / 2;
    }
    let step = nice_step(hi - lo, 4);
    let bottom = lo.div_euclid(step) * step;
    let top = (hi + step - 1).div_euclid(step) * step;
    (bottom, top.max(bottom + step), step)
}

/// Time steps an axis may use: a minute to a day.
const TIME_STEPS_MS: [i64; 10] = [
    60_000,
    2 * 60_000,
    5 * 60_000,
    10 * 60_000,
    15 * 60_000,
    30 * 60_000,
    3_600_000,
    3 * 3_600_000,
    6 * 3_600_000,
    86_400_000,
];

/// The times along the bottom: round times (whole minutes, quarter
/// hours, hours) within `t0..=t1`, at most six.
fn time_ticks(t0: i64, t1: i64) -> Vec<i64> {
    let span = t1 - t0;
    let step = TIME_STEPS_MS
        .into_iter()
        .find(|s| span / s <= 5)
        .unwrap_or(86_400_000);
    let first = (t0 + step - 1).div_euclid(step) * step;
    (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t <= t1)
        .collect()
}

/// A figure with one small panel per series sharing the time axis.
pub fn panels(caption: &str, zone: &TimeZone, series: &[Series]) -> Markup {
    let all = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (t0, t1) = all.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
    html! {
        figure class="chart" {
            figcaption { (caption) }
            @if t0 > t1 {
                p { "No data yet." }
            } @else {
                @let (t0, t1) = (t0.min(t1 - MIN_SPAN_MS), t1);
                @for s in series { (panel(s, (t0, t1), zone)) }
                p class="hint" { "From " (time(t0, zone)) " to " (time(t1, zone)) "." }
            }
        }
    }
}

fn panel(s: &Series, (t0, t1): (i64, i64), zone: &TimeZone) -> Markup {
    let (lo, hi) = s
        .points
        .iter()
        .fold((i64::MAX, i64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (lo, hi) = if lo > hi { (0, 0) } else { (lo, hi) };
    let (bottom, top, step) = value_axis(lo, hi, s.min_span);
    let span_t = (t1 - t0).max(1);
    let x = |t: i64| PAD_L + (t - t0) * (W - PAD_L - PAD_R) / span_t;
    let y = |v: i64| H - PAD_BOTTOM - (v - bottom) * (H - PAD_TOP - PAD_BOTTOM) / (top - bottom);
    let path: String = s
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}{},{}", if i == 0 { "M" } else { " L" }, x(p.0), y(p.1)))
        .collect();
    let dots: &[(i64, i64)] = if s.points.len() <= DOTS_UP_TO {
        &s.points
    } else {
        &s.points[s.points.len() - 1..]
    };
    let last = s.points.last().map(|p| show(p.1));
    let label = format!(
        "{} in {}, {}{}",
        s.name,
        s.unit,
        if s.points.is_empty() {
            "no readings".to_owned()
        } else {
            format!("from {} to {}", show(lo), show(hi))
        },
        last.as_ref()
            .map_or(String::new(), |l| format!(", latest {l}"))
    );
    let ticks: Vec<i64> = (0..)
        .map(|i| bottom + i * step)
        .take_while(|v| *v <= top)
        .collect();
    html! {
        svg class="panel" viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(label) {
            title { (label) }
            @for v in &ticks {
                line x1=(PAD_L) y1=(y(*v)) x2=(W - PAD_R) y2=(y(*v)) class="grid" {}
                text x=(PAD_L - 6) y=(y(*v) + 4) class="tick" text-anchor="end" { (show(*v)) }
            }
            line x1=(PAD_L) y1=(PAD_TOP) x2=(PAD_L) y2=(H - PAD_BOTTOM) class="axis" {}
            line x1=(PAD_L) y1=(H - PAD_BOTTOM) x2=(W - PAD_R) y2=(H - PAD_BOTTOM) class="axis" {}
            @for t in time_ticks(t0, t1) {
                line x1=(x(t)) y1=(H - PAD_BOTTOM) x2=(x(t)) y2=(H - PAD_BOTTOM + 4) class="axis" {}
                text x=(x(t)) y=(H - 6) class="time" text-anchor="middle" { (clock(t, zone)) }
            }
            text x=(PAD_L + 6) y="12" class="name" { (s.name) " (" (s.unit) ")" @if let Some(l) = &last { ": " (l) } }
            @if s.points.len() > 1 { path d=(path) class="line" {} }
            @for p in dots { circle cx=(x(p.0)) cy=(y(p.1)) r="3" class="point" {} }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_scale_into_the_box_and_label_themselves() {
        let s = Series {
            name: "Rate",
            unit: "mL/h",
            points: vec![(1_000, 4_000), (61_000, 4_400), (121_000, 4_000)],
            min_span: 1_000,
        };
        let svg = panels("Infusion", &TimeZone::UTC, &[s]).into_string();
        assert!(
            svg.contains("aria-label=\"Rate in mL/h, from 4 to 4.4, latest 4\""),
            "{svg}"
        );
        // 4 to 4.4 on a scale of at least 1 mL/h: 3.5 to 4.5 by 0.5.
        assert!(
            svg.contains(">3.5</text>") && svg.contains(">4.5</text>"),
            "{svg}"
        );
        assert!(svg.contains("d=\"M64,"), "{svg}");
        // Times along the bottom (UTC for now), at round minutes.
        assert!(svg.contains("class=\"time\""), "{svg}");
        let empty = panels(
            "Vitals",
            &TimeZone::UTC,
            &[Series {
                name: "SpO2",
                unit: "%",
                points: vec![],
                min_span: 1_000,
            }],
        );
        assert!(empty.into_string().contains("No data yet."));
    }

    #[test]
    fn noise_is_drawn_on_a_sensible_scale_and_one_reading_is_a_dot() {
        let one = Series {
            name: "Heart rate",
            unit: "bpm",
            points: vec![(1_795_960_987_000, 69_000)],
            min_span: 10_000,
        };
        let svg = panels("Vital signs", &TimeZone::UTC, &[one]).into_string();
        assert!(svg.contains("<circle"), "{svg}");
        assert!(!svg.contains(".999") && !svg.contains(".001"), "{svg}");
        assert!(
            svg.contains(">60</text>") && svg.contains(">75</text>"),
            "{svg}"
        );
        assert_eq!(value_axis(68_999, 69_001, 10_000), (60_000, 75_000, 5_000));
        assert_eq!(value_axis(0, 9_000, 1_000), (0, 10_000, 5_000));
    }

    #[test]
    fn time_ticks_fall_on_round_times() {
        let t0 = 1_795_960_987_000; // 14:03:07
        let ticks = time_ticks(t0, t0 + 20 * 60_000);
        assert!(ticks.len() <= 6 && ticks.len() >= 2, "{ticks:?}");
        assert!(ticks.iter().all(|t| t % (5 * 60_000) == 0), "{ticks:?}");
    }
}
