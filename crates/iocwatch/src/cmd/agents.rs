//! `iocwatch agents`: lists and removes enrolled agents.

use std::process::ExitCode;

use clap::Subcommand;

use super::Global;

#[derive(Subcommand, Debug)]
pub enum AgentsCommand {}

pub fn run(command: AgentsCommand, _global: &Global) -> anyhow::Result<ExitCode> {
    match command {}
}
