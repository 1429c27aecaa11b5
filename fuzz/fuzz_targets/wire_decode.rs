//! Fuzz target: the wire frame decoder must return a message, a request for
//! more bytes or an error for any input, and re-encode what it decoded.

#![no_main]

use libfuzzer_sys::fuzz_target;

const MAX_FRAME_BYTES: usize = 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((message, used))) = wire::decode_frame(rest, MAX_FRAME_BYTES) {
        assert!(used > 0);
        assert!(used <= rest.len());
        let frame =
            wire::encode(&message, MAX_FRAME_BYTES * 2).expect("decoded message re-encodes");
        let again = wire::decode_frame(&frame, MAX_FRAME_BYTES * 2);
        assert!(
            matches!(again, Ok(Some(_))),
            "re-encoded frame fails to decode"
        );
        rest = &rest[used..];
    }
});
