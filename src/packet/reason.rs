//! Reason codes (spec section 2.4). Values below 0x80 report success.

use super::PacketType;

/// Every v5 reason code. Some numbers have several names in the spec
/// (0x00 is Success, Normal disconnection and Granted QoS 0); the enum has
/// one variant per number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReasonCode {
    Success = 0x00,
    GrantedQoS1 = 0x01,
    GrantedQoS2 = 0x02,
    DisconnectWithWillMessage = 0x04,
    NoMatchingSubscribers = 0x10,
    NoSubscriptionExisted = 0x11,
    ContinueAuthentication = 0x18,
    ReAuthenticate = 0x19,
    UnspecifiedError = 0x80,
    MalformedPacket = 0x81,
    ProtocolError = 0x82,
    ImplementationSpecificError = 0x83,
    UnsupportedProtocolVersion = 0x84,
    ClientIdentifierNotValid = 0x85,
    BadUserNameOrPassword = 0x86,
    NotAuthorized = 0x87,
    ServerUnavailable = 0x88,
    ServerBusy = 0x89,
    Banned = 0x8A,
    ServerShuttingDown = 0x8B,
    BadAuthenticationMethod = 0x8C,
    KeepAliveTimeout = 0x8D,
    SessionTakenOver = 0x8E,
    TopicFilterInvalid = 0x8F,
    TopicNameInvalid = 0x90,
    PacketIdentifierInUse = 0x91,
    PacketIdentifierNotFound = 0x92,
    ReceiveMaximumExceeded = 0x93,
    TopicAliasInvalid = 0x94,
    PacketTooLarge = 0x95,
    MessageRateTooHigh = 0x96,
    QuotaExceeded = 0x97,
    AdministrativeAction = 0x98,
    PayloadFormatInvalid = 0x99,
    RetainNotSupported = 0x9A,
    QoSNotSupported = 0x9B,
    UseAnotherServer = 0x9C,
    ServerMoved = 0x9D,
    SharedSubscriptionsNotSupported = 0x9E,
    ConnectionRateExceeded = 0x9F,
    MaximumConnectTime = 0xA0,
    SubscriptionIdentifiersNotSupported = 0xA1,
    WildcardSubscriptionsNotSupported = 0xA2,
}

