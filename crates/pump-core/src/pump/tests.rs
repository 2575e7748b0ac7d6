//! The pump's session, limits, signature checks, comm-loss policy and
//! restarts, driven through its sans-IO interface.

use super::*;
use infusion_protocol::{IndexSigner, InfusionState, PatientLimits, Signature};
use proptest::prelude::*;

const MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 0x07]);
const PATIENT: PatientId = PatientId(7);

fn signer() -> IndexSigner {
    IndexSigner::from_bytes(&[0x5e; 32])
}

/// A pump provisioned with [`signer`]'s public key and [`MAC`].
fn cfg() -> PumpConfig {
    PumpConfig {
        mac: MAC,
        server_key: Some(signer().public_key()),
        ..PumpConfig::default()
    }
}

fn token(c: char) -> Token {
    let s: std::string::String = core::iter::repeat_n(c, 43).collect();
    Token::parse(&s).unwrap()
}

fn login() -> LoginResponse {
    LoginResponse {
        first_name: heapless::String::new(),
        last_name: heapless::String::new(),
        institution: heapless::String::new(),
        patient_id: PATIENT,
        token: token('a'),
        expires_in_s: 300,
        next_seq: None,
    }
}

fn index(version: u32, volume_ul: u32, rate_ul_h: u32) -> IndexResponse {
    let index = Index {
        version,
        volume_ul,
        rate_ul_h,
        state: InfusionState::Run,
        limits: PatientLimits {
            min_rate_ul_h: 1_000,
            max_rate_ul_h: 10_000,
            max_volume_ul: 10_000,
        },
    };
    IndexResponse {
        signature: signer().sign(PATIENT, MAC, &index),
        index,
        token: token('b'),
        expires_in_s: 300,
    }
}

/// `r` signed again after a test changed it.
fn resigned(mut r: IndexResponse) -> IndexResponse {
    r.signature = signer().sign(PATIENT, MAC, &r.index);
    r
}

/// Ways a network path could change an index answer.
#[derive(Debug, Clone)]
enum Tamper {
    /// One bit of the signature flipped.
    SignatureBit(usize),
    /// One bit of a signed field flipped after signing.
    FieldBit(usize, u32),
    /// Signed by a key the pump was not given.
    WrongKey([u8; 32]),
    /// Genuinely signed, for another device.
    OtherDevice(u8),
    /// Genuinely signed, for another patient.
    OtherPatient(u64),
    /// Genuinely signed, but older than the version running.
    Older(u32),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (0..512usize).prop_map(Tamper::SignatureBit),
        (0..7usize, 0..32u32).prop_map(|(f, b)| Tamper::FieldBit(f, b)),
        any::<[u8; 32]>()
            .prop_filter("not the server key", |k| *k != [0x5e; 32])
            .prop_map(Tamper::WrongKey),
        (0..=255u8)
            .prop_filter("another MAC", |b| *b != 7)
            .prop_map(Tamper::OtherDevice),
        any::<u64>()
            .prop_filter("another patient", |p| *p != PATIENT.0)
            .prop_map(Tamper::OtherPatient),
        (1..5u32).prop_map(Tamper::Older),
    ]
}

/// The answer for version `version` of a 3 mL at 6 mL/h order,
/// changed as `t` says.
fn tampered(version: u32, t: &Tamper) -> IndexResponse {
    let mut r = index(version, 3_000, 6_000);
    match *t {
        Tamper::SignatureBit(bit) => r.signature.0[bit / 8] ^= 1 << (bit % 8),
        Tamper::FieldBit(field, bit) => {
            let i = &mut r.index;
            let flip = 1u32 << bit;
            match field {
                0 => i.version ^= flip,
                1 => i.volume_ul ^= flip,
                2 => i.rate_ul_h ^= flip,
                3 => i.limits.min_rate_ul_h ^= flip,
                4 => i.limits.max_rate_ul_h ^= flip,
                5 => i.limits.max_volume_ul ^= flip,
                _ => i.state = InfusionState::Hold,
            }
        }
        Tamper::WrongKey(key) => {
            r.signature = IndexSigner::from_bytes(&key).sign(PATIENT, MAC, &r.index);
        }
        Tamper::OtherDevice(last) => {
            let mut mac = MAC;
            mac.0[5] = last;
            r.signature = signer().sign(PATIENT, mac, &r.index);
        }
        Tamper::OtherPatient(p) => {
            r.signature = signer().sign(PatientId(p), MAC, &r.index);
        }
        Tamper::Older(by) => r = index(10 - by, 3_000, 6_000),
    }
    r
}

