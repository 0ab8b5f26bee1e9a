//! Connection settings, copied into the client when it is created.

use crate::packet::{LastWill, MqttStr, Properties};
use crate::transport::TcpTuning;
use bytes::Bytes;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Empty: the server assigns one.
    pub client_id: MqttStr,
    pub keep_alive: u16,
    pub clean_start: bool,
    pub session_expiry: u32,
    pub username: Option<MqttStr>,
    pub password: Option<Bytes>,
    pub will: Option<LastWill>,
    /// Extra CONNECT properties (receive maximum, user properties, ...).
    pub connect_properties: Properties,
    pub connect_timeout: Duration,
    /// Longest wait for an acknowledgement; `None` waits for ever.
    pub operation_timeout: Option<Duration>,
    pub tcp: TcpTuning,
    /// Our Maximum Packet Size; larger incoming packets end the connection.
    pub max_packet_size: u32,
    /// How many received messages may wait for the callback before the
    /// reader stops reading from the socket.
    pub delivery_queue_limit: usize,
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
            will: None,
            connect_properties: Properties::new(),
            connect_timeout: Duration::from_secs(30),
            operation_timeout: None,
            tcp: TcpTuning::default(),
            max_packet_size: 268_435_460,
            delivery_queue_limit: 1000,
        }
    }
}
