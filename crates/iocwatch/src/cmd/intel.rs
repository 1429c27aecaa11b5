//! `iocwatch intel` subcommands.

use std::process::ExitCode;

use clap::Subcommand;

use super::Global;

#[derive(Subcommand, Debug)]
pub enum IntelCommand {}

pub fn run(command: IntelCommand, _global: &Global) -> anyhow::Result<ExitCode> {
    match command {}
}
