//! The client layer's one error type.

use crate::packet::{DecodeError, EncodeError, ReasonCode};
use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// Bad input from the caller; nothing was sent.
    InvalidArgument(String),
    NotConnected,
    AlreadyConnected,
    /// The connection ended while the call was in progress or waiting.
    ConnectionLost,
    /// No answer within the configured time.
    Timeout(&'static str),
    Io(std::io::Error),
    /// The peer broke the protocol.
    Protocol(String),
    /// A packet bigger than the peer accepts; nothing was sent.
    PacketTooLarge {
        size: usize,
        max: usize,
    },
    /// The server refused the connection (CONNACK reason >= 0x80).
    Refused {
        reason: ReasonCode,
        reason_string: Option<String>,
    },
    /// The server refused a request with a reason code >= 0x80.
    Rejected {
        what: &'static str,
        reason: ReasonCode,
        reason_string: Option<String>,
    },
    /// A lock was poisoned by a panic elsewhere, or another broken invariant.
    Internal(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(s) => write!(f, "invalid argument: {s}"),
            Error::NotConnected => f.write_str("not connected"),
            Error::AlreadyConnected => f.write_str("already connected"),
            Error::ConnectionLost => f.write_str("connection lost"),
            Error::Timeout(what) => write!(f, "timed out waiting for {what}"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Protocol(s) => write!(f, "protocol error: {s}"),
            Error::PacketTooLarge { size, max } => write!(
                f,
                "packet of {size} bytes exceeds the server's maximum packet size of {max} bytes"
            ),
            Error::Refused {
                reason,
                reason_string,
            } => {
                write!(
                    f,
                    "connection refused by server: {} (0x{:02X})",
                    reason.description(),
                    *reason as u8
                )?;
                if let Some(s) = reason_string {
                    write!(f, ": {s}")?;
                }
                Ok(())
            }
            Error::Rejected {
                what,
                reason,
                reason_string,
            } => {
                write!(
                    f,
                    "{what} refused by server: {} (0x{:02X})",
                    reason.description(),
                    *reason as u8
                )?;
                if let Some(s) = reason_string {
                    write!(f, ": {s}")?;
                }
                Ok(())
            }
            Error::Internal(s) => write!(f, "internal error: {s}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Self {
        let msg = match e {
            EncodeError::InvalidString => {
                "a string is longer than 65535 bytes or contains U+0000".to_string()
            }
            EncodeError::BinaryTooLong => "binary data is longer than 65535 bytes".to_string(),
            EncodeError::PacketTooLarge => {
                return Error::PacketTooLarge {
                    size: usize::MAX,
                    max: 268_435_455,
                }
            }
            EncodeError::PropertyNotAllowed { id, packet } => {
                let name = crate::packet::PropertyId::from_u8(id).map_or("unknown", |p| p.name());
                format!("property {name} (0x{id:02X}) is not allowed in packet type {packet}")
            }
            EncodeError::InvalidTopicName => {
                "invalid topic name (empty, or contains + or #)".to_string()
            }
            EncodeError::InvalidTopicFilter => "invalid topic filter".to_string(),
            EncodeError::InvalidPacketId => "packet identifier does not match the QoS".to_string(),
            EncodeError::Invalid(s) => s.to_string(),
        };
        Error::InvalidArgument(msg)
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Protocol(e.to_string())
    }
}
