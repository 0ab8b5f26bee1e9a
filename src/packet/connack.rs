//! CONNACK (spec section 3.2).

use super::{Properties, ReasonCode};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: Properties,
}
