//! A malicious broker, topic aliases (issue 14): an alias above the Topic
//! Alias Maximum we sent in CONNECT is "Topic Alias invalid" (0x94, the
//! reason code's definition); alias 0, and one this connection never
//! set (with an empty topic), are Protocol Errors (0x82).
//! Each attack comes while a SUBSCRIBE and a QoS 1 PUBLISH wait for the
//! broker, and is checked for the five properties of tests/hostile/mod.rs.
//! 3.1.1 has no topic aliases. Aliases resolved as they should:
//! tests/c/test_inbound_limits.c (script `inbound` in tests/scripted).

mod common;
mod hostile;
mod scripted;

use hostile::{raw_publish, Attack, Want};
use mqtt5c::packet::{Property, ProtocolVersion, ReasonCode};

/// A QoS 0 PUBLISH to `topic` with Topic Alias `alias`; the client
/// accepts aliases up to 2.
fn alias(topic: &'static [u8], alias: u16, want: ReasonCode) -> Attack {
    Attack::new(
        move |p, _| {
            let mut props = vec![0x23];
            props.extend(alias.to_be_bytes());
            p.send_raw(&raw_publish(ProtocolVersion::V5, topic, &props, b"x"));
        },
        Want::Disconnect(want),
    )
    .tune(|o| o.connect_properties.push(Property::TopicAliasMaximum(2)))
}

#[test]
fn an_alias_above_our_maximum_is_invalid() {
    alias(b"t", 3, ReasonCode::TopicAliasInvalid).run();
}

/// Alias 0 is not permitted (MQTT-3.3.2-8); the spec defines 0x94 for an
/// alias above the maximum only, so this is the general Protocol Error.
#[test]
fn alias_0_is_a_protocol_error() {
    alias(b"t", 0, ReasonCode::ProtocolError).run();
}

#[test]
fn an_alias_never_set_is_a_protocol_error() {
    alias(b"", 1, ReasonCode::ProtocolError).run();
}

/// We advertised no Topic Alias Maximum (0: none accepted).
#[test]
fn an_alias_when_we_accept_none_is_invalid() {
    Attack::new(
        |p, _| {
            let props = [0x23, 0x00, 0x01];
            p.send_raw(&raw_publish(ProtocolVersion::V5, b"t", &props, b"x"));
        },
        Want::Disconnect(ReasonCode::TopicAliasInvalid),
    )
    .run();
}
