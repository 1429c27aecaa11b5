//! `iocwatch users`: manages API users, their roles and keys.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::Global;

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Add a user and print its new 40-character API key (shown only once)
    Add {
        /// User name, shown as the email of `users/view/me`
        name: String,
        /// Role: admin, user (reads and writes indicators), read-only or sync
        #[arg(long, default_value = "user")]
        role: api::Role,
    },
    /// List users and their roles (keys are stored hashed and cannot be shown)
    List,
    /// Remove a user; its key stops working at once
    Remove {
        /// User name
        name: String,
    },
}

pub fn run(command: UsersCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let db = api::Db::open(&global.data_dir).with_context(|| {
        format!(
            "failed to open the intel store in {}",
            global.data_dir.display()
        )
    })?;
    match command {
        UsersCommand::Add { name, role } => {
            let (user, key) = db
                .add_user(&name, role)
                .with_context(|| format!("failed to add user `{name}`"))?;
            eprintln!(
                "added user `{}` with role {}; store this key now, it is shown only once:",
                user.name,
                user.role.as_str()
            );
            println!("{key}");
        }
        UsersCommand::List => {
            for user in db.users().context("failed to list users")? {
                println!("{}\t{}\t{}", user.id, user.name, user.role.as_str());
            }
        }
        UsersCommand::Remove { name } => {
            if !db.remove_user(&name).context("failed to remove the user")? {
                anyhow::bail!("no user named `{name}`; `iocwatch users list` shows the users");
            }
            eprintln!("removed user `{name}`");
        }
    }
    Ok(ExitCode::SUCCESS)
}
