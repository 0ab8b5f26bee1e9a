//! PUBACK, PUBREC, PUBREL and PUBCOMP (spec sections 3.4-3.7) share one shape.

use super::{Properties, ReasonCode};

/// The body of PUBACK, PUBREC, PUBREL or PUBCOMP. On the wire the reason
/// code and properties are left out when they are Success and empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PubResp {
    pub packet_id: u16,
    pub reason: ReasonCode,
    pub properties: Properties,
}
