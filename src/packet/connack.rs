//! CONNACK (spec section 3.2).

use super::codec::{check_reason, expect_end, read_reason, read_u8, sum};
use super::{DecodeError, EncodeError, PacketType, Properties, PropertyContext, ReasonCode};
use bytes::{BufMut, Bytes, BytesMut};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: Properties,
}

const CTX: PropertyContext = PropertyContext::Packet(PacketType::ConnAck);

impl ConnAck {
    /// Validates and returns the remaining length.
    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        check_reason(self.reason, PacketType::ConnAck)?;
        if self.session_present && self.reason.is_error() {
            return Err(EncodeError::Invalid("session present on a failed CONNACK"));
        }
        self.properties.validate(CTX)?;
        Ok(sum([2, self.properties.block_len()]))
    }

    pub(super) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(u8::from(self.session_present));
        out.put_u8(self.reason as u8);
        self.properties.write(out)
    }

    /// The property length is mandatory in CONNACK, unlike in the acks.
    pub(super) fn decode_body(mut body: Bytes) -> Result<Self, DecodeError> {
        let ack_flags = read_u8(&mut body)?;
        if ack_flags & 0xFE != 0 {
            return Err(DecodeError::Malformed("reserved CONNACK flag set"));
        }
        let session_present = ack_flags & 0x01 != 0;
        let reason = read_reason(&mut body, PacketType::ConnAck)?;
        // Spec 3.2.2.1.1: a refused connection never has a session.
        if session_present && reason.is_error() {
            return Err(DecodeError::ProtocolError(
                "session present on a failed CONNACK",
            ));
        }
        let properties = Properties::decode(&mut body, CTX)?;
        expect_end(&body)?;
        Ok(ConnAck {
            session_present,
            reason,
            properties,
        })
    }
}
