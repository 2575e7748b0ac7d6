//! The edge of the store's watchdog ([`infusion_store::Watchdog`]): sweeps
//! for silent pumps on a clock, every fifth of `--silent-after-s` (at
//! least every second), so a silence is raised at most a fifth late. Every
//! instance sweeps; the store makes each raise and clear happen once.

use std::time::Duration;

use crate::AppState;
use crate::clock::now_ms;

/// How often to sweep for a silence of `silent_after`.
pub fn interval(silent_after: Duration) -> Duration {
    (silent_after / 5).max(Duration::from_secs(1))
}

/// Sweeps until aborted.
pub async fn watch_silent(state: AppState) {
    let after = state.config.silent_after;
    let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(interval(after));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match state.store.sweep_silent(now_ms(), after_ms).await {
            Ok(s) => {
                for r in &s.raised {
                    tracing::warn!(patient = r.patient.0, "pump_silent: no word from the pump");
                }
                for c in &s.cleared {
                    tracing::info!(patient = c.patient.0, "pump_silent cleared");
                }
            }
            Err(e) => tracing::warn!(error = %e, "watchdog sweep failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_comes_every_fifth_of_the_silence_but_at_most_every_second() {
        assert_eq!(interval(Duration::from_secs(15)), Duration::from_secs(3));
        assert_eq!(interval(Duration::from_secs(2)), Duration::from_secs(1));
    }
}
