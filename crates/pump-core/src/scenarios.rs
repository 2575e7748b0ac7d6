//! The pump's scenarios, written once for the host and for the emulated
//! microcontroller: each drives a [`Pump`] through its sans-IO interface
//! against scripted server answers (signed with a test key) and returns
//! the first thing that went wrong. `cargo test` runs them on the host;
//! `firmware/qemu` runs the same functions on a Cortex-M4 under QEMU. No
//! heap and no `std`, like the firmware itself.

use infusion_protocol::{
    Alarm, EventBody, Index, IndexResponse, IndexSigner, InfusionState, LoginResponse, MacAddress,
    PatientId, PatientLimits, ReportResponse, Token,
};

use crate::{Failure, Phase, Pump, PumpConfig, Request, Resume};

/// A scenario's outcome: `Err` says what went wrong.
pub type Outcome = Result<(), &'static str>;

/// A scenario: its name and its function.
pub type Scenario = (&'static str, fn() -> Outcome);

/// Every scenario, by name.
pub const ALL: &[Scenario] = &[
    (
        "logs in, polls a signed index and starts",
        logs_in_and_starts,
    ),
    ("a rate change continues the delivered volume", rate_change),
    (
        "a hold pauses the motor and a run resumes it",
        hold_and_resume,
    ),
    ("an order completes at its volume", completion),
    ("an index outside the limits is refused", limits_refused),
    ("a tampered index changes nothing", tampered_index),
    (
        "a lost link alarms and the pump recovers",
        comm_loss_and_recovery,
    ),
    (
        "a restarted pump does not run its order again",
        restart_with_persisted_state,
    ),
    (
        "a resumed order gives what is left of its volume, not all of it",
        resume_after_restart,
    ),
    ("steps are due at the schedule's times", motor_schedule),
];

/// Runs every scenario; (passed, failed), calling `report` with each
/// name and outcome.
pub fn run_all(mut report: impl FnMut(&str, Outcome)) -> (u32, u32) {
    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in ALL {
        let outcome = scenario();
        if outcome.is_ok() {
            passed += 1;
        } else {
            failed += 1;
        }
        report(name, outcome);
    }
    (passed, failed)
}

fn check(ok: bool, why: &'static str) -> Outcome {
    if ok { Ok(()) } else { Err(why) }
}

const MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 0x07]);
const PATIENT: PatientId = PatientId(7);

fn signer() -> IndexSigner {
    IndexSigner::from_bytes(&[0x5e; 32])
}

fn cfg() -> PumpConfig {
    PumpConfig {
        mac: MAC,
        server_key: Some(signer().public_key()),
        ..PumpConfig::default()
    }
}

fn token(c: u8) -> Token {
    let bytes = [c; 43];
    // 43 base64url characters: always a token.
    let text = core::str::from_utf8(&bytes).unwrap_or("");
    Token::parse(text).unwrap_or_else(|_| unreachable!("43 letters are a token"))
}

fn login() -> LoginResponse {
    LoginResponse {
        first_name: heapless::String::new(),
        last_name: heapless::String::new(),
        institution: heapless::String::new(),
        patient_id: PATIENT,
        token: token(b'a'),
        expires_in_s: 300,
        next_seq: None,
    }
}

fn index(version: u32, volume_ul: u32, rate_ul_h: u32, state: InfusionState) -> IndexResponse {
    let index = Index {
        version,
        volume_ul,
        rate_ul_h,
        state,
        limits: PatientLimits {
            min_rate_ul_h: 1_000,
            max_rate_ul_h: 10_000,
            max_volume_ul: 10_000,
        },
    };
    IndexResponse {
        signature: signer().sign(PATIENT, MAC, &index),
        index,
        token: token(b'b'),
        expires_in_s: 300,
    }
}

