//! Sending a framed message to wazuh-analysisd's queue, a Unix datagram socket.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// wazuh-analysisd reads at most `OS_MAXSTR` (65536) bytes per message; a longer one
/// would be cut, so it is rejected here instead.
pub const MAX_MESSAGE_BYTES: usize = 65536;

/// Sends one datagram to the socket at `path`.
pub fn send(path: &Path, frame: &str) -> io::Result<()> {
    if frame.len() >= MAX_MESSAGE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "message of {} bytes exceeds the queue limit of {MAX_MESSAGE_BYTES}",
                frame.len()
            ),
        ));
    }
    let socket = UnixDatagram::unbound()?;
    socket.send_to(frame.as_bytes(), path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_reaches_bound_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue");
        let receiver = UnixDatagram::bind(&path).expect("bind");
        send(&path, "1:iocwatch:{}").expect("send");

        let mut buffer = [0u8; 64];
        let size = receiver.recv(&mut buffer).expect("receive");
        assert_eq!(&buffer[..size], b"1:iocwatch:{}");
    }

    #[test]
    fn missing_socket_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(send(&dir.path().join("absent"), "1:x:{}").is_err());
    }

    #[test]
    fn oversized_message_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let long = "x".repeat(MAX_MESSAGE_BYTES);
        let error = send(&dir.path().join("queue"), &long).expect_err("too long");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
