//! AUTH (spec section 3.15).

use super::disconnect::{optional_len, read_optional, write_optional};
use super::{DecodeError, EncodeError, PacketType, Properties, ReasonCode};
use bytes::{Bytes, BytesMut};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    pub reason: ReasonCode,
    pub properties: Properties,
}

impl Auth {
    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        optional_len(PacketType::Auth, self.reason, &self.properties)
    }

    pub(super) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        write_optional(out, self.reason, &self.properties)
    }

    pub(super) fn decode_body(body: Bytes) -> Result<Self, DecodeError> {
        let (reason, properties) = read_optional(PacketType::Auth, body)?;
        Ok(Auth { reason, properties })
    }
}