/// A pump running 9 mL (the paper's syringe holds 9.9) at `rate_ul_h` on
/// the paper's drive, limits up to the hardware's: what the motor loop's
/// cost per step is measured on.
pub fn running_at(rate_ul_h: u32) -> Result<Pump<32>, &'static str> {
    let r = signed_index(1, rate_ul_h);
    let mut p: Pump<32> = Pump::new(cfg());
    answer_index(&mut p, 0, &r)?;
    check(p.infusion().phase() == Phase::Running, "the pump runs")?;
    Ok(p)
}

/// A signed index answer for the pumps of [`running_at`]: `version`, 9 mL
/// at `rate_ul_h`, within their limits (for measuring what taking an
/// answer costs).
pub fn signed_index(version: u32, rate_ul_h: u32) -> IndexResponse {
    let mut r = run(version, 9_000, rate_ul_h);
    r.index.limits = PatientLimits {
        min_rate_ul_h: 100,
        max_rate_ul_h: infusion_protocol::limits::MAX_RATE_UL_H,
        max_volume_ul: 10_000,
    };
    r.signature = signer().sign(PATIENT, MAC, &r.index);
    r
}

fn run(version: u32, volume_ul: u32, rate_ul_h: u32) -> IndexResponse {
    index(version, volume_ul, rate_ul_h, InfusionState::Run)
}

fn report_ok() -> ReportResponse {
    ReportResponse {
        accepted: 1,
        duplicates: 0,
        token: token(b'c'),
        expires_in_s: 300,
    }
}

/// Answers what the pump asks from `at` (logins and reports succeed)
/// until it asks for its index, which gets `answer`. Returns the time,
/// or `Err` if it never asks within a day.
fn answer_index(
    p: &mut Pump<32>,
    mut at: u64,
    answer: &IndexResponse,
) -> Result<u64, &'static str> {
    let until = at + 86_400_000;
    while at < until {
        match p.poll_request(at) {
            Some(Request::Login) => p.handle_login(at, Ok(&login())),
            Some(Request::Report { .. }) => p.handle_report(at, Ok(&report_ok())),
            Some(Request::Index { .. }) => {
                p.handle_index(at, Ok(answer));
                return Ok(at);
            }
            None => at = p.poll_timeout().max(at + 1),
        }
    }
    Err("the pump never asked for its index")
}

/// Whether the pump's unsent events hold `body`.
fn says(p: &Pump<32>, body: EventBody) -> bool {
    p.outbox().batch().iter().any(|e| e.body == body)
}

fn logs_in_and_starts() -> Outcome {
    let mut p: Pump<32> = Pump::new(cfg());
    check(
        p.poll_request(0) == Some(Request::Login),
        "asks to log in first",
    )?;
    check(p.poll_request(0).is_none(), "one request at a time")?;
    p.handle_login(10, Ok(&login()));
    check(
        matches!(p.poll_request(10), Some(Request::Index { .. })),
        "polls the index after logging in",
    )?;
    p.handle_index(20, Ok(&run(1, 2_000, 4_000)));
    check(
        p.infusion().phase() == Phase::Running,
        "runs a signed index",
    )?;
    check(
        matches!(p.poll_request(20), Some(Request::Report { .. })),
        "reports the start at once",
    )
}

fn rate_change() -> Outcome {
    let mut p: Pump<32> = Pump::new(cfg());
    let at = answer_index(&mut p, 0, &run(1, 5_000, 4_000))?;
    // An hour at 4 mL/h, then 6 mL/h.
    p.tick(at + 3_600_000);
    let before = p.infusion().delivered_ul();
    check(before.abs_diff(4_000) <= 1, "4 mL/h gives 4 mL in an hour")?;
    let at = answer_index(&mut p, at + 3_600_000, &run(2, 5_000, 6_000))?;
    check(
        p.infusion().current_rate_ul_h() == 6_000,
        "the new rate runs",
    )?;
    check(
        p.infusion().delivered_ul() >= before,
        "nothing delivered is forgotten",
    )?;
    p.tick(at + 600_000);
    let after = p.infusion().delivered_ul();
    check(
        after.abs_diff(before + 1_000) <= 2,
        "6 mL/h gives 1 mL in 10 min more",
    )
}

