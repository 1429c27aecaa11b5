//! Feeds random, truncated and bit-flipped frames to the decoder with a fixed
//! seed: every input must give a message, a request for more bytes or an
//! error, and never a panic.

use serde_json::json;
use wire::{
    decode_frame, encode, Ack, EventBatch, EventId, Keepalive, Message, WireEvent, HEADER_BYTES,
};

const MAX_FRAME_BYTES: usize = 64 * 1024;

/// xorshift64*: a small deterministic generator, enough to vary test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn sample_frames() -> Vec<Vec<u8>> {
    let batch = Message::EventBatch(EventBatch {
        batch: 3,
        events: vec![WireEvent {
            id: EventId {
                stream: "4f1c".into(),
                seq: 11,
            },
            event: json!({"path": "/tmp/a", "event": "added", "sha256_after": "00"}),
        }],
    });
    let keepalive = Message::Keepalive(Keepalive {
        version: "0.1.0".into(),
        name: "host".into(),
        spooled_events: 0,
        dropped_events: 0,
    });
    let ack = Message::Ack(Ack {
        batch: 3,
        accepted: 1,
        duplicates: 0,
    });
    [batch, keepalive, ack]
        .iter()
        .map(|m| encode(m, MAX_FRAME_BYTES).unwrap())
        .collect()
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x1c0c_3a7c_4d00_0001);
    for _ in 0..20_000 {
        let len = rng.below(64);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = decode_frame(&bytes, MAX_FRAME_BYTES);
    }
}

#[test]
fn random_payload_behind_valid_header_never_panics() {
    let mut rng = Rng(0x5eed_0000_0000_0002);
    let template = &sample_frames()[0];
    for _ in 0..20_000 {
        let len = rng.below(200);
        let mut frame = template[..HEADER_BYTES].to_vec();
        frame[5] = 1 + rng.below(8) as u8;
        frame[8..12].copy_from_slice(&(len as u32).to_be_bytes());
        frame.extend((0..len).map(|_| rng.next() as u8));
        let result = decode_frame(&frame, MAX_FRAME_BYTES);
        assert!(result.is_err(), "random payload decoded as a message");
    }
}

#[test]
fn every_truncation_asks_for_more_bytes() {
    for frame in sample_frames() {
        for cut in 0..frame.len() {
            let result = decode_frame(&frame[..cut], MAX_FRAME_BYTES);
            assert!(
                matches!(result, Ok(None)),
                "cut at {cut} of {}",
                frame.len()
            );
        }
        assert!(matches!(decode_frame(&frame, MAX_FRAME_BYTES), Ok(Some(_))));
    }
}

#[test]
fn bit_flips_never_panic() {
    let mut rng = Rng(0xb17f_11b5_0000_0003);
    let frames = sample_frames();
    for _ in 0..20_000 {
        let mut frame = frames[rng.below(frames.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(frame.len());
            frame[at] ^= 1 << rng.below(8);
        }
        let _ = decode_frame(&frame, MAX_FRAME_BYTES);
    }
}

#[test]
fn frames_back_to_back_decode_in_order() {
    let frames = sample_frames();
    let stream: Vec<u8> = frames.concat();
    let mut offset = 0;
    let mut kinds = Vec::new();
    while let Some((message, used)) = decode_frame(&stream[offset..], MAX_FRAME_BYTES).unwrap() {
        kinds.push(message.kind());
        offset += used;
    }
    assert_eq!(offset, stream.len());
    assert_eq!(kinds.len(), 3);
}
