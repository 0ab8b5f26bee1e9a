//! PUBACK, PUBREC, PUBREL and PUBCOMP (spec sections 3.4-3.7) share one shape.

use super::codec::{check_packet_id, check_reason, expect_end, read_packet_id, read_reason, sum};
use super::{DecodeError, EncodeError, PacketType, Properties, PropertyContext, ReasonCode};
use bytes::{BufMut, Bytes, BytesMut};

/// The body of PUBACK, PUBREC, PUBREL or PUBCOMP. On the wire the reason
/// code and properties are left out when they are Success and empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PubResp {
    pub packet_id: u16,
    pub reason: ReasonCode,
    pub properties: Properties,
}

impl PubResp {
    /// A plain successful acknowledgement of `packet_id`.
    pub fn new(packet_id: u16) -> Self {
        PubResp {
            packet_id,
            reason: ReasonCode::Success,
            properties: Properties::new(),
        }
    }

    /// Validates and returns the remaining length, choosing the shortest
    /// form: 2 (id only), 3 (id and reason) or the full one.
    pub(super) fn body_len(&self, ptype: PacketType) -> Result<usize, EncodeError> {
        check_packet_id(self.packet_id)?;
        check_reason(self.reason, ptype)?;
        self.properties.validate(PropertyContext::Packet(ptype))?;
        Ok(if !self.properties.is_empty() {
            sum([3, self.properties.block_len()])
        } else if self.reason != ReasonCode::Success {
            3
        } else {
            2
        })
    }

    pub(super) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(self.packet_id);
        if !self.properties.is_empty() {
            out.put_u8(self.reason as u8);
            self.properties.write(out)?;
        } else if self.reason != ReasonCode::Success {
            out.put_u8(self.reason as u8);
        }
        Ok(())
    }

    /// Remaining length 2 means Success without properties, 3 means a
    /// reason code without properties (spec 3.4.2.1 and 3.4.2.2.1).
    pub(super) fn decode_body(ptype: PacketType, mut body: Bytes) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(&mut body)?;
        let reason = if body.is_empty() {
            ReasonCode::Success
        } else {
            read_reason(&mut body, ptype)?
        };
        let properties = if body.is_empty() {
            Properties::new()
        } else {
            Properties::decode(&mut body, PropertyContext::Packet(ptype))?
        };
        expect_end(&body)?;
        Ok(PubResp {
            packet_id,
            reason,
            properties,
        })
    }
}