fn hold_and_resume() -> Outcome {
    let mut p: Pump<32> = Pump::new(cfg());
    let at = answer_index(&mut p, 0, &run(1, 5_000, 4_000))?;
    p.tick(at + 600_000);
    let at = answer_index(
        &mut p,
        at + 600_000,
        &index(2, 5_000, 4_000, InfusionState::Hold),
    )?;
    check(p.infusion().phase() == Phase::Paused, "a hold pauses")?;
    let held = p.infusion().delivered_ul();
    p.tick(at + 3_600_000);
    check(
        p.infusion().delivered_ul() == held,
        "nothing is given on hold",
    )?;
    answer_index(&mut p, at + 3_600_000, &run(3, 5_000, 4_000))?;
    check(p.infusion().phase() == Phase::Running, "a run resumes")
}

fn completion() -> Outcome {
    let mut p: Pump<32> = Pump::new(cfg());
    let at = answer_index(&mut p, 0, &run(1, 1_000, 10_000))?;
    // 1 mL at 10 mL/h takes 6 minutes.
    p.tick(at + 7 * 60_000);
    check(
        p.infusion().phase() == Phase::Completed,
        "the order completes",
    )?;
    check(
        p.infusion().delivered_ul() == 1_000,
        "exactly its volume is given",
    )
}

fn limits_refused() -> Outcome {
    let mut p: Pump<32> = Pump::new(cfg());
    let at = answer_index(&mut p, 0, &run(1, 2_000, 4_000))?;
    p.tick(at + 60_000);
    let before = p.infusion().delivered_ul();
    answer_index(&mut p, at + 60_000, &run(2, 2_000, 50_000))?;
    check(
        p.infusion().phase() == Phase::Alarm(Alarm::LimitsRefused),
        "an order beyond the limits stops with limits_refused",
    )?;
    check(
        !p.clear_alarm(at + 60_000),
        "the operator cannot overrule it",
    )?;
    p.tick(at + 660_000);
    check(
        p.infusion().delivered_ul() == before,
        "nothing more is given",
    )?;
    check(
        says(&p, EventBody::Alarm(Alarm::LimitsRefused)),
        "it is reported",
    )
}

fn tampered_index() -> Outcome {
    let mut p: Pump<32> = Pump::new(cfg());
    let at = answer_index(&mut p, 0, &run(1, 3_000, 6_000))?;
    let mut forged = run(2, 3_000, 9_000);
    forged.signature.0[0] ^= 1;
    answer_index(&mut p, at + 1_000, &forged)?;
    check(
        p.infusion().version() == 1,
        "the forged version does not run",
    )?;
    check(
        p.infusion().current_rate_ul_h() == 6_000,
        "the verified rate stays",
    )?;
    check(
        says(&p, EventBody::Alarm(Alarm::IndexUnverified)),
        "index_unverified is reported",
    )?;
    check(
        !p.session().is_logged_in(),
        "the token it came with is dropped",
    )
}

fn comm_loss_and_recovery() -> Outcome {
    let mut p: Pump<32> = Pump::new(cfg());
    let mut at = answer_index(&mut p, 0, &run(1, 5_000, 4_000))?;
    // The server is gone: every request fails for a while.
    for _ in 0..6 {
        at = p.poll_timeout().max(at + 1);
        match p.poll_request(at) {
            Some(Request::Login) => p.handle_login(at, Err(Failure::Network)),
            Some(Request::Index { .. }) => p.handle_index(at, Err(Failure::Network)),
            Some(Request::Report { .. }) => p.handle_report(at, Err(Failure::Network)),
            None => {}
        }
    }
    check(
        says(&p, EventBody::Alarm(Alarm::CommLost)),
        "comm_lost is raised",
    )?;
    check(
        p.infusion().phase() == Phase::Running,
        "by default the infusion carries on",
    )?;
    // The server is back: the pump logs in and takes its index again.
    answer_index(&mut p, at + 1, &run(1, 5_000, 4_000))?;
    check(p.session().is_logged_in(), "it logs in again by itself")
}

