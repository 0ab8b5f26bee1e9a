//! UNSUBSCRIBE (spec section 3.10).

use super::{MqttStr, Properties};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: u16,
    pub properties: Properties,
    /// At least one.
    pub filters: Vec<MqttStr>,
}
