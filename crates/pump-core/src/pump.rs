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
    /// The sequence number of the first event (persisted across reboots
    /// where the firmware can; a counter lost anyway continues from the
    /// login answer's `next_seq`, see [`Outbox::continue_from`]).
    pub first_seq: u32,
    /// The newest index version this pump applied before it restarted,
    /// kept in flash like `first_seq`. An index not newer is not run again
    /// (a restarted pump does not repeat an order it already ran, and an
    /// older signed index replayed after the reboot is refused): only a new
    /// version from the physician starts it. 0 on a new pump.
    pub applied_version: u32,
    /// Where the order `applied_version` stood when the pump restarted,
    /// if it had not completed (kept in flash with `applied_version`).
    /// With it, a newer version of that order continues it, counting
    /// what was already given against its total, so that a physician's
    /// Resume after a reboot never gives the order's volume twice.
    /// Without it, a newer version starts a new infusion.
    pub resume: Option<Resume>,
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
            resume: None,
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

/// Where an open order stood when the pump restarted: the firmware keeps
/// these in flash, never below the truth (it saves a count before the
/// motor reaches it), so a resumed order can give less than its total
/// after a power cut, never more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// Microsteps the order had given.
    pub delivered_steps: u64,
    /// Microsteps since the syringe was loaded.
    pub plunger_steps: u64,
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
        let infusion = match cfg.resume {
            Some(r) if cfg.applied_version > 0 => Infusion::restored(
                cfg.plan,
                cfg.applied_version,
                r.delivered_steps,
                r.plunger_steps,
            ),
            _ => Infusion::new(cfg.plan),
        };
        let mut pump = Pump {
            session: Session::new(cfg.seed),
            infusion,
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
                    delivered_ul: pump.infusion.delivered_ul(),
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

    /// The newest order version this pump applied, before its restart
    /// or since: what the firmware keeps in flash so that it never runs
    /// that order again.
    pub fn applied_version(&self) -> u32 {
        self.infusion.version().max(self.cfg.applied_version)
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
    /// a new index inside the limits. Nor is a restart: the order it
    /// interrupted goes on only with a new version from the physician.
    /// True when the infusion went back to its prescribed state.
    pub fn clear_alarm(&mut self, now_ms: u64) -> bool {
        self.tick(now_ms);
        self.try_clear(now_ms, |a| {
            a != Alarm::LimitsRefused && a != Alarm::Restarted
        })
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
            self.outbox.mark_sent(through);
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
            Failure::Api(ErrorCode::SeqConflict) => {
                // Numbers the server holds with other events: log in again
                // (after the back-off, in case it does not clear) to learn
                // where numbering stands.
                self.session.logout();
                self.session
                    .backoff(now_ms, self.cfg.backoff_min_ms, self.cfg.backoff_max_ms);
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
                if let Some(next) = r.next_seq {
                    self.outbox.continue_from(next);
                }
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
mod tests;