fn restart_with_persisted_state() -> Outcome {
    let mut p: Pump<32> = Pump::new(PumpConfig {
        applied_version: 5,
        ..cfg()
    });
    check(
        says(&p, EventBody::Alarm(Alarm::Restarted)),
        "it says it restarted",
    )?;
    let at = answer_index(&mut p, 0, &run(5, 2_000, 4_000))?;
    check(
        p.infusion().phase() == Phase::Idle,
        "version 5 ran before the restart",
    )?;
    answer_index(&mut p, at, &run(6, 2_000, 4_000))?;
    check(
        p.infusion().phase() == Phase::Running && p.infusion().version() == 6,
        "a newer version runs",
    )
}

fn resume_after_restart() -> Outcome {
    let plan = cfg().plan;
    // Version 5, 2 mL, had given 1.5 mL when the power went.
    let given = plan.steps_for_ul(1_500);
    let mut p: Pump<32> = Pump::new(PumpConfig {
        applied_version: 5,
        resume: Some(Resume {
            delivered_steps: given,
            plunger_steps: given,
        }),
        ..cfg()
    });
    check(
        p.infusion().phase() == Phase::Alarm(Alarm::Restarted),
        "a restarted order is stopped",
    )?;
    let said = u32::try_from(plan.ul_for_steps(given)).unwrap_or(0);
    check(
        p.outbox().batch().iter().any(|e| {
            matches!(e.body, EventBody::Progress(pr) if pr.delivered_ul == said && pr.rate_ul_h == 0)
        }) && said.abs_diff(1_500) <= 1,
        "it reports what the order had given",
    )?;
    check(!p.clear_alarm(1), "the bedside cannot restart the order")?;
    let at = answer_index(&mut p, 0, &run(5, 2_000, 4_000))?;
    check(
        p.infusion().phase() == Phase::Alarm(Alarm::Restarted),
        "the same version does not restart it",
    )?;
    // The physician's Resume: version 6 of the same order.
    let at = answer_index(&mut p, at, &run(6, 2_000, 4_000))?;
    check(
        p.infusion().phase() == Phase::Running,
        "a new version continues it",
    )?;
    let mut taken = 0;
    let mut now_us = at * 1_000;
    while let Some(next) = p.next_step_at_us() {
        now_us = next.max(now_us + 1);
        taken += p.take_steps(now_us);
    }
    check(
        p.infusion().phase() == Phase::Completed,
        "it completes at its volume",
    )?;
    check(
        taken == plan.steps_for_ul(2_000) - given,
        "only what was left is given",
    )
}

fn motor_schedule() -> Outcome {
    let mut p: Pump<32> = Pump::new(cfg());
    answer_index(&mut p, 0, &run(1, 5_000, 4_000))?;
    let first = p
        .next_step_at_us()
        .ok_or("a running pump has a next step")?;
    let mut steps = 0u64;
    let mut at = first;
    // A minute of steps, each taken when it falls due.
    while at < 60_000_000 {
        steps += p.take_steps(at);
        at = match p.next_step_at_us() {
            Some(next) if next > at => next,
            Some(_) => at + 1,
            None => break,
        };
    }
    check(steps > 0, "steps fall due")?;
    let delivered = p.infusion().delivered_ul();
    // 4 mL/h for a minute: 66.7 µL.
    check(
        delivered.abs_diff(67) <= 1,
        "a minute of steps gives a minute's volume",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_scenario_passes_on_the_host() {
        let (passed, failed) = super::run_all(|name, outcome| {
            if let Err(why) = outcome {
                std::eprintln!("FAILED {name}: {why}");
            }
        });
        assert_eq!((passed, failed), (super::ALL.len() as u32, 0));
    }

    #[test]
    fn the_measured_pump_runs_at_the_top_rate() {
        let p = super::running_at(200_000).unwrap();
        assert_eq!(p.infusion().current_rate_ul_h(), 200_000);
        assert!(p.next_step_at_us().is_some());
    }
}
