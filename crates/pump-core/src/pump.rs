//! The pump: infusion, outbox and session, driven by time and answers.

use infusion_protocol::limits::{MAX_RATE_UL_H, MIN_RATE_UL_H};
use infusion_protocol::{
    Alarm, ErrorCode, Event, EventBody, Index, IndexResponse, LoginResponse, MacAddress, PatientId,
    Progress, PublicKey, ReportResponse, StateChange, Token, Vitals, verify_index,
};

use crate::dose::DosePlan;
use crate::infusion::{Advanced, Infusion, Phase};
use crate::outbox::Outbox;
use crate::sensors::{AlarmWatch, Sensors};
use crate::session::{Failure, InFlight, Session};

/// What the pump does with a running infusion when the server cannot be
/// reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommLossPolicy {
    /// Keep infusing to the programmed volume (the paper's pump, and the
    /// safe choice for drugs that must not stop abruptly).
    Continue,
    /// Stop after this many consecutive failed requests (for drugs that
    /// must not run unsupervised). The infusion resumes when an index
    /// answer arrives again.
    StopAfter(u32),
}

/// Timing of the pump's conversation with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PumpConfig {
    /// Index poll interval.
    pub poll_interval_ms: u64,
    /// How often a progress event is queued while infusing.
    pub progress_interval_ms: u64,
    /// How often queued events are reported when none is urgent.
    pub report_interval_ms: u64,
    /// First back-off after a failure.
    pub backoff_min_ms: u64,
    /// Longest back-off.
    pub backoff_max_ms: u64,
    /// Consecutive failures after which `comm_lost` is raised.
    pub comm_lost_after: u32,
    /// The sequence number of the first event (persisted across reboots).
    pub first_seq: u32,
    /// The newest index version this pump applied before it restarted,
    /// kept in flash like `first_seq`. An index not newer is not run again
    /// (a restarted pump does not repeat an order it already ran, and an
    /// older signed index replayed after the reboot is refused): only a new
    /// version from the physician starts it. 0 on a new pump.
    pub applied_version: u32,
    /// Seed for back-off jitter (from a hardware RNG or the MAC).
    pub seed: u32,
    /// The loaded syringe on this pump's drive.
    pub plan: DosePlan,
    /// What happens to a running infusion when the link is lost.
    pub comm_loss: CommLossPolicy,
    /// Battery voltage under which `battery_low` is raised, mV.
    pub battery_low_mv: u16,
    /// This pump's MAC address: an index is run only if signed for it.
    pub mac: MacAddress,
    /// The server's index key, provisioned with the device secret. With a
    /// key, an index is run only if its signature verifies for this
    /// patient and MAC and its version is not older than one applied.
    /// `None` is the paper's pump, which trusts any index answer: only for
    /// reproducing the paper against `infusion serve --paper-login`.
    pub server_key: Option<PublicKey>,
}

impl Default for PumpConfig {
    fn default() -> Self {
        PumpConfig {
            poll_interval_ms: 5_000,
            progress_interval_ms: 10_000,
            report_interval_ms: 10_000,
            backoff_min_ms: 500,
            backoff_max_ms: 30_000,
            comm_lost_after: 3,
            first_seq: 1,
            applied_version: 0,
            seed: 0x9E37_79B9,
            plan: DosePlan::PAPER,
            comm_loss: CommLossPolicy::Continue,
            // A single Li-ion cell with about 10 % left.
            battery_low_mv: 3_500,
            mac: MacAddress([0; 6]),
            server_key: None,
        }
    }
}

/// A request the caller should send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `POST /api/v1/device/login` with the device's credentials and MAC.
    Login,
    /// `POST /api/v1/device/index`.
    Index {
        /// Bearer token to present.
        token: Token,
        /// Body field.
        patient_id: PatientId,
    },
    /// `POST /api/v1/device/report` with [`Pump::report_events`].
    Report {
        /// Bearer token to present.
        token: Token,
        /// Body field.
        patient_id: PatientId,
    },
}

/// The whole pump logic. `N` is the outbox capacity, in events.
#[derive(Debug, Clone)]
pub struct Pump<const N: usize> {
    cfg: PumpConfig,
    session: Session,
    infusion: Infusion,
    outbox: Outbox<N>,
    last_progress_ms: u64,
    next_report_ms: u64,
    refused_version: u32,
    comm_lost_raised: bool,
    unverified_raised: bool,
    last_index: Option<Index>,
    watch: AlarmWatch,
}

