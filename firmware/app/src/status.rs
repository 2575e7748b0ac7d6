//! One console line per change a bench engineer would watch, in a form a
//! test can read: `status phase=running version=6 delivered_ul=1234 ...`.

use core::fmt::Write as _;

use embassy_time::{Duration, Instant, Timer};
use embedded_io_async::Write;

use infusion_pump_core::Failure;

use crate::shared::Shared;

/// How often the loop looks.
const LOOK: Duration = Duration::from_millis(200);
/// How often a running pump's line is printed even without a change.
const RUNNING_EVERY: Duration = Duration::from_secs(1);

#[derive(PartialEq, Eq, Clone, Copy)]
struct Seen {
    phase: &'static str,
    version: u32,
    rate_ul_h: u32,
    logged_in: bool,
    patient: u64,
    failures: u32,
    /// Events waiting for the server: a line when the last go out too.
    unacked: usize,
}

/// A failure as the status line names it.
fn failure_word(f: Option<Failure>) -> &'static str {
    match f {
        None => "none",
        Some(Failure::Network) => "network",
        Some(Failure::Unverified) => "unverified",
        Some(Failure::Api(code)) => code.as_str(),
    }
}

/// Writes a line to the console; a console that fails is not the pump's
/// problem.
pub async fn say<C: Write>(console: &mut C, line: &str) {
    let _ = console.write_all(line.as_bytes()).await;
    let _ = console.write_all(b"\r\n").await;
    let _ = console.flush().await;
}

/// Runs the status loop. Never returns.
pub async fn run<C: Write, M>(console: &mut C, shared: &Shared<M>) -> ! {
    let mut last: Option<Seen> = None;
    let mut printed = Instant::now();
    loop {
        let mut line: heapless::String<200> = heapless::String::new();
        let seen = {
            let pump = shared.pump.borrow();
            let i = pump.infusion();
            let seen = Seen {
                phase: i.phase().as_str(),
                version: i.version(),
                rate_ul_h: i.current_rate_ul_h(),
                logged_in: pump.session().is_logged_in(),
                patient: pump.session().patient().map_or(0, |p| p.0),
                failures: pump.session().failures(),
                unacked: pump.outbox().batch().len(),
            };
            let alarm = match i.phase() {
                infusion_pump_core::Phase::Alarm(a) => a.as_str(),
                _ => "none",
            };
            let _ = write!(
                line,
                "status phase={} alarm={} version={} delivered_ul={} delivered_steps={} pulsed={} rate_ul_h={} logged_in={} patient={} failures={} last_failure={} unacked={}",
                seen.phase,
                alarm,
                seen.version,
                i.delivered_ul(),
                i.delivered_steps(),
                shared.pulsed.get(),
                seen.rate_ul_h,
                u8::from(seen.logged_in),
                seen.patient,
                seen.failures,
                failure_word(shared.last_failure.get()),
                seen.unacked,
            );
            seen
        };
        let due = seen.phase == "running" && printed + RUNNING_EVERY <= Instant::now();
        if last != Some(seen) || due {
            say(console, &line).await;
            last = Some(seen);
            printed = Instant::now();
        }
        Timer::after(LOOK).await;
    }
}
