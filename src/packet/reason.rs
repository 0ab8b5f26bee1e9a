//! Reason codes (spec section 2.4). Values below 0x80 report success.

use super::PacketType;

include!("reason_table.rs");
pub(crate) use for_each_reason_code;

// Bit n set when packet type n may carry a code (the table's last column).
const CONNACK: u16 = 1 << 2;
const PUBACK: u16 = 1 << 4;
const PUBREC: u16 = 1 << 5;
const PUBREL: u16 = 1 << 6;
const PUBCOMP: u16 = 1 << 7;
const SUBACK: u16 = 1 << 9;
const UNSUBACK: u16 = 1 << 11;
const DISCONNECT: u16 = 1 << 14;
const AUTH: u16 = 1 << 15;

macro_rules! define_reason_codes {
    ($($name:ident = $value:literal, $c:ident, $text:literal, $packets:expr;)*) => {
        /// Every v5 reason code, one variant per number (reason_table.rs).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum ReasonCode {
            $($name = $value,)*
        }

        const COUNT: usize = [$($value),*].len();

        impl ReasonCode {
            /// Every reason code, in numeric order.
            pub const ALL: [ReasonCode; COUNT] = [$(ReasonCode::$name),*];

            pub fn from_u8(v: u8) -> Option<ReasonCode> {
                match v {
                    $($value => Some(ReasonCode::$name),)*
                    _ => None,
                }
            }

            /// The spec's name, e.g. "Not authorized".
            pub fn description(self) -> &'static str {
                match self {
                    $(ReasonCode::$name => $text,)*
                }
            }

            /// Bit n set when packet type n may carry this code.
            fn packets(self) -> u16 {
                match self {
                    $(ReasonCode::$name => $packets,)*
                }
            }
        }
    };
}

for_each_reason_code!(define_reason_codes);

impl ReasonCode {
    /// 0x80 and above are failures.
    pub fn is_error(self) -> bool {
        (self as u8) >= 0x80
    }

    /// Whether the spec lets `packet` carry this reason code (table 2-6 and
    /// the per-packet lists), so a PUBACK with "Granted QoS 1" is rejected.
    pub fn allowed_in(self, packet: PacketType) -> bool {
        self.packets() & (1 << (packet as u8)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_u8_round_trips_and_rejects_unknown() {
        let mut known = 0;
        for v in 0..=255u8 {
            if let Some(rc) = ReasonCode::from_u8(v) {
                assert_eq!(rc as u8, v);
                assert_eq!(rc.is_error(), v >= 0x80);
                known += 1;
            }
        }
        assert_eq!(known, 43);
        assert_eq!(ReasonCode::ALL.len(), 43);
        assert_eq!(ReasonCode::from_u8(0x03), None);
        assert_eq!(ReasonCode::from_u8(0xFF), None);
    }

    #[test]
    fn descriptions_are_the_spec_names() {
        assert_eq!(ReasonCode::NotAuthorized.description(), "Not authorized");
        assert_eq!(
            ReasonCode::NoMatchingSubscribers.description(),
            "No matching subscribers"
        );
        assert_eq!(ReasonCode::ReAuthenticate.description(), "Re-authenticate");
    }

    #[test]
    fn every_code_belongs_to_some_packet() {
        for v in 0..=255u8 {
            if let Some(rc) = ReasonCode::from_u8(v) {
                assert_ne!(rc.packets(), 0, "{rc:?}");
            }
        }
        assert!(ReasonCode::GrantedQoS1.allowed_in(PacketType::SubAck));
        assert!(!ReasonCode::GrantedQoS1.allowed_in(PacketType::PubAck));
        assert!(ReasonCode::PacketIdentifierNotFound.allowed_in(PacketType::PubRel));
        assert!(!ReasonCode::NoMatchingSubscribers.allowed_in(PacketType::PubRel));
        assert!(ReasonCode::ContinueAuthentication.allowed_in(PacketType::Auth));
        assert!(!ReasonCode::Success.allowed_in(PacketType::Publish));
    }
}
