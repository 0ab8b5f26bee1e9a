//! Arbitrary bytes into the incremental decoder, read as MQTT v5 and as
//! MQTT 3.1.1: it may return errors but must never panic, loop forever or
//! read out of bounds.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt5c::packet::{decode_with, ProtocolVersion};

/// Small enough that the size check is exercised, big enough for real packets.
const MAX_PACKET_SIZE: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let mut buf = BytesMut::from(data);
        loop {
            let before = buf.len();
            match decode_with(&mut buf, MAX_PACKET_SIZE, version) {
                // Each decoded packet consumes at least its two header bytes.
                Ok(Some(_)) => assert!(buf.len() < before),
                // Incomplete: nothing may have been consumed.
                Ok(None) => {
                    assert_eq!(buf.len(), before);
                    break;
                }
                Err(_) => break,
            }
        }
    }
});
