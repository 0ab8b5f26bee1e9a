//! MQTT v5 properties (spec section 2.2.2.2).
//!
//! Properties are kept as an ordered list so that repeatable ones (user
//! properties, subscription identifiers) keep their order, and the C API can
//! get and set any of them by identifier. Lists are short, so lookups are a
//! linear scan; a PUBLISH without properties allocates nothing.

use super::{DecodeError, EncodeError, MqttStr, PacketType};
use bytes::{Bytes, BytesMut};

/// Property identifiers, equal to the spec's numbers (and to `MQTT_PROP_*`).
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

/// An ordered list of properties.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Properties(pub Vec<Property>);

impl PropertyId {
    pub fn from_u8(id: u8) -> Option<PropertyId> {
        let _ = id;
        todo!()
    }
    pub fn kind(self) -> PropertyKind {
        todo!()
    }
    /// The spec's name, e.g. "Topic Alias", for error messages.
    pub fn name(self) -> &'static str {
        todo!()
    }
    /// User Property and Subscription Identifier may appear more than once.
    pub fn is_repeatable(self) -> bool {
        todo!()
    }
    /// Whether the spec allows this property in `ctx`.
    pub fn allowed_in(self, ctx: PropertyContext) -> bool {
        let _ = ctx;
        todo!()
    }
}

impl Property {
    pub fn id(&self) -> PropertyId {
        todo!()
    }
}

impl Properties {
    pub fn new() -> Self {
        Properties(Vec::new())
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Property> {
        self.0.iter()
    }
    pub fn push(&mut self, p: Property) {
        self.0.push(p)
    }
    /// The first property with this id.
    pub fn get(&self, id: PropertyId) -> Option<&Property> {
        self.0.iter().find(|p| p.id() == id)
    }
    /// Removes every property with this id.
    pub fn remove(&mut self, id: PropertyId) {
        self.0.retain(|p| p.id() != id)
    }
    /// Replaces a single-valued property, or appends a repeatable one.
    pub fn set(&mut self, p: Property) {
        let _ = p;
        todo!()
    }
    /// Value of an integer property (byte, two-byte, four-byte or varint).
    pub fn get_int(&self, id: PropertyId) -> Option<u32> {
        let _ = id;
        todo!()
    }
    pub fn get_str(&self, id: PropertyId) -> Option<&MqttStr> {
        let _ = id;
        todo!()
    }
    pub fn get_binary(&self, id: PropertyId) -> Option<&Bytes> {
        let _ = id;
        todo!()
    }
    /// The first property not allowed in `ctx`, if any.
    pub fn first_not_allowed(&self, ctx: PropertyContext) -> Option<PropertyId> {
        let _ = ctx;
        todo!()
    }
    /// Encoded length of the property list, without its own length prefix.
    pub fn encoded_len(&self) -> usize {
        todo!()
    }
    /// Appends the length prefix and the properties.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let _ = out;
        todo!()
    }
    /// Decodes a property list (length prefix included) from the front of
    /// `buf`, checking ids, duplicates and that each is allowed in `ctx`.
    pub fn decode(buf: &mut Bytes, ctx: PropertyContext) -> Result<Properties, DecodeError> {
        let _ = (buf, ctx);
        todo!()
    }
}
