//! `iocwatch intel sync pull|push`: server-to-server sync with a MISP-compatible server,
//! whole events compared by uuid and timestamp, with MISP's distribution rules.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use api::sync::{Failure, PullReport, PushReport};
use clap::{Args, Subcommand};

use super::remote::RemoteArgs;
use crate::cmd::Global;

#[derive(Subcommand, Debug)]
pub enum SyncCommand {
    /// Fetch the published events that this store lacks or has older, one transaction
    /// each. Exit 0 on success, 2 on error
    Pull(RemoteArgs),
    /// Send published local events with distribution 2, 3 or a sharing group that
    /// includes the server. Exit 0 on success, 2 on error
    Push(PushArgs),
}

#[derive(Args, Debug)]
pub struct PushArgs {
    #[command(flatten)]
    server: RemoteArgs,

    /// Consider every published event, not only those changed since the last complete push
    #[arg(long)]
    full: bool,
}

pub fn run(command: SyncCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let db = api::Db::open(&global.data_dir).with_context(|| {
        format!(
            "failed to open the intel store in `{}`",
            global.data_dir.display()
        )
    })?;
    match command {
        SyncCommand::Pull(args) => {
            let config = args.config()?;
            let report = api::sync::pull(&db, &config)
                .with_context(|| format!("failed to pull from {}", config.url))?;
            print_pull(&config.url, &report)?;
            Ok(exit_code(&report.failures))
        }
        SyncCommand::Push(args) => {
            let config = args.server.config()?;
            let report = api::sync::push(&db, &config, args.full)
                .with_context(|| format!("failed to push to {}", config.url))?;
            print_push(&config.url, &report)?;
            Ok(exit_code(&report.failures))
        }
    }
}

fn exit_code(failures: &[Failure]) -> ExitCode {
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn print_pull(url: &str, report: &PullReport) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{url}: {} published events in the index, {} fetched: {} added, {} updated; \
         {} attributes, {} rejected; {} failed",
        report.remote_events,
        report.fetched,
        report.added,
        report.updated,
        report.attributes,
        report.rejected_attributes,
        report.failures.len()
    )?;
    print_failures(&mut out, &report.failures)
}

fn print_push(url: &str, report: &PushReport) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{url}: {} published events to consider: {} added, {} edited, {} unchanged, \
         {} withheld by distribution; {} failed",
        report.candidates,
        report.added,
        report.edited,
        report.unchanged,
        report.withheld,
        report.failures.len()
    )?;
    print_failures(&mut out, &report.failures)
}

fn print_failures(out: &mut impl Write, failures: &[Failure]) -> anyhow::Result<()> {
    for failure in failures {
        writeln!(out, "  failed event {}: {}", failure.uuid, failure.reason)?;
    }
    Ok(())
}
