//! Connection settings, copied into the client when it is created.

use super::secrets::Secret;
use crate::packet::{LastWill, MqttStr, Properties};
use crate::transport::{TcpTuning, TlsOptions, WsHeader};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Empty: the server assigns one.
    pub client_id: MqttStr,
    pub keep_alive: u16,
    pub clean_start: bool,
    pub session_expiry: u32,
    pub username: Option<MqttStr>,
    pub password: Option<Secret>,
    /// The Authentication Data of CONNECT (`mqtt_options_set_auth`), kept
    /// apart from `connect_properties` (which holds the method) so that it
    /// can be wiped: a property list copies what it is given into buffers
    /// of its own. Wins over Authentication Data in `connect_properties`.
    pub auth_data: Option<Secret>,
    pub will: Option<LastWill>,
    /// Extra CONNECT properties (receive maximum, user properties, ...).
    pub connect_properties: Properties,
    pub connect_timeout: Duration,
    /// Longest wait for an acknowledgement; `None` waits for ever.
    pub operation_timeout: Option<Duration>,
    pub tcp: TcpTuning,
    /// Used by mqtts://, ssl://, tls:// and wss:// URLs.
    pub tls: TlsOptions,
    /// Extra headers on the WebSocket upgrade request (ws://, wss://);
    /// values are wiped when dropped (they may carry a token).
    pub ws_headers: Vec<WsHeader>,
    /// Our Maximum Packet Size; larger incoming packets end the connection.
    pub max_packet_size: u32,
    /// How many received messages may wait for the callback before the
    /// reader stops reading from the socket.
    pub delivery_queue_limit: usize,
    /// Most outgoing topic aliases we use (never more than the server's
    /// Topic Alias Maximum); 0 turns outbound aliases off.
    pub outgoing_topic_aliases: u16,
    /// The server exceeding our Receive Maximum ends the connection with
    /// DISCONNECT 0x93 when set; otherwise it is counted (and logged).
    pub strict_receive_maximum: bool,
    /// Automatic reconnection after a lost connection; None: off.
    pub reconnect: Option<Reconnect>,
}

/// Delays of automatic reconnection: the first attempt waits `min_delay`,
/// each failed attempt doubles the delay up to `max_delay`, and each wait
/// is shortened by up to a fifth at random (see `client::reconnect`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reconnect {
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl ClientOptions {
    /// The Receive Maximum we advertise (65535 when not set).
    pub fn receive_maximum(&self) -> u16 {
        self.connect_properties
            .get_int(crate::packet::PropertyId::ReceiveMaximum)
            .map_or(u16::MAX, |v| v as u16)
    }

    /// The Topic Alias Maximum we advertise (0: none accepted).
    pub fn topic_alias_maximum(&self) -> u16 {
        self.connect_properties
            .get_int(crate::packet::PropertyId::TopicAliasMaximum)
            .map_or(0, |v| v as u16)
    }

    /// The Maximum Packet Size we accept: the option, or a smaller one set
    /// among the connect properties.
    pub fn effective_max_packet_size(&self) -> u32 {
        let prop = self
            .connect_properties
            .get_int(crate::packet::PropertyId::MaximumPacketSize)
            .unwrap_or(u32::MAX);
        self.max_packet_size.min(prop)
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            client_id: MqttStr::default(),
            keep_alive: 60,
            clean_start: true,
            session_expiry: 0,
            username: None,
            password: None,
            auth_data: None,
            will: None,
            connect_properties: Properties::new(),
            connect_timeout: Duration::from_secs(30),
            operation_timeout: None,
            tcp: TcpTuning::default(),
            tls: TlsOptions::default(),
            ws_headers: Vec::new(),
            max_packet_size: 268_435_460,
            delivery_queue_limit: 1000,
            outgoing_topic_aliases: u16::MAX,
            strict_receive_maximum: false,
            reconnect: None,
        }
    }
}

impl ClientOptions {
    /// Adds a header to the WebSocket upgrade request, after checking it.
    pub fn add_ws_header(&mut self, name: &str, value: &str) -> Result<(), String> {
        self.ws_headers.push(WsHeader::new(name, value)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Property;

    /// Debug output (logs, panics) shows no secret: password, the
    /// Authentication Data in either place, WebSocket header values.
    #[test]
    fn debug_shows_no_secret() {
        let mut o = ClientOptions {
            password: Some(Secret::new(b"pw-SECRET-1")),
            auth_data: Some(Secret::new(b"auth-SECRET-2")),
            ..Default::default()
        };
        o.connect_properties
            .set(Property::AuthenticationData(bytes::Bytes::from_static(
                b"prop-SECRET-3",
            )));
        o.add_ws_header("Authorization", "Bearer SECRET-4").unwrap();
        let text = format!("{o:?}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("Authorization"), "{text}");
        let connect = crate::packet::Connect {
            password: Some(bytes::Bytes::from_static(b"pw-SECRET-5")),
            ..Default::default()
        };
        assert!(!format!("{connect:?}").contains("SECRET"));
        let answer = super::super::AuthAnswer::Respond(Some(bytes::Bytes::from_static(b"SECRET")));
        assert!(!format!("{answer:?}").contains("SECRET"));
    }
}
