//! `iocwatch watch`.

use std::process::ExitCode;

use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct WatchArgs {}

pub fn run(_args: WatchArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`iocwatch watch` is not implemented yet")
}
