//! MQTT v5 properties (spec section 2.2.2.2): identifiers, where each may
//! appear, and one property's value ([`Property`]). A packet's list of
//! them is [`super::Properties`] (`property_list.rs`).

use super::codec::{
    check_binary, put_binary, put_str, read_binary, read_str, read_u16, read_u32, read_u8,
    read_varint,
};
use super::topic::is_valid_topic_name;
use super::varint::{encode_varint, varint_len, VARINT_MAX};
use super::{DecodeError, EncodeError, MqttStr, PacketType};
use bytes::{BufMut, Bytes, BytesMut};

/// Property identifiers, equal to the spec's numbers (and to `MQTT5C_PROP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PropertyId {
    PayloadFormatIndicator = 0x01,
    MessageExpiryInterval = 0x02,
    ContentType = 0x03,
    ResponseTopic = 0x08,
    CorrelationData = 0x09,
    SubscriptionIdentifier = 0x0B,
    SessionExpiryInterval = 0x11,
    AssignedClientIdentifier = 0x12,
    ServerKeepAlive = 0x13,
    AuthenticationMethod = 0x15,
    AuthenticationData = 0x16,
    RequestProblemInformation = 0x17,
    WillDelayInterval = 0x18,
    RequestResponseInformation = 0x19,
    ResponseInformation = 0x1A,
    ServerReference = 0x1C,
    ReasonString = 0x1F,
    ReceiveMaximum = 0x21,
    TopicAliasMaximum = 0x22,
    TopicAlias = 0x23,
    MaximumQoS = 0x24,
    RetainAvailable = 0x25,
    UserProperty = 0x26,
    MaximumPacketSize = 0x27,
    WildcardSubscriptionAvailable = 0x28,
    SubscriptionIdentifierAvailable = 0x29,
    SharedSubscriptionAvailable = 0x2A,
}

/// The wire type of a property's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyKind {
    Byte,
    TwoByteInt,
    FourByteInt,
    VarInt,
    Utf8String,
    Utf8Pair,
    Binary,
}

/// Where a property may appear. `Will` stands for the will properties inside
/// CONNECT's payload, which are not a packet type of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyContext {
    Packet(PacketType),
    Will,
}

/// Which way a packet travels. PUBLISH, its acknowledgements, DISCONNECT
/// and AUTH go both ways, and the spec allows a few properties in them
/// from one side only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the client.
    ToServer,
    /// Sent by the server.
    ToClient,
}

/// One property with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Property {
    PayloadFormatIndicator(u8),
    MessageExpiryInterval(u32),
    ContentType(MqttStr),
    ResponseTopic(MqttStr),
    CorrelationData(Bytes),
    SubscriptionIdentifier(u32),
    SessionExpiryInterval(u32),
    AssignedClientIdentifier(MqttStr),
    ServerKeepAlive(u16),
    AuthenticationMethod(MqttStr),
    AuthenticationData(Bytes),
    RequestProblemInformation(u8),
    WillDelayInterval(u32),
    RequestResponseInformation(u8),
    ResponseInformation(MqttStr),
    ServerReference(MqttStr),
    ReasonString(MqttStr),
    ReceiveMaximum(u16),
    TopicAliasMaximum(u16),
    TopicAlias(u16),
    MaximumQoS(u8),
    RetainAvailable(u8),
    UserProperty(MqttStr, MqttStr),
    MaximumPacketSize(u32),
    WildcardSubscriptionAvailable(u8),
    SubscriptionIdentifierAvailable(u8),
    SharedSubscriptionAvailable(u8),
}

// Bits of a context set: bit 0 is the will, bit n is packet type n.
const WILL: u16 = 1;
const CONNECT: u16 = 1 << 1;
const CONNACK: u16 = 1 << 2;
const PUBLISH: u16 = 1 << 3;
const PUBACK: u16 = 1 << 4;
const PUBREC: u16 = 1 << 5;
const PUBREL: u16 = 1 << 6;
const PUBCOMP: u16 = 1 << 7;
const SUBSCRIBE: u16 = 1 << 8;
const SUBACK: u16 = 1 << 9;
const UNSUBSCRIBE: u16 = 1 << 10;
const UNSUBACK: u16 = 1 << 11;
const DISCONNECT: u16 = 1 << 14;
const AUTH: u16 = 1 << 15;

