//! One simulated pump: the core, a transport, a clock and a patient.

use std::future::Future;

use infusion_protocol::{DeviceSecret, Index, LoginRequest, MacAddress, PatientId, PublicKey};
use infusion_pump_core::{Phase, Pump, PumpConfig, Request};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::physics::Bench;
use crate::transport::Transport;
use crate::vitals::VitalsModel;

/// Outbox capacity of the simulated pump, in events.
const OUTBOX: usize = 512;

/// What the pump logs in with.
#[derive(Clone)]
pub struct Credentials {
    /// Patient account username.
    pub username: String,
    /// Patient account password.
    pub password: String,
    /// The pump's MAC address.
    pub mac: MacAddress,
    /// The device secret issued when the pump was bound; `None` logs in
    /// the paper's way (only a `--paper-login` server takes that).
    pub secret: Option<DeviceSecret>,
    /// The server's index key, provisioned with the secret: the pump runs
    /// only indexes it signed. `None` is the paper's pump, which trusts
    /// any answer.
    pub server_key: Option<PublicKey>,
}

impl Credentials {
    /// A pump provisioned as `infusion admin bind-device` says: account,
    /// MAC, device secret and server key.
    pub fn provisioned(
        username: &str,
        password: &str,
        mac: MacAddress,
        secret: DeviceSecret,
        server_key: PublicKey,
    ) -> Credentials {
        Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
            mac,
            secret: Some(secret),
            server_key: Some(server_key),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("mac", &self.mac)
            .finish_non_exhaustive()
    }
}

/// How the simulation runs.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    /// The core's timing, in pump time.
    pub pump: PumpConfig,
    /// Pump time runs this many times faster than real time.
    pub time_scale: u32,
    /// Run on virtual time instead ([`Clock::Virtual`]): waits take no
    /// time at all, and the pump wakes at every motor step.
    pub virtual_time: bool,
    /// Vital signs are measured this often, pump time.
    pub vitals_interval_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            pump: PumpConfig::default(),
            time_scale: 1,
            virtual_time: false,
            vitals_interval_ms: 30_000,
        }
    }
}

/// What the pump is doing, published after every step for displays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Pump time, ms.
    pub now_ms: u64,
    /// Logged in with a token in hand.
    pub logged_in: bool,
    /// The patient served.
    pub patient_id: Option<PatientId>,
    /// The last index received.
    pub index: Option<Index>,
    /// `idle`, `running`, `paused`, `completed` or `alarm`.
    pub phase: &'static str,
    /// Delivered so far, µL.
    pub delivered_ul: u32,
    /// Motor steps taken so far in this infusion.
    pub delivered_steps: u64,
    /// Motor rate now, µL/h.
    pub rate_ul_h: u32,
    /// Events waiting for acknowledgement.
    pub unacked_events: usize,
    /// Requests answered with 200.
    pub requests_ok: u64,
    /// Requests that failed.
    pub requests_failed: u64,
    /// Pump time the infusion started (the stopwatch's start), ms.
    pub started_at_ms: Option<u64>,
    /// Pump time the infusion completed (the stopwatch's stop), ms.
    pub completed_at_ms: Option<u64>,
}

/// A simulated pump ready to run.
pub struct SimPump {
    name: String,
    creds: Credentials,
    cfg: SimConfig,
    transport: Transport,
    status: watch::Sender<Snapshot>,
    acknowledged: AckLog,
}

/// Every event sequence number the server has acknowledged (a report that
/// carried it was answered 200), in order. Shared, so a test can compare
/// what the pump was promised with what the database holds.
pub type AckLog = std::sync::Arc<std::sync::Mutex<Vec<u32>>>;

impl SimPump {
    /// A pump called `name` (for logs) talking to the server at `server`.
    pub fn new(name: &str, server: &str, creds: Credentials, mut cfg: SimConfig) -> SimPump {
        cfg.pump.mac = creds.mac;
        cfg.pump.server_key = creds.server_key;
        SimPump {
            name: name.to_owned(),
            creds,
            cfg,
            transport: Transport::new(server),
            status: watch::Sender::new(Snapshot::default()),
            acknowledged: AckLog::default(),
        }
    }

    /// Talks HTTPS to its server, trusting only the authorities in
    /// `ca_pem` (see [`Transport::trusting`]).
    pub fn trusting(
        mut self,
        server: &str,
        ca_pem: &[u8],
    ) -> Result<SimPump, crate::transport::TransportError> {
        self.transport = Transport::trusting(server, ca_pem)?;
        Ok(self)
    }

    /// The log of acknowledged sequence numbers, filled while the pump runs.
    pub fn acknowledged(&self) -> AckLog {
        self.acknowledged.clone()
    }

