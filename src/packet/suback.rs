//! SUBACK (spec section 3.9), and the reason-list shape it shares with UNSUBACK.

use super::codec::{check_packet_id, check_reason, read_packet_id, read_reason, sum};
use super::{DecodeError, EncodeError, PacketType, Properties, PropertyContext, ReasonCode};
use bytes::{BufMut, Bytes, BytesMut};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: u16,
    pub properties: Properties,
    /// One per filter of the SUBSCRIBE, in order.
    pub reasons: Vec<ReasonCode>,
}

impl SubAck {
    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        list_len(
            PacketType::SubAck,
            self.packet_id,
            &self.properties,
            &self.reasons,
        )
    }

    pub(super) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        write_list(out, self.packet_id, &self.properties, &self.reasons)
    }

    pub(super) fn decode_body(body: Bytes) -> Result<Self, DecodeError> {
        let (packet_id, properties, reasons) = read_list(PacketType::SubAck, body)?;
        Ok(SubAck {
            packet_id,
            properties,
            reasons,
        })
    }
}

/// Validates a SUBACK/UNSUBACK and returns its remaining length. The list
/// answers a SUBSCRIBE/UNSUBSCRIBE, which has at least one filter, so it
/// may not be empty.
pub(super) fn list_len(
    ptype: PacketType,
    packet_id: u16,
    properties: &Properties,
    reasons: &[ReasonCode],
) -> Result<usize, EncodeError> {
    check_packet_id(packet_id)?;
    if reasons.is_empty() {
        return Err(EncodeError::Invalid("acknowledgement without reason codes"));
    }
    reasons.iter().try_for_each(|&rc| check_reason(rc, ptype))?;
    properties.validate(PropertyContext::Packet(ptype))?;
    Ok(sum([2, properties.block_len(), reasons.len()]))
}

pub(super) fn write_list(
    out: &mut BytesMut,
    packet_id: u16,
    properties: &Properties,
    reasons: &[ReasonCode],
) -> Result<(), EncodeError> {
    out.put_u16(packet_id);
    properties.write(out)?;
    for &rc in reasons {
        out.put_u8(rc as u8);
    }
    Ok(())
}

pub(super) fn read_list(
    ptype: PacketType,
    mut body: Bytes,
) -> Result<(u16, Properties, Vec<ReasonCode>), DecodeError> {
    let packet_id = read_packet_id(&mut body)?;
    let properties = Properties::decode(&mut body, PropertyContext::Packet(ptype))?;
    let mut reasons = Vec::with_capacity(body.len());
    while !body.is_empty() {
        reasons.push(read_reason(&mut body, ptype)?);
    }
    if reasons.is_empty() {
        return Err(DecodeError::Malformed(
            "acknowledgement without reason codes",
        ));
    }
    Ok((packet_id, properties, reasons))
}