/// Where a property may appear, per side (bit sets as above).
#[derive(Clone, Copy)]
struct Senders {
    to_server: u16,
    to_client: u16,
}

/// Allowed alike from both sides. Single-direction packets (CONNECT,
/// CONNACK, SUBSCRIBE, ...) need no side: the other never sends them.
const fn both(contexts: u16) -> Senders {
    Senders {
        to_server: contexts,
        to_client: contexts,
    }
}

impl PropertyContext {
    fn bit(self) -> u16 {
        match self {
            PropertyContext::Will => WILL,
            PropertyContext::Packet(t) => 1 << (t as u8),
        }
    }

    /// The packet type number reported in errors (will properties live in CONNECT).
    pub(super) fn packet_number(self) -> u8 {
        match self {
            PropertyContext::Will => PacketType::Connect as u8,
            PropertyContext::Packet(t) => t as u8,
        }
    }
}

impl PropertyId {
    pub fn from_u8(id: u8) -> Option<PropertyId> {
        use PropertyId::*;
        Some(match id {
            0x01 => PayloadFormatIndicator,
            0x02 => MessageExpiryInterval,
            0x03 => ContentType,
            0x08 => ResponseTopic,
            0x09 => CorrelationData,
            0x0B => SubscriptionIdentifier,
            0x11 => SessionExpiryInterval,
            0x12 => AssignedClientIdentifier,
            0x13 => ServerKeepAlive,
            0x15 => AuthenticationMethod,
            0x16 => AuthenticationData,
            0x17 => RequestProblemInformation,
            0x18 => WillDelayInterval,
            0x19 => RequestResponseInformation,
            0x1A => ResponseInformation,
            0x1C => ServerReference,
            0x1F => ReasonString,
            0x21 => ReceiveMaximum,
            0x22 => TopicAliasMaximum,
            0x23 => TopicAlias,
            0x24 => MaximumQoS,
            0x25 => RetainAvailable,
            0x26 => UserProperty,
            0x27 => MaximumPacketSize,
            0x28 => WildcardSubscriptionAvailable,
            0x29 => SubscriptionIdentifierAvailable,
            0x2A => SharedSubscriptionAvailable,
            _ => return None,
        })
    }

    /// Every property id, in numeric order (handy for tests and the C API).
    pub const ALL: [PropertyId; 27] = {
        use PropertyId::*;
        [
            PayloadFormatIndicator,
            MessageExpiryInterval,
            ContentType,
            ResponseTopic,
            CorrelationData,
            SubscriptionIdentifier,
            SessionExpiryInterval,
            AssignedClientIdentifier,
            ServerKeepAlive,
            AuthenticationMethod,
            AuthenticationData,
            RequestProblemInformation,
            WillDelayInterval,
            RequestResponseInformation,
            ResponseInformation,
            ServerReference,
            ReasonString,
            ReceiveMaximum,
            TopicAliasMaximum,
            TopicAlias,
            MaximumQoS,
            RetainAvailable,
            UserProperty,
            MaximumPacketSize,
            WildcardSubscriptionAvailable,
            SubscriptionIdentifierAvailable,
            SharedSubscriptionAvailable,
        ]
    };

    pub fn kind(self) -> PropertyKind {
        use PropertyId::*;
        match self {
            PayloadFormatIndicator
            | RequestProblemInformation
            | RequestResponseInformation
            | MaximumQoS
            | RetainAvailable
            | WildcardSubscriptionAvailable
            | SubscriptionIdentifierAvailable
            | SharedSubscriptionAvailable => PropertyKind::Byte,
            ServerKeepAlive | ReceiveMaximum | TopicAliasMaximum | TopicAlias => {
                PropertyKind::TwoByteInt
            }
            MessageExpiryInterval
            | SessionExpiryInterval
            | WillDelayInterval
            | MaximumPacketSize => PropertyKind::FourByteInt,
            SubscriptionIdentifier => PropertyKind::VarInt,
            ContentType
            | ResponseTopic
            | AssignedClientIdentifier
            | AuthenticationMethod
            | ResponseInformation
            | ServerReference
            | ReasonString => PropertyKind::Utf8String,
            CorrelationData | AuthenticationData => PropertyKind::Binary,
            UserProperty => PropertyKind::Utf8Pair,
        }
    }

