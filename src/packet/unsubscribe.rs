//! UNSUBSCRIBE (spec section 3.10).

use super::codec::{check_packet_id, put_str, read_packet_id, read_str, sum};
use super::topic::is_valid_topic_filter;
use super::{DecodeError, EncodeError, MqttStr, PacketType, Properties, PropertyContext};
use bytes::{BufMut, Bytes, BytesMut};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: u16,
    pub properties: Properties,
    /// At least one.
    pub filters: Vec<MqttStr>,
}

const CTX: PropertyContext = PropertyContext::Packet(PacketType::Unsubscribe);

impl Unsubscribe {
    /// Validates and returns the remaining length.
    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        check_packet_id(self.packet_id)?;
        if self.filters.is_empty() {
            return Err(EncodeError::Invalid("UNSUBSCRIBE without topic filters"));
        }
        self.properties.validate(CTX)?;
        let mut len = sum([2, self.properties.block_len()]);
        for f in &self.filters {
            if !is_valid_topic_filter(f) {
                return Err(EncodeError::InvalidTopicFilter);
            }
            len = sum([len, 2 + f.len()]);
        }
        Ok(len)
    }

    pub(super) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(self.packet_id);
        self.properties.write(out)?;
        self.filters.iter().try_for_each(|f| put_str(out, f))
    }

    pub(super) fn decode_body(mut body: Bytes) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(&mut body)?;
        let properties = Properties::decode(&mut body, CTX)?;
        let mut filters = Vec::new();
        while !body.is_empty() {
            let filter = read_str(&mut body)?;
            if !is_valid_topic_filter(&filter) {
                return Err(DecodeError::InvalidTopicFilter);
            }
            filters.push(filter);
        }
        if filters.is_empty() {
            return Err(DecodeError::Malformed("UNSUBSCRIBE without topic filters"));
        }
        Ok(Unsubscribe {
            packet_id,
            properties,
            filters,
        })
    }
}
