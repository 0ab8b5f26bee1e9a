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
    /// A property that is not allowed in this packet: a Malformed Packet
    /// (MQTT 5 section 2.2.2.2), unlike a duplicate, a Protocol Error.
    PropertyNotAllowed {
        id: u8,
        packet: u8,
    },
    InvalidReasonCode(u8),
    InvalidQoS(u8),
    /// A topic name with wildcards, or an empty one without an alias.
    InvalidTopicName,
    InvalidTopicFilter,
    /// Bigger than our Maximum Packet Size (whole packet, in bytes).
    PacketTooLarge {
        size: usize,
        max: usize,
    },
    ProtocolError(&'static str),
    /// More properties in one packet than we accept (a limit of ours,
    /// see `MAX_RECEIVED_PROPERTIES`, not of the protocol).
    TooManyProperties {
        max: usize,
    },
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
    PropertyNotAllowed {
        id: u8,
        packet: u8,
    },
    InvalidTopicName,
    InvalidTopicFilter,
    /// A QoS above 0 without a packet id, or a QoS 0 with one.
    InvalidPacketId,
    /// SUBSCRIBE/UNSUBSCRIBE without filters, and similar.
    Invalid(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed(why) => write!(f, "malformed packet: {why}"),
            DecodeError::BadRemainingLength => {
                f.write_str("malformed packet: remaining length longer than 4 bytes")
            }
            DecodeError::InvalidPacketType(b) => {
                write!(f, "malformed packet: invalid fixed header byte {b:#04x}")
            }
            DecodeError::InvalidUtf8 => {
                f.write_str("malformed packet: string is not UTF-8 or contains U+0000")
            }
            DecodeError::UnknownProperty(id) => {
                write!(f, "malformed packet: unknown property {id:#04x}")
            }
            DecodeError::DuplicateProperty(id) => {
                write!(f, "protocol error: property {id:#04x} appears twice")
            }
            DecodeError::PropertyNotAllowed { id, packet } => write!(
                f,
                "malformed packet: property {id:#04x} not allowed in packet type {packet}"
            ),
            DecodeError::InvalidReasonCode(rc) => {
                write!(f, "malformed packet: invalid reason code {rc:#04x}")
            }
            DecodeError::InvalidQoS(q) => write!(f, "malformed packet: QoS {q}"),
            DecodeError::InvalidTopicName => f.write_str("invalid topic name"),
            DecodeError::InvalidTopicFilter => f.write_str("invalid topic filter"),
            DecodeError::PacketTooLarge { size, max } => {
                write!(f, "packet of {size} bytes exceeds the maximum of {max}")
            }
            DecodeError::ProtocolError(why) => write!(f, "protocol error: {why}"),
            DecodeError::TooManyProperties { max } => {
                write!(f, "packet carries more than {max} properties")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::InvalidString => {
                f.write_str("string longer than 65535 bytes or containing U+0000")
            }
            EncodeError::BinaryTooLong => f.write_str("binary data longer than 65535 bytes"),
            EncodeError::PacketTooLarge => f.write_str("remaining length over 268,435,455 bytes"),
            EncodeError::PropertyNotAllowed { id, packet } => {
                write!(f, "property {id:#04x} not allowed in packet type {packet}")
            }
            EncodeError::InvalidTopicName => f.write_str("invalid topic name"),
            EncodeError::InvalidTopicFilter => f.write_str("invalid topic filter"),
            EncodeError::InvalidPacketId => {
                f.write_str("packet identifier missing, zero or not allowed for this QoS")
            }
            EncodeError::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for EncodeError {}
