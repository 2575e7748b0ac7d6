//! SVG figures: volume and rate over time (the paper's Figs. 10 to 13),
//! start-up curves and trumpet curves (IEC 60601-2-24).

use std::path::Path;

use plotters::prelude::*;

/// One line on a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text; empty for no legend entry (a second line of a run
    /// already named, such as a trumpet's lower half).
    pub name: String,
    /// Palette index: lines of one run share it.
    pub color: usize,
    /// (x, y) points, in x order.
    pub points: Vec<(f64, f64)>,
    /// Drawn thin and grey: a reference (the set value), not a run.
    pub reference: bool,
}

/// A line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Caption.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

/// Why a figure could not be written.
#[derive(Debug, thiserror::Error)]
#[error("drawing {path}: {why}")]
pub struct PlotError {
    path: String,
    why: String,
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-6);
    (lo - pad, hi + pad)
}

/// Writes `chart` as an SVG file at `path`.
pub fn write_svg(path: &Path, chart: &Chart) -> Result<(), PlotError> {
    let fail = |e: &dyn std::fmt::Display| PlotError {
        path: path.display().to_string(),
        why: e.to_string(),
    };
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = bounds(points().map(|p| p.0));
    let (y0, y1) = bounds(points().map(|p| p.1));
    let root = SVGBackend::new(path, (960, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut plot = ChartBuilder::on(&root)
        .caption(&chart.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| fail(&e))?;
    plot.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .draw()
        .map_err(|e| fail(&e))?;
    for s in &chart.series {
        let style = if s.reference {
            BLACK.mix(0.5).stroke_width(1)
        } else {
            Palette99::pick(s.color).stroke_width(2)
        };
        let drawn = plot
            .draw_series(LineSeries::new(s.points.iter().copied(), style))
            .map_err(|e| fail(&e))?;
        if !s.name.is_empty() {
            drawn
                .label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
    }
    plot.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_every_series() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("infusion-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("chart.svg");
        write_svg(
            &path,
            &Chart {
                title: "Volume".into(),
                x_label: "min".into(),
                y_label: "mL".into(),
                series: vec![
                    Series {
                        name: "run 1".into(),
                        color: 0,
                        points: vec![(0.0, 0.0), (30.0, 2.0)],
                        reference: false,
                    },
                    Series {
                        name: "set".into(),
                        color: 0,
                        points: vec![(0.0, 0.0), (30.0, 2.05)],
                        reference: true,
                    },
                ],
            },
        )?;
        let svg = std::fs::read_to_string(&path)?;
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("run 1") && svg.contains("set") && svg.contains("Volume"));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
