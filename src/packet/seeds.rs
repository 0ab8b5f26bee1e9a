//! Writes the fuzz seed corpus (fuzz/seeds/v5 and fuzz/seeds/v311) from the
//! codec tests' samples: each packet encoded, cut short, and a few
//! malformed ones. Run after changing the samples and commit the result:
//! `cargo test --lib write_fuzz_seeds -- --ignored`.

use super::{encode_with, tests, tests_v311, Packet, ProtocolVersion};
use bytes::BytesMut;
use std::path::PathBuf;

/// Malformed inputs for both protocols: type 0, QoS 3, DUP on QoS 0,
/// remaining length of five bytes, a packet claiming 256 MiB, reserved
/// flags wrong, trailing bytes, bad UTF-8 and U+0000 in a topic.
const MALFORMED: &[(&str, &[u8])] = &[
    ("type0", &[0x00, 0x00]),
    ("publish_qos3", &[0x36, 0x03, 0x00, 0x01, b't']),
    ("publish_dup_qos0", &[0x38, 0x03, 0x00, 0x01, b't']),
    (
        "remaining_len_5_bytes",
        &[0x30, 0x80, 0x80, 0x80, 0x80, 0x01],
    ),
    ("claims_256mib", &[0x30, 0x80, 0x80, 0x80, 0x01, 0x00]),
    ("pingresp_flags", &[0xD1, 0x00]),
    ("pingresp_trailing", &[0xD0, 0x01, 0x00]),
    (
        "topic_bad_utf8",
        &[0x30, 0x05, 0x00, 0x02, 0xC3, 0x28, 0x00],
    ),
    ("topic_nul", &[0x30, 0x04, 0x00, 0x01, 0x00, 0x00]),
];

fn write(dir: &str, samples: Vec<Packet>, version: ProtocolVersion) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(dir);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the seeds directory");
    let put = |name: String, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).expect("write a seed");
    };
    let mut all = BytesMut::new();
    for (i, p) in samples.iter().enumerate() {
        let mut b = BytesMut::new();
        encode_with(p, version, &mut b).expect("samples encode");
        let name = format!("{i:02}_{:?}", p.packet_type()).to_lowercase();
        if b.len() > 4 {
            put(format!("{name}_cut"), &b[..b.len() / 2]);
        }
        put(name, &b);
        all.extend_from_slice(&b);
    }
    put("all_back_to_back".into(), &all);
    for (name, bytes) in MALFORMED {
        put(format!("bad_{name}"), bytes);
    }
}

#[test]
#[ignore = "writes fuzz/seeds; run by hand after changing the samples"]
fn write_fuzz_seeds() {
    write("v5", tests::samples(), ProtocolVersion::V5);
    write("v311", tests_v311::samples(), ProtocolVersion::V311);
}