    /// The spec's name, e.g. "Topic Alias", for error messages.
    pub fn name(self) -> &'static str {
        use PropertyId::*;
        match self {
            PayloadFormatIndicator => "Payload Format Indicator",
            MessageExpiryInterval => "Message Expiry Interval",
            ContentType => "Content Type",
            ResponseTopic => "Response Topic",
            CorrelationData => "Correlation Data",
            SubscriptionIdentifier => "Subscription Identifier",
            SessionExpiryInterval => "Session Expiry Interval",
            AssignedClientIdentifier => "Assigned Client Identifier",
            ServerKeepAlive => "Server Keep Alive",
            AuthenticationMethod => "Authentication Method",
            AuthenticationData => "Authentication Data",
            RequestProblemInformation => "Request Problem Information",
            WillDelayInterval => "Will Delay Interval",
            RequestResponseInformation => "Request Response Information",
            ResponseInformation => "Response Information",
            ServerReference => "Server Reference",
            ReasonString => "Reason String",
            ReceiveMaximum => "Receive Maximum",
            TopicAliasMaximum => "Topic Alias Maximum",
            TopicAlias => "Topic Alias",
            MaximumQoS => "Maximum QoS",
            RetainAvailable => "Retain Available",
            UserProperty => "User Property",
            MaximumPacketSize => "Maximum Packet Size",
            WildcardSubscriptionAvailable => "Wildcard Subscription Available",
            SubscriptionIdentifierAvailable => "Subscription Identifier Available",
            SharedSubscriptionAvailable => "Shared Subscription Available",
        }
    }

    /// User Property and Subscription Identifier may appear more than once.
    pub fn is_repeatable(self) -> bool {
        matches!(
            self,
            PropertyId::UserProperty | PropertyId::SubscriptionIdentifier
        )
    }

    /// Whether the spec allows this property in `ctx` sent by either side:
    /// what the codec encodes and decodes, since both sides use it (our
    /// tests run brokers on it).
    pub fn allowed_in(self, ctx: PropertyContext) -> bool {
        let s = self.senders();
        (s.to_server | s.to_client) & ctx.bit() != 0
    }

    /// Whether the spec allows this property in `ctx` travelling in `dir`.
    pub fn allowed_from(self, ctx: PropertyContext, dir: Direction) -> bool {
        let s = self.senders();
        let set = match dir {
            Direction::ToServer => s.to_server,
            Direction::ToClient => s.to_client,
        };
        set & ctx.bit() != 0
    }

    /// Repeatable here: a PUBLISH may carry several Subscription Identifiers
    /// but a SUBSCRIBE only one (spec 3.8.2.1.2).
    pub(super) fn repeatable_in(self, ctx: PropertyContext) -> bool {
        match self {
            PropertyId::SubscriptionIdentifier => {
                ctx != PropertyContext::Packet(PacketType::Subscribe)
            }
            other => other.is_repeatable(),
        }
    }

    /// The spec's table of section 2.2.2.2 as context sets per side: most
    /// properties are allowed alike from both sides (`both`); the packet
    /// sections restrict a few to one side.
    fn senders(self) -> Senders {
        use PropertyId::*;
        match self {
            PayloadFormatIndicator
            | MessageExpiryInterval
            | ContentType
            | ResponseTopic
            | CorrelationData => both(PUBLISH | WILL),
            // A client's PUBLISH must not carry one (MQTT-3.3.4-6): the
            // server adds them for the subscriptions a message matched.
            SubscriptionIdentifier => Senders {
                to_server: SUBSCRIBE,
                to_client: PUBLISH,
            },
            // The server must not send it in DISCONNECT (MQTT-3.14.2-2).
            SessionExpiryInterval => Senders {
                to_server: CONNECT | DISCONNECT,
                to_client: CONNACK,
            },
            AssignedClientIdentifier
            | ServerKeepAlive
            | ResponseInformation
            | MaximumQoS
            | RetainAvailable
            | WildcardSubscriptionAvailable
            | SubscriptionIdentifierAvailable
            | SharedSubscriptionAvailable => both(CONNACK),
            AuthenticationMethod | AuthenticationData => both(CONNECT | CONNACK | AUTH),
            RequestProblemInformation | RequestResponseInformation => both(CONNECT),
            WillDelayInterval => both(WILL),
            ServerReference => both(CONNACK | DISCONNECT),
            ReasonString => both(
                CONNACK
                    | PUBACK
                    | PUBREC
                    | PUBREL
                    | PUBCOMP
                    | SUBACK
                    | UNSUBACK
                    | DISCONNECT
                    | AUTH,
            ),
            ReceiveMaximum | TopicAliasMaximum | MaximumPacketSize => both(CONNECT | CONNACK),
            TopicAlias => both(PUBLISH),
            UserProperty => both(
                WILL | CONNECT
                    | CONNACK
                    | PUBLISH
                    | PUBACK
                    | PUBREC
                    | PUBREL
                    | PUBCOMP
                    | SUBSCRIBE
                    | SUBACK
                    | UNSUBSCRIBE
                    | UNSUBACK
                    | DISCONNECT
                    | AUTH,
            ),
        }
    }
}

