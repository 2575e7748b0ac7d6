//! The `infusion` binary as a script would use it: admin commands on a
//! fresh database of each backend, their JSON output and their refusals;
//! `serve` on port 0 announcing its address; a pump provisioned by
//! `bind-device` infusing through `infusion pump`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

const PASSWORD: &str = "a long enough password";

use infusion_testkit::{Backend, TestDb};

infusion_testkit::backend_tests!(
    admin_commands_build_a_patient_and_print_json,
    admin_refusals_are_clear_and_change_nothing,
    serve_on_port_zero_prints_its_address_and_answers,
    plain_http_beyond_loopback_is_warned_about_at_start,
    a_pump_provisioned_by_bind_device_infuses_and_the_paper_pump_is_refused,
    keys_moved_by_export_keys_serve_the_pumps_provisioned_before,
    the_care_team_commands_make_a_ward_its_nurse_and_its_patient,
);

struct Cli {
    _db: TestDb,
    url: String,
}

impl Cli {
    async fn new(backend: Backend) -> Cli {
        let db = TestDb::open(backend).await;
        let url = db.url.clone();
        Cli { _db: db, url }
    }

    /// Runs `infusion` with the words of `line` (split as a shell would,
    /// so a test reads one line per command), `stdin` on standard input.
    fn run(&self, line: &str, stdin: Option<&str>) -> Output {
        let args = shlex::split(line).expect("a command line that splits");
        let mut child = Command::new(env!("CARGO_BIN_EXE_infusion"))
            .args(&args)
            .env("DATABASE_URL", &self.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            writeln!(input, "{s}").unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Runs with `--json`, expects success, returns the JSON object.
    fn ok(&self, line: &str, stdin: Option<&str>) -> Value {
        let out = self.run(&format!("--json {line}"), stdin);
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Expects failure; returns stderr.
    fn refused(&self, line: &str, stdin: Option<&str>) -> String {
        let out = self.run(line, stdin);
        assert!(!out.status.success(), "{line} should fail");
        assert!(out.stdout.is_empty(), "a refusal prints nothing on stdout");
        String::from_utf8(out.stderr).unwrap()
    }

    /// Binds the pump `mac` to amy and prescribes 2 mL at 4 mL/h; returns
    /// the device secret and server key `bind-device` printed.
    fn bind_amy(&self, mac: &str) -> (String, String) {
        let bound = self.ok(
            &format!("admin bind-device --patient amy --mac {mac}"),
            None,
        );
        self.ok("admin set-limits --patient amy --min-rate-ul-h 1000 --max-rate-ul-h 8000 --max-volume-ul 5000",
            None,
        );
        self.ok(
            "admin set-prescription --patient amy --volume-ul 2000 --rate-ul-h 4000",
            None,
        );
        let printed = |field: &str| bound[field].as_str().unwrap().to_owned();
        (printed("device_secret"), printed("server_key"))
    }

    fn seed(&self) -> Value {
        self.ok("admin create-physician --username dr.who --first-name John --last-name Smith --institution 'TARDIS General' --password-stdin",
            Some(PASSWORD),
        );
        self.ok("admin create-patient --username amy --first-name Amy --last-name Pond --physician dr.who --password-stdin",
            Some(PASSWORD),
        )
    }
}

async fn admin_commands_build_a_patient_and_print_json(backend: Backend) {
    let cli = Cli::new(backend).await;
    let patient = cli.seed();
    assert_eq!(patient["username"], "amy");
    assert!(patient["patient_id"].as_u64().unwrap() >= 1);
    let admin = cli.ok("admin create-admin --username root --first-name Ada --last-name Admin --institution 'TARDIS General' --password-stdin",
        Some(PASSWORD),
    );
    assert_eq!(admin["username"], "root");
    let bound = cli.ok(
        "admin bind-device --patient amy --mac aa:bb:cc:dd:ee:ff",
        None,
    );
    assert_eq!(bound["mac"], "AA:BB:CC:DD:EE:FF");
    cli.ok("admin set-limits --patient amy --min-rate-ul-h 1000 --max-rate-ul-h 8000 --max-volume-ul 5000",
        None,
    );
    let v1 = cli.ok(
        "admin set-prescription --patient amy --volume-ul 2000 --rate-ul-h 4000",
        None,
    );
    assert_eq!(v1["version"], 1);
    let v2 = cli.ok(
        "admin set-prescription --patient amy --volume-ul 2000 --rate-ul-h 4000 --hold",
        None,
    );
    assert_eq!(v2["version"], 2);
    // A quarter of the rate needs a reason; without --json the output is
    // a sentence.
    let err = cli.refused(
        "admin set-prescription --patient amy --volume-ul 100 --rate-ul-h 1000",
        None,
    );
    assert!(err.contains("needs a reason"), "{err}");
    assert!(err.contains("from 4 mL/h to 1 mL/h"), "{err}");
    let out = cli.run(
        "admin set-prescription --patient amy --volume-ul 100 --rate-ul-h 1000 --reason 'restart low'",
        None,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("prescription version 3"));
    let off = cli.ok("admin disable-account --username amy", None);
    assert_eq!(off["enabled"], false);
    let err = cli.refused("admin disable-account --username nobody", None);
    assert!(err.contains("no account named"), "{err}");
    let on = cli.ok("admin enable-account --username amy", None);
    assert_eq!(on["enabled"], true);
    // The institution's time zone, a move and an unbinding, each refused
    // clearly when wrong.
    let tz = cli.ok(
        "admin set-time-zone --institution 'TARDIS General' --zone europe/london",
        None,
    );
    assert_eq!(tz["time_zone"], "Europe/London");
    let err = cli.refused(
        "admin set-time-zone --institution 'TARDIS General' --zone Gallifrey/Citadel",
        None,
    );
    assert!(err.contains("is not a time zone name"), "{err}");
    cli.ok("admin create-physician --username dr.song --first-name River --last-name Song --institution 'TARDIS General' --password-stdin",
        Some(PASSWORD),
    );
    let moved = cli.ok("admin move-patient --patient amy --physician dr.song", None);
    assert_eq!(moved["physician"], "dr.song");
    let err = cli.refused("admin move-patient --patient amy --physician dr.song", None);
    assert!(err.contains("already dr.song's patient"), "{err}");
    let unbound = cli.ok("admin unbind-device --patient amy", None);
    assert_eq!(unbound["unbound"], true);
    let err = cli.refused("admin unbind-device --patient amy", None);
    assert!(err.contains("no pump bound to amy"), "{err}");
    let migrated = cli.ok("admin migrate", None);
    assert_eq!(migrated["applied"], 0);
}

/// The pinned `create-ward`, `create-nurse` and `assign-ward`: the
/// nurse then logs in to the web application and sees the ward's patient.
async fn the_care_team_commands_make_a_ward_its_nurse_and_its_patient(backend: Backend) {
    let cli = Cli::new(backend).await;
    cli.seed();
    let ward = cli.ok("admin create-ward --name 4B", None);
    assert_eq!(ward["ward"], "4B");
    let err = cli.refused("admin create-ward --name 4b", None);
    assert!(err.contains("a ward named \"4b\" already"), "{err}");
    let err = cli.refused("admin create-ward --name 5C --institution Elsewhere", None);
    assert!(err.contains("no institution named"), "{err}");
    let nurse = cli.ok(
        "admin create-nurse --username nina --first-name Nina --last-name Berg --ward 4B --password-stdin",
        Some(PASSWORD),
    );
    assert_eq!(
        (&nurse["username"], &nurse["ward"]),
        (&json!("nina"), &json!("4B"))
    );
    let err = cli.refused(
        "admin create-nurse --username nora --first-name Nora --last-name Berg --ward 9Z --password-stdin",
        Some(PASSWORD),
    );
    assert!(err.contains("no ward named \"9Z\""), "{err}");
    let assigned = cli.ok("admin assign-ward --patient amy --ward 4B", None);
    assert_eq!(assigned["ward"], "4B");
    let err = cli.refused("admin assign-ward --patient amy --ward 4B", None);
    assert!(err.contains("on ward 4B already"), "{err}");
    let store = infusion_testkit::open_store(&cli.url).await;
    let nina = store.account("nina").await.unwrap().unwrap();
    assert_eq!(nina.role, infusion_store::Role::Nurse);
    assert_eq!(nina.ward.as_ref().map(|w| w.name.as_str()), Some("4B"));
    assert!(
        nina.must_change_password,
        "the first password was chosen for her"
    );
    let ward = store.ward_patients(nina.ward.unwrap().id).await.unwrap();
    assert_eq!(ward.len(), 1);
    assert_eq!(ward[0].username, "amy");
}

async fn admin_refusals_are_clear_and_change_nothing(backend: Backend) {
    let cli = Cli::new(backend).await;
    cli.seed();
    cli.ok("admin set-limits --patient amy --min-rate-ul-h 1000 --max-rate-ul-h 8000 --max-volume-ul 5000",
        None,
    );
    cli.ok(
        "admin set-prescription --patient amy --volume-ul 2000 --rate-ul-h 4000",
        None,
    );

    let err = cli.refused(
        "admin set-prescription --patient amy --volume-ul 2000 --rate-ul-h 9000",
        None,
    );
    assert!(err.contains("outside this patient's limits"), "{err}");
    let err = cli.refused(
        "admin set-prescription --patient amy --volume-ul 6000 --rate-ul-h 4000",
        None,
    );
    assert!(err.contains("outside this patient's limits"), "{err}");
    let err = cli.refused(
        "admin set-prescription --patient nobody --volume-ul 10 --rate-ul-h 4000",
        None,
    );
    assert!(err.contains("no patient named \"nobody\""), "{err}");
    let err = cli.refused("admin bind-device --patient amy --mac not-a-mac", None);
    assert!(err.contains("not a MAC address"), "{err}");
    let err = cli.refused(
        "admin bind-device --patient nobody --mac AA:BB:CC:DD:EE:01",
        None,
    );
    assert!(err.contains("no patient named"), "{err}");
    let err = cli.refused("admin set-limits --patient amy --min-rate-ul-h 1000 --max-rate-ul-h 3000 --max-volume-ul 5000",
        None,
    );
    assert!(err.contains("current prescription"), "{err}");
    let err = cli.refused("admin set-limits --patient amy --min-rate-ul-h 9000 --max-rate-ul-h 3000 --max-volume-ul 5000",
        None,
    );
    assert!(err.contains("is above the highest"), "{err}");
    let err = cli.refused("admin create-patient --username rory --first-name Rory --last-name Williams --physician dr.nobody --password-stdin",
        Some(PASSWORD),
    );
    assert!(err.contains("no physician named"), "{err}");
    let err = cli.refused("admin create-patient --username amy --first-name Amy --last-name Pond --physician dr.who --password-stdin",
        Some(PASSWORD),
    );
    assert!(err.contains("taken"), "{err}");
    let err = cli.refused("admin create-patient --username rory --first-name Rory --last-name Williams --physician dr.who --password-stdin",
        Some("short"),
    );
    assert!(err.contains("password"), "{err}");
    // Passwords are never flags.
    let err = cli.refused("admin create-patient --username rory --first-name Rory --last-name Williams --physician dr.who --password x",
        None,
    );
    assert!(err.contains("--password"), "{err}");
    // With --json the refusal is JSON on stderr.
    let err = cli.refused(
        "--json admin set-prescription --patient nobody --volume-ul 10 --rate-ul-h 4000",
        None,
    );
    let v: Value = serde_json::from_str(err.trim()).unwrap();
    assert!(v["message"].as_str().unwrap().contains("nobody"));

    // Nothing changed: still exactly one prescription version and one patient.
    let v = cli.ok(
        "admin set-prescription --patient amy --volume-ul 2000 --rate-ul-h 4000",
        None,
    );
    assert_eq!(v["version"], 2);
}

async fn serve_on_port_zero_prints_its_address_and_answers(backend: Backend) {
    let cli = Cli::new(backend).await;
    let (mut child, url) = common::spawn_serve(&cli.url, &["--bind", "127.0.0.1:0"], Stdio::null());
    let body = reqwest::get(format!("{url}/api/v1/health"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok");
    // SIGTERM shuts it down gracefully.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// Threat T10 (cleartext traffic): bound beyond loopback without TLS, the
/// server says so at start-up; on loopback it does not.
async fn plain_http_beyond_loopback_is_warned_about_at_start(backend: Backend) {
    use std::io::Read;
    let cli = Cli::new(backend).await;
    for (bind, warned) in [("0.0.0.0:0", true), ("127.0.0.1:0", false)] {
        let (mut child, _) = common::spawn_serve(&cli.url, &["--bind", bind], Stdio::piped());
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        child.wait().unwrap();
        let mut log = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        assert_eq!(
            log.contains("plain HTTP on a non-loopback address"),
            warned,
            "{bind}: {log}"
        );
    }
}

/// The provisioning flow a device engineer follows: `bind-device` prints
/// the device secret (once) and the server key; `infusion pump` given both
/// logs in and infuses against `infusion serve`. The paper's pump (no
/// secret) never logs in to that server, only to one started with
/// `--paper-login`.
async fn a_pump_provisioned_by_bind_device_infuses_and_the_paper_pump_is_refused(backend: Backend) {
    let cli = Cli::new(backend).await;
    cli.seed();
    let mac = "02:00:00:00:0C:01";
    let (secret, server_key) = cli.bind_amy(mac);
    assert_eq!((secret.len(), server_key.len()), (64, 64));
    // Binding again would issue a new secret: the printed one is the only
    // copy, and the human output says so.
    let again = cli.run(
        &format!("admin bind-device --patient amy --mac {mac}"),
        None,
    );
    let text = String::from_utf8(again.stdout).unwrap();
    assert!(text.contains("shown only now"), "{text}");
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("device secret "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();

    let pump = |server: &str, extra: &str| run_pump(&cli, server, mac, extra);
    let (mut server, url) =
        common::spawn_serve(&cli.url, &["--bind", "127.0.0.1:0"], Stdio::null());
    assert_infuses(&cli, &url, mac, &secret_file, &server_key);
    let paper = pump(&url, "--paper-login");
    assert!(paper.contains("(0 requests ok"), "{paper}");
    let _ = server.kill();
    let _ = server.wait();

    let (mut server, url) = common::spawn_serve(
        &cli.url,
        &["--bind", "127.0.0.1:0", "--paper-login"],
        Stdio::null(),
    );
    let paper = pump(&url, "--paper-login");
    assert!(!paper.contains("(0 requests ok"), "{paper}");
    let _ = server.kill();
    let _ = server.wait();
}

/// Runs `infusion pump` as amy's pump `mac` against `server` for 3 s
/// (3 minutes of pump time), expects it to exit cleanly, returns its
/// output.
fn run_pump(cli: &Cli, server: &str, mac: &str, extra: &str) -> String {
    let line = format!(
        "pump --server {server} --username amy --mac {mac} --password-stdin \
         --poll-interval-ms 1000 --time-scale 60 --duration-s 3 {extra}"
    );
    let out = cli.run(&line, Some(PASSWORD));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs amy's pump `mac`, provisioned with the secret in `secret_file` and
/// `server_key`, against `server`, and checks that it infuses.
fn assert_infuses(
    cli: &Cli,
    server: &str,
    mac: &str,
    secret_file: &std::path::Path,
    server_key: &str,
) {
    let secret_file = secret_file.to_str().unwrap();
    let extra = format!("--device-secret-file {secret_file} --server-key {server_key}");
    let out = run_pump(cli, server, mac, &extra);
    assert!(out.contains("running"), "{out}");
    assert!(!out.contains("stopped: 0 µL"), "{out}");
}

/// `admin export-keys` moves the server keys into a key file: a pump bound
/// before the move keeps infusing from a server started with
/// `--key-file`, bindings after it print the same server key, and a server
/// started without the file refuses to start. On a new database it draws
/// the keys into the file.
async fn keys_moved_by_export_keys_serve_the_pumps_provisioned_before(backend: Backend) {
    let cli = Cli::new(backend).await;
    cli.seed();
    let mac = "02:00:00:00:0C:02";
    let (secret, server_key) = cli.bind_amy(mac);
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let key_file = dir.path().join("server.keys");
    let key_path = key_file.to_str().unwrap();
    let moved = cli.ok(&format!("admin export-keys --key-file {key_path}"), None);
    assert_eq!(moved["server_key"].as_str(), Some(server_key.as_str()));
    let refused = cli.refused(&format!("admin export-keys --key-file {key_path}"), None);
    assert!(refused.contains("no server keys"), "{refused}");

    let refused = cli.refused("serve --bind 127.0.0.1:0", None);
    assert!(refused.contains("--key-file"), "{refused}");
    let (mut server, url) = common::spawn_serve(
        &cli.url,
        &["--bind", "127.0.0.1:0", "--key-file", key_path],
        Stdio::null(),
    );
    assert_infuses(&cli, &url, mac, &secret_file, &server_key);
    let _ = server.kill();
    let _ = server.wait();

    let other = cli.ok(
        &format!("admin bind-device --patient amy --mac {mac}"),
        None,
    );
    assert_eq!(other["server_key"].as_str(), Some(server_key.as_str()));

    // On a new database the keys are drawn straight into the file, and
    // the pumps bound afterwards are given its key.
    let new = Cli::new(backend).await;
    new.seed();
    let key_file = dir.path().join("new.keys");
    let moved = new.ok(
        &format!(
            "admin export-keys --key-file {}",
            key_file.to_str().unwrap()
        ),
        None,
    );
    let (_, bound_key) = new.bind_amy(mac);
    assert_eq!(moved["server_key"].as_str(), Some(bound_key.as_str()));
    assert_ne!(bound_key, server_key, "each database has its own keys");
}
