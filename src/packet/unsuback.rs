//! UNSUBACK (spec section 3.11).

use super::{Properties, ReasonCode};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: u16,
    pub properties: Properties,
    pub reasons: Vec<ReasonCode>,
}
