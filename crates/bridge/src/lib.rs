//! Wazuh integration that looks the file digests of alerts up in MISP-compatible intel.
//!
//! wazuh-integratord starts the `custom-iocwatch` binary once per alert with the alert
//! file, the API key and the hook URL ([`args`]). The bridge reads the file and its
//! digests from the alert ([`alert`], [`hash`]). It queries the server through MISP's
//! `attributes/restSearch` ([`lookup`]) unless a fresh result is cached ([`cache`]). A
//! match or a failure goes back to wazuh-analysisd's queue socket ([`message`],
//! [`queue`]). [`run::main`] ties these together, and [`options`] resolves the settings.

pub mod alert;
pub mod args;
pub mod cache;
pub mod hash;
pub mod lookup;
pub mod message;
pub mod options;
pub mod queue;
pub mod run;
