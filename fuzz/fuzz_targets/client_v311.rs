//! mqtt5c::fuzzing::client::client for MQTT 3.1.1: the real client fed the input as
//! its broker's byte stream (the checks live in the library, so
//! tests/fuzz_corpus.rs replays the seeds through the same code).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt5c::fuzzing::CountingAlloc;
use mqtt5c::packet::ProtocolVersion;

/// Counts the memory in use, for the target's memory bound.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(|data: &[u8]| mqtt5c::fuzzing::client::client(data, ProtocolVersion::V311));
