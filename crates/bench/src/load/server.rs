//! The server under test, in its own process, so that its CPU time and
//! resident memory are its own and not the load generator's.

use std::process::Stdio;
use std::time::Instant;

use crate::error::{Context, bail};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// A running `infusion serve`.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pid: u32,
}

/// CPU time and memory of a process at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    at: Instant,
    cpu_ticks: u64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
}

impl ServerProcess {
    /// Starts this binary's `serve` on a free loopback port over
    /// `database_url`, and waits for its `listening on` line.
    pub async fn start(database_url: &str) -> crate::BenchResult<ServerProcess> {
        Self::start_with(database_url, &[], &[]).await
    }

    /// [`Self::start`] with more `serve` arguments and environment.
    pub async fn start_with(
        database_url: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> crate::BenchResult<ServerProcess> {
        let exe = std::env::current_exe().context("finding this binary")?;
        let mut child = Command::new(exe)
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--database-url",
                database_url,
            ])
            .args(args)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the server")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
            .await
            .context("the server did not start within 60 s")??
            .context("the server exited before listening")?;
        let Some(base) = first.strip_prefix("listening on ") else {
            bail!("unexpected first line from the server: {first:?}");
        };
        // Keep reading stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let pid = child.id().context("server pid")?;
        Ok(ServerProcess {
            child,
            base: base.to_owned(),
            pid,
        })
    }

    /// The process's CPU time and resident memory now (Linux `/proc`).
    pub fn sample(&self) -> Option<Sample> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // Fields after the command name, which is in parentheses.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
        let cpu_ticks =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Sample {
            at: Instant::now(),
            cpu_ticks,
            rss_bytes: rss_of(&self.status_path())?,
        })
    }

    /// `/proc/PID/status`, where the resident memory is.
    pub fn status_path(&self) -> std::path::PathBuf {
        format!("/proc/{}/status", self.pid).into()
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// CPU use between two samples, in percent of one core (200 % is both of
/// two cores). Linux counts CPU time in ticks of 1/100 s.
pub fn cpu_percent(a: &Sample, b: &Sample) -> f64 {
    let secs = b.at.duration_since(a.at).as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    (b.cpu_ticks.saturating_sub(a.cpu_ticks)) as f64 / 100.0 / secs * 100.0
}

/// Resident memory of the process whose `/proc/PID/status` is `path`, bytes.
pub fn rss_of(path: &std::path::Path) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}
