//! `iocwatch agents`: lists and removes agents enrolled with this manager.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use manager::{Registry, ServerConfig, ServerPaths};

use super::Global;

#[derive(Subcommand, Debug)]
pub enum AgentsCommand {
    /// List enrolled agents with their status, last-seen time and version
    List(ListArgs),
    /// Remove an agent: its certificate is rejected from then on
    Remove(RemoveArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Manager configuration file, to find its data folder
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Include removed agents
    #[arg(long)]
    pub all: bool,
    /// Print one JSON object per line instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// Agent id, such as 001
    pub id: String,
    /// Manager configuration file, to find its data folder
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub fn run(command: AgentsCommand, global: &Global) -> anyhow::Result<ExitCode> {
    match command {
        AgentsCommand::List(args) => list(args, global),
        AgentsCommand::Remove(args) => remove(args, global),
    }
}

fn open_registry(config: Option<&PathBuf>, global: &Global) -> anyhow::Result<Registry> {
    let data_dir = match config {
        Some(path) => ServerConfig::load(path)?.data_dir_or(&global.data_dir),
        None => global.data_dir.clone(),
    };
    let database = ServerPaths::new(&data_dir).database();
    if !database.exists() {
        anyhow::bail!(
            "no manager database at `{}`: pass the manager's --data-dir or --config",
            database.display()
        );
    }
    Registry::open(&database).context("failed to open the agent registry")
}

fn list(args: ListArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let registry = open_registry(args.config.as_ref(), global)?;
    let agents = registry.list(args.all)?;
    if args.json {
        for agent in &agents {
            println!("{}", serde_json::to_string(agent)?);
        }
        return Ok(ExitCode::SUCCESS);
    }

    println!(
        "{:<5} {:<24} {:<16} {:<20} {:<10} ADDRESS",
        "ID", "NAME", "STATUS", "LAST SEEN (UTC)", "VERSION"
    );
    for agent in &agents {
        let status = if agent.removed {
            "removed"
        } else {
            agent.status.as_str()
        };
        let last_seen = agent
            .last_seen
            .map(format_time)
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<5} {:<24} {:<16} {:<20} {:<10} {}",
            agent.id,
            agent.name,
            status,
            last_seen,
            agent.version.as_deref().unwrap_or("-"),
            agent.address.as_deref().unwrap_or("-"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn remove(args: RemoveArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let registry = open_registry(args.config.as_ref(), global)?;
    registry.remove(&args.id)?;
    eprintln!(
        "iocwatch: agent {} removed; its connections are rejected from now on",
        args.id
    );
    Ok(ExitCode::SUCCESS)
}

/// Formats epoch seconds as `YYYY-MM-DD HH:MM:SS`.
fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_format_as_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_714_557_600), "2024-05-01 10:00:00");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00");
    }
}
