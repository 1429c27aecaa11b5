//! `iocwatch agent enroll`: enrolls this host with a manager and stores the
//! agent's key, certificate and the manager's CA.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::Global;

/// Environment variable holding the enrollment secret.
pub const SECRET_ENV: &str = "IOCWATCH_ENROLLMENT_SECRET";

#[derive(Args, Debug)]
pub struct EnrollArgs {
    /// Manager enrollment address, HOST:PORT
    #[arg(long)]
    pub manager: String,
    /// File holding the enrollment secret
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// The enrollment secret itself; visible to other local users in the process list,
    /// prefer --secret-file or the IOCWATCH_ENROLLMENT_SECRET environment variable
    #[arg(long)]
    pub secret: Option<String>,
    /// Agent name shown in alerts; defaults to the host name
    #[arg(long)]
    pub name: Option<String>,
    /// The manager's CA certificate (PEM), to verify the manager on first contact;
    /// without it the certificate the manager shows is trusted
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Folder where the enrollment is stored; defaults to <data-dir>/manager
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run(args: EnrollArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let secret = read_secret(&args)?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => host_name().context("failed to read the host name: pass --name")?,
    };
    let ca_pem = match &args.ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("failed to read the CA file `{}`", path.display()))?,
        ),
        None => None,
    };
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| global.data_dir.join("manager"));

    let options = link::EnrollOptions {
        manager: &args.manager,
        secret: &secret,
        name: &name,
        version: env!("CARGO_PKG_VERSION"),
        ca_pem: ca_pem.as_deref(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let identity = runtime.block_on(link::enroll(&options))?;
    identity
        .save(&dir)
        .with_context(|| format!("failed to store the enrollment in `{}`", dir.display()))?;

    if ca_pem.is_none() {
        let fingerprint = link::ca_fingerprint(&identity.ca_pem).unwrap_or_default();
        eprintln!(
            "iocwatch: warning: the manager's CA was trusted on first use; compare its SHA-256 \
             fingerprint with the manager's `ca/ca.pem`: {fingerprint}"
        );
    }
    println!(
        "enrolled as agent {} ({}); stored in {}",
        identity.info.agent_id,
        name,
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn read_secret(args: &EnrollArgs) -> anyhow::Result<String> {
    let secret = if let Some(path) = &args.secret_file {
        std::fs::read_to_string(path)
            .with_context(|| format!("failed to read the secret file `{}`", path.display()))?
    } else if let Ok(secret) = std::env::var(SECRET_ENV) {
        secret
    } else if let Some(secret) = &args.secret {
        eprintln!(
            "iocwatch: warning: --secret exposes the enrollment secret in the process list; \
             use --secret-file or {SECRET_ENV}"
        );
        secret.clone()
    } else {
        anyhow::bail!("no enrollment secret: pass --secret-file FILE or set {SECRET_ENV}");
    };
    let secret = secret.trim().to_string();
    if secret.is_empty() {
        anyhow::bail!("the enrollment secret is empty");
    }
    Ok(secret)
}

fn host_name() -> std::io::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/hostname")?
        .trim()
        .to_string())
}
