//! What a connection speaking MQTT 3.1.1 changes for the client.
//!
//! The client builds, stores and resends its packets in the v5 form
//! whatever the connection speaks: the session's in-flight messages, the
//! offline queue and the persistence store hold v5 packets, so they go
//! out unchanged after a reconnect whichever protocol that one agreed.
//! On a 3.1.1 connection, [`to_wire`] turns what is written into the
//! 3.1.1 forms (the one place that does) and the transport reader decodes
//! the 3.1.1 forms into the same structures (see `packet::v311`).
//!
//! What 3.1.1 cannot say is refused at the API with a text naming it
//! ([`refuse`]), before anything is sent. What the client adds itself
//! (CONNECT's Receive Maximum, the reason code of a DISCONNECT it sends on
//! a protocol error) is dropped in `to_wire`: a 3.1.1 client closes the
//! connection without DISCONNECT where a v5 one sends a reason.

use super::{ClientOptions, Error};
use crate::packet::{
    self, Connect, Packet, Properties, ProtocolVersion, ReasonCode, SubscribeFilter,
    SubscriptionOptions,
};
use bytes::{Bytes, BytesMut};

/// The text every refusal ends with.
const HINT: &str = "this client speaks MQTT 3.1.1 (mqtt_options_set_protocol_version), \
                    which has no such thing";

/// `InvalidArgument` saying that `what` is MQTT v5 only.
pub(super) fn refuse(what: &str) -> Error {
    Error::InvalidArgument(format!("{what} is MQTT v5 only: {HINT}"))
}

/// Refuses properties on a 3.1.1 connection; `packet` names the call.
pub(super) fn check_properties(
    version: ProtocolVersion,
    properties: &Properties,
    packet: &str,
) -> Result<(), Error> {
    if version == ProtocolVersion::V311 && !properties.is_empty() {
        let first = properties
            .iter()
            .next()
            .map_or("a property", |p| p.id().name());
        return Err(refuse(&format!("{packet} properties ({first})")));
    }
    Ok(())
}

/// Refuses subscription options beyond QoS (No Local, Retain As
/// Published, Retain Handling) on a 3.1.1 connection.
pub(super) fn check_filters(
    version: ProtocolVersion,
    filters: &[SubscribeFilter],
) -> Result<(), Error> {
    if version != ProtocolVersion::V311 {
        return Ok(());
    }
    for f in filters {
        let plain = SubscriptionOptions {
            qos: f.options.qos,
            ..Default::default()
        };
        if f.options != plain {
            return Err(refuse(&format!(
                "subscription options beyond QoS (No Local, Retain As Published, \
                 Retain Handling) on '{}'",
                crate::redact::peer(&f.filter)
            )));
        }
    }
    Ok(())
}

/// The CONNECT of a 3.1.1 connection: `connect` as built for v5, after
/// refusing what the application set that 3.1.1 cannot carry, without
/// the properties the client adds itself.
pub(super) fn connect(
    mut connect: Connect,
    options: &ClientOptions,
    user_properties: &Properties,
    auth_data: bool,
) -> Result<Connect, Error> {
    if options.session_expiry > 0 {
        return Err(refuse(
            "Session Expiry Interval (mqtt_options_set_session_expiry; \
             3.1.1's Clean Session 0 keeps a session until the broker drops it)",
        ));
    }
    if auth_data {
        return Err(refuse("enhanced authentication (Authentication Data)"));
    }
    if let Some(p) = user_properties.iter().next() {
        return Err(refuse(&format!("CONNECT properties ({})", p.id().name())));
    }
    if let Some(will) = &connect.will {
        if let Some(p) = will.properties.iter().next() {
            return Err(refuse(&format!("will properties ({})", p.id().name())));
        }
    }
    if connect.password.is_some() && connect.username.is_none() {
        return Err(Error::InvalidArgument(
            "a password without a user name: MQTT 3.1.1 sends a password only with a \
             user name (set one with mqtt_options_set_credentials)"
                .into(),
        ));
    }
    connect.properties = Properties::new();
    Ok(connect)
}

