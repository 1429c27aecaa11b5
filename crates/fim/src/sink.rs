//! Event destinations: JSON lines on stdout or in a file, or a channel for in-process consumers.
//!
//! The manager link implements [`EventSink`] too; the agent only needs `send` and `flush`.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::event::Event;

/// Failure to deliver an event; the agent stops on it rather than drop events silently.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("failed to write event")]
    Io(#[from] io::Error),
    #[error("event receiver is gone")]
    Closed,
}

/// Receives every event the agent produces, in order.
pub trait EventSink: Send {
    fn send(&mut self, event: Event) -> Result<(), SinkError>;

    /// Called when the agent has no more events queued, so buffered sinks can write out.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Writes one JSON object per line, buffered until [`EventSink::flush`].
pub struct JsonLinesSink {
    out: BufWriter<Box<dyn Write + Send>>,
}

impl JsonLinesSink {
    pub fn new(out: Box<dyn Write + Send>) -> JsonLinesSink {
        JsonLinesSink {
            out: BufWriter::with_capacity(64 * 1024, out),
        }
    }

    pub fn stdout() -> JsonLinesSink {
        JsonLinesSink::new(Box::new(io::stdout()))
    }

    /// Appends to `path`, creating it with mode 0600 when missing.
    pub fn append_to(path: &Path) -> io::Result<JsonLinesSink> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(JsonLinesSink::new(Box::new(file)))
    }
}

impl EventSink for JsonLinesSink {
    fn send(&mut self, event: Event) -> Result<(), SinkError> {
        serde_json::to_writer(&mut self.out, &event).map_err(io::Error::from)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush()?;
        Ok(())
    }
}

/// Sends events over a channel; used by `iocwatch watch` and by tests.
pub struct ChannelSink {
    tx: crossbeam_channel::Sender<Event>,
}

impl ChannelSink {
    pub fn new(tx: crossbeam_channel::Sender<Event>) -> ChannelSink {
        ChannelSink { tx }
    }
}

impl EventSink for ChannelSink {
    fn send(&mut self, event: Event) -> Result<(), SinkError> {
        self.tx.send(event).map_err(|_| SinkError::Closed)
    }
}
