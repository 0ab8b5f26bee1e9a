//! The client layer's one error type.

use crate::packet::{DecodeError, EncodeError, ReasonCode};
use crate::transport;
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
    /// The server refused the connection with 0x9C (Use another server)
    /// or 0x9D (Server moved) and a Server Reference that we did not
    /// follow: `why` says why (redirects off, too many hops, a weaker
    /// transport, a malformed reference). See `redirect`.
    RedirectRefused {
        reason: ReasonCode,
        /// The Server Reference, escaped for printing.
        reference: String,
        why: String,
    },
    /// The pre-connect hook skipped the attempt to this URL (shown
    /// without user information or query).
    AttemptSkipped(String),
    /// TLS configuration or handshake failure; the text says why.
    Tls(String),
    /// Our authentication handler ended the exchange; we sent DISCONNECT
    /// with this reason.
    AuthAborted(ReasonCode),
    /// The server refused a request with a reason code >= 0x80.
    Rejected {
        what: &'static str,
        reason: ReasonCode,
        reason_string: Option<String>,
    },
    /// The client was closed (`close`, `mqtt_client_free`) before or
    /// while the call ran.
    Closed,
    /// The offline queue refused the message, or dropped it to make room
    /// (the text says which).
    QueueFull(String),
    /// The message's Message Expiry Interval passed while it waited in the
    /// offline queue; it was not sent.
    Expired,
    /// The persistence store (see `persist`) failed: the text names the
    /// file and what went wrong (locked by another, a write failed).
    Persistence(String),
    /// `ack` (manual acknowledgement): this ack id was acknowledged
    /// already.
    AlreadyAcknowledged(u64),
    /// `ack`: the message of this ack id belongs to a session the broker
    /// no longer has (a reconnect found none); there is nothing to
    /// acknowledge.
    StaleAck(u64),
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
                // The server's text: escaped (idempotent if it was already).
                if let Some(s) = reason_string {
                    write!(f, ": {}", crate::redact::peer(s))?;
                }
                Ok(())
            }
            Error::RedirectRefused {
                reason,
                reference,
                why,
            } => write!(
                f,
                "connection refused by server: {} (0x{:02X}), with Server Reference '{reference}'; \
                 redirect not followed: {why}",
                reason.description(),
                *reason as u8
            ),
            Error::AttemptSkipped(url) => write!(
                f,
                "the pre-connect callback skipped the attempt to {url} (it returned non-zero)"
            ),
            Error::Tls(s) => write!(f, "TLS error: {s}"),
            Error::AuthAborted(r) => write!(
                f,
                "authentication aborted by the auth callback; sent DISCONNECT {} (0x{:02X})",
                r.description(),
                *r as u8
            ),
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
                // The server's text: escaped (idempotent if it was already).
                if let Some(s) = reason_string {
                    write!(f, ": {}", crate::redact::peer(s))?;
                }
                Ok(())
            }
            Error::Closed => f.write_str("the client is closed (being freed)"),
            Error::QueueFull(s) => f.write_str(s),
            Error::Expired => f.write_str(
                "the message expired (Message Expiry Interval) in the offline queue and was not sent",
            ),
            Error::Persistence(s) => write!(f, "persistence: {s}"),
            Error::AlreadyAcknowledged(id) => write!(f, "ack id {id} was acknowledged already"),
            Error::StaleAck(id) => write!(
                f,
                "ack id {id} belongs to a session the broker no longer has (a reconnect found no session); nothing to acknowledge"
            ),
            Error::Internal(s) => write!(f, "internal error: {s}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    /// TLS errors reach us inside io::Error (a TLS 1.3 server's alert, such
    /// as "certificate required", arrives on the first read after the
    /// handshake); they become `Tls` with a text that says what happened.
    fn from(e: std::io::Error) -> Self {
        match transport::describe_tls_error(&e) {
            Some(text) => Error::Tls(text),
            None => Error::Io(e),
        }
    }
}

impl From<transport::ConnectError> for Error {
    fn from(e: transport::ConnectError) -> Self {
        match e {
            transport::ConnectError::Io(e) => e.into(),
            transport::ConnectError::Tls(s) => Error::Tls(s),
            transport::ConnectError::WebSocket(s) => Error::Protocol(s),
            transport::ConnectError::InvalidArgument(s) => Error::InvalidArgument(s),
        }
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
