//! The `iocwatch` command line: parses arguments and dispatches to `cmd::*`.

mod cmd;

// The manager pipeline allocates many small JSON values per event: under load,
// perf put about 36 % of its CPU samples in glibc malloc and free, and about
// 13 % in mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Detects known-malicious files on hosts, with MISP-compatible threat intel.
#[derive(Parser)]
#[command(name = "iocwatch", version, about)]
struct Cli {
    #[command(flatten)]
    global: cmd::Global,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import, look up and export threat intel (MISP events, feeds, hash lists, STIX)
    #[command(subcommand)]
    Intel(cmd::intel::IntelCommand),
    /// Hash files under PATHs and report those that match a detection indicator
    Scan(cmd::scan::ScanArgs),
    /// Run the file integrity monitoring agent, or enroll it with a manager
    Agent(cmd::agent::AgentArgs),
    /// List and remove agents enrolled with this manager
    #[command(subcommand)]
    Agents(cmd::agents::AgentsCommand),
    /// Run the manager: agent listener, intel store, rules and alerts
    Server(cmd::server::ServerArgs),
    /// Serve the MISP-compatible REST API on its own
    Api(cmd::api::ApiArgs),
    /// Run everything in one process: manager, intel, API, dashboard and a local agent
    Up(cmd::up::UpArgs),
    /// Manage API users, roles and keys
    #[command(subcommand)]
    Users(cmd::users::UsersCommand),
    /// Watch folders and print an alert line for each file that matches the local intel
    Watch(cmd::watch::WatchArgs),
    /// Work with Wazuh-style XML rules
    #[command(subcommand)]
    Rules(cmd::rules::RulesCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cmd::init_logging(&cli.global);

    let result = match cli.command {
        Command::Intel(c) => cmd::intel::run(c, &cli.global),
        Command::Scan(a) => cmd::scan::run(a, &cli.global),
        Command::Agent(a) => cmd::agent::run(a, &cli.global),
        Command::Agents(c) => cmd::agents::run(c, &cli.global),
        Command::Server(a) => cmd::server::run(a, &cli.global),
        Command::Api(a) => cmd::api::run(a, &cli.global),
        Command::Up(a) => cmd::up::run(a, &cli.global),
        Command::Users(c) => cmd::users::run(c, &cli.global),
        Command::Watch(a) => cmd::watch::run(a, &cli.global),
        Command::Rules(c) => cmd::rules::run(c, &cli.global),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("iocwatch: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
