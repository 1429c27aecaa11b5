//! `iocwatch rules` subcommands.

use std::process::ExitCode;

use clap::Subcommand;

use super::Global;

#[derive(Subcommand, Debug)]
pub enum RulesCommand {}

pub fn run(command: RulesCommand, _global: &Global) -> anyhow::Result<ExitCode> {
    match command {}
}