impl ReasonCode {
    pub fn from_u8(v: u8) -> Option<ReasonCode> {
        use ReasonCode::*;
        Some(match v {
            0x00 => Success,
            0x01 => GrantedQoS1,
            0x02 => GrantedQoS2,
            0x04 => DisconnectWithWillMessage,
            0x10 => NoMatchingSubscribers,
            0x11 => NoSubscriptionExisted,
            0x18 => ContinueAuthentication,
            0x19 => ReAuthenticate,
            0x80 => UnspecifiedError,
            0x81 => MalformedPacket,
            0x82 => ProtocolError,
            0x83 => ImplementationSpecificError,
            0x84 => UnsupportedProtocolVersion,
            0x85 => ClientIdentifierNotValid,
            0x86 => BadUserNameOrPassword,
            0x87 => NotAuthorized,
            0x88 => ServerUnavailable,
            0x89 => ServerBusy,
            0x8A => Banned,
            0x8B => ServerShuttingDown,
            0x8C => BadAuthenticationMethod,
            0x8D => KeepAliveTimeout,
            0x8E => SessionTakenOver,
            0x8F => TopicFilterInvalid,
            0x90 => TopicNameInvalid,
            0x91 => PacketIdentifierInUse,
            0x92 => PacketIdentifierNotFound,
            0x93 => ReceiveMaximumExceeded,
            0x94 => TopicAliasInvalid,
            0x95 => PacketTooLarge,
            0x96 => MessageRateTooHigh,
            0x97 => QuotaExceeded,
            0x98 => AdministrativeAction,
            0x99 => PayloadFormatInvalid,
            0x9A => RetainNotSupported,
            0x9B => QoSNotSupported,
            0x9C => UseAnotherServer,
            0x9D => ServerMoved,
            0x9E => SharedSubscriptionsNotSupported,
            0x9F => ConnectionRateExceeded,
            0xA0 => MaximumConnectTime,
            0xA1 => SubscriptionIdentifiersNotSupported,
            0xA2 => WildcardSubscriptionsNotSupported,
            _ => return None,
        })
    }
    /// 0x80 and above are failures.
    pub fn is_error(self) -> bool {
        (self as u8) >= 0x80
    }
    /// A short English description, e.g. "Not authorized".
    pub fn description(self) -> &'static str {
        use ReasonCode::*;
        match self {
            Success => "Success",
            GrantedQoS1 => "Granted QoS 1",
            GrantedQoS2 => "Granted QoS 2",
            DisconnectWithWillMessage => "Disconnect with Will Message",
            NoMatchingSubscribers => "No matching subscribers",
            NoSubscriptionExisted => "No subscription existed",
            ContinueAuthentication => "Continue authentication",
            ReAuthenticate => "Re-authenticate",
            UnspecifiedError => "Unspecified error",
            MalformedPacket => "Malformed Packet",
            ProtocolError => "Protocol Error",
            ImplementationSpecificError => "Implementation specific error",
            UnsupportedProtocolVersion => "Unsupported Protocol Version",
            ClientIdentifierNotValid => "Client Identifier not valid",
            BadUserNameOrPassword => "Bad User Name or Password",
            NotAuthorized => "Not authorized",
            ServerUnavailable => "Server unavailable",
            ServerBusy => "Server busy",
            Banned => "Banned",
            ServerShuttingDown => "Server shutting down",
            BadAuthenticationMethod => "Bad authentication method",
            KeepAliveTimeout => "Keep Alive timeout",
            SessionTakenOver => "Session taken over",
            TopicFilterInvalid => "Topic Filter invalid",
            TopicNameInvalid => "Topic Name invalid",
            PacketIdentifierInUse => "Packet Identifier in use",
            PacketIdentifierNotFound => "Packet Identifier not found",
            ReceiveMaximumExceeded => "Receive Maximum exceeded",
            TopicAliasInvalid => "Topic Alias invalid",
            PacketTooLarge => "Packet too large",
            MessageRateTooHigh => "Message rate too high",
            QuotaExceeded => "Quota exceeded",
            AdministrativeAction => "Administrative action",
            PayloadFormatInvalid => "Payload format invalid",
            RetainNotSupported => "Retain not supported",
            QoSNotSupported => "QoS not supported",
            UseAnotherServer => "Use another server",
            ServerMoved => "Server moved",
            SharedSubscriptionsNotSupported => "Shared Subscriptions not supported",
            ConnectionRateExceeded => "Connection rate exceeded",
            MaximumConnectTime => "Maximum connect time",
            SubscriptionIdentifiersNotSupported => "Subscription Identifiers not supported",
            WildcardSubscriptionsNotSupported => "Wildcard Subscriptions not supported",
        }
    }

    /// Whether the spec lets `packet` carry this reason code (table 2-6 and
    /// the per-packet lists), so a PUBACK with "Granted QoS 1" is rejected.
    pub fn allowed_in(self, packet: PacketType) -> bool {
        self.packets() & (1 << (packet as u8)) != 0
    }

    /// Bit n set when packet type n may carry this code.
    fn packets(self) -> u16 {
        use ReasonCode::*;
        const CONNACK: u16 = 1 << 2;
        const PUBACK: u16 = 1 << 4;
        const PUBREC: u16 = 1 << 5;
        const PUBREL: u16 = 1 << 6;
        const PUBCOMP: u16 = 1 << 7;
        const SUBACK: u16 = 1 << 9;
        const UNSUBACK: u16 = 1 << 11;
        const DISCONNECT: u16 = 1 << 14;
        const AUTH: u16 = 1 << 15;
        match self {
            Success => {
                CONNACK | PUBACK | PUBREC | PUBREL | PUBCOMP | SUBACK | UNSUBACK | DISCONNECT | AUTH
            }
            GrantedQoS1 | GrantedQoS2 => SUBACK,
            DisconnectWithWillMessage => DISCONNECT,
            NoMatchingSubscribers => PUBACK | PUBREC,
            NoSubscriptionExisted => UNSUBACK,
            ContinueAuthentication | ReAuthenticate => AUTH,
            UnspecifiedError | ImplementationSpecificError | NotAuthorized => {
                CONNACK | PUBACK | PUBREC | SUBACK | UNSUBACK | DISCONNECT
            }
            MalformedPacket | ProtocolError | ServerBusy | BadAuthenticationMethod => {
                CONNACK | DISCONNECT
            }
            UnsupportedProtocolVersion
            | ClientIdentifierNotValid
            | BadUserNameOrPassword
            | ServerUnavailable
            | Banned => CONNACK,
            ServerShuttingDown
            | KeepAliveTimeout
            | SessionTakenOver
            | ReceiveMaximumExceeded
            | TopicAliasInvalid
            | MessageRateTooHigh
            | AdministrativeAction
            | MaximumConnectTime => DISCONNECT,
            TopicFilterInvalid => SUBACK | UNSUBACK | DISCONNECT,
            TopicNameInvalid | PayloadFormatInvalid => CONNACK | PUBACK | PUBREC | DISCONNECT,
            PacketIdentifierInUse => PUBACK | PUBREC | SUBACK | UNSUBACK,
            PacketIdentifierNotFound => PUBREL | PUBCOMP,
            PacketTooLarge
            | RetainNotSupported
            | QoSNotSupported
            | UseAnotherServer
            | ServerMoved
            | ConnectionRateExceeded => CONNACK | DISCONNECT,
            QuotaExceeded => CONNACK | PUBACK | PUBREC | SUBACK | DISCONNECT,
            SharedSubscriptionsNotSupported
            | SubscriptionIdentifiersNotSupported
            | WildcardSubscriptionsNotSupported => SUBACK | DISCONNECT,
        }
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
