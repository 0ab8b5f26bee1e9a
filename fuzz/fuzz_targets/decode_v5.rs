//! mqtt5c::fuzzing::decode for MQTT v5 (the checks live in the library,
//! so tests/fuzz_corpus.rs replays the seeds through the same code).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt5c::packet::ProtocolVersion;

fuzz_target!(|data: &[u8]| mqtt5c::fuzzing::decode(data, ProtocolVersion::V5));
