//! DISCONNECT (spec section 3.14).

use super::{Properties, ReasonCode};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disconnect {
    pub reason: ReasonCode,
    pub properties: Properties,
}
