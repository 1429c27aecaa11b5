//! `custom-iocwatch`: the program wazuh-integratord starts for each alert it forwards.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().collect();
    // Every outcome is logged by the run itself; see `bridge::run::Outcome` for why the
    // exit status is always 0.
    let _ = bridge::run::main(&args);
    ExitCode::SUCCESS
}