impl<const N: usize> Pump<N> {
    /// A pump that has not logged in yet. One that had applied an order
    /// before it restarted (`applied_version` above 0) says so first: a
    /// `restarted` alarm and a stopped state, so that no one reads the
    /// last report from before the restart as an infusion still running.
    pub fn new(cfg: PumpConfig) -> Self {
        let mut pump = Pump {
            session: Session::new(cfg.seed),
            infusion: Infusion::new(cfg.plan),
            outbox: Outbox::new(cfg.first_seq),
            last_progress_ms: 0,
            next_report_ms: 0,
            refused_version: 0,
            comm_lost_raised: false,
            unverified_raised: false,
            last_index: None,
            watch: AlarmWatch::default(),
            cfg,
        };
        if cfg.applied_version > 0 {
            pump.raise_alarm(0, Alarm::Restarted);
            pump.outbox.push(0, EventBody::State(StateChange::Paused));
            pump.outbox.push(
                0,
                EventBody::Progress(Progress {
                    delivered_ul: 0,
                    rate_ul_h: 0,
                    index_version: cfg.applied_version,
                }),
            );
        }
        pump
    }

    /// The infusion state.
    pub fn infusion(&self) -> &Infusion {
        &self.infusion
    }

    /// The session state.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The outbox (for persisting `next_seq` and for diagnostics).
    pub fn outbox(&self) -> &Outbox<N> {
        &self.outbox
    }

    /// The last index received, applied or refused.
    pub fn last_index(&self) -> Option<&Index> {
        self.last_index.as_ref()
    }

    /// Advances the infusion to `now_ms` and queues progress when due.
    /// Steps that fall due wait for [`Pump::take_steps`].
    pub fn tick(&mut self, now_ms: u64) {
        let event = self.infusion.advance(now_ms.saturating_mul(1_000));
        self.advanced(now_ms, event);
        if self.infusion.phase() == Phase::Running
            && now_ms.saturating_sub(self.last_progress_ms) >= self.cfg.progress_interval_ms
        {
            self.queue_progress(now_ms);
        }
    }

    /// The motor edge's call: advances to `now_us` and returns how many
    /// steps to pulse now. Call it at (or after) [`Pump::next_step_at_us`].
    pub fn take_steps(&mut self, now_us: u64) -> u64 {
        let (steps, event) = self.infusion.take_steps(now_us);
        self.advanced(now_us / 1_000, event);
        steps
    }

    /// When the motor's next step falls due, µs, while it runs.
    pub fn next_step_at_us(&self) -> Option<u64> {
        self.infusion.next_step_at_us()
    }

    fn advanced(&mut self, now_ms: u64, event: Option<Advanced>) {
        match event {
            Some(Advanced::Completed) => self.queue_state(now_ms, StateChange::Completed),
            Some(Advanced::SyringeEmpty) => {
                self.raise_alarm(now_ms, Alarm::SyringeEmpty);
                self.queue_state(now_ms, StateChange::Paused);
            }
            None => {}
        }
    }

    /// Takes a reading of the hardware inputs. A new occlusion, driver
    /// fault or end of travel stops the motor and raises its alarm; a low
    /// battery raises `battery_low` and lets the infusion go on.
    pub fn sense(&mut self, now_ms: u64, sensors: Sensors) {
        self.tick(now_ms);
        for alarm in self.watch.read(sensors, self.cfg.battery_low_mv) {
            self.raise_alarm(now_ms, alarm);
            if alarm != Alarm::BatteryLow {
                self.stop(now_ms, alarm);
            }
        }
    }

    /// The latest hardware reading.
    pub fn sensors(&self) -> &Sensors {
        self.watch.last()
    }

    fn stop(&mut self, now_ms: u64, alarm: Alarm) {
        if let Some(change) = self.infusion.stop(alarm, now_ms.saturating_mul(1_000)) {
            self.queue_state(now_ms, change);
        }
    }

    /// Ends an alarm stop, if `allowed`, nothing hazardous is sensed and
    /// the plunger has travel left: the infusion returns to what the last
    /// accepted index says. True when it did.
    fn try_clear(&mut self, now_ms: u64, allowed: fn(Alarm) -> bool) -> bool {
        let Phase::Alarm(alarm) = self.infusion.phase() else {
            return false;
        };
        let empty = self.infusion.plunger_steps() >= self.infusion.plan().capacity_steps();
        if !allowed(alarm) || self.watch.last().hazard() || empty {
            return false;
        }
        if let Some(change) = self.infusion.clear(now_ms.saturating_mul(1_000)) {
            self.queue_state(now_ms, change);
        }
        true
    }

    /// The operator at the bedside confirms an alarm: an occlusion, motor
    /// fault, empty syringe or lost link ends once its cause is gone. A
    /// refused index is not the operator's to overrule: it ends only with
    /// a new index inside the limits. True when the infusion went back to
    /// its prescribed state.
    pub fn clear_alarm(&mut self, now_ms: u64) -> bool {
        self.tick(now_ms);
        self.try_clear(now_ms, |a| a != Alarm::LimitsRefused)
    }

