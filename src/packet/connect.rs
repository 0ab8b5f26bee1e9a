//! CONNECT (spec section 3.1).

use super::{MqttStr, Properties, QoS};
use bytes::Bytes;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Connect {
    pub clean_start: bool,
    pub keep_alive: u16,
    pub properties: Properties,
    /// May be empty: the server then assigns one.
    pub client_id: MqttStr,
    pub will: Option<LastWill>,
    pub username: Option<MqttStr>,
    pub password: Option<Bytes>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LastWill {
    pub topic: MqttStr,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Will properties (will delay interval, payload format, expiry, ...).
    pub properties: Properties,
}
