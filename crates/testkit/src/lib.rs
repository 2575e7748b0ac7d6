//! Test support shared by every crate's integration tests: a fresh database
//! on either store backend, seeding of accounts, and [`backend_tests!`],
//! which runs one test body against both backends.
//!
//! PostgreSQL tests need a server: set `INFUSION_TEST_POSTGRES_URL` to a
//! URL whose role may create databases (each test gets its own, dropped
//! afterwards). Without it the PostgreSQL half skips with one line on
//! stderr, unless `INFUSION_TEST_REQUIRE_POSTGRES=1` (as `.ci/run` sets),
//! which turns a missing server into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod pg_server;
pub mod receivers;

use std::net::SocketAddr;
use std::time::Duration;

use infusion_server::password::PasswordParams;
use infusion_server::{AppState, Application, ServerConfig};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use infusion_protocol::{DeviceSecret, MacAddress, Nonce, PatientId, PatientLimits, PublicKey};
use infusion_server::identity::ServerKeys;
use infusion_store::{NewPatient, NewPhysician, Store};
use infusion_store_postgres::scratch::ScratchDatabase;
use infusion_store_postgres::{PgConfig, PgStore};
use infusion_store_sqlite::SqliteStore;

/// The environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_ENV: &str = "INFUSION_TEST_POSTGRES_URL";
/// Set to `1` to fail, not skip, when no PostgreSQL server is configured.
pub const REQUIRE_POSTGRES_ENV: &str = "INFUSION_TEST_REQUIRE_POSTGRES";

/// The store backends a suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the server `INFUSION_TEST_POSTGRES_URL` names.
    Postgres,
}

/// The PostgreSQL admin URL for tests, if one is configured.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_ENV).ok().filter(|s| !s.is_empty())
}

impl Backend {
    /// True when this backend cannot run here and the test should return
    /// at once (printing why, once per test binary). Panics instead when
    /// PostgreSQL is required.
    pub fn skip(self) -> bool {
        static SAID: AtomicBool = AtomicBool::new(false);
        if self == Backend::Sqlite || postgres_url().is_some() {
            return false;
        }
        if std::env::var(REQUIRE_POSTGRES_ENV).is_ok_and(|v| v == "1") {
            panic!("{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_ENV} is not set");
        }
        if !SAID.swap(true, Ordering::Relaxed) {
            eprintln!("skipping the PostgreSQL half: set {POSTGRES_ENV} to run it");
        }
        true
    }
}

/// Generates one `#[tokio::test]` per backend (in modules `sqlite` and
/// `postgres`) for each listed async test body `async fn name(backend:
/// Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::Backend::Postgres.skip() {
                        return;
                    }
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}

enum Keep {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Pg(#[allow(dead_code)] ScratchDatabase),
}

/// A fresh, migrated database and a store open on it. Dropping it deletes
/// the database.
pub struct TestDb {
    /// The store the test uses.
    pub store: Arc<dyn Store>,
    /// The database's URL, for a second store or a server process on it.
    pub url: String,
    /// Which backend.
    pub backend: Backend,
    _keep: Keep,
}

/// Pool settings for tests: small, since many tests run at once against
/// one server.
pub fn test_pg_config() -> PgConfig {
    PgConfig {
        max_connections: 4,
        ..PgConfig::default()
    }
}

/// A fresh database with nothing in it, not even the schema: a target to
/// restore a backup into. Dropping it deletes the database.
pub struct EmptyDb {
    /// Its URL.
    pub url: String,
    _keep: Keep,
}

impl EmptyDb {
    /// Creates it (for SQLite, a path in a new temporary directory).
    pub async fn create(backend: Backend) -> EmptyDb {
        // Every test starts here or at `serve`: the HTTP clients it builds
        // next need the process's TLS provider.
        infusion_server::tls::install_default_provider();
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                EmptyDb {
                    url,
                    _keep: Keep::Dir(dir),
                }
            }
            Backend::Postgres => {
                let admin = postgres_url().expect("INFUSION_TEST_POSTGRES_URL");
                let db = ScratchDatabase::create(&admin, "test").await.unwrap();
                EmptyDb {
                    url: db.url().to_owned(),
                    _keep: Keep::Pg(db),
                }
            }
        }
    }
}

/// Opens a store (applying migrations) on the database at `url`.
pub async fn open_store(url: &str) -> Arc<dyn Store> {
    match url.strip_prefix("sqlite://") {
        Some(path) => Arc::new(SqliteStore::open(path).unwrap()),
        None => Arc::new(PgStore::connect(url, test_pg_config()).await.unwrap()),
    }
}

impl TestDb {
    /// Creates the database and opens a store on it.
    pub async fn open(backend: Backend) -> TestDb {
        let EmptyDb { url, _keep } = EmptyDb::create(backend).await;
        TestDb {
            store: open_store(&url).await,
            url,
            backend,
            _keep,
        }
    }

    /// Another store on the same database, as a second server instance
    /// would open it.
    pub async fn open_another(&self) -> Arc<dyn Store> {
        open_store(&self.url).await
    }
}

/// Creates a physician `username` at "Test Clinic" with password hash `hash`.
pub async fn seed_physician(store: &dyn Store, username: &str, hash: &str) {
    store
        .create_physician(
            NewPhysician {
                username: username.into(),
                first_name: "Test".into(),
                last_name: "Physician".into(),
                institution: "Test Clinic".into(),
                password_hash: hash.into(),
                must_change_password: false,
            },
            "test",
            0,
        )
        .await
        .unwrap();
}

