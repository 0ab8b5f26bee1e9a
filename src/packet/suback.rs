//! SUBACK (spec section 3.9).

use super::{Properties, ReasonCode};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: u16,
    pub properties: Properties,
    /// One per filter of the SUBSCRIBE, in order.
    pub reasons: Vec<ReasonCode>,
}
