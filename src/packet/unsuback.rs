//! UNSUBACK (spec section 3.11).

use super::suback::{list_len, read_list, write_list};
use super::{DecodeError, EncodeError, PacketType, Properties, ReasonCode};
use bytes::{Bytes, BytesMut};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: u16,
    pub properties: Properties,
    pub reasons: Vec<ReasonCode>,
}

impl UnsubAck {
    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        list_len(
            PacketType::UnsubAck,
            self.packet_id,
            &self.properties,
            &self.reasons,
        )
    }

    pub(super) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        write_list(out, self.packet_id, &self.properties, &self.reasons)
    }

    pub(super) fn decode_body(body: Bytes) -> Result<Self, DecodeError> {
        let (packet_id, properties, reasons) = read_list(PacketType::UnsubAck, body)?;
        Ok(UnsubAck {
            packet_id,
            properties,
            reasons,
        })
    }
}
