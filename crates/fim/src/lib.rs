//! File integrity monitoring agent: baseline, inotify realtime watching, scheduled scans,
//! events with Wazuh syscheck field names, and quarantine.
//!
//! ```no_run
//! use fim::{Agent, ChannelSink, Config};
//!
//! let config = Config::for_directories(&["/etc".into()], "/var/lib/iocwatch".as_ref())?;
//! let (tx, rx) = fim::crossbeam_channel::unbounded();
//! let (handle, thread) = Agent::new(config, Box::new(ChannelSink::new(tx)))?.spawn();
//! for event in rx.iter().take(10) {
//!     println!("{}", serde_json::to_string(&event)?);
//! }
//! handle.stop();
//! thread.join().expect("agent thread panicked")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod agent;
mod baseline;
pub mod config;
mod db;
mod emit;
pub mod event;
pub mod ignore;
pub mod lock;
mod probe;
pub mod quarantine;
mod scan;
mod scope;
pub mod sink;
pub mod state;
pub mod sys;
mod watches;

pub use agent::{Agent, AgentError, AgentHandle};
pub use config::{Config, ConfigError, ConfigFile, DatabaseLocation, OutputConfig};
pub use crossbeam_channel;
pub use db::{BaselineDb, DbError};
pub use event::{
    Attribute, CheckSet, Event, EventBody, FileEvent, FileEventKind, Mode, Notice, NoticeKind,
    ScanKind, ScanSummary,
};
pub use quarantine::{QuarantineError, QuarantineRecord};
pub use sink::{ChannelSink, EventSink, JsonLinesSink, SinkError};
pub use state::{FileState, HashSkip};
