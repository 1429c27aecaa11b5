//! The agent-manager wire protocol: a fixed 12-byte versioned header, a JSON
//! payload, and bounded, panic-free decoding of bytes read from the network.
//!
//! A frame is laid out as:
//!
//! | bytes | field                                           |
//! |-------|-------------------------------------------------|
//! | 0..4  | magic `IOCW`                                    |
//! | 4     | protocol version ([`VERSION`])                  |
//! | 5     | message kind ([`Kind`])                         |
//! | 6..8  | flags, zero in version 1                        |
//! | 8..12 | payload length in bytes, big-endian `u32`       |
//!
//! The payload is the JSON form of the message named by the kind byte. A
//! decoder rejects a frame whose declared length exceeds its configured
//! maximum before reading the payload, so a peer cannot make it allocate
//! more than that maximum.

mod frame;
#[cfg(feature = "io")]
mod io;
mod message;

pub use frame::{decode_frame, decode_header, decode_payload, encode, Header, HEADER_BYTES};
#[cfg(feature = "io")]
pub use io::{read_message, write_message};
pub use message::{
    Ack, ActionStatus, ActiveResponseCommand, ActiveResponseResult, EnrollRequest, EnrollResponse,
    EventBatch, EventId, Keepalive, Kind, Message, Rejection, WireEvent,
};

/// The protocol version this build speaks and accepts.
pub const VERSION: u8 = 1;

/// The frame magic, so that a stray client speaking another protocol fails fast.
pub const MAGIC: [u8; 4] = *b"IOCW";

/// Default maximum frame size (header plus payload): 8 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// Errors from encoding or decoding a frame.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("invalid frame magic {found:02x?}: the peer does not speak the iocwatch protocol")]
    BadMagic { found: [u8; 4] },

    #[error("unsupported protocol version {found} (this build speaks version {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },

    #[error("unknown message kind {0}")]
    UnknownKind(u8),

    #[error("unsupported frame flags {0:#06x} (version 1 frames carry no flags)")]
    UnsupportedFlags(u16),

    #[error("frame of {declared} bytes exceeds the maximum of {max} bytes (max_frame_bytes)")]
    FrameTooLarge { declared: usize, max: usize },

    #[error("frame truncated: {missing} more bytes expected")]
    Truncated { missing: usize },

    #[error("invalid {kind:?} payload")]
    Payload {
        kind: Kind,
        #[source]
        source: serde_json::Error,
    },

    #[error("failed to encode a {kind:?} message")]
    Encode {
        kind: Kind,
        #[source]
        source: serde_json::Error,
    },

    #[error("i/o error on the connection")]
    Io(#[from] std::io::Error),
}
