//! PUBLISH (spec section 3.3).

use super::{MqttStr, Properties, QoS};
use bytes::Bytes;

/// A PUBLISH packet. `topic` may be empty when a topic alias stands for it.
/// `packet_id` is `Some` exactly when `qos` is above 0.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    pub topic: MqttStr,
    pub packet_id: Option<u16>,
    pub properties: Properties,
    pub payload: Bytes,
}
