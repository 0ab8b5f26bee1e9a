//! A malicious broker, strings (issue 14): invalid UTF-8 and U+0000 in a
//! topic and in properties. Both make the packet a Malformed Packet
//! (MQTT-1.5.4-1, MQTT-1.5.4-2): DISCONNECT 0x81, on 3.1.1 a close. Each
//! attack comes while a SUBSCRIBE and a QoS 1 PUBLISH wait for the
//! broker, and is checked for the five properties of tests/hostile/mod.rs.

mod common;
mod hostile;
mod scripted;

use hostile::{raw_ack, raw_publish, string, Attack, Want};
use mqtt5c::packet::{ProtocolVersion, ReasonCode};

/// An encoding of U+00E9 cut after its first byte, then "(".
const INVALID_UTF8: &[u8] = &[b'a', 0xC3, 0x28];
const NUL: &[u8] = &[b'a', 0x00, b'b'];

const MALFORMED: Want = Want::Disconnect(ReasonCode::MalformedPacket);

/// A QoS 0 PUBLISH to `topic`, as bytes.
fn topic(version: ProtocolVersion, topic: &'static [u8]) -> Attack {
    Attack::new(
        move |p, _| p.send_raw(&raw_publish(version, topic, &[], b"x")),
        MALFORMED,
    )
}

#[test]
fn invalid_utf8_in_a_topic_is_malformed() {
    topic(ProtocolVersion::V5, INVALID_UTF8).run();
}

#[test]
fn invalid_utf8_in_a_topic_is_malformed_on_3_1_1() {
    topic(ProtocolVersion::V311, INVALID_UTF8).v311().run();
}

#[test]
fn u0000_in_a_topic_is_malformed() {
    topic(ProtocolVersion::V5, NUL).run();
}

#[test]
fn u0000_in_a_topic_is_malformed_on_3_1_1() {
    topic(ProtocolVersion::V311, NUL).v311().run();
}

/// A PUBLISH with a User Property (0x26) whose value is `value`.
fn user_property(value: &'static [u8]) -> Attack {
    Attack::new(
        move |p, _| {
            let mut props = vec![0x26];
            props.extend(string(b"k"));
            props.extend(string(value));
            p.send_raw(&raw_publish(ProtocolVersion::V5, b"t", &props, b"x"));
        },
        MALFORMED,
    )
}

#[test]
fn invalid_utf8_in_a_user_property_is_malformed() {
    user_property(INVALID_UTF8).run();
}

#[test]
fn u0000_in_a_user_property_is_malformed() {
    user_property(NUL).run();
}

/// The PUBACK the publish waits for, with a Reason String (0x1F) `text`:
/// the publish is not taken as acknowledged by it.
fn reason_string(text: &'static [u8]) -> Attack {
    Attack::new(
        move |p, w| {
            let mut props = vec![0x1F];
            props.extend(string(text));
            p.send_raw(&raw_ack(0x40, w.publish, &props));
        },
        MALFORMED,
    )
}

#[test]
fn invalid_utf8_in_a_reason_string_is_malformed() {
    reason_string(INVALID_UTF8).run();
}

#[test]
fn u0000_in_a_reason_string_is_malformed() {
    reason_string(NUL).run();
}