/// Answers whatever the pump asks (login, reports, whose events go to
/// `reported`) from `at` on until it asks for the index, then hands it
/// `answer`. Returns the time.
fn answer_index(
    p: &mut Pump<64>,
    mut at: u64,
    answer: &IndexResponse,
    reported: &mut std::vec::Vec<EventBody>,
) -> u64 {
    loop {
        match p.poll_request(at) {
            Some(Request::Login) => p.handle_login(at, Ok(&login())),
            Some(Request::Report { .. }) => {
                reported.extend(p.report_events().iter().map(|e| e.body));
                p.handle_report(
                    at,
                    Ok(&ReportResponse {
                        accepted: 0,
                        duplicates: 0,
                        token: token('c'),
                        expires_in_s: 300,
                    }),
                )
            }
            Some(Request::Index { .. }) => {
                p.handle_index(at, Ok(answer));
                return at;
            }
            None => at = p.poll_timeout().max(at + 1),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Whatever is changed, the pump keeps running the last verified
    /// order exactly, raises `index_unverified` once, drops the token
    /// it was handed, and takes the next genuine index.
    #[test]
    fn a_tampered_index_changes_nothing(t in tamper(), extra in 0..3u32) {
        let mut p = running(cfg());
        let mut reported = std::vec::Vec::new();
        let mut at = answer_index(&mut p, 0, &index(10, 2_000, 4_000), &mut reported);
        let before = (p.infusion().phase(), p.infusion().version(), p.infusion().current_rate_ul_h());
        prop_assert_eq!(before.1, 10);
        let version = 11 + extra;
        let answer = tampered(version, &t);
        prop_assert!(!p.verify(&answer));
        for _ in 0..3 {
            at = answer_index(&mut p, at, &answer, &mut reported);
            prop_assert_eq!(
                (p.infusion().phase(), p.infusion().version(), p.infusion().current_rate_ul_h()),
                before
            );
            prop_assert!(!p.session().is_logged_in());
        }
        answer_index(&mut p, at, &index(version, 3_000, 6_000), &mut reported);
        reported.extend(p.outbox().batch().iter().map(|e| e.body));
        let raised = reported.iter()
            .filter(|e| **e == EventBody::Alarm(Alarm::IndexUnverified)).count();
        prop_assert_eq!(raised, 1);
        prop_assert_eq!(p.infusion().version(), version);
        prop_assert_eq!(p.infusion().current_rate_ul_h(), 6_000);
    }
}

#[test]
fn a_restarted_pump_neither_repeats_its_last_order_nor_takes_an_older_one() {
    // A new pump has nothing to say.
    assert!(Pump::<64>::new(cfg()).outbox().is_empty());
    let mut p: Pump<64> = Pump::new(PumpConfig {
        applied_version: 5,
        ..cfg()
    });
    // Before anything else it says it restarted and is stopped.
    let said: std::vec::Vec<EventBody> = p.outbox().batch().iter().map(|e| e.body).collect();
    assert_eq!(
        said,
        [
            EventBody::Alarm(Alarm::Restarted),
            EventBody::State(StateChange::Paused),
            EventBody::Progress(Progress {
                delivered_ul: 0,
                rate_ul_h: 0,
                index_version: 5
            }),
        ]
    );
    assert!(p.outbox().has_urgent());
    let mut reported = std::vec::Vec::new();
    let at = answer_index(&mut p, 0, &index(5, 2_000, 4_000), &mut reported);
    assert_eq!(
        p.infusion().phase(),
        Phase::Idle,
        "version 5 ran before the restart"
    );
    assert!(p.session().is_logged_in());
    let at = answer_index(&mut p, at, &index(4, 2_000, 4_000), &mut reported);
    assert_eq!(p.infusion().phase(), Phase::Idle);
    assert!(
        !p.session().is_logged_in(),
        "an older index is not the server's word"
    );
    answer_index(&mut p, at, &index(6, 2_000, 4_000), &mut reported);
    assert_eq!(
        (p.infusion().phase(), p.infusion().version()),
        (Phase::Running, 6)
    );
    reported.extend(p.outbox().batch().iter().map(|e| e.body));
    assert!(reported.contains(&EventBody::Alarm(Alarm::IndexUnverified)));
}

#[test]
fn a_paper_pump_without_a_key_trusts_any_signature_but_never_goes_back() {
    let mut p = running(PumpConfig::default());
    let unsigned = |mut r: IndexResponse| {
        r.signature = Signature::parse(&"00".repeat(64)).unwrap();
        r
    };
    let mut reported = std::vec::Vec::new();
    let at = answer_index(&mut p, 0, &unsigned(index(3, 3_000, 6_000)), &mut reported);
    assert_eq!(p.infusion().version(), 3);
    answer_index(&mut p, at, &unsigned(index(2, 2_000, 2_000)), &mut reported);
    assert_eq!(p.infusion().version(), 3, "an older version is not applied");
    assert_eq!(p.infusion().current_rate_ul_h(), 6_000);
}

#[test]
fn logs_in_polls_and_starts() {
    let mut p: Pump<32> = Pump::new(cfg());
    assert_eq!(p.poll_request(0), Some(Request::Login));
    assert_eq!(p.poll_request(0), None, "one request at a time");
    p.handle_login(10, Ok(&login()));
    assert!(matches!(p.poll_request(10), Some(Request::Index { .. })));
    p.handle_index(20, Ok(&index(1, 2_000, 4_000)));
    assert_eq!(p.infusion().phase(), Phase::Running);
    // The start is urgent: a report goes out right away.
    assert!(matches!(p.poll_request(20), Some(Request::Report { .. })));
    assert_eq!(p.report_events().len(), 2);
}

#[test]
fn token_errors_lead_to_login_and_network_errors_to_backoff() {
    let mut p: Pump<32> = Pump::new(cfg());
    p.poll_request(0);
    p.handle_login(0, Ok(&login()));
    p.poll_request(0);
    p.handle_index(0, Err(Failure::Api(ErrorCode::TokenExpired)));
    assert_eq!(p.poll_request(0), Some(Request::Login));
    p.handle_login(0, Err(Failure::Network));
    assert_eq!(p.poll_request(0), None, "backing off");
    assert!(p.poll_timeout() > 0);
    for _ in 0..3 {
        let at = p.poll_timeout();
        assert_eq!(p.poll_request(at), Some(Request::Login));
        p.handle_login(at, Err(Failure::Network));
    }
    assert!(
        p.outbox()
            .batch()
            .iter()
            .any(|e| e.body == EventBody::Alarm(Alarm::CommLost))
    );
}

#[test]
fn refuses_an_index_outside_limits_and_holds() {
    let mut p: Pump<32> = Pump::new(cfg());
    p.poll_request(0);
    p.handle_login(0, Ok(&login()));
    p.poll_request(0);
    p.handle_index(0, Ok(&index(1, 2_000, 4_000)));
    p.poll_request(0);
    p.handle_report(
        0,
        Ok(&ReportResponse {
            accepted: 2,
            duplicates: 0,
            token: token('c'),
            expires_in_s: 300,
        }),
    );
    p.tick(60_000);
    let before = p.infusion().delivered_ul();
    let at = p.poll_timeout().max(60_000);
    while p.poll_request(at).is_some() {
        p.handle_report(
            at,
            Ok(&ReportResponse {
                accepted: 1,
                duplicates: 0,
                token: token('d'),
                expires_in_s: 300,
            }),
        );
    }
    p.handle_index(at, Ok(&index(2, 2_000, 50_000)));
    assert_eq!(p.infusion().phase(), Phase::Alarm(Alarm::LimitsRefused));
    assert!(!p.clear_alarm(at), "not the operator's to overrule");
    p.tick(at + 600_000);
    assert_eq!(p.infusion().delivered_ul(), before);
    assert!(
        p.outbox()
            .batch()
            .iter()
            .any(|e| e.body == EventBody::Alarm(Alarm::LimitsRefused))
    );
}

/// A pump logged in and running `index(1, 2_000, 4_000)` since 0, with
/// its outbox emptied; `token` answers every report.
fn running(cfg: PumpConfig) -> Pump<64> {
    let mut p: Pump<64> = Pump::new(cfg);
    p.poll_request(0);
    p.handle_login(0, Ok(&login()));
    p.poll_request(0);
    p.handle_index(0, Ok(&index(1, 2_000, 4_000)));
    drain(&mut p, 0);
    p
}

/// Answers every request due at `at`: reports with 200, index polls
/// with version 1.
fn drain(p: &mut Pump<64>, at: u64) {
    while let Some(r) = p.poll_request(at) {
        if let Request::Index { .. } = r {
            p.handle_index(at, Ok(&index(1, 2_000, 4_000)));
            continue;
        }
        p.handle_report(
            at,
            Ok(&ReportResponse {
                accepted: 1,
                duplicates: 0,
                token: token('c'),
                expires_in_s: 300,
            }),
        );
    }
}

fn queued(p: &Pump<64>) -> std::vec::Vec<EventBody> {
    p.outbox().batch().iter().map(|e| e.body).collect()
}

#[test]
fn an_occlusion_stops_the_motor_until_its_cause_is_gone_and_confirmed() {
    let mut p = running(cfg());
    p.sense(60_000, Sensors::default());
    let stalled = Sensors {
        stalled: true,
        ..Sensors::default()
    };
    p.sense(60_000, stalled);
    assert_eq!(p.infusion().phase(), Phase::Alarm(Alarm::Occlusion));
    assert!(queued(&p).contains(&EventBody::Alarm(Alarm::Occlusion)));
    assert!(queued(&p).contains(&EventBody::State(StateChange::Paused)));
    let before = p.take_steps(60_000_000);
    assert_eq!(p.take_steps(600_000_000), 0, "no step while occluded");
    assert!(!p.clear_alarm(600_000), "still stalled");
    p.sense(600_000, Sensors::default());
    assert_eq!(p.infusion().phase(), Phase::Alarm(Alarm::Occlusion));
    assert!(p.clear_alarm(600_000));
    assert_eq!(p.infusion().phase(), Phase::Running);
    assert!(p.take_steps(660_000_000) > 0);
    let _ = before;
}

#[test]
fn a_low_battery_warns_and_lets_the_infusion_run() {
    let mut p = running(cfg());
    p.sense(
        1_000,
        Sensors {
            battery_mv: 3_300,
            ..Sensors::default()
        },
    );
    assert_eq!(p.infusion().phase(), Phase::Running);
    assert_eq!(queued(&p), [EventBody::Alarm(Alarm::BatteryLow)]);
}

/// Ticks from `at` until the pump asks for something; returns when.
fn next_request(p: &mut Pump<64>, mut at: u64) -> (u64, Request) {
    loop {
        at = at.max(p.poll_timeout());
        p.tick(at);
        if let Some(r) = p.poll_request(at) {
            return (at, r);
        }
        at += 1;
        assert!(at < 100_000_000, "no request: {:?}", p.session());
    }
}

#[test]
fn comm_loss_continues_by_default_and_stops_when_configured() {
    for (policy, stops) in [
        (CommLossPolicy::Continue, false),
        (CommLossPolicy::StopAfter(4), true),
    ] {
        let mut p = running(PumpConfig {
            comm_loss: policy,
            ..cfg()
        });
        let mut at = 5_000;
        for _ in 0..6 {
            let (t, r) = next_request(&mut p, at);
            at = t;
            match r {
                Request::Report { .. } => p.handle_report(at, Err(Failure::Network)),
                _ => p.handle_index(at, Err(Failure::Network)),
            }
        }
        let expected = if stops {
            Phase::Alarm(Alarm::CommLost)
        } else {
            Phase::Running
        };
        assert_eq!(p.infusion().phase(), expected, "{policy:?}");
        assert!(queued(&p).contains(&EventBody::Alarm(Alarm::CommLost)));
        // The link comes back: the comm_lost alarm is reported and a
        // stopped infusion resumes under the same index.
        let (at, r) = next_request(&mut p, at);
        assert!(matches!(r, Request::Report { .. }), "urgent events first");
        assert!(
            p.report_events()
                .iter()
                .any(|e| e.body == EventBody::Alarm(Alarm::CommLost))
        );
        p.handle_report(
            at,
            Ok(&ReportResponse {
                accepted: 1,
                duplicates: 0,
                token: token('e'),
                expires_in_s: 300,
            }),
        );
        drain(&mut p, at);
        let (at, r) = next_request(&mut p, at);
        assert!(matches!(r, Request::Index { .. }));
        p.handle_index(at, Ok(&index(1, 2_000, 4_000)));
        assert_eq!(p.infusion().phase(), Phase::Running, "{policy:?}");
    }
}

#[test]
fn refuses_more_than_the_syringe_holds_even_within_patient_limits() {
    let mut p = running(cfg());
    let mut big = index(2, 9_999, 4_000);
    big.index.limits.max_volume_ul = 50_000;
    let big = resigned(big);
    assert!(DosePlan::PAPER.capacity_ul() < 9_999);
    p.poll_request(1_000);
    p.handle_index(1_000, Ok(&big));
    assert_eq!(p.infusion().phase(), Phase::Alarm(Alarm::LimitsRefused));
    // The physician corrects it: a new version within limits runs.
    let mut fixed = index(3, 5_000, 4_000);
    fixed.index.limits.max_volume_ul = 50_000;
    let fixed = resigned(fixed);
    drain(&mut p, 1_000);
    let (at, r) = next_request(&mut p, 1_000);
    assert!(matches!(r, Request::Index { .. }));
    p.handle_index(at, Ok(&fixed));
    assert_eq!(p.infusion().phase(), Phase::Running);
    assert_eq!(p.infusion().version(), 3);
}

#[test]
fn the_whole_pump_state_fits_a_small_ram_budget() {
    // A 64-event outbox with everything else: well inside the 400 KiB
    // of SRAM of an ESP32-C3, next to a Wi-Fi stack.
    let bytes = core::mem::size_of::<Pump<64>>();
    std::println!("Pump<64>: {bytes} bytes");
    assert!(bytes <= 8 * 1024, "{bytes}");
}