/// `bytes` (whole v5 packets, see the module docs) as `version` has them
/// on the wire: unchanged for v5; for 3.1.1 each packet re-encoded
/// without what only v5 has. A DISCONNECT with a reason other than
/// normal is left out: 3.1.1 closes the connection without one there.
pub(super) fn to_wire(version: ProtocolVersion, bytes: Bytes) -> Result<Bytes, Error> {
    if version == ProtocolVersion::V5 {
        return Ok(bytes);
    }
    let mut rest = BytesMut::from(&bytes[..]);
    let mut out = BytesMut::with_capacity(bytes.len());
    while !rest.is_empty() {
        let packet = match packet::decode(&mut rest, usize::MAX) {
            Ok(Some(p)) => p,
            Ok(None) => return Err(Error::Internal("a partial packet handed to the writer")),
            Err(_) => {
                return Err(Error::Internal(
                    "an undecodable packet handed to the writer",
                ))
            }
        };
        if let Some(p) = downgrade(packet) {
            packet::encode_with(&p, ProtocolVersion::V311, &mut out)?;
        }
    }
    Ok(out.freeze())
}

/// `p` without its v5-only parts, or None when 3.1.1 sends nothing there.
fn downgrade(p: Packet) -> Option<Packet> {
    Some(match p {
        Packet::Publish(mut p) => {
            p.properties = Properties::new();
            Packet::Publish(p)
        }
        Packet::PubAck(r) => Packet::PubAck(packet::PubResp::new(r.packet_id)),
        Packet::PubRec(r) => Packet::PubRec(packet::PubResp::new(r.packet_id)),
        Packet::PubRel(r) => Packet::PubRel(packet::PubResp::new(r.packet_id)),
        Packet::PubComp(r) => Packet::PubComp(packet::PubResp::new(r.packet_id)),
        Packet::Subscribe(mut s) => {
            s.properties = Properties::new();
            Packet::Subscribe(s)
        }
        Packet::Unsubscribe(mut u) => {
            u.properties = Properties::new();
            Packet::Unsubscribe(u)
        }
        Packet::Disconnect(d) if d.reason == ReasonCode::Success => {
            Packet::Disconnect(packet::Disconnect::normal())
        }
        Packet::Disconnect(_) | Packet::Auth(_) => return None,
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Disconnect, Property, PubResp, Publish, QoS};

    fn v5(p: &Packet) -> BytesMut {
        let mut b = BytesMut::new();
        packet::encode(p, &mut b).unwrap();
        b
    }

    #[test]
    fn to_wire_rewrites_each_packet_of_a_batch() {
        let mut props = Properties::new();
        props.push(Property::ContentType(packet::MqttStr::new("x").unwrap()));
        let publish = Packet::Publish(Publish {
            qos: QoS::AtLeastOnce,
            topic: packet::MqttStr::new("t").unwrap(),
            packet_id: Some(2),
            payload: Bytes::from_static(b"p"),
            properties: props,
            ..Default::default()
        });
        let mut ack = PubResp::new(1);
        ack.reason = ReasonCode::PacketIdentifierNotFound;
        let mut batch = v5(&Packet::PubComp(ack));
        batch.extend_from_slice(&v5(&publish));
        let mut why = Properties::new();
        why.push(Property::ReasonString(packet::MqttStr::new("bad").unwrap()));
        batch.extend_from_slice(&v5(&Packet::Disconnect(Disconnect {
            reason: ReasonCode::ProtocolError,
            properties: why,
        })));
        let wire = to_wire(ProtocolVersion::V311, batch.freeze()).unwrap();
        assert_eq!(&wire[..], b"\x70\x02\x00\x01\x32\x06\x00\x01t\x00\x02p");
    }

    #[test]
    fn to_wire_leaves_v5_alone() {
        let b = v5(&Packet::PingReq).freeze();
        assert_eq!(to_wire(ProtocolVersion::V5, b.clone()).unwrap(), b);
    }
}
