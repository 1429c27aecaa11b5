//! Subcommands, one module each, and the options they share.

pub mod agent;
pub mod agents;
pub mod api;
pub mod enroll;
pub mod intel;
pub mod rules;
pub mod scan;
pub mod server;
pub mod up;
pub mod users;
pub mod watch;

use std::path::PathBuf;

use clap::Args;

pub const DEFAULT_DATA_DIR: &str = "./iocwatch-data";

/// Options accepted by every subcommand.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Folder holding the intel store, baselines and other state
    #[arg(long, global = true, env = "IOCWATCH_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// Log filter, in tracing's env-filter syntax (for example `info` or `fim=debug`)
    #[arg(long, global = true, env = "IOCWATCH_LOG", default_value = "warn")]
    pub log: String,
}

/// Targets of HTTP and TLS libraries whose trace logs dump requests, headers included,
/// and so API keys; they are held to debug whatever `--log` says.
const QUIET_TARGETS: [&str; 5] = ["ureq", "ureq_proto", "rustls", "hyper", "h2"];

/// Sends logs to stderr so that stdout stays free for JSON lines. Colour codes are written
/// only when stderr is a terminal, so journald and log files get plain text.
pub fn init_logging(global: &Global) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = tracing_subscriber::EnvFilter::try_new(&global.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let no_trace_dumps = tracing_subscriber::filter::filter_fn(|meta| {
        *meta.level() != tracing::Level::TRACE || !is_quiet_target(meta.target())
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .finish()
        .with(no_trace_dumps)
        .init();
}

fn is_quiet_target(target: &str) -> bool {
    QUIET_TARGETS.iter().any(|quiet| {
        target
            .strip_prefix(quiet)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}