/// Creates patient `username` (first name `first`) of `physician`, binds
/// the device `mac` and sets `limits`; returns the patient id.
pub async fn seed_patient(
    store: &dyn Store,
    username: &str,
    first: &str,
    physician: &str,
    hash: &str,
    mac: &str,
    limits: PatientLimits,
) -> PatientId {
    let id = store
        .create_patient(
            NewPatient {
                username: username.into(),
                first_name: first.into(),
                last_name: "Patient".into(),
                physician_username: physician.into(),
                password_hash: hash.into(),
                identifiers: Default::default(),
            },
            "test",
            0,
        )
        .await
        .unwrap();
    store
        .bind_device(
            id,
            MacAddress::parse(mac).unwrap(),
            device_secret(mac).public_key(),
            "test",
            0,
        )
        .await
        .unwrap();
    store
        .set_limits(id, limits.into(), "test", 0)
        .await
        .unwrap();
    id
}

/// The device secret [`seed_patient`] binds to `mac`: derived from the
/// MAC, so that every test can provision its pump without passing keys
/// around. (A real binding draws it at random.)
pub fn device_secret(mac: &str) -> DeviceSecret {
    use sha2::Digest;
    let seed = sha2::Sha256::digest(format!("test device {}", mac.to_ascii_uppercase()));
    DeviceSecret::from_bytes(&seed.into())
}

/// The public half of the index key of the servers on `store`.
pub async fn server_key(store: &dyn Store) -> PublicKey {
    ServerKeys::public_key(store, 0).await.unwrap()
}

/// A device login body for `username` on the pump `mac`, answering a fresh
/// challenge from the server at `base` with [`device_secret`]`(mac)`.
pub async fn login_body(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
    mac: &str,
) -> serde_json::Value {
    login_body_proved_by(http, base, username, password, mac, &device_secret(mac)).await
}

/// [`login_body`] with the proof made by `secret` instead: a cloned device's
/// key, or a pump's new secret after binding again.
pub async fn login_body_proved_by(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
    mac: &str,
    secret: &DeviceSecret,
) -> serde_json::Value {
    let challenge: serde_json::Value = http
        .post(format!("{base}/api/v1/device/challenge"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let nonce = Nonce::parse(challenge["nonce"].as_str().unwrap()).unwrap();
    let mac_addr = MacAddress::parse(mac).unwrap();
    let proof = secret.prove(&nonce, username, mac_addr);
    serde_json::json!({
        "username": username,
        "password": password,
        "mac": mac,
        "nonce": nonce.to_string(),
        "proof": proof.to_string(),
    })
}

/// The server configuration of tests: tokens living `token_ttl`, fast
/// password hashing.
pub fn test_config(token_ttl: Duration) -> ServerConfig {
    ServerConfig {
        token_ttl,
        password: PasswordParams::INSECURE_FAST,
        // A test's pumps often log in once and go quiet: the watchdog is
        // left out of every test but those that set it (`watchdog.rs`).
        silent_after: Duration::from_secs(86_400),
        ..ServerConfig::default()
    }
}

/// A server running in this process; stops when dropped.
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://addr`.
    pub base: String,
    /// Its index key, to provision pumps with.
    pub server_key: PublicKey,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Serves `store` with `config` on a free loopback port.
pub async fn serve(store: Arc<dyn Store>, config: ServerConfig) -> Served {
    serve_on(store, config, "127.0.0.1:0".parse().unwrap()).await
}

/// Serves on `addr`: a server stopped by dropping its [`Served`] can come
/// back on the same address, as a restarted server would for its pumps.
pub async fn serve_on(store: Arc<dyn Store>, config: ServerConfig, addr: SocketAddr) -> Served {
    start(store, config, addr, false).await
}

/// A test certificate file (`ca.pem`, `server.pem`, `server.key`,
/// `other-ca.pem`; see `certs/README.md`).
pub fn cert(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("certs")
        .join(name)
}

/// Serves HTTPS on a free loopback port with the test certificate for
/// `localhost` and `127.0.0.1`, signed by `certs/ca.pem`; `base` is
/// `https://localhost:PORT`.
pub async fn serve_tls(store: Arc<dyn Store>, config: ServerConfig) -> Served {
    start(store, config, "127.0.0.1:0".parse().unwrap(), true).await
}

async fn start(store: Arc<dyn Store>, config: ServerConfig, addr: SocketAddr, tls: bool) -> Served {
    infusion_server::tls::install_default_provider();
    let config = ServerConfig {
        secure_cookies: tls || config.secure_cookies,
        ..config
    };
    let state = AppState::new(store, config).await.unwrap();
    let server_key = state.keys.index.public_key();
    let mut app = Application::bind(addr, state).await.unwrap();
    if tls {
        let tls =
            infusion_server::tls::server_config(&cert("server.pem"), &cert("server.key")).unwrap();
        app = app.with_tls(tls);
    }
    let addr = app.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Served {
        addr,
        base: if tls {
            format!("https://localhost:{}", addr.port())
        } else {
            format!("http://{addr}")
        },
        server_key,
        _stop: stop,
    }
}

/// The patient record of `username`: tests name their patients, the store
/// is keyed by id.
pub async fn patient_id(store: &dyn Store, username: &str) -> PatientId {
    store.patient_id(username).await.unwrap()
}