impl Property {
    pub fn id(&self) -> PropertyId {
        use Property as P;
        use PropertyId as I;
        match self {
            P::PayloadFormatIndicator(_) => I::PayloadFormatIndicator,
            P::MessageExpiryInterval(_) => I::MessageExpiryInterval,
            P::ContentType(_) => I::ContentType,
            P::ResponseTopic(_) => I::ResponseTopic,
            P::CorrelationData(_) => I::CorrelationData,
            P::SubscriptionIdentifier(_) => I::SubscriptionIdentifier,
            P::SessionExpiryInterval(_) => I::SessionExpiryInterval,
            P::AssignedClientIdentifier(_) => I::AssignedClientIdentifier,
            P::ServerKeepAlive(_) => I::ServerKeepAlive,
            P::AuthenticationMethod(_) => I::AuthenticationMethod,
            P::AuthenticationData(_) => I::AuthenticationData,
            P::RequestProblemInformation(_) => I::RequestProblemInformation,
            P::WillDelayInterval(_) => I::WillDelayInterval,
            P::RequestResponseInformation(_) => I::RequestResponseInformation,
            P::ResponseInformation(_) => I::ResponseInformation,
            P::ServerReference(_) => I::ServerReference,
            P::ReasonString(_) => I::ReasonString,
            P::ReceiveMaximum(_) => I::ReceiveMaximum,
            P::TopicAliasMaximum(_) => I::TopicAliasMaximum,
            P::TopicAlias(_) => I::TopicAlias,
            P::MaximumQoS(_) => I::MaximumQoS,
            P::RetainAvailable(_) => I::RetainAvailable,
            P::UserProperty(_, _) => I::UserProperty,
            P::MaximumPacketSize(_) => I::MaximumPacketSize,
            P::WildcardSubscriptionAvailable(_) => I::WildcardSubscriptionAvailable,
            P::SubscriptionIdentifierAvailable(_) => I::SubscriptionIdentifierAvailable,
            P::SharedSubscriptionAvailable(_) => I::SharedSubscriptionAvailable,
        }
    }

