//! Frame encoding and decoding: the 12-byte header and the JSON payload.

use crate::message::{Kind, Message};
use crate::{WireError, MAGIC, VERSION};

/// Size of the fixed frame header in bytes.
pub const HEADER_BYTES: usize = 12;

/// A validated frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    /// Payload length in bytes, not counting the header.
    pub payload_bytes: usize,
}

/// Encodes `message` as one frame.
///
/// Fails when the frame would exceed `max_frame_bytes`, so that a sender never
/// emits a frame its peer is bound to reject.
pub fn encode(message: &Message, max_frame_bytes: usize) -> Result<Vec<u8>, WireError> {
    let kind = message.kind();
    let payload = message
        .payload_json()
        .map_err(|source| WireError::Encode { kind, source })?;

    let total = HEADER_BYTES + payload.len();
    if total > max_frame_bytes || payload.len() > u32::MAX as usize {
        return Err(WireError::FrameTooLarge {
            declared: total,
            max: max_frame_bytes,
        });
    }

    let mut frame = Vec::with_capacity(total);
    frame.extend_from_slice(&MAGIC);
    frame.push(VERSION);
    frame.push(kind as u8);
    frame.extend_from_slice(&0u16.to_be_bytes());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Validates the first [`HEADER_BYTES`] of `bytes` as a frame header.
pub fn decode_header(bytes: &[u8], max_frame_bytes: usize) -> Result<Header, WireError> {
    let Some(head) = bytes.get(..HEADER_BYTES) else {
        return Err(WireError::Truncated {
            missing: HEADER_BYTES - bytes.len(),
        });
    };

    let magic = [head[0], head[1], head[2], head[3]];
    if magic != MAGIC {
        return Err(WireError::BadMagic { found: magic });
    }
    if head[4] != VERSION {
        return Err(WireError::UnsupportedVersion {
            found: head[4],
            supported: VERSION,
        });
    }
    let kind = Kind::from_byte(head[5]).ok_or(WireError::UnknownKind(head[5]))?;
    let flags = u16::from_be_bytes([head[6], head[7]]);
    if flags != 0 {
        return Err(WireError::UnsupportedFlags(flags));
    }

    let payload_bytes = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize;
    let declared = HEADER_BYTES.saturating_add(payload_bytes);
    if declared > max_frame_bytes {
        return Err(WireError::FrameTooLarge {
            declared,
            max: max_frame_bytes,
        });
    }
    Ok(Header {
        kind,
        payload_bytes,
    })
}

/// Decodes the payload of a frame whose header was validated.
pub fn decode_payload(header: Header, payload: &[u8]) -> Result<Message, WireError> {
    if payload.len() < header.payload_bytes {
        return Err(WireError::Truncated {
            missing: header.payload_bytes - payload.len(),
        });
    }
    let payload = &payload[..header.payload_bytes];
    Message::from_payload(header.kind, payload).map_err(|source| WireError::Payload {
        kind: header.kind,
        source,
    })
}

/// Decodes one frame from the front of `buffer`.
///
/// Returns `Ok(None)` when `buffer` holds only part of a frame (read more and
/// call again), or the message and the number of bytes it used.
pub fn decode_frame(
    buffer: &[u8],
    max_frame_bytes: usize,
) -> Result<Option<(Message, usize)>, WireError> {
    if buffer.len() < HEADER_BYTES {
        return Ok(None);
    }
    let header = decode_header(buffer, max_frame_bytes)?;

    let end = HEADER_BYTES + header.payload_bytes;
    let Some(payload) = buffer.get(HEADER_BYTES..end) else {
        return Ok(None);
    };
    let message = decode_payload(header, payload)?;
    Ok(Some((message, end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Keepalive;

    fn keepalive() -> Message {
        Message::Keepalive(Keepalive {
            version: "0.1.0".into(),
            name: "web-01".into(),
            spooled_events: 3,
            dropped_events: 0,
        })
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let frame = encode(&keepalive(), 1024).unwrap();
        let (message, used) = decode_frame(&frame, 1024).unwrap().unwrap();
        assert_eq!(used, frame.len());
        assert_eq!(message, keepalive());
    }

    #[test]
    fn partial_frame_asks_for_more() {
        let frame = encode(&keepalive(), 1024).unwrap();
        for cut in 0..frame.len() {
            assert!(
                decode_frame(&frame[..cut], 1024).unwrap().is_none(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn oversized_declared_length_is_rejected_before_reading() {
        let mut frame = encode(&keepalive(), 1024).unwrap();
        frame[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = decode_frame(&frame, 1024).unwrap_err();
        assert!(
            matches!(err, WireError::FrameTooLarge { max: 1024, .. }),
            "{err}"
        );
    }

    #[test]
    fn encode_refuses_frame_over_the_maximum() {
        let err = encode(&keepalive(), HEADER_BYTES + 4).unwrap_err();
        assert!(matches!(err, WireError::FrameTooLarge { .. }), "{err}");
    }

    #[test]
    fn header_fields_are_checked() {
        let frame = encode(&keepalive(), 1024).unwrap();

        let mut bad = frame.clone();
        bad[0] = b'X';
        assert!(matches!(
            decode_header(&bad, 1024),
            Err(WireError::BadMagic { .. })
        ));

        let mut bad = frame.clone();
        bad[4] = 9;
        let err = decode_header(&bad, 1024).unwrap_err();
        assert!(matches!(
            err,
            WireError::UnsupportedVersion {
                found: 9,
                supported: 1
            }
        ));

        let mut bad = frame.clone();
        bad[5] = 250;
        assert!(matches!(
            decode_header(&bad, 1024),
            Err(WireError::UnknownKind(250))
        ));

        let mut bad = frame;
        bad[7] = 1;
        assert!(matches!(
            decode_header(&bad, 1024),
            Err(WireError::UnsupportedFlags(1))
        ));
    }

    #[test]
    fn payload_of_wrong_shape_is_an_error() {
        let mut frame = encode(&keepalive(), 1024).unwrap();
        frame[5] = Kind::Ack as u8;
        let err = decode_frame(&frame, 1024).unwrap_err();
        assert!(
            matches!(
                err,
                WireError::Payload {
                    kind: Kind::Ack,
                    ..
                }
            ),
            "{err}"
        );
    }
}
