//! The iocwatch manager: its own CA, agent enrollment, the TLS 1.3 agent
//! listener with mutual authentication, the agent registry, the event
//! pipeline (de-duplication, intel lookup, rules) and the alert outputs.

pub mod analysis;
pub mod ar_queue;
pub mod ca;
pub mod config;
mod connections;
pub mod db;
mod enrollment;
pub mod outputs;
pub mod pipeline;
pub mod registry;
pub mod secret;
mod server;
mod session;
pub mod status;
mod tls;

pub use config::{ConfigError, ServerConfig};
pub use pipeline::{AgentRef, AlertDoc, Analysis, Analyze};
pub use registry::{Agent, AgentStatus, Registry};
pub use server::{RunningServer, ServerError, ServerPaths};