    /// The value of a byte, two-byte, four-byte or varint property.
    pub fn as_int(&self) -> Option<u32> {
        use Property as P;
        match *self {
            P::PayloadFormatIndicator(v)
            | P::RequestProblemInformation(v)
            | P::RequestResponseInformation(v)
            | P::MaximumQoS(v)
            | P::RetainAvailable(v)
            | P::WildcardSubscriptionAvailable(v)
            | P::SubscriptionIdentifierAvailable(v)
            | P::SharedSubscriptionAvailable(v) => Some(u32::from(v)),
            P::ServerKeepAlive(v)
            | P::ReceiveMaximum(v)
            | P::TopicAliasMaximum(v)
            | P::TopicAlias(v) => Some(u32::from(v)),
            P::MessageExpiryInterval(v)
            | P::SessionExpiryInterval(v)
            | P::WillDelayInterval(v)
            | P::MaximumPacketSize(v)
            | P::SubscriptionIdentifier(v) => Some(v),
            _ => None,
        }
    }

    /// The value of a UTF-8 string property (not of a User Property pair).
    pub fn as_str(&self) -> Option<&MqttStr> {
        use Property as P;
        match self {
            P::ContentType(s)
            | P::ResponseTopic(s)
            | P::AssignedClientIdentifier(s)
            | P::AuthenticationMethod(s)
            | P::ResponseInformation(s)
            | P::ServerReference(s)
            | P::ReasonString(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a binary property.
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Property::CorrelationData(b) | Property::AuthenticationData(b) => Some(b),
            _ => None,
        }
    }

    /// Value restrictions the spec makes a Protocol Error (0/1 flags,
    /// zero Receive Maximum, Maximum Packet Size, Topic Alias or
    /// Subscription Identifier, a Response Topic with wildcards).
    pub(super) fn value_problem(&self) -> Option<&'static str> {
        use Property as P;
        match *self {
            P::PayloadFormatIndicator(v)
            | P::RequestProblemInformation(v)
            | P::RequestResponseInformation(v)
            | P::MaximumQoS(v)
            | P::RetainAvailable(v)
            | P::WildcardSubscriptionAvailable(v)
            | P::SubscriptionIdentifierAvailable(v)
            | P::SharedSubscriptionAvailable(v)
                if v > 1 =>
            {
                Some("byte property other than 0 or 1")
            }
            P::ReceiveMaximum(0) => Some("Receive Maximum 0"),
            // A Topic Name: non-empty and without wildcards (3.3.2.3.5).
            P::ResponseTopic(ref t) if !is_valid_topic_name(t) => {
                Some("Response Topic is not a valid topic name")
            }
            P::MaximumPacketSize(0) => Some("Maximum Packet Size 0"),
            P::TopicAlias(0) => Some("Topic Alias 0"),
            P::SubscriptionIdentifier(0) => Some("Subscription Identifier 0"),
            P::SubscriptionIdentifier(v) if v > VARINT_MAX => {
                Some("Subscription Identifier above 268,435,455")
            }
            _ => None,
        }
    }

    /// Encode-side checks that do not depend on the packet.
    pub(super) fn check(&self) -> Result<(), EncodeError> {
        if let Some(b) = self.as_binary() {
            check_binary(b)?;
        }
        match self.value_problem() {
            Some(why) => Err(EncodeError::Invalid(why)),
            None => Ok(()),
        }
    }

    /// Identifier byte plus value.
    pub(super) fn encoded_len(&self) -> usize {
        let value = match self {
            Property::UserProperty(k, v) => 4 + k.len() + v.len(),
            Property::SubscriptionIdentifier(v) => varint_len(*v),
            p => match p.id().kind() {
                PropertyKind::Byte => 1,
                PropertyKind::TwoByteInt => 2,
                PropertyKind::FourByteInt => 4,
                PropertyKind::Utf8String => 2 + p.as_str().map_or(0, MqttStr::len),
                PropertyKind::Binary => 2 + p.as_binary().map_or(0, Bytes::len),
                // Both handled above.
                PropertyKind::VarInt | PropertyKind::Utf8Pair => 0,
            },
        };
        1 + value
    }

