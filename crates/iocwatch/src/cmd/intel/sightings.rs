//! `iocwatch intel push-sightings`: pushes the sightings that detections recorded on
//! pulled attributes back to the MISP-compatible server they were pulled from. `intel
//! pull` runs the same push after each pull.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use api::remote::{push_sightings, RemoteConfig};
use clap::Args;

use super::remote::RemoteArgs;
use crate::cmd::Global;

#[derive(Args, Debug)]
pub struct PushSightingsArgs {
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(args: PushSightingsArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let config = args.remote.config()?;
    let db = api::Db::open(&global.data_dir).with_context(|| {
        format!(
            "failed to open the intel store in `{}`",
            global.data_dir.display()
        )
    })?;
    // A URL never pulled from has nothing queued: most likely a typo or another data
    // directory, which a silent "0 pushed" would hide.
    if !db.is_known_remote(&config.url)? {
        tracing::warn!(url = %config.url, data_dir = %global.data_dir.display(),
            "nothing is queued for this URL: it was never pulled from with this data directory");
        eprintln!(
            "iocwatch: nothing is queued for {}: it was never pulled from with the data \
             directory `{}`; give the URL exactly as given to `intel pull`",
            config.url,
            global.data_dir.display()
        );
        return Ok(ExitCode::from(2));
    }
    match push_and_print(&db, &config)? {
        None => Ok(ExitCode::SUCCESS),
        Some(error) => {
            eprintln!("iocwatch: {error:#}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Pushes the queued sightings of `config.url` and prints one summary line. Returns the
/// error that interrupted the push, if any; the sightings not sent stay queued.
pub(super) fn push_and_print(
    db: &api::Db,
    config: &RemoteConfig,
) -> anyhow::Result<Option<anyhow::Error>> {
    let summary = push_sightings(db, config)
        .with_context(|| format!("failed to push sightings to {}", config.url))?;
    writeln!(
        std::io::stdout().lock(),
        "{}: sightings: {} pushed, {} rejected, {} queued, {} in flight",
        config.url,
        summary.pushed,
        summary.rejected,
        summary.pending,
        summary.in_flight
    )?;
    Ok(summary.error.map(|error| {
        anyhow::Error::new(error).context(format!(
            "sighting push to {} interrupted; {} sightings stay queued for the next run",
            config.url, summary.pending
        ))
    }))
}
