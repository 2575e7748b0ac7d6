//! Server-side SVG line charts: no script, no library to serve, readable
//! without colour (one panel per quantity, each labelled with its name,
//! unit, range and time span) and described for screen readers (`role=img`
//! with a label, plus the numbers in the history table beside it).

use maud::{Markup, html};

use crate::web::format::time;

/// One quantity over time.
pub struct Series {
    /// What it is, e.g. "Delivered".
    pub name: &'static str,
    /// Its unit, e.g. "mL".
    pub unit: &'static str,
    /// (time ms since the epoch, value in thousandths of the unit), oldest
    /// first; thousandths so that µL plot as mL without floats.
    pub points: Vec<(i64, i64)>,
}

const W: i64 = 640;
const H: i64 = 120;
const PAD_L: i64 = 64;
const PAD_R: i64 = 8;
const PAD_Y: i64 = 14;

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

/// A figure with one small panel per series sharing the time axis.
pub fn panels(caption: &str, series: &[Series]) -> Markup {
    let all = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (t0, t1) = all.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
    html! {
        figure class="chart" {
            figcaption { (caption) }
            @if t0 > t1 {
                p { "No data yet." }
            } @else {
                @for s in series { (panel(s, t0, t1)) }
                p class="hint" { "From " (time(t0)) " to " (time(t1)) "." }
            }
        }
    }
}

fn panel(s: &Series, t0: i64, t1: i64) -> Markup {
    let (lo, hi) = s
        .points
        .iter()
        .fold((i64::MAX, i64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (lo, hi) = if lo > hi {
        (0, 1)
    } else if lo == hi {
        (lo - 1, hi + 1)
    } else {
        (lo, hi)
    };
    let span_t = (t1 - t0).max(1);
    let x = |t: i64| PAD_L + (t - t0) * (W - PAD_L - PAD_R) / span_t;
    let y = |v: i64| H - PAD_Y - (v - lo) * (H - 2 * PAD_Y) / (hi - lo);
    let path: String = s
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}{},{}", if i == 0 { "M" } else { " L" }, x(p.0), y(p.1)))
        .collect();
    let last = s.points.last().map(|p| show(p.1));
    let label = format!(
        "{} in {}, from {} to {}{}",
        s.name,
        s.unit,
        show(lo),
        show(hi),
        last.as_ref()
            .map_or(String::new(), |l| format!(", latest {l}"))
    );
    html! {
        svg class="panel" viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(label) {
            title { (label) }
            line x1=(PAD_L) y1=(PAD_Y) x2=(PAD_L) y2=(H - PAD_Y) class="axis" {}
            line x1=(PAD_L) y1=(H - PAD_Y) x2=(W - PAD_R) y2=(H - PAD_Y) class="axis" {}
            text x="2" y=(PAD_Y + 4) class="tick" { (show(hi)) }
            text x="2" y=(H - PAD_Y) class="tick" { (show(lo)) }
            text x=(PAD_L + 6) y="11" class="name" { (s.name) " (" (s.unit) ")" @if let Some(l) = &last { ": " (l) } }
            path d=(path) class="line" {}
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
            points: vec![(1_000, 4_000), (2_000, 4_400), (3_000, 4_000)],
        };
        let svg = panels("Infusion", &[s]).into_string();
        assert!(
            svg.contains("aria-label=\"Rate in mL/h, from 4 to 4.4, latest 4\""),
            "{svg}"
        );
        assert!(svg.contains("d=\"M64,106 L348,14 L632,106\""), "{svg}");
        let empty = panels(
            "Vitals",
            &[Series {
                name: "SpO2",
                unit: "%",
                points: vec![],
            }],
        );
        assert!(empty.into_string().contains("No data yet."));
    }
}
