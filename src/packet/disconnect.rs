//! DISCONNECT (spec section 3.14), and the optional reason-and-properties
//! shape it shares with AUTH.

use super::codec::{check_reason, expect_end, read_reason, sum};
use super::{DecodeError, EncodeError, PacketType, Properties, PropertyContext, ReasonCode};
use bytes::{BufMut, Bytes, BytesMut};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disconnect {
    pub reason: ReasonCode,
    pub properties: Properties,
}

impl Disconnect {
    /// A normal disconnection without properties (two bytes on the wire).
    pub fn normal() -> Self {
        Disconnect {
            reason: ReasonCode::Success,
            properties: Properties::new(),
        }
    }

    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        optional_len(PacketType::Disconnect, self.reason, &self.properties)
    }

    pub(super) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        write_optional(out, self.reason, &self.properties)
    }

    pub(super) fn decode_body(body: Bytes) -> Result<Self, DecodeError> {
        let (reason, properties) = read_optional(PacketType::Disconnect, body)?;
        Ok(Disconnect { reason, properties })
    }
}

/// Validates and returns the remaining length using the short forms:
/// 0 for Success without properties, 1 for a reason without properties.
pub(super) fn optional_len(
    ptype: PacketType,
    reason: ReasonCode,
    properties: &Properties,
) -> Result<usize, EncodeError> {
    check_reason(reason, ptype)?;
    properties.validate(PropertyContext::Packet(ptype))?;
    Ok(if !properties.is_empty() {
        sum([1, properties.block_len()])
    } else if reason != ReasonCode::Success {
        1
    } else {
        0
    })
}

pub(super) fn write_optional(
    out: &mut BytesMut,
    reason: ReasonCode,
    properties: &Properties,
) -> Result<(), EncodeError> {
    if !properties.is_empty() {
        out.put_u8(reason as u8);
        properties.write(out)?;
    } else if reason != ReasonCode::Success {
        out.put_u8(reason as u8);
    }
    Ok(())
}

/// Remaining length 0 means Success; below 2 there is no property length
/// (spec 3.14.2.1, 3.14.2.2.1, 3.15.2.1, 3.15.2.2.1).
pub(super) fn read_optional(
    ptype: PacketType,
    mut body: Bytes,
) -> Result<(ReasonCode, Properties), DecodeError> {
    if body.is_empty() {
        return Ok((ReasonCode::Success, Properties::new()));
    }
    let reason = read_reason(&mut body, ptype)?;
    let properties = if body.is_empty() {
        Properties::new()
    } else {
        Properties::decode(&mut body, PropertyContext::Packet(ptype))?
    };
    expect_end(&body)?;
    Ok((reason, properties))
}
