//! `iocwatch agent`.

use std::process::ExitCode;

use clap::Args;

use super::Global;

#[derive(Args, Debug)]
pub struct AgentArgs {}

pub fn run(_args: AgentArgs, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`iocwatch agent` is not implemented yet")
}
