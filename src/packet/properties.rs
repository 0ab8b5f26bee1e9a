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

include!("property_table.rs");
pub(crate) use for_each_property;

macro_rules! define_property_ids {
    ($($name:ident = $id:literal, $c:ident, $kind:ident, $text:literal, $senders:expr, $doc:literal;)*) => {
        /// Property identifiers, equal to the spec's numbers (and to
        /// `MQTT5C_PROP_*`): property_table.rs.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum PropertyId {
            $($name = $id,)*
        }

        const COUNT: usize = [$($id),*].len();

        impl PropertyId {
            pub fn from_u8(id: u8) -> Option<PropertyId> {
                match id {
                    $($id => Some(PropertyId::$name),)*
                    _ => None,
                }
            }

            /// Every property id, in numeric order (handy for tests and the C API).
            pub const ALL: [PropertyId; COUNT] = [$(PropertyId::$name),*];

            pub fn kind(self) -> PropertyKind {
                match self {
                    $(PropertyId::$name => PropertyKind::$kind,)*
                }
            }

            /// The spec's name, e.g. "Topic Alias", for error messages.
            pub fn name(self) -> &'static str {
                match self {
                    $(PropertyId::$name => $text,)*
                }
            }

            /// Where each side may send it (spec 2.2.2.2 and the packet sections).
            fn senders(self) -> Senders {
                match self {
                    $(PropertyId::$name => $senders,)*
                }
            }
        }
    };
}

for_each_property!(define_property_ids);

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
