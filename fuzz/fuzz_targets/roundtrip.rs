//! Whatever decodes must encode again in the same protocol's form (the
//! encoder accepts everything the decoder does) and decode back to an
//! equal packet; for MQTT v5 and for MQTT 3.1.1.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt5c::packet::{decode_with, encode_with, encoded_len, ProtocolVersion};

fuzz_target!(|data: &[u8]| {
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(packet)) = decode_with(&mut buf, usize::MAX, version) {
            let mut out = BytesMut::new();
            if let Err(e) = encode_with(&packet, version, &mut out) {
                panic!("decoded {packet:?} ({version:?}) but encoding failed: {e:?}");
            }
            if version == ProtocolVersion::V5 {
                assert_eq!(encoded_len(&packet), Ok(out.len()));
            }
            let again = decode_with(&mut out, usize::MAX, version);
            assert_eq!(again, Ok(Some(packet)));
            assert!(out.is_empty(), "encoded packet has trailing bytes");
        }
    }
});
