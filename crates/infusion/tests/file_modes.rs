//! The files that hold the signing keys and password hashes are the
//! owner's alone, whatever the umask (red team round 2, finding 9; threat
//! T17 of `docs/threat-model.md`): the SQLite database with its `-wal` and
//! `-shm`, and `admin backup` output on both backends; a database file
//! already open to others is warned about at start.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use infusion_testkit::{Backend, TestDb};

infusion_testkit::backend_tests!(a_backup_is_the_owners_alone_under_umask_022);

/// The binary run by `sh` under `umask 022`, the usual default, with
/// `args`.
fn under_umask_022(args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", "umask 022 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_infusion"))
        .args(args);
    c
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The database, its write-ahead log and its shared-memory index were
/// created `-rw-r--r--`; now `-rw-------`.
#[test]
fn a_new_database_and_its_wal_and_shm_are_the_owners_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("infusion.db");
    let url = format!("sqlite://{}", db.display());
    // Listening means migrated: written through the write-ahead log.
    let (mut server, _) = common::spawn_listening(
        under_umask_022(&["serve", "--bind", "127.0.0.1:0"]),
        &url,
        Stdio::null(),
    );
    let files: Vec<_> = ["", "-wal", "-shm"]
        .iter()
        .map(|s| dir.path().join(format!("infusion.db{s}")))
        .collect();
    let modes: Vec<u32> = files.iter().map(|f| mode(f)).collect();
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(modes, [0o600, 0o600, 0o600], "{files:?}");
}

/// An existing database that others may read is served, with a warning
/// that says what to do.
#[test]
fn a_database_open_to_others_is_warned_about_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("infusion.db");
    let url = format!("sqlite://{}", db.display());
    let migrated = common::command(&["admin", "migrate"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = dir.path().join("stderr");
    let (mut server, _) = common::spawn_serve(
        &url,
        &["--bind", "127.0.0.1:0"],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    server.kill().unwrap();
    let _ = server.wait();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("open to other users") && log.contains("chmod 600"),
        "{log}"
    );
    assert_eq!(mode(&db), 0o644, "the mode is the operator's to change");
}

/// `admin backup` output was `-rw-r--r--` (SQLite's backup API and
/// `pg_dump` alike); now `-rw-------`.
async fn a_backup_is_the_owners_alone_under_umask_022(backend: Backend) {
    let db = TestDb::open(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("infusion.backup");
    let out = under_umask_022(&["--json", "admin", "backup", "--to", file.to_str().unwrap()])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&file), 0o600);
}
