//! The server flags that `intel pull`, `intel push-sightings` and `intel sync` share, and
//! the connection settings built from them.

use std::path::PathBuf;
use std::time::Duration;

use api::remote::RemoteConfig;
use clap::Args;

use super::pull::{read_key, remote_url};

#[derive(Args, Debug)]
pub struct RemoteArgs {
    /// Base URL of the MISP-compatible server, such as https://misp.example.org. Plain
    /// http:// is accepted for loopback addresses only. Give one server the same URL in
    /// every command, because its pull, sync and sighting state is stored under that URL
    #[arg(long)]
    url: String,

    /// File whose first line is the API key, which `intel sync` needs of a sync user.
    /// Without it, the key is read from the IOCWATCH_REMOTE_KEY environment variable
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,

    /// PEM file of the CA that signed the server's certificate, in place of the system roots
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,

    /// Limit for each HTTP request, in seconds
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout_secs: u64,
}

impl RemoteArgs {
    /// Checks the URL, reads the API key and builds the connection settings with the
    /// other fields at their defaults.
    pub fn config(&self) -> anyhow::Result<RemoteConfig> {
        // One spelling per server, so that its stored state is found again.
        let url = remote_url(&self.url)?;
        let key = read_key(self.key_file.as_deref())?;
        let mut config = RemoteConfig::new(&url, &key);
        config.ca_file = self.ca_file.clone();
        config.timeout = Duration::from_secs(self.timeout_secs);
        Ok(config)
    }
}
