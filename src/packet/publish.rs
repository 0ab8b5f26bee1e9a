//! PUBLISH (spec section 3.3).

use super::codec::{check_packet_id, put_str, read_packet_id, read_str, sum};
use super::topic::is_valid_topic_name;
use super::{
    DecodeError, EncodeError, MqttStr, PacketType, Properties, PropertyContext, PropertyId, QoS,
};
use bytes::{BufMut, Bytes, BytesMut};

/// A PUBLISH packet. `topic` may be empty when a topic alias stands for it.
/// `packet_id` is `Some` exactly when `qos` is above 0.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    pub topic: MqttStr,
    pub packet_id: Option<u16>,
    pub properties: Properties,
    pub payload: Bytes,
}

const CTX: PropertyContext = PropertyContext::Packet(PacketType::Publish);

/// An empty topic is allowed only when a Topic Alias stands for it (3.3.2.1).
fn topic_ok(topic: &str, properties: &Properties) -> bool {
    if topic.is_empty() {
        properties.get(PropertyId::TopicAlias).is_some()
    } else {
        is_valid_topic_name(topic)
    }
}

impl Publish {
    /// Validates and returns the remaining length. Cheap: no allocation.
    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, None) => {}
            (QoS::AtMostOnce, Some(_)) | (_, None) => return Err(EncodeError::InvalidPacketId),
            (_, Some(id)) => check_packet_id(id)?,
        }
        if self.dup && self.qos == QoS::AtMostOnce {
            return Err(EncodeError::Invalid("DUP set on a QoS 0 PUBLISH"));
        }
        if !topic_ok(&self.topic, &self.properties) {
            return Err(EncodeError::InvalidTopicName);
        }
        self.properties.validate(CTX)?;
        let id_len = if self.packet_id.is_some() { 2 } else { 0 };
        Ok(sum([
            2 + self.topic.len() + id_len,
            self.properties.block_len(),
            self.payload.len(),
        ]))
    }

    /// DUP, QoS and RETAIN for the fixed header's low nibble.
    pub(super) fn header_flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | ((self.qos as u8) << 1) | u8::from(self.retain)
    }

    /// The payload is copied exactly once, straight into `out`.
    pub(super) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        put_str(out, &self.topic)?;
        if let Some(id) = self.packet_id {
            out.put_u16(id);
        }
        self.properties.write(out)?;
        out.extend_from_slice(&self.payload);
        Ok(())
    }

    /// `flags` were checked with the fixed header (QoS 3, DUP on QoS 0).
    /// Topic and payload are slices of `body`, not copies.
    pub(super) fn decode_body(flags: u8, mut body: Bytes) -> Result<Self, DecodeError> {
        let qos_bits = (flags >> 1) & 0x03;
        let qos = QoS::from_u8(qos_bits).ok_or(DecodeError::InvalidQoS(qos_bits))?;
        let topic = read_str(&mut body)?;
        let packet_id = match qos {
            QoS::AtMostOnce => None,
            _ => Some(read_packet_id(&mut body)?),
        };
        let properties = Properties::decode(&mut body, CTX)?;
        if !topic_ok(&topic, &properties) {
            return Err(DecodeError::InvalidTopicName);
        }
        Ok(Publish {
            dup: flags & 0x08 != 0,
            qos,
            retain: flags & 0x01 != 0,
            topic,
            packet_id,
            properties,
            payload: body,
        })
    }
}
