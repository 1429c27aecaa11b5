//! `iocwatch enroll`.

use std::process::ExitCode;

use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct EnrollArgs {}

pub fn run(_args: EnrollArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`iocwatch enroll` is not implemented yet")
}
