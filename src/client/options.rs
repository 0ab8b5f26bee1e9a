//! Connection settings, copied into the client when it is created.

use super::secrets::Secret;
use crate::packet::{LastWill, MqttStr, Properties, ProtocolVersion};
use crate::transport::{ProxySettings, TcpTuning, TlsOptions, WsHeader};
use std::time::Duration;

/// How long a call waits for its outcome by default: long enough to ride
/// out a broker restart or a short network outage, short enough that a
/// gateway's thread is not stuck for the minutes it takes a keep-alive to
/// declare a frozen broker lost.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The Receive Maximum we advertise unless told otherwise: how many QoS
/// 1/2 messages the broker may send us before we acknowledge them (after
/// their callbacks). The protocol's default, 65535, would let a broker
/// hold that many messages in our memory; libmosquitto advertises 20,
/// which caps throughput on a slow link (at most 20 messages per round
/// trip: 400/s at 50 ms). 100 keeps 2,000 messages/s at 50 ms, and bounds
/// what waits while a callback blocks to 2 x 100 QoS 1/2 messages (see
/// `delivery`).
pub const DEFAULT_RECEIVE_MAXIMUM: u16 = 100;

/// The Maximum Packet Size we advertise and enforce unless told
/// otherwise: 1 MiB. The protocol's default (268,435,460 bytes, none
/// advertised) would let a broker make us read 256 MiB for one packet;
/// an application that expects larger messages raises it.
pub const DEFAULT_MAX_PACKET_SIZE: u32 = 1 << 20;

/// The Maximum Packet Size of the protocol (a 4-byte Remaining Length
/// plus the fixed header): as our limit it means none, and is not sent.
pub const PROTOCOL_MAX_PACKET_SIZE: u32 = 268_435_460;

/// How many bytes of received messages may wait for the callbacks by
/// default: 8 MiB, eight messages of the default Maximum Packet Size, or
/// the 1,000 messages of the count bound at 8 KiB each (see `delivery`).
pub const DEFAULT_DELIVERY_QUEUE_BYTES: usize = 8 << 20;

#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The protocol to speak; None: v5, falling back to 3.1.1 when the
    /// server refuses v5 (see `attempt`). Default v5.
    pub protocol_version: Option<ProtocolVersion>,
    /// MQTT 3.1.1 only: the suffix of the reply topic of the request/reply
    /// convention (`request` on a 3.1.1 connection; see `request311`).
    pub reply_suffix: Option<String>,
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
    /// Extra CONNECT properties (user properties, ...). A Receive Maximum
    /// among them wins over `receive_maximum`.
    pub connect_properties: Properties,
    /// The Receive Maximum we advertise (65535, the protocol's default,
    /// is not sent). Default [`DEFAULT_RECEIVE_MAXIMUM`].
    pub receive_maximum: u16,
    pub connect_timeout: Duration,
    /// Longest a call waits for its outcome, reconnections included (see
    /// `MqttClient::publish`); `None` waits for ever. Default 30 s.
    pub operation_timeout: Option<Duration>,
    pub tcp: TcpTuning,
    /// Used by mqtts://, ssl://, tls:// and wss:// URLs.
    pub tls: TlsOptions,
    /// Extra headers on the WebSocket upgrade request (ws://, wss://);
    /// values are wiped when dropped (they may carry a token).
    pub ws_headers: Vec<WsHeader>,
    /// The proxy for every transport but Unix sockets; its password is
    /// wiped when dropped (see `transport::proxy`).
    pub proxy: ProxySettings,
    /// Our Maximum Packet Size; larger incoming packets end the connection
    /// (DISCONNECT 0x95). Default [`DEFAULT_MAX_PACKET_SIZE`];
    /// [`PROTOCOL_MAX_PACKET_SIZE`] means none (not sent).
    pub max_packet_size: u32,
    /// How many received messages may wait for the callback before the
    /// reader stops reading from the socket.
    pub delivery_queue_limit: usize,
    /// How many bytes of received messages (topic, properties, payload
    /// and a small per-message overhead) may wait for the callback before
    /// the reader stops reading from the socket. Default
    /// [`DEFAULT_DELIVERY_QUEUE_BYTES`].
    pub delivery_queue_bytes: usize,
    /// Most outgoing topic aliases we use (never more than the server's
    /// Topic Alias Maximum); 0 turns outbound aliases off.
    pub outgoing_topic_aliases: u16,
    /// The server exceeding our Receive Maximum ends the connection with
    /// DISCONNECT 0x93 when set; otherwise it is counted (and logged).
    pub strict_receive_maximum: bool,
    /// Automatic reconnection after a lost connection; None: off.
    pub reconnect: Option<Reconnect>,
    /// With `reconnect` on: a `connect` whose attempt fails keeps trying in
    /// the background, as after a lost connection.
    pub connect_retry: bool,
    /// Where publishes made while reconnecting wait (see `offline`).
    pub offline_queue: OfflineQueueLimits,
    /// After a reconnect that found no session, subscribe again to what
    /// the client was subscribed to (see `resubscribe`).
    pub resubscribe: bool,
    /// Where the session's QoS 1/2 state is kept across crashes (see
    /// `persist`); None: in memory only. Needs a client id.
    pub persistence_dir: Option<std::path::PathBuf>,
    /// A received QoS 1/2 message is acknowledged when the application
    /// calls `MqttClient::ack`, not after its callback (see `ack`).
    pub manual_ack: bool,
    /// Further servers, tried in turn after the URL given to `connect`
    /// (see `MqttClient::connect` and `reconnect`).
    pub servers: Vec<crate::transport::BrokerUrl>,
    /// The most Server References followed in a row (see `redirect`);
    /// 0: none.
    pub follow_redirects: u32,
}

