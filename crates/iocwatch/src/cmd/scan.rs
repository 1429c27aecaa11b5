//! `iocwatch scan`.

use std::process::ExitCode;

use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct ScanArgs {}

pub fn run(_args: ScanArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`iocwatch scan` is not implemented yet")
}
