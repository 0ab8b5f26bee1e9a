//! AUTH (spec section 3.15).

use super::{Properties, ReasonCode};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    pub reason: ReasonCode,
    pub properties: Properties,
}
