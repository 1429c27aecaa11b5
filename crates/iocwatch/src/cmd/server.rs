//! `iocwatch server`.

use std::process::ExitCode;

use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct ServerArgs {}

pub fn run(_args: ServerArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`iocwatch server` is not implemented yet")
}