    /// A full syringe was loaded: the plunger is back at its start. An
    /// empty-syringe stop still needs [`Pump::clear_alarm`] or a new index.
    pub fn load_syringe(&mut self, now_ms: u64) {
        self.tick(now_ms);
        self.infusion.load_syringe();
    }

    /// Queues vital signs measured by the wearable.
    pub fn record_vitals(&mut self, now_ms: u64, vitals: Vitals) {
        self.outbox.push(now_ms, EventBody::Vitals(vitals));
    }

    /// Queues an alarm raised by the hardware edge (occlusion, battery...).
    pub fn raise_alarm(&mut self, now_ms: u64, alarm: Alarm) {
        self.outbox.push(now_ms, EventBody::Alarm(alarm));
    }

    fn queue_progress(&mut self, now_ms: u64) {
        self.last_progress_ms = now_ms;
        self.outbox.push(
            now_ms,
            EventBody::Progress(Progress {
                delivered_ul: self.infusion.delivered_ul(),
                rate_ul_h: self.infusion.current_rate_ul_h(),
                index_version: self.infusion.version(),
            }),
        );
    }

    fn queue_state(&mut self, now_ms: u64, change: StateChange) {
        self.outbox.push(now_ms, EventBody::State(change));
        self.queue_progress(now_ms);
    }

    /// The next request to send, if one is due at `now_ms`. At most one
    /// request is in flight: each answer carries the token for the next.
    pub fn poll_request(&mut self, now_ms: u64) -> Option<Request> {
        let s = &mut self.session;
        if s.in_flight != InFlight::None || now_ms < s.not_before_ms {
            return None;
        }
        let (Some(token), Some(patient_id)) = (s.token.clone(), s.patient) else {
            s.in_flight = InFlight::Login;
            return Some(Request::Login);
        };
        let report_due =
            !self.outbox.is_empty() && (self.outbox.has_urgent() || now_ms >= self.next_report_ms);
        if report_due {
            let through = self.outbox.batch().last().map_or(0, |e| e.seq);
            s.in_flight = InFlight::Report(through);
            return Some(Request::Report { token, patient_id });
        }
        if now_ms >= s.next_poll_ms {
            s.in_flight = InFlight::Index;
            return Some(Request::Index { token, patient_id });
        }
        None
    }

    /// The events to put in the report [`Pump::poll_request`] asked for.
    pub fn report_events(&self) -> &[Event] {
        let InFlight::Report(through) = self.session.in_flight else {
            return &[];
        };
        let batch = self.outbox.batch();
        let n = batch.iter().take_while(|e| e.seq <= through).count();
        &batch[..n]
    }

    /// When the caller should call [`Pump::tick`] and
    /// [`Pump::poll_request`] next, at the latest. The motor's own timer
    /// follows [`Pump::next_step_at_us`] instead.
    pub fn poll_timeout(&self) -> u64 {
        let s = &self.session;
        let mut at = s.not_before_ms.max(s.next_poll_ms);
        if !self.outbox.is_empty() {
            at = at.min(s.not_before_ms.max(self.next_report_ms));
        }
        if self.infusion.phase() == Phase::Running {
            at = at.min(self.last_progress_ms + self.cfg.progress_interval_ms);
        }
        at
    }

    fn failed(&mut self, now_ms: u64, failure: Failure) {
        self.session.in_flight = InFlight::None;
        if failure == Failure::Unverified {
            // Whoever answered is not to be trusted with the token it
            // gave either: start a new chain after the back-off.
            self.session.logout();
            if !self.unverified_raised {
                self.unverified_raised = true;
                self.raise_alarm(now_ms, Alarm::IndexUnverified);
            }
        }
        match failure {
            Failure::Api(code) if code.requires_login() => {
                // The chain is broken: log in again at once.
                self.session.logout();
                self.session.not_before_ms = now_ms;
            }
            Failure::Api(
                ErrorCode::InvalidCredentials
                | ErrorCode::DeviceNotRegistered
                | ErrorCode::DeviceProofRequired,
            ) => {
                // Not going to change by retrying soon; wait long.
                self.session.logout();
                self.session.failures = self.session.failures.saturating_add(1);
                self.session.not_before_ms = now_ms + self.cfg.backoff_max_ms;
            }
            _ => {
                self.session
                    .backoff(now_ms, self.cfg.backoff_min_ms, self.cfg.backoff_max_ms);
                if self.session.failures >= self.cfg.comm_lost_after && !self.comm_lost_raised {
                    self.comm_lost_raised = true;
                    self.raise_alarm(now_ms, Alarm::CommLost);
                }
                if let CommLossPolicy::StopAfter(n) = self.cfg.comm_loss
                    && self.session.failures >= n
                    && self.infusion.phase() == Phase::Running
                {
                    self.tick(now_ms);
                    self.stop(now_ms, Alarm::CommLost);
                }
            }
        }
    }

