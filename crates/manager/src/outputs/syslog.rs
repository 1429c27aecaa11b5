//! Syslog output: RFC 5424 messages over UDP (one per datagram) or TCP
//! (octet-counted framing, RFC 6587), carrying the alert JSON as the message.

use std::io;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use crate::config::{SyslogConfig, SyslogTransport};

/// Facility local0 (16), as RFC 5424 section 6.2.1 numbers it.
const FACILITY: u8 = 16;

/// Maps a rule level (0 to 16) to an RFC 5424 severity.
pub fn severity(level: u64) -> u8 {
    match level {
        12.. => 2,   // critical
        7..=11 => 4, // warning
        3..=6 => 5,  // notice
        _ => 6,      // informational
    }
}

/// Formats one RFC 5424 message: `<PRI>1 TIMESTAMP HOST APP - MSGID - MSG`.
pub fn format_message(alert: &Value, hostname: &str) -> String {
    let level = alert
        .pointer("/rule/level")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let pri = u16::from(FACILITY) * 8 + u16::from(severity(level));
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "-".into());
    let host = if hostname.is_empty() { "-" } else { hostname };
    format!("<{pri}>1 {timestamp} {host} iocwatch - alert - {alert}")
}

/// A connected syslog sender; TCP reconnects on the next message after an error.
pub struct Syslog {
    config: SyslogConfig,
    hostname: String,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
}

impl Syslog {
    pub fn new(config: SyslogConfig, hostname: String) -> Syslog {
        Syslog {
            config,
            hostname,
            udp: None,
            tcp: None,
        }
    }

    pub fn min_level(&self) -> u8 {
        self.config.min_level
    }

    pub async fn send(&mut self, alert: &Value) -> io::Result<()> {
        let message = format_message(alert, &self.hostname);
        match self.config.transport {
            SyslogTransport::Udp => {
                if self.udp.is_none() {
                    let bind = if self.config.address.starts_with('[') {
                        "[::]:0"
                    } else {
                        "0.0.0.0:0"
                    };
                    let socket = UdpSocket::bind(bind).await?;
                    socket.connect(&self.config.address).await?;
                    self.udp = Some(socket);
                }
                if let Some(socket) = &self.udp {
                    socket.send(message.as_bytes()).await?;
                }
            }
            SyslogTransport::Tcp => {
                if self.tcp.is_none() {
                    self.tcp = Some(TcpStream::connect(&self.config.address).await?);
                }
                let framed = format!("{} {message}", message.len());
                let result = match &mut self.tcp {
                    Some(stream) => stream.write_all(framed.as_bytes()).await,
                    None => Ok(()),
                };
                if result.is_err() {
                    self.tcp = None;
                }
                result?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_rfc5424_header() {
        let alert = serde_json::json!({"rule": {"level": 12}, "id": "1.1"});
        let message = format_message(&alert, "mgr");
        assert!(message.starts_with("<130>1 "), "{message}");
        assert!(message.contains(" mgr iocwatch - alert - {"), "{message}");
        assert!(message.ends_with('}'));
    }

    #[test]
    fn levels_map_to_severities() {
        assert_eq!(severity(0), 6);
        assert_eq!(severity(5), 5);
        assert_eq!(severity(7), 4);
        assert_eq!(severity(16), 2);
    }
}
