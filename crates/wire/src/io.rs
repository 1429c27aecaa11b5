//! Async reading and writing of whole frames over tokio streams.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::frame::{decode_header, decode_payload, encode, HEADER_BYTES};
use crate::{Message, WireError};

/// Reads one message; `Ok(None)` when the peer closed the stream between frames.
///
/// The payload buffer is allocated only after the header's length passed the
/// `max_frame_bytes` check.
pub async fn read_message<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_frame_bytes: usize,
) -> Result<Option<Message>, WireError> {
    let mut head = [0u8; HEADER_BYTES];
    let mut filled = 0;
    while filled < HEADER_BYTES {
        let read = reader.read(&mut head[filled..]).await?;
        if read == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(WireError::Truncated {
                missing: HEADER_BYTES - filled,
            });
        }
        filled += read;
    }
    let header = decode_header(&head, max_frame_bytes)?;

    let mut payload = vec![0u8; header.payload_bytes];
    if let Err(err) = reader.read_exact(&mut payload).await {
        if err.kind() == std::io::ErrorKind::UnexpectedEof {
            return Err(WireError::Truncated {
                missing: header.payload_bytes,
            });
        }
        return Err(err.into());
    }
    decode_payload(header, &payload).map(Some)
}

/// Encodes and writes one message, then flushes.
pub async fn write_message<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &Message,
    max_frame_bytes: usize,
) -> Result<(), WireError> {
    let frame = encode(message, max_frame_bytes)?;
    writer.write_all(&frame).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ack, DEFAULT_MAX_FRAME_BYTES};

    #[tokio::test]
    async fn messages_cross_a_duplex_stream() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let ack = Message::Ack(Ack {
            batch: 7,
            accepted: 2,
            duplicates: 1,
        });
        let sent = ack.clone();
        let writer = tokio::spawn(async move {
            write_message(&mut a, &sent, DEFAULT_MAX_FRAME_BYTES)
                .await
                .unwrap();
        });
        let got = read_message(&mut b, DEFAULT_MAX_FRAME_BYTES).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, Some(ack));
        assert_eq!(
            read_message(&mut b, DEFAULT_MAX_FRAME_BYTES).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn stream_closed_mid_frame_is_truncated() {
        let frame = encode(
            &Message::Ack(Ack {
                batch: 1,
                accepted: 0,
                duplicates: 0,
            }),
            1024,
        )
        .unwrap();
        let mut cut: &[u8] = &frame[..frame.len() - 3];
        let err = read_message(&mut cut, 1024).await.unwrap_err();
        assert!(matches!(err, WireError::Truncated { .. }), "{err}");
    }
}