    fn succeeded(&mut self, token: &Token) {
        self.session.in_flight = InFlight::None;
        self.session.token = Some(token.clone());
        self.session.succeeded();
        self.comm_lost_raised = false;
    }

    /// Consumes the answer to [`Request::Login`].
    pub fn handle_login(&mut self, now_ms: u64, answer: Result<&LoginResponse, Failure>) {
        match answer {
            Ok(r) => {
                self.succeeded(&r.token);
                self.session.patient = Some(r.patient_id);
                self.session.next_poll_ms = now_ms;
            }
            Err(f) => self.failed(now_ms, f),
        }
    }

    /// Consumes the answer to [`Request::Index`]: a new version is applied
    /// at once, or refused (hold and `limits_refused`) when outside the
    /// pump's or the patient's limits. An answer that is not the server's
    /// ([`Pump::verify`]) changes nothing in the infusion: the last
    /// verified prescription goes on, `index_unverified` is raised, and
    /// the pump backs off and logs in again.
    pub fn handle_index(&mut self, now_ms: u64, answer: Result<&IndexResponse, Failure>) {
        let r = match answer {
            Ok(r) if self.verify(r) => r,
            Ok(_) => return self.failed(now_ms, Failure::Unverified),
            Err(f) => return self.failed(now_ms, f),
        };
        self.unverified_raised = false;
        self.succeeded(&r.token);
        self.session.next_poll_ms = now_ms + self.cfg.poll_interval_ms;
        let index = r.index;
        self.last_index = Some(index);
        self.tick(now_ms);
        let new = index.version > self.newest_version();
        if new && !index_acceptable(&index, self.infusion.plan()) {
            // Keep what runs out of the refused values: stop and say so.
            self.refused_version = index.version;
            self.raise_alarm(now_ms, Alarm::LimitsRefused);
            self.stop(now_ms, Alarm::LimitsRefused);
        } else if new {
            if let Some(change) = self.infusion.apply(&index, now_ms.saturating_mul(1_000)) {
                self.queue_state(now_ms, change);
            }
            // A clinician's new order, inside the limits, ends any alarm
            // stop whose cause is gone.
            self.try_clear(now_ms, |_| true);
        }
        // The link is back: a stop for its loss ends.
        self.try_clear(now_ms, |a| a == Alarm::CommLost);
    }

    /// Consumes the answer to [`Request::Report`]: a 200 removes the
    /// reported events from the outbox.
    pub fn handle_report(&mut self, now_ms: u64, answer: Result<&ReportResponse, Failure>) {
        let InFlight::Report(through) = self.session.in_flight else {
            return;
        };
        match answer {
            Ok(r) => {
                self.succeeded(&r.token);
                self.outbox.ack_through(through);
                self.next_report_ms = now_ms + self.cfg.report_interval_ms;
            }
            Err(Failure::Api(ErrorCode::InvalidBody | ErrorCode::PayloadTooLarge)) => {
                // The server will never take this batch; keep the link
                // alive rather than resend it forever. The token was not
                // consumed by the refusal.
                let n = self.report_events().len();
                self.outbox
                    .count_dropped(u32::try_from(n).unwrap_or(u32::MAX));
                self.outbox.ack_through(through);
                self.session.in_flight = InFlight::None;
            }
            Err(f) => self.failed(now_ms, f),
        }
    }
}

impl<const N: usize> Pump<N> {
    /// The newest index version this pump has applied or refused, since
    /// its start or (`applied_version`) before it.
    fn newest_version(&self) -> u32 {
        self.infusion
            .version()
            .max(self.refused_version)
            .max(self.cfg.applied_version)
    }

    /// True when an index answer may be acted on: signed by the server key
    /// for this pump's patient and MAC, and not older than the newest
    /// version applied or refused (an old signed index replayed would undo
    /// a clinician's change). Without a server key (the paper's pump)
    /// every answer passes.
    pub fn verify(&self, answer: &IndexResponse) -> bool {
        let Some(key) = &self.cfg.server_key else {
            return true;
        };
        let Some(patient) = self.session.patient else {
            return false;
        };
        answer.index.version >= self.newest_version()
            && verify_index(key, patient, self.cfg.mac, &answer.index, &answer.signature)
    }
}

/// An index the pump may run: rate within the hardware's range, volume
/// within what the loaded syringe holds, and both within the patient's
/// limits. Version 0 (nothing prescribed) is acceptable and changes
/// nothing.
pub fn index_acceptable(index: &Index, plan: &DosePlan) -> bool {
    index.version == 0
        || ((MIN_RATE_UL_H..=MAX_RATE_UL_H).contains(&index.rate_ul_h)
            && u64::from(index.volume_ul) <= plan.capacity_ul()
            && index.limits.allows(index.volume_ul, index.rate_ul_h))
}

#[cfg(test)]
mod tests {
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
}