    /// A live view of the pump's state.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.status.subscribe()
    }

    fn login_request(&self) -> Option<LoginRequest> {
        LoginRequest::new(&self.creds.username, &self.creds.password, self.creds.mac)
    }

    /// Runs until `shutdown` completes; returns the final snapshot.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Snapshot {
        self.drive(shutdown, None, |_| false).await
    }

    /// Runs with `bench` at the end of the line until `done` says so (it
    /// sees every snapshot); returns the last snapshot and the bench with
    /// its readings.
    pub async fn run_bench(
        self,
        mut bench: Bench,
        done: impl FnMut(&Snapshot) -> bool,
    ) -> (Snapshot, Bench) {
        let snap = self
            .drive(std::future::pending(), Some(&mut bench), done)
            .await;
        (snap, bench)
    }

    async fn drive(
        self,
        shutdown: impl Future<Output = ()>,
        mut bench: Option<&mut Bench>,
        mut done: impl FnMut(&Snapshot) -> bool,
    ) -> Snapshot {
        let clock = if self.cfg.virtual_time {
            Clock::virtual_time()
        } else {
            Clock::new(self.cfg.time_scale)
        };
        let mut pump: Pump<OUTBOX> = Pump::new(self.cfg.pump);
        let seed = self
            .creds
            .mac
            .0
            .iter()
            .fold(0u64, |a, b| (a << 8) | u64::from(*b));
        let mut vitals = VitalsModel::new(seed);
        let mut next_vitals_ms = 0;
        let mut snap = Snapshot::default();
        let Some(login) = self.login_request() else {
            tracing::error!(pump = %self.name, "username or password too long for the device API");
            return snap;
        };
        tokio::pin!(shutdown);
        loop {
            let now_us = clock.now_us();
            let now = now_us / 1_000;
            pump.tick(now);
            let steps = pump.take_steps(now_us);
            if let Some(bench) = bench.as_mut() {
                bench.advance(now_us, steps);
            }
            if now >= next_vitals_ms {
                pump.record_vitals(now, vitals.measure());
                next_vitals_ms = now + self.cfg.vitals_interval_ms;
            }
            let request = pump.poll_request(now);
            let sent = request.is_some();
            if let Some(request) = request {
                let ok = self.exchange(&mut pump, &clock, &login, request).await;
                if ok {
                    snap.requests_ok += 1;
                } else {
                    snap.requests_failed += 1;
                }
            }
            self.observe(&pump, &clock, &mut snap);
            if done(&snap) {
                return snap;
            }
            if sent {
                // An answer may make the next request due at once (a report
                // after a new index, a login after a token refusal).
                continue;
            }
            let mut wake_us = pump
                .poll_timeout()
                .min(next_vitals_ms)
                .saturating_mul(1_000);
            if let Some(bench) = &bench {
                wake_us = wake_us.min(bench.next_sample_us());
            }
            if self.cfg.virtual_time
                && let Some(step_us) = pump.next_step_at_us()
            {
                wake_us = wake_us.min(step_us);
            }
            // Time always moves on, even if something asked to be woken
            // in the past.
            let wake_us = wake_us.max(clock.now_us() + 1);
            tokio::select! {
                _ = &mut shutdown => return snap,
                _ = clock.sleep_until(wake_us) => {}
            }
        }
    }

    /// Updates and publishes the snapshot.
    fn observe(&self, pump: &Pump<OUTBOX>, clock: &Clock, snap: &mut Snapshot) {
        snap.now_ms = clock.now_ms();
        snap.logged_in = pump.session().is_logged_in();
        snap.patient_id = pump.session().patient();
        snap.index = pump.last_index().copied();
        let phase = pump.infusion().phase();
        if let Phase::Alarm(alarm) = phase
            && snap.phase != "alarm"
        {
            tracing::warn!(pump = %self.name, alarm = alarm.as_str(), "infusion stopped by an alarm");
        }
        snap.phase = phase.as_str();
        match phase {
            Phase::Running if snap.started_at_ms.is_none() => {
                snap.started_at_ms = Some(snap.now_ms)
            }
            Phase::Completed if snap.completed_at_ms.is_none() => {
                snap.completed_at_ms = Some(snap.now_ms)
            }
            _ => {}
        }
        snap.delivered_ul = pump.infusion().delivered_ul();
        snap.delivered_steps = pump.infusion().delivered_steps();
        snap.rate_ul_h = pump.infusion().current_rate_ul_h();
        snap.unacked_events = pump.outbox().batch().len();
        self.status.send_replace(snap.clone());
    }

    /// Sends one request and hands the answer to the core. True on a 200.
    async fn exchange(
        &self,
        pump: &mut Pump<OUTBOX>,
        clock: &Clock,
        login: &LoginRequest,
        request: Request,
    ) -> bool {
        match request {
            Request::Login => {
                let answer = self
                    .transport
                    .login(login, self.creds.secret.as_ref())
                    .await;
                let ok = answer.is_ok();
                match &answer {
                    Ok(r) => {
                        tracing::info!(pump = %self.name, patient = r.patient_id.0, "logged in")
                    }
                    Err(e) => tracing::warn!(pump = %self.name, failure = ?e, "login failed"),
                }
                pump.handle_login(clock.now_ms(), answer.as_ref().map_err(|e| *e));
                ok
            }
            Request::Index { token, patient_id } => {
                let before = pump.infusion().version();
                let answer = self.transport.index(&token, patient_id).await;
                let ok = answer.is_ok();
                if let Err(e) = &answer {
                    tracing::info!(pump = %self.name, failure = ?e, "index request failed");
                }
                pump.handle_index(clock.now_ms(), answer.as_ref().map_err(|e| *e));
                if let (Ok(r), true) = (&answer, pump.infusion().version() != before) {
                    tracing::info!(
                        pump = %self.name,
                        version = r.index.version,
                        volume_ul = r.index.volume_ul,
                        rate_ul_h = r.index.rate_ul_h,
                        state = r.index.state.as_str(),
                        "new infusion index applied"
                    );
                }
                ok
            }
            Request::Report { token, patient_id } => {
                let sent: Vec<u32> = pump.report_events().iter().map(|e| e.seq).collect();
                let answer = self
                    .transport
                    .report(&token, patient_id, pump.report_events())
                    .await;
                let ok = answer.is_ok();
                if ok && let Ok(mut log) = self.acknowledged.lock() {
                    log.extend(sent);
                }
                match &answer {
                    Ok(r) => {
                        tracing::debug!(pump = %self.name, accepted = r.accepted, duplicates = r.duplicates, "report stored")
                    }
                    Err(e) => tracing::info!(pump = %self.name, failure = ?e, "report failed"),
                }
                pump.handle_report(clock.now_ms(), answer.as_ref().map_err(|e| *e));
                ok
            }
        }
    }
}
