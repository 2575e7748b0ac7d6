//! Running the `infusion` binary from its integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test file uses a part

pub mod pumps;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

/// The binary with `args`, ready to adjust (environment) and run.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_infusion"));
    c.args(args);
    c
}

/// Runs the binary with `args` and returns what it did.
pub fn run(args: &[&str]) -> Output {
    command(args).output().unwrap()
}

/// Runs with `--json` before `args`, expects success, returns stdout.
pub fn json_stdout(args: &[&str]) -> String {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run(&all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `c`, expects a refusal: a non-zero exit with something on stderr,
/// which it returns.
pub fn refused(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(!out.status.success(), "{c:?} succeeded");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.is_empty(), "{c:?}: no message");
    err
}

/// Starts `infusion serve ARGS` on `database_url` with stdout piped and
/// `stderr` as given, and waits for its `listening on URL` line: the
/// child and the URL.
pub fn spawn_serve(database_url: &str, args: &[&str], stderr: Stdio) -> (Child, String) {
    let mut serve = command(&["serve"]);
    serve.args(args);
    spawn_listening(serve, database_url, stderr)
}

/// Runs `c` (a server, perhaps wrapped in a shell that sets its limits)
/// as [`spawn_serve`] does.
pub fn spawn_listening(mut c: Command, database_url: &str, stderr: Stdio) -> (Child, String) {
    let mut child = c
        .env("DATABASE_URL", database_url)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, url)
}
