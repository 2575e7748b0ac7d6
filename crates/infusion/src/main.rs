//! `infusion`: the one command of the system. Glue only: parse the command
//! line, open the store, call the libraries.

mod admin;
mod backup;
mod cli;
mod demo;
mod pump;
mod serve;

use std::process::ExitCode;

fn main() -> ExitCode {
    infusion_server::tls::install_default_provider();
    let cli = cli::Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                eprintln!(
                    "{}",
                    serde_json::json!({"error": "failed", "message": format!("{e:#}")})
                );
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    // Parsed here, but an error only matters to commands that use it.
    let db = cli.database();
    match cli.command {
        cli::Command::Serve(args) => serve::run(&db?, args).await,
        cli::Command::Admin(cmd) => admin::run(&db?, cli.json, cmd).await,
        cli::Command::Pump(args) => pump::run(args).await,
        cli::Command::Bench(cli::BenchCommand::Index(args)) => {
            Ok(infusion_bench::index::index(args, db?.pg, cli.json).await?)
        }
        cli::Command::Bench(cli::BenchCommand::Load(args)) => {
            let db = db?;
            let seed_into = match &args.server {
                Some(_) if !cli.database_url_given => anyhow::bail!(
                    "--server needs --database-url naming that server's database, to seed the bench accounts into"
                ),
                Some(_) => Some(db.clone()),
                None => None,
            };
            Ok(infusion_bench::load::bench(args, db.pg, seed_into, cli.json).await?)
        }
        cli::Command::Bench(cli::BenchCommand::Alarms(args)) => {
            Ok(infusion_bench::alarms::bench(args, db?.pg, cli.json).await?)
        }
        cli::Command::Bench(cli::BenchCommand::Accuracy(args)) => {
            Ok(infusion_bench::accuracy::bench(args, cli.json).await?)
        }
        cli::Command::Accuracy(cli::AccuracyCommand::Analyze(args)) => {
            Ok(infusion_bench::accuracy::analyze(args, cli.json)?)
        }
        cli::Command::Demo(args) => {
            let db = if cli.database_url_given {
                Some(db?)
            } else {
                None
            };
            demo::run(db, args).await
        }
    }
}
