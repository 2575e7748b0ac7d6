//! What a scale log says about a pump's accuracy.
//!
//! Two views of the same readings:
//!
//! - **The paper's (Table III)**: the volume infused (net mass over
//!   density) against the set volume, and the mean rate (that volume over
//!   the stopwatch time from start to the last drop) against the set rate.
//! - **IEC 60601-2-24's**: the flow in each sampling interval
//!   `Qᵢ = (Wᵢ − Wᵢ₋₁) / (ρ · S)`; the start-up curve (Qᵢ over the first
//!   two hours); and the trumpet curve: for each observation window of
//!   `P` minutes (`m = P / S` intervals), the largest and smallest mean
//!   percentage deviation `Eₚ(j) = (1/m) Σ_{i=j}^{j+m−1} 100 (Qᵢ − r) / r`
//!   over every window position `j` in the analysis period.
//!
//! The standard's analysis period is the second hour of a long run; the
//! paper's runs last 30 and 60 minutes, so here it is the whole flow
//! period (the start to the last rise of the mass). A window longer than
//! that has no value.

use crate::log::Sample;

/// The IEC 60601-2-24 observation windows, minutes.
pub const IEC_WINDOWS_MIN: [f64; 5] = [2.0, 5.0, 11.0, 19.0, 31.0];

/// The standard's sampling interval, s.
pub const IEC_INTERVAL_S: f64 = 30.0;

/// The start-up curve covers this much of the run, minutes.
pub const STARTUP_MIN: f64 = 120.0;

/// What the pump was set to deliver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    /// Volume to infuse, mL.
    pub volume_ml: f64,
    /// Rate, mL/h.
    pub rate_ml_h: f64,
}

/// One run in the paper's terms (a row of Table III).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunResult {
    /// Net mass over density, mL.
    pub infused_ml: f64,
    /// `100 (infused − set) / set`, %.
    pub volume_error_pct: f64,
    /// From the first reading to the last rise of the mass, s.
    pub duration_s: f64,
    /// Infused volume over duration, mL/h.
    pub mean_rate_ml_h: f64,
    /// `100 (mean rate − set) / set`, %.
    pub rate_error_pct: f64,
}

/// The time of the last reading at which the mass rose: the last drop.
fn flow_end(samples: &[Sample]) -> f64 {
    let first = samples.first().map_or(0.0, |s| s.time_s);
    samples
        .windows(2)
        .rev()
        .find(|w| w[1].mass_g > w[0].mass_g)
        .map(|w| w[1].time_s)
        .unwrap_or(first)
}

fn pct(measured: f64, set: f64) -> f64 {
    if set == 0.0 {
        return f64::NAN;
    }
    100.0 * (measured - set) / set
}

/// The paper's figures for one run. `density_g_ml` converts mass to volume.
pub fn run_result(samples: &[Sample], setting: Setting, density_g_ml: f64) -> RunResult {
    let (first, last) = match (samples.first(), samples.last()) {
        (Some(f), Some(l)) => (*f, *l),
        _ => (
            Sample {
                time_s: 0.0,
                mass_g: 0.0,
            },
            Sample {
                time_s: 0.0,
                mass_g: 0.0,
            },
        ),
    };
    let infused_ml = (last.mass_g - first.mass_g) / density_g_ml;
    let duration_s = flow_end(samples) - first.time_s;
    let mean_rate_ml_h = if duration_s > 0.0 {
        infused_ml / (duration_s / 3_600.0)
    } else {
        0.0
    };
    RunResult {
        infused_ml,
        volume_error_pct: pct(infused_ml, setting.volume_ml),
        duration_s,
        mean_rate_ml_h,
        rate_error_pct: pct(mean_rate_ml_h, setting.rate_ml_h),
    }
}

/// One point of a trumpet curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrumpetPoint {
    /// Observation window, minutes.
    pub window_min: f64,
    /// Largest mean deviation over any window of this length, %; `None`
    /// when the analysis period is shorter than the window.
    pub max_pct: Option<f64>,
    /// Smallest mean deviation, %.
    pub min_pct: Option<f64>,
}

/// The IEC 60601-2-24 analysis of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Iec {
    /// Sampling interval S, s.
    pub interval_s: f64,
    /// Flow in each interval over the analysis period: (end of the
    /// interval, minutes; Qᵢ, mL/h).
    pub flows: Vec<(f64, f64)>,
    /// Mean flow over the analysis period against the set rate, %.
    pub overall_error_pct: f64,
    /// One point per observation window.
    pub trumpet: Vec<TrumpetPoint>,
}

impl Iec {
    /// The start-up curve: the flows of the first two hours.
    pub fn startup(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.flows
            .iter()
            .copied()
            .take_while(|(t, _)| *t <= STARTUP_MIN)
    }
}

/// The scale's display at `t`: the last reading at or before it.
fn reading_at(samples: &[Sample], t: f64) -> f64 {
    let i = samples.partition_point(|s| s.time_s <= t);
    samples.get(i.saturating_sub(1)).map_or(0.0, |s| s.mass_g)
}

