// The one table of MQTT v5 reason codes (spec section 2.4). Everything
// about a code comes from its row: the `ReasonCode` enum, `from_u8`, the
// texts (`description`, `mqtt_strerror`), which packets may carry it
// (`allowed_in`), the C constant (`MQTT5C_RC_*` in src/ffi/error.rs and
// the header, which build.rs writes from this file), and the test that
// they agree (tests/header_tables.rs). Plain `//` comments and nothing
// but the macro: build.rs and that test `include!` this file.
//
// A row: `Variant = value, C_NAME, "Spec name", packets that may carry it;`
// (spec table 2-6 and each packet's section). Some numbers have several
// names in the spec (0x00 is Success, Normal disconnection and Granted
// QoS 0); each has one row.

/// Calls `$then!` with every reason code's row.
macro_rules! for_each_reason_code {
    ($then:ident) => {
        $then! {
            Success = 0x00, MQTT5C_RC_SUCCESS, "Success",
                CONNACK | PUBACK | PUBREC | PUBREL | PUBCOMP | SUBACK | UNSUBACK | DISCONNECT | AUTH;
            GrantedQoS1 = 0x01, MQTT5C_RC_GRANTED_QOS1, "Granted QoS 1",
                SUBACK;
            GrantedQoS2 = 0x02, MQTT5C_RC_GRANTED_QOS2, "Granted QoS 2",
                SUBACK;
            DisconnectWithWillMessage = 0x04, MQTT5C_RC_DISCONNECT_WITH_WILL_MESSAGE, "Disconnect with Will Message",
                DISCONNECT;
            NoMatchingSubscribers = 0x10, MQTT5C_RC_NO_MATCHING_SUBSCRIBERS, "No matching subscribers",
                PUBACK | PUBREC;
            NoSubscriptionExisted = 0x11, MQTT5C_RC_NO_SUBSCRIPTION_EXISTED, "No subscription existed",
                UNSUBACK;
            ContinueAuthentication = 0x18, MQTT5C_RC_CONTINUE_AUTHENTICATION, "Continue authentication",
                AUTH;
            ReAuthenticate = 0x19, MQTT5C_RC_RE_AUTHENTICATE, "Re-authenticate",
                AUTH;
            UnspecifiedError = 0x80, MQTT5C_RC_UNSPECIFIED_ERROR, "Unspecified error",
                CONNACK | PUBACK | PUBREC | SUBACK | UNSUBACK | DISCONNECT;
            MalformedPacket = 0x81, MQTT5C_RC_MALFORMED_PACKET, "Malformed Packet",
                CONNACK | DISCONNECT;
            ProtocolError = 0x82, MQTT5C_RC_PROTOCOL_ERROR, "Protocol Error",
                CONNACK | DISCONNECT;
            ImplementationSpecificError = 0x83, MQTT5C_RC_IMPLEMENTATION_SPECIFIC_ERROR, "Implementation specific error",
                CONNACK | PUBACK | PUBREC | SUBACK | UNSUBACK | DISCONNECT;
            UnsupportedProtocolVersion = 0x84, MQTT5C_RC_UNSUPPORTED_PROTOCOL_VERSION, "Unsupported Protocol Version",
                CONNACK;
            ClientIdentifierNotValid = 0x85, MQTT5C_RC_CLIENT_IDENTIFIER_NOT_VALID, "Client Identifier not valid",
                CONNACK;
            BadUserNameOrPassword = 0x86, MQTT5C_RC_BAD_USER_NAME_OR_PASSWORD, "Bad User Name or Password",
                CONNACK;
            NotAuthorized = 0x87, MQTT5C_RC_NOT_AUTHORIZED, "Not authorized",
                CONNACK | PUBACK | PUBREC | SUBACK | UNSUBACK | DISCONNECT;
            ServerUnavailable = 0x88, MQTT5C_RC_SERVER_UNAVAILABLE, "Server unavailable",
                CONNACK;
            ServerBusy = 0x89, MQTT5C_RC_SERVER_BUSY, "Server busy",
                CONNACK | DISCONNECT;
            Banned = 0x8A, MQTT5C_RC_BANNED, "Banned",
                CONNACK;
            ServerShuttingDown = 0x8B, MQTT5C_RC_SERVER_SHUTTING_DOWN, "Server shutting down",
                DISCONNECT;
            BadAuthenticationMethod = 0x8C, MQTT5C_RC_BAD_AUTHENTICATION_METHOD, "Bad authentication method",
                CONNACK | DISCONNECT;
            KeepAliveTimeout = 0x8D, MQTT5C_RC_KEEP_ALIVE_TIMEOUT, "Keep Alive timeout",
                DISCONNECT;
            SessionTakenOver = 0x8E, MQTT5C_RC_SESSION_TAKEN_OVER, "Session taken over",
                DISCONNECT;
            TopicFilterInvalid = 0x8F, MQTT5C_RC_TOPIC_FILTER_INVALID, "Topic Filter invalid",
                SUBACK | UNSUBACK | DISCONNECT;
            TopicNameInvalid = 0x90, MQTT5C_RC_TOPIC_NAME_INVALID, "Topic Name invalid",
                CONNACK | PUBACK | PUBREC | DISCONNECT;
            PacketIdentifierInUse = 0x91, MQTT5C_RC_PACKET_IDENTIFIER_IN_USE, "Packet Identifier in use",
                PUBACK | PUBREC | SUBACK | UNSUBACK;
            PacketIdentifierNotFound = 0x92, MQTT5C_RC_PACKET_IDENTIFIER_NOT_FOUND, "Packet Identifier not found",
                PUBREL | PUBCOMP;
            ReceiveMaximumExceeded = 0x93, MQTT5C_RC_RECEIVE_MAXIMUM_EXCEEDED, "Receive Maximum exceeded",
                DISCONNECT;
            TopicAliasInvalid = 0x94, MQTT5C_RC_TOPIC_ALIAS_INVALID, "Topic Alias invalid",
                DISCONNECT;
            PacketTooLarge = 0x95, MQTT5C_RC_PACKET_TOO_LARGE, "Packet too large",
                CONNACK | DISCONNECT;
            MessageRateTooHigh = 0x96, MQTT5C_RC_MESSAGE_RATE_TOO_HIGH, "Message rate too high",
                DISCONNECT;
            QuotaExceeded = 0x97, MQTT5C_RC_QUOTA_EXCEEDED, "Quota exceeded",
                CONNACK | PUBACK | PUBREC | SUBACK | DISCONNECT;
            AdministrativeAction = 0x98, MQTT5C_RC_ADMINISTRATIVE_ACTION, "Administrative action",
                DISCONNECT;
            PayloadFormatInvalid = 0x99, MQTT5C_RC_PAYLOAD_FORMAT_INVALID, "Payload format invalid",
                CONNACK | PUBACK | PUBREC | DISCONNECT;
            RetainNotSupported = 0x9A, MQTT5C_RC_RETAIN_NOT_SUPPORTED, "Retain not supported",
                CONNACK | DISCONNECT;
            QoSNotSupported = 0x9B, MQTT5C_RC_QOS_NOT_SUPPORTED, "QoS not supported",
                CONNACK | DISCONNECT;
            UseAnotherServer = 0x9C, MQTT5C_RC_USE_ANOTHER_SERVER, "Use another server",
                CONNACK | DISCONNECT;
            ServerMoved = 0x9D, MQTT5C_RC_SERVER_MOVED, "Server moved",
                CONNACK | DISCONNECT;
            SharedSubscriptionsNotSupported = 0x9E, MQTT5C_RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED, "Shared Subscriptions not supported",
                SUBACK | DISCONNECT;
            ConnectionRateExceeded = 0x9F, MQTT5C_RC_CONNECTION_RATE_EXCEEDED, "Connection rate exceeded",
                CONNACK | DISCONNECT;
            MaximumConnectTime = 0xA0, MQTT5C_RC_MAXIMUM_CONNECT_TIME, "Maximum connect time",
                DISCONNECT;
            SubscriptionIdentifiersNotSupported = 0xA1, MQTT5C_RC_SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED, "Subscription Identifiers not supported",
                SUBACK | DISCONNECT;
            WildcardSubscriptionsNotSupported = 0xA2, MQTT5C_RC_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED, "Wildcard Subscriptions not supported",
                SUBACK | DISCONNECT;
        }
    };
}
