//! `iocwatch intel sync pull|push`: server-to-server sync with a MISP-compatible server,
//! whole events compared by uuid and timestamp, with MISP's distribution rules.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use api::remote::RemoteConfig;
use api::sync::{Failure, PullReport, PushReport};
use clap::{Args, Subcommand};

use super::pull::{read_key, remote_url};
use crate::cmd::Global;

#[derive(Subcommand, Debug)]
pub enum SyncCommand {
    /// Fetch the published events that this store lacks or has older, one transaction
    /// each. Exit 0 on success, 2 on error
    Pull(ServerArgs),
    /// Send published local events with distribution 2, 3 or a sharing group that
    /// includes the server. Exit 0 on success, 2 on error
    Push(PushArgs),
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Base URL of the MISP-compatible server, such as https://misp.example.org (plain
    /// http:// only for loopback addresses)
    #[arg(long)]
    url: String,

    /// File whose first line is the API key of a sync user on the server. Without it, the
    /// key comes from the IOCWATCH_REMOTE_KEY environment variable
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,

    /// PEM file of the CA that signed the server's certificate, in place of the system roots
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,

    /// Limit for each HTTP request, in seconds
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout_secs: u64,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    #[command(flatten)]
    server: ServerArgs,

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
            let config = remote_config(&args)?;
            let report = api::sync::pull(&db, &config)
                .with_context(|| format!("failed to pull from {}", config.url))?;
            print_pull(&config.url, &report)?;
            Ok(exit_code(&report.failures))
        }
        SyncCommand::Push(args) => {
            let config = remote_config(&args.server)?;
            let report = api::sync::push(&db, &config, args.full)
                .with_context(|| format!("failed to push to {}", config.url))?;
            print_push(&config.url, &report)?;
            Ok(exit_code(&report.failures))
        }
    }
}

fn remote_config(args: &ServerArgs) -> anyhow::Result<RemoteConfig> {
    // One spelling per server, so that its sync state is found again.
    let url = remote_url(&args.url)?;
    let key = read_key(args.key_file.as_deref())?;
    let mut config = RemoteConfig::new(&url, &key);
    config.ca_file = args.ca_file.clone();
    config.timeout = Duration::from_secs(args.timeout_secs);
    Ok(config)
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
