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
        /// Organisation of the user, added when missing; the local default one when absent
        #[arg(long)]
        org: Option<String>,
    },
    /// List users, their roles and organisations (keys are stored hashed and cannot be shown)
    List,
    /// List organisations: id, uuid, name and whether they are local
    Orgs,
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
        UsersCommand::Add { name, role, org } => {
            let org = match org {
                Some(org) => db
                    .ensure_local_org(&org)
                    .with_context(|| format!("failed to find or add organisation `{org}`"))?,
                None => db
                    .org(&api::access::DEFAULT_ORG_ID.to_string())
                    .context("failed to read the local organisation")?,
            };
            let (user, key) = db
                .add_user_to_org(&name, role, org.id)
                .with_context(|| format!("failed to add user `{name}`"))?;
            eprintln!(
                "added user `{}` of organisation `{}` with role {}; store this key now, it is shown only once:",
                user.name,
                org.name,
                user.role.as_str()
            );
            println!("{key}");
        }
        UsersCommand::List => {
            for user in db.users().context("failed to list users")? {
                println!(
                    "{}\t{}\t{}\t{}",
                    user.id,
                    user.name,
                    user.role.as_str(),
                    user.org_id
                );
            }
        }
        UsersCommand::Orgs => {
            for org in db.orgs(false).context("failed to list organisations")? {
                let scope = if org.local { "local" } else { "external" };
                println!("{}\t{}\t{}\t{scope}", org.id, org.uuid, org.name);
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