    pub(super) fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        use Property as P;
        out.put_u8(self.id() as u8);
        match self {
            P::PayloadFormatIndicator(v)
            | P::RequestProblemInformation(v)
            | P::RequestResponseInformation(v)
            | P::MaximumQoS(v)
            | P::RetainAvailable(v)
            | P::WildcardSubscriptionAvailable(v)
            | P::SubscriptionIdentifierAvailable(v)
            | P::SharedSubscriptionAvailable(v) => out.put_u8(*v),
            P::ServerKeepAlive(v)
            | P::ReceiveMaximum(v)
            | P::TopicAliasMaximum(v)
            | P::TopicAlias(v) => out.put_u16(*v),
            P::MessageExpiryInterval(v)
            | P::SessionExpiryInterval(v)
            | P::WillDelayInterval(v)
            | P::MaximumPacketSize(v) => out.put_u32(*v),
            P::SubscriptionIdentifier(v) => encode_varint(*v, out),
            P::ContentType(s)
            | P::ResponseTopic(s)
            | P::AssignedClientIdentifier(s)
            | P::AuthenticationMethod(s)
            | P::ResponseInformation(s)
            | P::ServerReference(s)
            | P::ReasonString(s) => put_str(out, s)?,
            P::CorrelationData(b) | P::AuthenticationData(b) => put_binary(out, b)?,
            P::UserProperty(k, v) => {
                put_str(out, k)?;
                put_str(out, v)?;
            }
        }
        Ok(())
    }

    /// Reads the value of a property whose identifier was just read.
    pub(super) fn read(id: PropertyId, buf: &mut Bytes) -> Result<Property, DecodeError> {
        use Property as P;
        use PropertyId as I;
        Ok(match id {
            I::PayloadFormatIndicator => P::PayloadFormatIndicator(read_u8(buf)?),
            I::MessageExpiryInterval => P::MessageExpiryInterval(read_u32(buf)?),
            I::ContentType => P::ContentType(read_str(buf)?),
            I::ResponseTopic => P::ResponseTopic(read_str(buf)?),
            I::CorrelationData => P::CorrelationData(read_binary(buf)?),
            I::SubscriptionIdentifier => P::SubscriptionIdentifier(read_varint(buf)?),
            I::SessionExpiryInterval => P::SessionExpiryInterval(read_u32(buf)?),
            I::AssignedClientIdentifier => P::AssignedClientIdentifier(read_str(buf)?),
            I::ServerKeepAlive => P::ServerKeepAlive(read_u16(buf)?),
            I::AuthenticationMethod => P::AuthenticationMethod(read_str(buf)?),
            I::AuthenticationData => P::AuthenticationData(read_binary(buf)?),
            I::RequestProblemInformation => P::RequestProblemInformation(read_u8(buf)?),
            I::WillDelayInterval => P::WillDelayInterval(read_u32(buf)?),
            I::RequestResponseInformation => P::RequestResponseInformation(read_u8(buf)?),
            I::ResponseInformation => P::ResponseInformation(read_str(buf)?),
            I::ServerReference => P::ServerReference(read_str(buf)?),
            I::ReasonString => P::ReasonString(read_str(buf)?),
            I::ReceiveMaximum => P::ReceiveMaximum(read_u16(buf)?),
            I::TopicAliasMaximum => P::TopicAliasMaximum(read_u16(buf)?),
            I::TopicAlias => P::TopicAlias(read_u16(buf)?),
            I::MaximumQoS => P::MaximumQoS(read_u8(buf)?),
            I::RetainAvailable => P::RetainAvailable(read_u8(buf)?),
            I::UserProperty => {
                let key = read_str(buf)?;
                P::UserProperty(key, read_str(buf)?)
            }
            I::MaximumPacketSize => P::MaximumPacketSize(read_u32(buf)?),
            I::WildcardSubscriptionAvailable => P::WildcardSubscriptionAvailable(read_u8(buf)?),
            I::SubscriptionIdentifierAvailable => P::SubscriptionIdentifierAvailable(read_u8(buf)?),
            I::SharedSubscriptionAvailable => P::SharedSubscriptionAvailable(read_u8(buf)?),
        })
    }
}