/// The IEC 60601-2-24 analysis with sampling interval `interval_s` and the
/// observation windows `windows_min` (normally [`IEC_WINDOWS_MIN`]).
pub fn iec(
    samples: &[Sample],
    setting: Setting,
    density_g_ml: f64,
    interval_s: f64,
    windows_min: &[f64],
) -> Iec {
    let start = samples.first().map_or(0.0, |s| s.time_s);
    let end = flow_end(samples);
    let interval_s = if interval_s > 0.0 {
        interval_s
    } else {
        IEC_INTERVAL_S
    };
    // Whole intervals inside the flow period (a tiny tolerance so that a
    // reading exactly on the grid counts).
    let k = ((end - start) / interval_s + 1e-9).floor().max(0.0) as usize;
    let weights: Vec<f64> = (0..=k)
        .map(|i| reading_at(samples, start + i as f64 * interval_s))
        .collect();
    let per_hour = 3_600.0 / interval_s;
    let flows: Vec<(f64, f64)> = weights
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let t = (start + (i + 1) as f64 * interval_s) / 60.0;
            (t, (w[1] - w[0]) / density_g_ml * per_hour)
        })
        .collect();
    let r = setting.rate_ml_h;
    let deviations: Vec<f64> = flows.iter().map(|(_, q)| pct(*q, r)).collect();
    let overall_error_pct = if flows.is_empty() {
        f64::NAN
    } else {
        pct(
            flows.iter().map(|(_, q)| q).sum::<f64>() / flows.len() as f64,
            r,
        )
    };
    let trumpet = windows_min
        .iter()
        .map(|&p| {
            let m = (p * 60.0 / interval_s).round().max(1.0) as usize;
            let means: Vec<f64> = deviations
                .windows(m)
                .map(|w| w.iter().sum::<f64>() / m as f64)
                .collect();
            TrumpetPoint {
                window_min: p,
                max_pct: means.iter().copied().reduce(f64::max),
                min_pct: means.iter().copied().reduce(f64::min),
            }
        })
        .collect();
    Iec {
        interval_s,
        flows,
        overall_error_pct,
        trumpet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0.3 mL at 6 mL/h (three minutes), water taken as 1 g/mL, read every
    /// 30 s, and a settled reading after the end.
    fn hand_log() -> Vec<Sample> {
        [
            (0.0, 0.00),
            (30.0, 0.05),
            (60.0, 0.10),
            (90.0, 0.16),
            (120.0, 0.20),
            (150.0, 0.25),
            (180.0, 0.29),
            (210.0, 0.29),
        ]
        .into_iter()
        .map(|(time_s, mass_g)| Sample { time_s, mass_g })
        .collect()
    }

    const SET: Setting = Setting {
        volume_ml: 0.3,
        rate_ml_h: 6.0,
    };

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn table_iii_figures_worked_by_hand() {
        let r = run_result(&hand_log(), SET, 1.0);
        // 0.29 g of water is 0.29 mL: 0.01 mL short of 0.3 is −3.33 %.
        assert!(close(r.infused_ml, 0.29));
        assert!(close(r.volume_error_pct, -100.0 / 30.0));
        // The last rise is at 180 s: 0.29 mL in 0.05 h is 5.8 mL/h.
        assert!(close(r.duration_s, 180.0));
        assert!(close(r.mean_rate_ml_h, 5.8));
        assert!(close(r.rate_error_pct, -100.0 / 30.0));
    }

    #[test]
    fn iec_flows_and_trumpet_worked_by_hand() {
        let a = iec(&hand_log(), SET, 1.0, 30.0, &[1.0, 2.0, 5.0]);
        // Qᵢ = ΔW / ρ × 120 per hour: 6.0 6.0 7.2 4.8 6.0 4.8 mL/h,
        // deviations 0 0 +20 −20 0 −20 %.
        let q: Vec<f64> = a.flows.iter().map(|f| f.1).collect();
        let expected = [6.0, 6.0, 7.2, 4.8, 6.0, 4.8];
        assert_eq!(q.len(), expected.len());
        assert!(q.iter().zip(expected).all(|(a, b)| close(*a, b)), "{q:?}");
        assert!(close(a.flows[0].0, 0.5) && close(a.flows[5].0, 3.0));
        // Mean flow 5.8 mL/h: −3.33 %.
        assert!(close(a.overall_error_pct, -100.0 / 30.0));
        // P = 1 min (m = 2): pair means 0, 10, 0, −10, −10.
        let p1 = a.trumpet[0];
        assert!(close(p1.max_pct.unwrap_or(f64::NAN), 10.0));
        assert!(close(p1.min_pct.unwrap_or(f64::NAN), -10.0));
        // P = 2 min (m = 4): window means 0, 0, −5.
        let p2 = a.trumpet[1];
        assert!(close(p2.max_pct.unwrap_or(f64::NAN), 0.0));
        assert!(close(p2.min_pct.unwrap_or(f64::NAN), -5.0));
        // P = 5 min does not fit in three minutes.
        assert_eq!(a.trumpet[2].max_pct, None);
        assert_eq!(a.trumpet[2].min_pct, None);
        assert_eq!(a.startup().count(), 6);
    }

    #[test]
    fn readings_between_the_grid_points_do_not_change_the_flows() {
        // Drop-time readings between the 30 s points, as the simulator
        // writes them, leave the sampled flows as they were.
        let mut log = hand_log();
        log.insert(
            2,
            Sample {
                time_s: 40.0,
                mass_g: 0.07,
            },
        );
        log.insert(
            4,
            Sample {
                time_s: 75.0,
                mass_g: 0.13,
            },
        );
        let a = iec(&log, SET, 1.0, 30.0, &IEC_WINDOWS_MIN);
        let b = iec(&hand_log(), SET, 1.0, 30.0, &IEC_WINDOWS_MIN);
        assert_eq!(a, b);
    }
}
