//! Errors of the wire format layer.

/// Why bytes could not be decoded. An incomplete packet is not an error:
/// [`super::decode`] returns `Ok(None)` for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Structurally invalid (bad lengths, trailing bytes, bad flags, ...).
    Malformed(&'static str),
    /// Remaining length encoded in more than four bytes.
    BadRemainingLength,
    /// Packet type 0 or a reserved flag combination.
    InvalidPacketType(u8),
    /// A string is not UTF-8 or contains U+0000.
    InvalidUtf8,
    UnknownProperty(u8),
    /// A property that may appear once appeared twice.
    DuplicateProperty(u8),
    /// A property that is not allowed in this packet.
    PropertyNotAllowed { id: u8, packet: u8 },
    InvalidReasonCode(u8),
    InvalidQoS(u8),
    /// A topic name with wildcards, or an empty one without an alias.
    InvalidTopicName,
    InvalidTopicFilter,
    /// Bigger than our Maximum Packet Size (whole packet, in bytes).
    PacketTooLarge { size: usize, max: usize },
    ProtocolError(&'static str),
}

/// Why a packet could not be encoded. Nothing is written in that case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// A string over 65535 bytes or containing U+0000.
    InvalidString,
    /// Binary data over 65535 bytes.
    BinaryTooLong,
    /// A remaining length over 268,435,455 bytes.
    PacketTooLarge,
    PropertyNotAllowed { id: u8, packet: u8 },
    InvalidTopicName,
    InvalidTopicFilter,
    /// A QoS above 0 without a packet id, or a QoS 0 with one.
    InvalidPacketId,
    /// SUBSCRIBE/UNSUBSCRIBE without filters, and similar.
    Invalid(&'static str),
}
