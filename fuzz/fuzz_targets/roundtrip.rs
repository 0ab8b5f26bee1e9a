//! Whatever decodes must encode again (the encoder accepts everything the
//! decoder does) and decode back to an equal packet.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt5c::packet::{decode, encode, encoded_len};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = decode(&mut buf, usize::MAX) {
        let mut out = BytesMut::new();
        if let Err(e) = encode(&packet, &mut out) {
            panic!("decoded {packet:?} but encoding failed: {e:?}");
        }
        assert_eq!(encoded_len(&packet), Ok(out.len()));
        let again = decode(&mut out, usize::MAX);
        assert_eq!(again, Ok(Some(packet)));
        assert!(out.is_empty(), "encoded packet has trailing bytes");
    }
});
