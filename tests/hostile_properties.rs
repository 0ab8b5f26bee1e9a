//! A malicious broker, properties (issue 14): a property on a packet that
//! does not take it is a Malformed Packet (0x81, MQTT 5 section 2.2.2.2),
//! a property repeated that may appear once a Protocol Error (0x82,
//! stated per property), more properties than we accept "Packet too
//! large" (0x95, our bound on memory). Each attack comes while a
//! SUBSCRIBE and a QoS 1 PUBLISH wait for the broker, and is checked for
//! the five properties of tests/hostile/mod.rs. On 3.1.1 any property
//! misframes the packet: tests/v311.rs
//! (`v5_property_in_unsuback_is_malformed`).

mod common;
mod hostile;
mod scripted;

use hostile::{raw, raw_ack, raw_publish, string, Attack, Want};
use mqtt5c::packet::{self, MqttStr, Packet, Property, ProtocolVersion, Publish, ReasonCode};

const MALFORMED: Want = Want::Disconnect(ReasonCode::MalformedPacket);

/// A PUBLISH with a Session Expiry Interval (0x11), a CONNECT, CONNACK
/// and DISCONNECT property.
#[test]
fn session_expiry_in_a_publish_is_malformed() {
    Attack::new(
        |p, _| {
            let props = [0x11, 0, 0, 0, 10];
            p.send_raw(&raw_publish(ProtocolVersion::V5, b"t", &props, b"x"));
        },
        MALFORMED,
    )
    .run();
}

/// The PUBACK the publish waits for, with a Topic Alias (0x23).
#[test]
fn a_topic_alias_in_a_puback_is_malformed() {
    Attack::new(
        |p, w| p.send_raw(&raw_ack(0x40, w.publish, &[0x23, 0x00, 0x01])),
        MALFORMED,
    )
    .run();
}

/// The SUBACK the subscribe waits for, with a Subscription Identifier
/// (0x0B), which only PUBLISH and SUBSCRIBE take.
#[test]
fn a_subscription_identifier_in_a_suback_is_malformed() {
    Attack::new(
        |p, w| {
            let mut body = w.subscribe.to_be_bytes().to_vec();
            body.extend([2, 0x0B, 0x01]); // properties
            body.push(0x01); // Granted QoS 1
            p.send_raw(&raw(0x90, &body));
        },
        MALFORMED,
    )
    .run();
}

/// A PUBLISH with two Content Types (0x03).
#[test]
fn a_repeated_content_type_is_a_protocol_error() {
    Attack::new(
        |p, _| {
            let mut props = vec![0x03];
            props.extend(string(b"a"));
            props.push(0x03);
            props.extend(string(b"b"));
            p.send_raw(&raw_publish(ProtocolVersion::V5, b"t", &props, b"x"));
        },
        Want::Disconnect(ReasonCode::ProtocolError),
    )
    .run();
}

/// A PUBLISH with one property more than we accept, though small (60 KB),
/// ends the connection with DISCONNECT 0x95; one at the limit is
/// delivered. (Moved from tests/fake_broker.rs.)
#[test]
fn too_many_properties_are_too_large() {
    let with = |n: usize, topic: &str| {
        let user = Property::UserProperty(MqttStr::from_static(""), MqttStr::from_static(""));
        Packet::Publish(Publish {
            topic: MqttStr::new(topic).unwrap(),
            properties: std::iter::repeat_n(user, n).collect(),
            ..Default::default()
        })
    };
    let r = Attack::new(
        move |p, _| {
            p.send(with(packet::MAX_RECEIVED_PROPERTIES, "at/limit"));
            p.send(with(packet::MAX_RECEIVED_PROPERTIES + 1, "over/limit"));
        },
        Want::Disconnect(ReasonCode::PacketTooLarge),
    )
    .run();
    assert_eq!(r.messages, ["at/limit"]);
}
