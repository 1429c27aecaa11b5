//! `iocwatch agent`: runs the FIM agent, or enrolls it with a manager.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::Global;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: Option<AgentCommand>,

    /// Agent configuration file (TOML)
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Enroll this agent with a manager and store its certificate
    Enroll(super::enroll::EnrollArgs),
}

pub fn run(args: AgentArgs, global: &Global) -> anyhow::Result<ExitCode> {
    if let Some(AgentCommand::Enroll(enroll)) = args.command {
        return super::enroll::run(enroll, global);
    }
    anyhow::bail!("`iocwatch agent` is not implemented yet")
}