/// What a full offline queue does with one message more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueuePolicy {
    /// The new message is refused (`Error::QueueFull`).
    FailNew,
    /// The oldest QoS 0 message is dropped, else the oldest message.
    DropOldest,
}

/// Bounds of the offline queue. `max_messages` or `max_bytes` 0: no
/// queue (publishes while reconnecting fail with `NotConnected`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfflineQueueLimits {
    pub max_messages: usize,
    /// Counted as the encoded size of each PUBLISH.
    pub max_bytes: usize,
    pub policy: QueuePolicy,
    /// QoS 0 messages are queued too (else refused with `NotConnected`).
    pub qos0: bool,
}

impl OfflineQueueLimits {
    pub fn enabled(&self) -> bool {
        self.max_messages > 0 && self.max_bytes > 0
    }
}

impl Default for OfflineQueueLimits {
    /// 10,000 messages or 8 MiB, new messages refused when full: the
    /// client never drops a message it accepted, and tells the caller.
    fn default() -> Self {
        OfflineQueueLimits {
            max_messages: 10_000,
            max_bytes: 8 << 20,
            policy: QueuePolicy::FailNew,
            qos0: true,
        }
    }
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
    /// The Receive Maximum we advertise: the connect properties', else
    /// `receive_maximum`.
    pub fn receive_maximum(&self) -> u16 {
        self.connect_properties
            .get_int(crate::packet::PropertyId::ReceiveMaximum)
            .map_or(self.receive_maximum, |v| v as u16)
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
            protocol_version: Some(ProtocolVersion::V5),
            reply_suffix: None,
            client_id: MqttStr::default(),
            keep_alive: 60,
            clean_start: true,
            session_expiry: 0,
            username: None,
            password: None,
            auth_data: None,
            will: None,
            connect_properties: Properties::new(),
            receive_maximum: DEFAULT_RECEIVE_MAXIMUM,
            connect_timeout: Duration::from_secs(30),
            operation_timeout: Some(DEFAULT_OPERATION_TIMEOUT),
            tcp: TcpTuning::default(),
            tls: TlsOptions::default(),
            ws_headers: Vec::new(),
            proxy: ProxySettings::default(),
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            delivery_queue_limit: 1000,
            delivery_queue_bytes: DEFAULT_DELIVERY_QUEUE_BYTES,
            outgoing_topic_aliases: u16::MAX,
            strict_receive_maximum: false,
            reconnect: None,
            connect_retry: false,
            offline_queue: OfflineQueueLimits::default(),
            resubscribe: true,
            persistence_dir: None,
            manual_ack: false,
            servers: Vec::new(),
            follow_redirects: 0,
        }
    }
}

impl ClientOptions {
    /// Adds a header to the WebSocket upgrade request, after checking it.
    /// Sets the proxy (`None`: none), after checking its URL.
    pub fn set_proxy(&mut self, url: Option<&str>) -> Result<(), String> {
        self.proxy.proxy = url.map(crate::transport::Proxy::parse).transpose()?;
        Ok(())
    }

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
        // Fails in a build without WebSocket (nothing to show then).
        o.set_proxy(Some("socks5://user:proxy-SECRET-6@proxy:1080"))
            .unwrap();
        let ws = o.add_ws_header("Authorization", "Bearer SECRET-4").is_ok();
        assert_eq!(ws, cfg!(feature = "websocket"));
        let text = format!("{o:?}");
        assert!(!text.contains("SECRET"), "{text}");
        assert_eq!(text.contains("Authorization"), ws, "{text}");
        let connect = crate::packet::Connect {
            password: Some(bytes::Bytes::from_static(b"pw-SECRET-5")),
            ..Default::default()
        };
        assert!(!format!("{connect:?}").contains("SECRET"));
        let answer = super::super::AuthAnswer::Respond(Some(bytes::Bytes::from_static(b"SECRET")));
        assert!(!format!("{answer:?}").contains("SECRET"));
    }
}
