//! A malicious broker, framing (issue 14): packets whose fixed header
//! lies — a Remaining Length of five bytes, a claim of 256 MiB, a QoS of
//! 3 — and a broker that closes mid-packet. Each attack comes while a
//! SUBSCRIBE and a QoS 1 PUBLISH wait for the broker, and is checked for
//! the five properties of tests/hostile/mod.rs (prompt errors, the
//! DISCONNECT the spec names, the callback, the reconnection, no leak).
//!
//! Also: a packet over our Maximum Packet Size is refused at its header
//! (below, and at the default 1 MiB in tests/memory.rs,
//! `the_default_maximum_packet_size_is_one_mib_and_enforced`).

mod common;
mod hostile;
mod scripted;

use hostile::{raw, Attack, Want};
use mqtt5c::client::PROTOCOL_MAX_PACKET_SIZE;
use mqtt5c::packet::ReasonCode;

/// A Remaining Length takes at most four bytes (MQTT-1.5.5): a fifth is a
/// Malformed Packet (0x81). The four continuation bytes carry no value,
/// so the length so far never looks too large: only its form is wrong.
fn five_byte_length() -> Attack {
    Attack::new(
        |p, _| p.send_raw(&[0x30, 0x80, 0x80, 0x80, 0x80, 0x01]),
        Want::Disconnect(ReasonCode::MalformedPacket),
    )
}

#[test]
fn a_remaining_length_of_five_bytes_is_malformed() {
    five_byte_length().run();
}

#[test]
fn a_remaining_length_of_five_bytes_is_malformed_on_3_1_1() {
    five_byte_length().v311().run();
}

/// A PUBLISH whose header claims 256 MiB (the largest Remaining Length),
/// then 1 MiB of body, then the close.
fn claim_256_mib(p: &mut scripted::Peer, _: hostile::Waiting) {
    p.send_raw(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, b'a']);
    // Refused at the header (default limit), the client may close before
    // the body is written: then the write fails, as it should.
    let _ = std::io::Write::write_all(&mut p.writer(), &vec![0u8; 1 << 20]);
}

/// By default (Maximum Packet Size 1 MiB) the claim is refused from its
/// fixed header: DISCONNECT 0x95, and nothing like 256 MiB is allocated.
#[test]
fn a_claim_of_256_mib_is_refused_at_its_header() {
    let r = Attack::new(claim_256_mib, Want::Disconnect(ReasonCode::PacketTooLarge)).run();
    assert!(r.peak < 16 << 20, "peak {} bytes", r.peak);
}

/// Without a limit (the protocol's maximum, 256 MiB) the claim is
/// allowed: the client buffers what arrives, not what the header claims,
/// and the close mid-packet ends the connection.
#[test]
fn a_claim_of_256_mib_without_a_limit_allocates_only_what_arrives() {
    let r = Attack::new(claim_256_mib, Want::Lost)
        .tune(|o| o.max_packet_size = PROTOCOL_MAX_PACKET_SIZE)
        .run();
    assert!(r.peak < 16 << 20, "peak {} bytes", r.peak);
}

/// The broker closes the socket after three bytes of the PUBACK the
/// publish waits for.
fn close_mid_packet() -> Attack {
    Attack::new(
        |p, w| {
            let id = w.publish.to_be_bytes();
            p.send_raw(&[0x40, 0x02, id[0]]);
        },
        Want::Lost,
    )
}

#[test]
fn a_close_mid_packet_fails_the_waiting_calls_and_reconnects() {
    close_mid_packet().run();
}

#[test]
fn a_close_mid_packet_fails_the_waiting_calls_and_reconnects_on_3_1_1() {
    close_mid_packet().v311().run();
}

/// QoS 3 does not exist: a PUBLISH with both QoS bits set is a Malformed
/// Packet (MQTT-3.3.1-4). (Moved from tests/fake_broker.rs.)
fn qos_3() -> Attack {
    Attack::new(
        |p, _| p.send_raw(&raw(0x36, &[0x00, 0x01, b'a', 0x00, 0x01, 0x00])),
        Want::Disconnect(ReasonCode::MalformedPacket),
    )
}

#[test]
fn a_publish_of_qos_3_is_malformed() {
    qos_3().run();
}

#[test]
fn a_publish_of_qos_3_is_malformed_on_3_1_1() {
    qos_3().v311().run();
}

/// Only the fixed header of a 1000-byte packet, over our Maximum Packet
/// Size of 100: the client refuses it without waiting for the body
/// (DISCONNECT 0x95). (Moved from tests/fake_broker.rs.)
#[test]
fn a_packet_over_our_maximum_is_refused_at_its_header() {
    Attack::new(
        |p, _| p.send_raw(&[0x30, 0xE8, 0x07]),
        Want::Disconnect(ReasonCode::PacketTooLarge),
    )
    .tune(|o| o.max_packet_size = 100)
    .run();
}
