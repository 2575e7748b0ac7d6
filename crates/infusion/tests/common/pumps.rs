//! Simulated pumps against `infusion serve` processes: the accounts they
//! log in with, the server processes (killed gently or with SIGKILL, and
//! started again on the same address), and the check that every report a
//! pump was told was stored is in the database exactly once.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use infusion_protocol::{InfusionState, MacAddress, PatientLimits, PublicKey};
use infusion_pump_core::PumpConfig;
use infusion_server::password::PasswordParams;
use infusion_sim::{AckLog, Credentials, SimConfig, SimPump, Snapshot};
use infusion_store::{NewPrescription, Store};
use infusion_testkit::{device_secret, patient_id, seed_patient, seed_physician, server_key};
use tokio::sync::watch;

/// Every seeded account's password.
pub const PASSWORD: &str = "instances test password";

/// An `infusion serve` process, stopped (SIGTERM) on drop.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl ServerProcess {
    /// Starts a server on a free port.
    pub fn start(database_url: &str) -> ServerProcess {
        Self::start_on(database_url, "127.0.0.1:0")
    }

    /// Starts a server on `bind` (a restarted server comes back on its
    /// old address, where its pumps look for it).
    pub fn start_on(database_url: &str, bind: &str) -> ServerProcess {
        let (child, base) = super::spawn_serve(
            database_url,
            &["--bind", bind, "--db-max-connections", "4"],
            Stdio::null(),
        );
        ServerProcess { child, base }
    }

    /// `IP:PORT` it listens on.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// SIGKILL: no shutdown, no flush, no goodbye; as a power cut is to
    /// the process.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn limits() -> PatientLimits {
    PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 50_000,
        max_volume_ul: 100_000,
    }
}

/// The MAC address of pump `i`.
pub fn mac(i: usize) -> String {
    format!("02:00:00:00:01:{i:02X}")
}

/// Seeds physician `doc` and patients `p0..pn` with devices and a running
/// prescription (9 mL at 20 mL/h); returns the servers' index key, to
/// provision the pumps with.
pub async fn seed(store: &dyn Store, n: usize) -> PublicKey {
    let hash = PasswordParams::INSECURE_FAST
        .hash_blocking(PASSWORD)
        .unwrap();
    seed_physician(store, "doc", &hash).await;
    for i in 0..n {
        let name = format!("p{i}");
        seed_patient(store, &name, "P", "doc", &hash, &mac(i), limits()).await;
        store
            .set_prescription(
                patient_id(store, &name).await,
                NewPrescription {
                    volume_ul: 9_000,
                    rate_ul_h: 20_000,
                    state: InfusionState::Run,
                    drug: None,
                },
                "doc",
                0,
            )
            .await
            .unwrap();
    }
    server_key(store).await
}

/// Simulated pump `i` (account `p{i}`) on `base`.
pub fn pump(
    i: usize,
    base: &str,
    server_key: PublicKey,
    pump: PumpConfig,
    time_scale: u32,
) -> SimPump {
    SimPump::new(
        &format!("p{i}"),
        base,
        Credentials::provisioned(
            &format!("p{i}"),
            PASSWORD,
            MacAddress::parse(&mac(i)).unwrap(),
            device_secret(&mac(i)),
            server_key,
        ),
        SimConfig {
            pump: PumpConfig {
                seed: i as u32 + 1,
                ..pump
            },
            time_scale,
            vitals_interval_ms: 2_000,
            ..SimConfig::default()
        },
    )
}

/// Waits (at most 30 s) until `f` holds for the pump's state.
pub async fn wait_for(
    view: &mut watch::Receiver<Snapshot>,
    what: &str,
    f: impl Fn(&Snapshot) -> bool,
) {
    let done = tokio::time::timeout(Duration::from_secs(30), view.wait_for(|s| f(s)))
        .await
        .is_ok();
    assert!(
        done,
        "timed out waiting for {what}; last {:?}",
        *view.borrow()
    );
}

/// Every event pump `p{i}` was told was stored (its [`AckLog`]) is in the
/// database, and nothing is stored twice. Returns how many were
/// acknowledged over all pumps.
pub async fn assert_acknowledged_stored_once(store: &dyn Store, acks: &[AckLog]) -> usize {
    let mut total = 0;
    for (i, log) in acks.iter().enumerate() {
        let acked = log.lock().unwrap().clone();
        assert!(!acked.is_empty(), "p{i} had reports acknowledged");
        total += acked.len();
        let patient = store
            .patient(patient_id(store, &format!("p{i}")).await)
            .await
            .unwrap();
        let stored = store.events(patient.patient_id, 0, 100_000).await.unwrap();
        let mut seqs: Vec<u32> = stored.iter().map(|e| e.seq).collect();
        let n = seqs.len();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), n, "p{i}: an event was stored twice");
        for seq in &acked {
            assert!(
                seqs.binary_search(seq).is_ok(),
                "p{i}: acknowledged event {seq} is missing"
            );
        }
    }
    total
}

/// Pumps `p0..pn` running against the servers at `bases` (pump `i` on
/// `bases[i % len]`), 10 times faster than real time, polling and
/// reporting every 2 s of pump time (200 ms real) and backing off 0.5 to
/// 5 s when the server is away.
pub struct Fleet {
    /// Each pump's live state.
    pub views: Vec<watch::Receiver<Snapshot>>,
    /// Each pump's acknowledged sequence numbers.
    pub acks: Vec<AckLog>,
    tasks: Vec<tokio::task::JoinHandle<Snapshot>>,
    stop: watch::Sender<bool>,
}

impl Fleet {
    /// Starts the pumps and waits until each is running.
    pub async fn start(n: usize, bases: &[&str], server_key: PublicKey) -> Fleet {
        let cfg = PumpConfig {
            poll_interval_ms: 2_000,
            progress_interval_ms: 2_000,
            report_interval_ms: 2_000,
            backoff_min_ms: 500,
            backoff_max_ms: 5_000,
            ..PumpConfig::default()
        };
        let (stop, stopped) = watch::channel(false);
        let mut fleet = Fleet {
            views: Vec::new(),
            acks: Vec::new(),
            tasks: Vec::new(),
            stop,
        };
        for i in 0..n {
            let sim = pump(i, bases[i % bases.len()], server_key, cfg, 10);
            fleet.views.push(sim.subscribe());
            fleet.acks.push(sim.acknowledged());
            let mut stopped = stopped.clone();
            fleet.tasks.push(tokio::spawn(sim.run(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })));
        }
        for (i, view) in fleet.views.iter_mut().enumerate() {
            wait_for(view, &format!("p{i} running"), |s| s.phase == "running").await;
        }
        fleet
    }

    /// Waits until every pump has had `more` requests answered since now
    /// and has nothing left to report.
    pub async fn wait_all_served(&mut self, more: u64, what: &str) {
        let now: Vec<u64> = self.views.iter().map(|v| v.borrow().requests_ok).collect();
        for (i, view) in self.views.iter_mut().enumerate() {
            let before = now[i];
            wait_for(view, &format!("p{i} {what}"), |s| {
                s.requests_ok >= before + more && s.unacked_events == 0
            })
            .await;
        }
    }

    /// Stops the pumps; returns their failed requests, all together.
    pub async fn stop(self) -> u64 {
        self.stop.send_replace(true);
        let mut failed = 0;
        for t in self.tasks {
            failed += t.await.unwrap().requests_failed;
        }
        failed
    }
}
