// The one table of MQTT v5 property identifiers (spec section 2.2.2.2).
// Everything about an identifier comes from its row: the `PropertyId`
// enum, `from_u8`, `ALL`, its wire type (`kind`), its name in error texts
// (`name`), where each side may send it (`allowed_in`, `allowed_from`),
// the C constant (`MQTT5C_PROP_*` in src/ffi/properties.rs and the
// header, which build.rs writes from this file) and its C documentation,
// and the test that they agree (tests/header_tables.rs). The value enum
// `Property` has one variant per row; its exhaustive matches make a new
// row fail to compile until it is handled. Plain `//` comments and nothing
// but the macro: build.rs and that test `include!` this file.
//
// A row: `Variant = id, C_NAME, wire type, "Spec name",
//         where it may appear (to the server, to the client),
//         "C documentation after the name";`
// Most properties are allowed alike from both sides (`both`); the packet
// sections restrict a few to one side.

/// Calls `$then!` with every property identifier's row.
macro_rules! for_each_property {
    ($then:ident) => {
        $then! {
            PayloadFormatIndicator = 0x01, MQTT5C_PROP_PAYLOAD_FORMAT_INDICATOR, Byte, "Payload Format Indicator",
                both(PUBLISH | WILL),
                "(byte: 0 bytes, 1 UTF-8). PUBLISH, will.";
            MessageExpiryInterval = 0x02, MQTT5C_PROP_MESSAGE_EXPIRY_INTERVAL, FourByteInt, "Message Expiry Interval",
                both(PUBLISH | WILL),
                "(four-byte, seconds). PUBLISH, will.";
            ContentType = 0x03, MQTT5C_PROP_CONTENT_TYPE, Utf8String, "Content Type",
                both(PUBLISH | WILL),
                "(string). PUBLISH, will.";
            ResponseTopic = 0x08, MQTT5C_PROP_RESPONSE_TOPIC, Utf8String, "Response Topic",
                both(PUBLISH | WILL),
                "(string, a topic name). PUBLISH, will.";
            CorrelationData = 0x09, MQTT5C_PROP_CORRELATION_DATA, Binary, "Correlation Data",
                both(PUBLISH | WILL),
                "(binary). PUBLISH, will.";
            SubscriptionIdentifier = 0x0B, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER, VarInt, "Subscription Identifier",
                // A client's PUBLISH must not carry one (MQTT-3.3.4-6): the
                // server adds them for the subscriptions a message matched.
                Senders { to_server: SUBSCRIBE, to_client: PUBLISH },
                "(varint 1..268435455). SUBSCRIBE (one), received PUBLISH (one per \
                 matching subscription).";
            SessionExpiryInterval = 0x11, MQTT5C_PROP_SESSION_EXPIRY_INTERVAL, FourByteInt, "Session Expiry Interval",
                // The server must not send it in DISCONNECT (MQTT-3.14.2-2).
                Senders { to_server: CONNECT | DISCONNECT, to_client: CONNACK },
                "(four-byte, seconds). CONNECT, CONNACK, DISCONNECT.";
            AssignedClientIdentifier = 0x12, MQTT5C_PROP_ASSIGNED_CLIENT_IDENTIFIER, Utf8String, "Assigned Client Identifier",
                both(CONNACK),
                "(string). CONNACK.";
            ServerKeepAlive = 0x13, MQTT5C_PROP_SERVER_KEEP_ALIVE, TwoByteInt, "Server Keep Alive",
                both(CONNACK),
                "(two-byte, seconds). CONNACK.";
            AuthenticationMethod = 0x15, MQTT5C_PROP_AUTHENTICATION_METHOD, Utf8String, "Authentication Method",
                both(CONNECT | CONNACK | AUTH),
                "(string). CONNECT, CONNACK, AUTH.";
            AuthenticationData = 0x16, MQTT5C_PROP_AUTHENTICATION_DATA, Binary, "Authentication Data",
                both(CONNECT | CONNACK | AUTH),
                "(binary). CONNECT, CONNACK, AUTH.";
            RequestProblemInformation = 0x17, MQTT5C_PROP_REQUEST_PROBLEM_INFORMATION, Byte, "Request Problem Information",
                both(CONNECT),
                "(byte 0/1). CONNECT.";
            WillDelayInterval = 0x18, MQTT5C_PROP_WILL_DELAY_INTERVAL, FourByteInt, "Will Delay Interval",
                both(WILL),
                "(four-byte, seconds). Will.";
            RequestResponseInformation = 0x19, MQTT5C_PROP_REQUEST_RESPONSE_INFORMATION, Byte, "Request Response Information",
                both(CONNECT),
                "(byte 0/1). CONNECT.";
            ResponseInformation = 0x1A, MQTT5C_PROP_RESPONSE_INFORMATION, Utf8String, "Response Information",
                both(CONNACK),
                "(string). CONNACK.";
            ServerReference = 0x1C, MQTT5C_PROP_SERVER_REFERENCE, Utf8String, "Server Reference",
                both(CONNACK | DISCONNECT),
                "(string). CONNACK, DISCONNECT.";
            ReasonString = 0x1F, MQTT5C_PROP_REASON_STRING, Utf8String, "Reason String",
                both(CONNACK | PUBACK | PUBREC | PUBREL | PUBCOMP | SUBACK | UNSUBACK | DISCONNECT | AUTH),
                "(string). CONNACK, acks, DISCONNECT, AUTH.";
            ReceiveMaximum = 0x21, MQTT5C_PROP_RECEIVE_MAXIMUM, TwoByteInt, "Receive Maximum",
                both(CONNECT | CONNACK),
                "(two-byte, 1..65535). CONNECT, CONNACK.";
            TopicAliasMaximum = 0x22, MQTT5C_PROP_TOPIC_ALIAS_MAXIMUM, TwoByteInt, "Topic Alias Maximum",
                both(CONNECT | CONNACK),
                "(two-byte). CONNECT, CONNACK.";
            TopicAlias = 0x23, MQTT5C_PROP_TOPIC_ALIAS, TwoByteInt, "Topic Alias",
                both(PUBLISH),
                "(two-byte, 1..). PUBLISH.";
            MaximumQoS = 0x24, MQTT5C_PROP_MAXIMUM_QOS, Byte, "Maximum QoS",
                both(CONNACK),
                "(byte 0/1). CONNACK.";
            RetainAvailable = 0x25, MQTT5C_PROP_RETAIN_AVAILABLE, Byte, "Retain Available",
                both(CONNACK),
                "(byte 0/1). CONNACK.";
            UserProperty = 0x26, MQTT5C_PROP_USER_PROPERTY, Utf8Pair, "User Property",
                both(
                    WILL | CONNECT | CONNACK | PUBLISH | PUBACK | PUBREC | PUBREL | PUBCOMP
                        | SUBSCRIBE | SUBACK | UNSUBSCRIBE | UNSUBACK | DISCONNECT | AUTH,
                ),
                "(string pair; repeatable, order kept). Every packet but \
                 PINGREQ/PINGRESP; add with `mqtt_properties_add_user`.";
            MaximumPacketSize = 0x27, MQTT5C_PROP_MAXIMUM_PACKET_SIZE, FourByteInt, "Maximum Packet Size",
                both(CONNECT | CONNACK),
                "(four-byte, 1..). CONNECT, CONNACK.";
            WildcardSubscriptionAvailable = 0x28, MQTT5C_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE, Byte, "Wildcard Subscription Available",
                both(CONNACK),
                "(byte 0/1). CONNACK.";
            SubscriptionIdentifierAvailable = 0x29, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE, Byte, "Subscription Identifier Available",
                both(CONNACK),
                "(byte 0/1). CONNACK.";
            SharedSubscriptionAvailable = 0x2A, MQTT5C_PROP_SHARED_SUBSCRIPTION_AVAILABLE, Byte, "Shared Subscription Available",
                both(CONNACK),
                "(byte 0/1). CONNACK.";
        }
    };
}
