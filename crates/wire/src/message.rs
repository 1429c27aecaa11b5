//! Message types carried in frames, one per [`Kind`].

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The message kind byte of a frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    EnrollRequest = 1,
    EnrollResponse = 2,
    Rejection = 3,
    Keepalive = 4,
    EventBatch = 5,
    Ack = 6,
    ActiveResponseCommand = 7,
    ActiveResponseResult = 8,
}

impl Kind {
    /// Maps a header byte to a kind, `None` for bytes no kind uses.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        let kind = match byte {
            1 => Kind::EnrollRequest,
            2 => Kind::EnrollResponse,
            3 => Kind::Rejection,
            4 => Kind::Keepalive,
            5 => Kind::EventBatch,
            6 => Kind::Ack,
            7 => Kind::ActiveResponseCommand,
            8 => Kind::ActiveResponseResult,
            _ => return None,
        };
        Some(kind)
    }
}

/// One protocol message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    EnrollRequest(EnrollRequest),
    EnrollResponse(EnrollResponse),
    Rejection(Rejection),
    Keepalive(Keepalive),
    EventBatch(EventBatch),
    Ack(Ack),
    ActiveResponseCommand(ActiveResponseCommand),
    ActiveResponseResult(ActiveResponseResult),
}

impl Message {
    pub fn kind(&self) -> Kind {
        match self {
            Message::EnrollRequest(_) => Kind::EnrollRequest,
            Message::EnrollResponse(_) => Kind::EnrollResponse,
            Message::Rejection(_) => Kind::Rejection,
            Message::Keepalive(_) => Kind::Keepalive,
            Message::EventBatch(_) => Kind::EventBatch,
            Message::Ack(_) => Kind::Ack,
            Message::ActiveResponseCommand(_) => Kind::ActiveResponseCommand,
            Message::ActiveResponseResult(_) => Kind::ActiveResponseResult,
        }
    }

    pub(crate) fn payload_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Message::EnrollRequest(m) => serde_json::to_vec(m),
            Message::EnrollResponse(m) => serde_json::to_vec(m),
            Message::Rejection(m) => serde_json::to_vec(m),
            Message::Keepalive(m) => serde_json::to_vec(m),
            Message::EventBatch(m) => serde_json::to_vec(m),
            Message::Ack(m) => serde_json::to_vec(m),
            Message::ActiveResponseCommand(m) => serde_json::to_vec(m),
            Message::ActiveResponseResult(m) => serde_json::to_vec(m),
        }
    }

    pub(crate) fn from_payload(kind: Kind, payload: &[u8]) -> Result<Message, serde_json::Error> {
        let message = match kind {
            Kind::EnrollRequest => Message::EnrollRequest(serde_json::from_slice(payload)?),
            Kind::EnrollResponse => Message::EnrollResponse(serde_json::from_slice(payload)?),
            Kind::Rejection => Message::Rejection(serde_json::from_slice(payload)?),
            Kind::Keepalive => Message::Keepalive(serde_json::from_slice(payload)?),
            Kind::EventBatch => Message::EventBatch(serde_json::from_slice(payload)?),
            Kind::Ack => Message::Ack(serde_json::from_slice(payload)?),
            Kind::ActiveResponseCommand => {
                Message::ActiveResponseCommand(serde_json::from_slice(payload)?)
            }
            Kind::ActiveResponseResult => {
                Message::ActiveResponseResult(serde_json::from_slice(payload)?)
            }
        };
        Ok(message)
    }
}

/// Sent by an agent on the enrollment port, over TLS that authenticates the manager.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The enrollment secret shared between the manager and its agents.
    pub secret: String,
    /// The agent's host name, shown in alerts as `agent.name`.
    pub name: String,
    /// The agent's iocwatch version.
    pub version: String,
    /// A PKCS#10 certificate signing request in PEM form; the private key stays on the agent.
    pub csr_pem: String,
}

impl fmt::Debug for EnrollRequest {
    // The secret never reaches a log line, even at TRACE.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("secret", &"<redacted>")
            .field("name", &self.name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The manager's reply to a successful enrollment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The agent id, also the common name of the issued certificate.
    pub agent_id: String,
    /// The agent's client certificate, signed by the manager's CA, in PEM form.
    pub certificate_pem: String,
    /// The manager's CA certificate in PEM form, to verify the manager from now on.
    pub ca_pem: String,
    /// The TCP port of the manager's agent (event) listener.
    pub events_port: u16,
}

/// Sent before the sender closes the connection on purpose.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// A stable machine-readable code, such as `invalid_secret` or `agent_removed`.
    pub code: String,
    pub message: String,
}

/// Sent by an agent when it connects and then every keepalive interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Keepalive {
    pub version: String,
    pub name: String,
    /// Events waiting in the agent's spool.
    pub spooled_events: u64,
    /// Events the agent dropped since it was installed because its spool was full.
    pub dropped_events: u64,
}

/// Identifies an event for de-duplication: a stream (one per agent spool) and
/// a sequence number that only grows within that stream.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventId {
    pub stream: String,
    pub seq: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.stream, self.seq)
    }
}

/// One event: a Wazuh syscheck object, or an active-response result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireEvent {
    pub id: EventId,
    pub event: Value,
}

/// Events in spool order; the manager acknowledges the batch as a whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    /// The sender's batch number, echoed in the [`Ack`].
    pub batch: u64,
    pub events: Vec<WireEvent>,
}

/// The manager's acknowledgement, sent only once the batch is committed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub batch: u64,
    /// Events stored for the first time.
    pub accepted: u32,
    /// Events the manager had already stored, skipped.
    pub duplicates: u32,
}

/// A request from the manager that the agent act on a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveResponseCommand {
    /// Unique per command; echoed in the result.
    pub command_id: String,
    /// The action name; version 1 defines `quarantine`.
    pub action: String,
    /// Absolute path of the file on the agent.
    pub path: String,
    /// The rule whose alert asked for the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The alert id ("epoch.counter") that asked for the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
}

/// Outcome of an active-response action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// The action was carried out.
    Done,
    /// The agent refused the action, for example a path outside its monitored folders.
    Rejected,
    /// The action was attempted and failed.
    Failed,
}

/// The agent's report on an [`ActiveResponseCommand`].
///
/// Agents send it as the `active_response` object of an event in an
/// [`EventBatch`], so that it is spooled and never lost; the frame kind of the
/// same name carries it when no spool is in use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveResponseResult {
    pub command_id: String,
    pub action: String,
    pub path: String,
    pub status: ActionStatus,
    /// Where the file now is, for a quarantine that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Why the action was rejected or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_bytes_round_trip() {
        for byte in 0..=255u8 {
            if let Some(kind) = Kind::from_byte(byte) {
                assert_eq!(kind as u8, byte);
            }
        }
        assert_eq!(Kind::from_byte(0), None);
        assert_eq!(Kind::from_byte(9), None);
    }

    #[test]
    fn enroll_request_debug_hides_secret() {
        let request = EnrollRequest {
            secret: "hunter2-secret".into(),
            name: "web-01".into(),
            version: "0.1.0".into(),
            csr_pem: String::new(),
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("web-01"), "{shown}");
    }
}
