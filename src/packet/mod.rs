//! MQTT v5.0 and 3.1.1 wire format: packet types, encoding and incremental
//! decoding (the 3.1.1 forms in `v311`, chosen by a [`ProtocolVersion`]
//! passed to [`decode_with`] / [`encode_with`]).
//!
//! This module knows nothing about tokio or the rest of the crate. Decoding
//! follows the *check, then parse* pattern: [`decode`] first checks that a
//! whole packet is buffered (an incomplete packet is `Ok(None)`, not an
//! error) and that it fits our Maximum Packet Size before touching its body;
//! then it splits the packet off the buffer and parses it without copying
//! topic, payload or binary data (they are `Bytes` views of the read buffer).

mod auth;
mod codec;
mod connack;
mod connect;
mod disconnect;
mod error;
mod properties;
mod property_list;
mod publish;
mod pubresp;
mod reason;
mod suback;
mod subscribe;
pub mod topic;
mod unsuback;
mod unsubscribe;
mod v311;
mod varint;

#[cfg(test)]
mod seeds;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_v311;

pub use auth::Auth;
pub use codec::{
    complete_len, decode, decode_with, encode, encode_publish, encode_with, encoded_len,
    publish_len, set_publish_packet_id,
};
pub use connack::ConnAck;
pub use connect::{Connect, LastWill};
pub use disconnect::Disconnect;
pub use error::{DecodeError, EncodeError};
pub(crate) use properties::for_each_property;
pub use properties::{Direction, Property, PropertyContext, PropertyId, PropertyKind};
pub use property_list::{Properties, MAX_RECEIVED_PROPERTIES};
pub use publish::Publish;
pub use pubresp::PubResp;
pub(crate) use reason::for_each_reason_code;
pub use reason::ReasonCode;
pub use suback::SubAck;
pub use subscribe::{RetainHandling, Subscribe, SubscribeFilter, SubscriptionOptions};
pub use unsuback::UnsubAck;
pub use unsubscribe::Unsubscribe;
pub use v311::{ProtocolVersion, CONNACK_RETURN_CODES, SUBACK_RETURN_CODES};
pub use varint::{decode_varint, encode_varint, varint_len};

use bytes::Bytes;

/// A UTF-8 string held as `Bytes` so that decoding does not copy it.
///
/// Invariant: the bytes are valid UTF-8 without U+0000 (checked when built
/// from the wire by the decoder, or from a `&str` by [`MqttStr::new`]).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct MqttStr(Bytes);

impl MqttStr {
    /// Copies `s`; fails when it contains U+0000 or is longer than 65535 bytes.
    pub fn new(s: &str) -> Result<Self, EncodeError> {
        Self::from_bytes(Bytes::copy_from_slice(s.as_bytes()))
            .map_err(|_| EncodeError::InvalidString)
    }

    /// Takes `b` without copying after checking UTF-8, U+0000 and length.
    pub fn from_bytes(b: Bytes) -> Result<Self, DecodeError> {
        if b.len() > u16::MAX as usize {
            return Err(DecodeError::Malformed("string longer than 65535 bytes"));
        }
        let s = std::str::from_utf8(&b).map_err(|_| DecodeError::InvalidUtf8)?;
        if s.contains('\0') {
            return Err(DecodeError::InvalidUtf8);
        }
        Ok(MqttStr(b))
    }

    pub fn from_static(s: &'static str) -> Self {
        debug_assert!(!s.contains('\0') && s.len() <= u16::MAX as usize);
        MqttStr(Bytes::from_static(s.as_bytes()))
    }

    /// A copy in memory of its own. What is decoded is a view of the
    /// received buffer and keeps all of it alive: anything kept after its
    /// packet was handled is stored detached.
    pub fn detached(&self) -> Self {
        MqttStr(Bytes::copy_from_slice(&self.0))
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor checked that the bytes are UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for MqttStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::ops::Deref for MqttStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// Quality of service of a PUBLISH or granted by a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// The fifteen MQTT v5 control packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(PubResp),
    PubRec(PubResp),
    PubRel(PubResp),
    PubComp(PubResp),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

/// The packet type number in the high nibble of the fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    /// The type for a fixed header's high nibble; 0 and above 15 are not types.
    pub fn from_u8(v: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match v {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }

    /// The fixed header flags the spec mandates (PUBLISH's vary; 0 here).
    pub fn required_flags(self) -> u8 {
        match self {
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
            _ => 0,
        }
    }
}

impl Packet {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }
}
