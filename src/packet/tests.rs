//! Codec tests: round trips of every packet with every property it may
//! carry, incremental decoding, one named test per malformed input, encode
//! validation, zero-copy decoding and a pseudo-random robustness run.

use super::*;
use bytes::{BufMut, Bytes, BytesMut};

// ---------------------------------------------------------------- helpers

fn s(v: &str) -> MqttStr {
    MqttStr::new(v).expect("test strings are valid")
}

fn ctx(t: PacketType) -> PropertyContext {
    PropertyContext::Packet(t)
}

/// A sample value for every property id.
fn sample(id: PropertyId) -> Property {
    use Property as P;
    use PropertyId as I;
    match id {
        I::PayloadFormatIndicator => P::PayloadFormatIndicator(1),
        I::MessageExpiryInterval => P::MessageExpiryInterval(3600),
        I::ContentType => P::ContentType(s("application/json")),
        I::ResponseTopic => P::ResponseTopic(s("reply/to/me")),
        I::CorrelationData => P::CorrelationData(Bytes::from_static(b"\x00\x01corr\xff")),
        I::SubscriptionIdentifier => P::SubscriptionIdentifier(268_435_455),
        I::SessionExpiryInterval => P::SessionExpiryInterval(u32::MAX),
        I::AssignedClientIdentifier => P::AssignedClientIdentifier(s("auto-1234")),
        I::ServerKeepAlive => P::ServerKeepAlive(30),
        I::AuthenticationMethod => P::AuthenticationMethod(s("SCRAM-SHA-1")),
        I::AuthenticationData => P::AuthenticationData(Bytes::from_static(b"\x01\x02\x03")),
        I::RequestProblemInformation => P::RequestProblemInformation(0),
        I::WillDelayInterval => P::WillDelayInterval(10),
        I::RequestResponseInformation => P::RequestResponseInformation(1),
        I::ResponseInformation => P::ResponseInformation(s("resp/base")),
        I::ServerReference => P::ServerReference(s("other.example:1883")),
        I::ReasonString => P::ReasonString(s("because ünïcode")),
        I::ReceiveMaximum => P::ReceiveMaximum(65535),
        I::TopicAliasMaximum => P::TopicAliasMaximum(16),
        I::TopicAlias => P::TopicAlias(7),
        I::MaximumQoS => P::MaximumQoS(1),
        I::RetainAvailable => P::RetainAvailable(0),
        I::UserProperty => P::UserProperty(s("key"), s("value")),
        I::MaximumPacketSize => P::MaximumPacketSize(1 << 20),
        I::WildcardSubscriptionAvailable => P::WildcardSubscriptionAvailable(1),
        I::SubscriptionIdentifierAvailable => P::SubscriptionIdentifierAvailable(0),
        I::SharedSubscriptionAvailable => P::SharedSubscriptionAvailable(1),
    }
}

/// Every property allowed in `c`, repeatable ones more than once where the
/// spec allows it (user properties keep their order, same key twice).
fn all_props(c: PropertyContext) -> Properties {
    let mut props = Properties::new();
    for id in PropertyId::ALL {
        if !id.allowed_in(c) {
            continue;
        }
        props.push(sample(id));
        match id {
            PropertyId::UserProperty => {
                props.push(Property::UserProperty(s("key"), s("second")));
                props.push(Property::UserProperty(s(""), s("")));
            }
            PropertyId::SubscriptionIdentifier if c == ctx(PacketType::Publish) => {
                props.push(Property::SubscriptionIdentifier(1));
            }
            _ => {}
        }
    }
    assert!(!props.is_empty());
    props
}

fn encode_vec(p: &Packet) -> BytesMut {
    let mut out = BytesMut::new();
    encode(p, &mut out).unwrap_or_else(|e| panic!("encode {p:?}: {e:?}"));
    assert_eq!(encoded_len(p), Ok(out.len()), "encoded_len of {p:?}");
    out
}

/// Encodes, decodes, compares, and checks nothing is left over.
fn roundtrip(p: Packet) -> BytesMut {
    let bytes = encode_vec(&p);
    let mut buf = bytes.clone();
    let got = decode(&mut buf, usize::MAX);
    assert_eq!(got, Ok(Some(p)));
    assert!(buf.is_empty());
    bytes
}

fn decode_bytes(b: &[u8]) -> Result<Option<Packet>, DecodeError> {
    decode(&mut BytesMut::from(b), usize::MAX)
}

fn full_connect() -> Connect {
    Connect {
        clean_start: true,
        keep_alive: 60,
        properties: all_props(ctx(PacketType::Connect)),
        client_id: s("client-ü"),
        will: Some(LastWill {
            topic: s("will/topic"),
            payload: Bytes::from_static(b"gone\x00"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: all_props(PropertyContext::Will),
        }),
        username: Some(s("user")),
        password: Some(Bytes::from_static(b"\x00secret")),
    }
}

fn full_publish(qos: QoS) -> Publish {
    Publish {
        dup: qos != QoS::AtMostOnce,
        qos,
        retain: true,
        topic: s("sensors/room1/temp"),
        packet_id: (qos != QoS::AtMostOnce).then_some(4242),
        properties: all_props(ctx(PacketType::Publish)),
        payload: Bytes::from_static(b"{\"t\":21.5}"),
    }
}

fn full_resp(t: PacketType, reason: ReasonCode) -> PubResp {
    PubResp {
        packet_id: 65535,
        reason,
        properties: all_props(ctx(t)),
    }
}

fn full_subscribe() -> Subscribe {
    Subscribe {
        packet_id: 1,
        properties: all_props(ctx(PacketType::Subscribe)),
        filters: vec![
            SubscribeFilter {
                filter: s("a/+/c"),
                options: SubscriptionOptions::default(),
            },
            SubscribeFilter {
                filter: s("#"),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            },
            SubscribeFilter {
                filter: s("$share/group/x/#"),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendIfNew,
                },
            },
        ],
    }
}

/// One or more instances of every packet type, with all their properties,
/// plus the short forms of the acknowledgements (also the fuzz seeds, see
/// `seeds`).
pub(super) fn samples() -> Vec<Packet> {
    vec![
        Packet::Connect(Box::new(full_connect())),
        Packet::Connect(Box::default()),
        Packet::ConnAck(ConnAck {
            session_present: true,
            reason: ReasonCode::Success,
            properties: all_props(ctx(PacketType::ConnAck)),
        }),
        Packet::Publish(full_publish(QoS::AtMostOnce)),
        Packet::Publish(full_publish(QoS::AtLeastOnce)),
        Packet::Publish(full_publish(QoS::ExactlyOnce)),
        Packet::Publish(Publish {
            topic: s("t"),
            ..Publish::default()
        }),
        Packet::PubAck(full_resp(
            PacketType::PubAck,
            ReasonCode::NoMatchingSubscribers,
        )),
        Packet::PubRec(full_resp(PacketType::PubRec, ReasonCode::QuotaExceeded)),
        Packet::PubRel(full_resp(PacketType::PubRel, ReasonCode::Success)),
        Packet::PubComp(full_resp(
            PacketType::PubComp,
            ReasonCode::PacketIdentifierNotFound,
        )),
        Packet::PubAck(PubResp::new(1)),
        Packet::PubRel(PubResp {
            reason: ReasonCode::PacketIdentifierNotFound,
            ..PubResp::new(2)
        }),
        Packet::Subscribe(full_subscribe()),
        Packet::SubAck(SubAck {
            packet_id: 1,
            properties: all_props(ctx(PacketType::SubAck)),
            reasons: vec![
                ReasonCode::GrantedQoS2,
                ReasonCode::Success,
                ReasonCode::SharedSubscriptionsNotSupported,
            ],
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 9,
            properties: all_props(ctx(PacketType::Unsubscribe)),
            filters: vec![s("a/#"), s("$share/g/+")],
        }),
        Packet::UnsubAck(UnsubAck {
            packet_id: 9,
            properties: all_props(ctx(PacketType::UnsubAck)),
            reasons: vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
        }),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(Disconnect {
            reason: ReasonCode::DisconnectWithWillMessage,
            properties: all_props(ctx(PacketType::Disconnect)),
        }),
        Packet::Disconnect(Disconnect::normal()),
        Packet::Auth(Auth {
            reason: ReasonCode::ContinueAuthentication,
            properties: all_props(ctx(PacketType::Auth)),
        }),
        Packet::Auth(Auth {
            reason: ReasonCode::ReAuthenticate,
            properties: Properties::new(),
        }),
    ]
}

// ------------------------------------------------------------ round trips

#[test]
fn roundtrip_connect_with_will_and_every_property() {
    let bytes = roundtrip(Packet::Connect(Box::new(full_connect())));
    assert_eq!(bytes[0], 0x10);
}

#[test]
fn roundtrip_connect_minimal_and_password_without_username() {
    roundtrip(Packet::Connect(Box::default()));
    roundtrip(Packet::Connect(Box::new(Connect {
        password: Some(Bytes::from_static(b"pw")),
        will: Some(LastWill {
            topic: s("w"),
            ..LastWill::default()
        }),
        ..Connect::default()
    })));
}

#[test]
fn roundtrip_connack() {
    roundtrip(Packet::ConnAck(ConnAck {
        session_present: true,
        reason: ReasonCode::Success,
        properties: all_props(ctx(PacketType::ConnAck)),
    }));
    roundtrip(Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::NotAuthorized,
        properties: Properties::new(),
    }));
}

#[test]
fn roundtrip_publish_each_qos() {
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        roundtrip(Packet::Publish(full_publish(qos)));
    }
}

#[test]
fn roundtrip_publish_empty_topic_with_alias() {
    let mut props = Properties::new();
    props.set(Property::TopicAlias(3));
    roundtrip(Packet::Publish(Publish {
        properties: props,
        payload: Bytes::new(),
        ..Publish::default()
    }));
}

#[test]
fn roundtrip_puback_pubrec_pubrel_pubcomp() {
    roundtrip(Packet::PubAck(full_resp(
        PacketType::PubAck,
        ReasonCode::NotAuthorized,
    )));
    roundtrip(Packet::PubRec(full_resp(
        PacketType::PubRec,
        ReasonCode::Success,
    )));
    roundtrip(Packet::PubRel(full_resp(
        PacketType::PubRel,
        ReasonCode::Success,
    )));
    roundtrip(Packet::PubComp(full_resp(
        PacketType::PubComp,
        ReasonCode::Success,
    )));
}

#[test]
fn pubresp_short_forms_on_the_wire() {
    let b = roundtrip(Packet::PubAck(PubResp::new(1)));
    assert_eq!(&b[..], &[0x40, 0x02, 0x00, 0x01]);
    let b = roundtrip(Packet::PubRel(PubResp::new(0x1234)));
    assert_eq!(&b[..], &[0x62, 0x02, 0x12, 0x34]);
    let b = roundtrip(Packet::PubRec(PubResp {
        reason: ReasonCode::NoMatchingSubscribers,
        ..PubResp::new(1)
    }));
    assert_eq!(&b[..], &[0x50, 0x03, 0x00, 0x01, 0x10]);
    let b = roundtrip(Packet::PubComp(PubResp {
        reason: ReasonCode::PacketIdentifierNotFound,
        ..PubResp::new(1)
    }));
    assert_eq!(&b[..], &[0x70, 0x03, 0x00, 0x01, 0x92]);
}

#[test]
fn pubresp_short_and_long_forms_decode() {
    let want = Packet::PubAck(PubResp::new(5));
    // Remaining length 3 with Success, and 4 with an empty property list.
    assert_eq!(decode_bytes(&[0x40, 0x03, 0, 5, 0]), Ok(Some(want.clone())));
    assert_eq!(decode_bytes(&[0x40, 0x04, 0, 5, 0, 0]), Ok(Some(want)));
}

#[test]
fn roundtrip_subscribe() {
    roundtrip(Packet::Subscribe(full_subscribe()));
}

#[test]
fn roundtrip_suback() {
    roundtrip(Packet::SubAck(SubAck {
        packet_id: 7,
        properties: all_props(ctx(PacketType::SubAck)),
        reasons: vec![ReasonCode::GrantedQoS1, ReasonCode::TopicFilterInvalid],
    }));
}

#[test]
fn roundtrip_unsubscribe() {
    roundtrip(Packet::Unsubscribe(Unsubscribe {
        packet_id: 3,
        properties: all_props(ctx(PacketType::Unsubscribe)),
        filters: vec![s("a/b"), s("+/#")],
    }));
}

#[test]
fn roundtrip_unsuback() {
    roundtrip(Packet::UnsubAck(UnsubAck {
        packet_id: 3,
        properties: all_props(ctx(PacketType::UnsubAck)),
        reasons: vec![ReasonCode::NoSubscriptionExisted, ReasonCode::Success],
    }));
}

#[test]
fn roundtrip_pings() {
    assert_eq!(&roundtrip(Packet::PingReq)[..], &[0xC0, 0x00]);
    assert_eq!(&roundtrip(Packet::PingResp)[..], &[0xD0, 0x00]);
}

#[test]
fn roundtrip_disconnect_full_and_short() {
    roundtrip(Packet::Disconnect(Disconnect {
        reason: ReasonCode::ServerShuttingDown,
        properties: all_props(ctx(PacketType::Disconnect)),
    }));
    let b = roundtrip(Packet::Disconnect(Disconnect::normal()));
    assert_eq!(&b[..], &[0xE0, 0x00]);
    let b = roundtrip(Packet::Disconnect(Disconnect {
        reason: ReasonCode::SessionTakenOver,
        properties: Properties::new(),
    }));
    assert_eq!(&b[..], &[0xE0, 0x01, 0x8E]);
}

#[test]
fn roundtrip_auth_full_and_short() {
    roundtrip(Packet::Auth(Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: all_props(ctx(PacketType::Auth)),
    }));
    let b = roundtrip(Packet::Auth(Auth {
        reason: ReasonCode::Success,
        properties: Properties::new(),
    }));
    assert_eq!(&b[..], &[0xF0, 0x00]);
    let b = roundtrip(Packet::Auth(Auth {
        reason: ReasonCode::ReAuthenticate,
        properties: Properties::new(),
    }));
    assert_eq!(&b[..], &[0xF0, 0x01, 0x19]);
}

#[test]
fn every_sample_round_trips() {
    let samples = samples();
    // Every packet type is covered.
    for t in 1..=15 {
        assert!(samples.iter().any(|p| p.packet_type() as u8 == t), "{t}");
    }
    for p in samples {
        roundtrip(p);
    }
}

#[test]
fn known_bytes_connect_and_publish() {
    let c = Packet::Connect(Box::new(Connect {
        clean_start: true,
        keep_alive: 60,
        client_id: s("c"),
        ..Connect::default()
    }));
    let want = b"\x10\x0e\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x01c";
    assert_eq!(&roundtrip(c)[..], want);

    let p = Packet::Publish(Publish {
        topic: s("a/b"),
        payload: Bytes::from_static(b"hi"),
        ..Publish::default()
    });
    assert_eq!(&roundtrip(p)[..], b"\x30\x08\x00\x03a/b\x00hi");
}

// ---------------------------------------------------- incremental decoding

#[test]
fn decode_byte_by_byte() {
    for p in samples() {
        let bytes = encode_vec(&p);
        let mut buf = BytesMut::new();
        for (i, &b) in bytes.iter().enumerate() {
            buf.put_u8(b);
            let got = decode(&mut buf, usize::MAX);
            if i + 1 < bytes.len() {
                assert_eq!(got, Ok(None), "{p:?} after {} bytes", i + 1);
                assert_eq!(buf.len(), i + 1, "nothing consumed");
            } else {
                assert_eq!(got, Ok(Some(p.clone())));
                assert!(buf.is_empty());
            }
        }
    }
}

#[test]
fn decode_empty_buffer_is_incomplete() {
    assert_eq!(decode(&mut BytesMut::new(), 100), Ok(None));
}

#[test]
fn two_packets_in_one_buffer() {
    let a = Packet::Publish(full_publish(QoS::AtLeastOnce));
    let b = Packet::PubAck(PubResp::new(4242));
    let mut buf = BytesMut::new();
    encode(&a, &mut buf).expect("valid");
    encode(&b, &mut buf).expect("valid");
    buf.put_u8(0xC0); // start of a third packet
    assert_eq!(decode(&mut buf, usize::MAX), Ok(Some(a)));
    assert_eq!(decode(&mut buf, usize::MAX), Ok(Some(b)));
    assert_eq!(decode(&mut buf, usize::MAX), Ok(None));
    assert_eq!(&buf[..], &[0xC0]);
}

#[test]
fn all_samples_back_to_back() {
    let samples = samples();
    let mut buf = BytesMut::new();
    for p in &samples {
        encode(p, &mut buf).expect("valid");
    }
    for p in samples {
        assert_eq!(decode(&mut buf, usize::MAX), Ok(Some(p)));
    }
    assert!(buf.is_empty());
}

// ------------------------------------------------------- malformed inputs

#[test]
fn malformed_truncated_string_inside_property() {
    // CONNACK whose Reason String claims 10 bytes; only 3 follow, and the
    // property length and remaining length agree with the short body.
    let bytes = [
        0x20, 0x08, 0x00, 0x00, 0x05, 0x1F, 0x00, 0x0A, b'a', b'b', b'c',
    ];
    assert!(matches!(
        decode_bytes(&bytes),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn malformed_truncated_topic() {
    // PUBLISH whose topic length (16) runs past the remaining length (4).
    let bytes = [0x30, 0x04, 0x00, 0x10, b'a', b'b'];
    assert!(matches!(
        decode_bytes(&bytes),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn malformed_property_length_past_packet_end() {
    // PUBACK with reason 0 and property length 100 in a 4-byte body.
    let bytes = [0x40, 0x04, 0x00, 0x01, 0x00, 0x64];
    assert!(matches!(
        decode_bytes(&bytes),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn malformed_truncated_fixed_width_property() {
    // PUBLISH with a Message Expiry Interval cut after two of four bytes.
    let bytes = [0x30, 0x07, 0x00, 0x01, b't', 0x03, 0x02, 0x00, 0x00];
    assert!(matches!(
        decode_bytes(&bytes),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn malformed_remaining_length_five_bytes() {
    let bytes = [0x30, 0x80, 0x80, 0x80, 0x80, 0x01];
    assert_eq!(decode_bytes(&bytes), Err(DecodeError::BadRemainingLength));
    // Rejected as soon as the fourth length byte is seen.
    assert_eq!(
        decode_bytes(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF]),
        Err(DecodeError::BadRemainingLength)
    );
}

#[test]
fn malformed_subscription_identifier_varint_too_long() {
    // PUBLISH whose Subscription Identifier varint has five bytes.
    let bytes = [
        0x30, 0x0A, 0x00, 0x01, b't', 0x06, 0x0B, 0x80, 0x80, 0x80, 0x80, 0x01,
    ];
    assert!(matches!(
        decode_bytes(&bytes),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn malformed_unknown_property_id() {
    // PUBLISH with property 0x04 (unassigned).
    let bytes = [0x30, 0x06, 0x00, 0x01, b't', 0x02, 0x04, 0x00];
    assert_eq!(
        decode_bytes(&bytes),
        Err(DecodeError::UnknownProperty(0x04))
    );
}

#[test]
fn malformed_duplicate_property() {
    // PUBLISH with Topic Alias twice.
    let bytes = [
        0x30, 0x0B, 0x00, 0x01, b't', 0x06, 0x23, 0x00, 0x01, 0x23, 0x00, 0x02, b'x',
    ];
    assert_eq!(
        decode_bytes(&bytes),
        Err(DecodeError::DuplicateProperty(0x23))
    );
}

#[test]
fn duplicate_subscription_identifier_only_rejected_in_subscribe() {
    // Two Subscription Identifiers are fine in PUBLISH...
    let bytes = [
        0x30, 0x09, 0x00, 0x01, b't', 0x04, 0x0B, 0x01, 0x0B, 0x02, b'x',
    ];
    assert!(matches!(decode_bytes(&bytes), Ok(Some(Packet::Publish(_)))));
    // ...but not in SUBSCRIBE.
    let bytes = [
        0x82, 0x0B, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, b't', 0x00,
    ];
    assert_eq!(
        decode_bytes(&bytes),
        Err(DecodeError::DuplicateProperty(0x0B))
    );
}

#[test]
fn malformed_property_not_allowed_in_packet() {
    // PUBACK carrying a Topic Alias.
    let bytes = [0x40, 0x07, 0x00, 0x01, 0x00, 0x03, 0x23, 0x00, 0x01];
    assert_eq!(
        decode_bytes(&bytes),
        Err(DecodeError::PropertyNotAllowed {
            id: 0x23,
            packet: 4
        })
    );
}

#[test]
fn malformed_property_not_allowed_in_will() {
    // CONNECT whose will properties carry a Session Expiry Interval.
    let mut b = BytesMut::from(&b"\x00\x04MQTT\x05\x04\x00\x00\x00\x00\x00"[..]);
    b.extend_from_slice(&[0x05, 0x11, 0, 0, 0, 1, 0x00, 0x01, b'w', 0x00, 0x00]);
    let mut pkt = BytesMut::from(&[0x10, u8::try_from(b.len()).expect("short")][..]);
    pkt.extend_from_slice(&b);
    assert_eq!(
        decode(&mut pkt, usize::MAX),
        Err(DecodeError::PropertyNotAllowed {
            id: 0x11,
            packet: 1
        })
    );
}

#[test]
fn malformed_bad_utf8_in_topic() {
    let bytes = [0x30, 0x05, 0x00, 0x02, 0xC3, 0x28, b'x'];
    assert_eq!(decode_bytes(&bytes), Err(DecodeError::InvalidUtf8));
}

#[test]
fn malformed_nul_in_string() {
    // Topic "a\0".
    let bytes = [0x30, 0x05, 0x00, 0x02, b'a', 0x00, 0x00];
    assert_eq!(decode_bytes(&bytes), Err(DecodeError::InvalidUtf8));
    // Reason String "\0" in a PUBACK.
    let bytes = [0x40, 0x08, 0x00, 0x01, 0x80, 0x04, 0x1F, 0x00, 0x01, 0x00];
    assert_eq!(decode_bytes(&bytes), Err(DecodeError::InvalidUtf8));
}

#[test]
fn malformed_wildcard_in_publish_topic() {
    for topic in [&b"a/+"[..], b"#", b"a/#"] {
        let mut pkt = BytesMut::new();
        pkt.put_u8(0x30);
        pkt.put_u8(u8::try_from(topic.len() + 3).expect("short"));
        pkt.put_u16(u16::try_from(topic.len()).expect("short"));
        pkt.extend_from_slice(topic);
        pkt.put_u8(0);
        assert_eq!(
            decode(&mut pkt, usize::MAX),
            Err(DecodeError::InvalidTopicName)
        );
    }
}

#[test]
fn malformed_empty_topic_without_alias() {
    let bytes = [0x30, 0x03, 0x00, 0x00, 0x00];
    assert_eq!(decode_bytes(&bytes), Err(DecodeError::InvalidTopicName));
}

#[test]
fn malformed_publish_qos3() {
    // Rejected from the first byte alone.
    assert_eq!(decode_bytes(&[0x36]), Err(DecodeError::InvalidQoS(3)));
}

#[test]
fn malformed_publish_dup_with_qos0() {
    assert!(matches!(
        decode_bytes(&[0x38, 0x04, 0x00, 0x01, b't', 0x00]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn malformed_reserved_flags_wrong() {
    // SUBSCRIBE, UNSUBSCRIBE and PUBREL need 0b0010; the rest need 0.
    for byte0 in [0x80, 0xA0, 0x60, 0x41, 0x12, 0xC1, 0xE8, 0x22, 0x63, 0xF2] {
        assert_eq!(
            decode_bytes(&[byte0, 0x00]),
            Err(DecodeError::InvalidPacketType(byte0)),
            "{byte0:#04x}"
        );
    }
}

#[test]
fn malformed_packet_type_zero() {
    assert_eq!(
        decode_bytes(&[0x00, 0x00]),
        Err(DecodeError::InvalidPacketType(0x00))
    );
}

#[test]
fn packet_too_large_rejected_from_header() {
    // A PUBLISH announcing 2,000,000 bytes; only the header has arrived.
    let mut buf = BytesMut::from(&[0x30, 0x80, 0x89, 0x7A][..]);
    assert_eq!(
        decode(&mut buf, 1024),
        Err(DecodeError::PacketTooLarge {
            size: 2_000_004,
            max: 1024
        })
    );
    assert_eq!(buf.len(), 4, "header not consumed");
    // The limit is on the whole packet: exactly max is fine.
    let p = Packet::PubAck(PubResp::new(1));
    let mut buf = encode_vec(&p);
    assert_eq!(decode(&mut buf.clone(), 4), Ok(Some(p)));
    assert_eq!(
        decode(&mut buf, 3),
        Err(DecodeError::PacketTooLarge { size: 4, max: 3 })
    );
}

#[test]
fn malformed_subscription_identifier_zero() {
    let bytes = [0x30, 0x06, 0x00, 0x01, b't', 0x02, 0x0B, 0x00];
    assert!(matches!(
        decode_bytes(&bytes),
        Err(DecodeError::ProtocolError(_))
    ));
}

#[test]
fn malformed_zero_or_out_of_range_property_values() {
    // PUBLISH with Topic Alias 0.
    let bytes = [0x30, 0x07, 0x00, 0x01, b't', 0x03, 0x23, 0x00, 0x00];
    assert!(matches!(
        decode_bytes(&bytes),
        Err(DecodeError::ProtocolError(_))
    ));
    // CONNACK with Maximum QoS 2.
    let bytes = [0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02];
    assert!(matches!(
        decode_bytes(&bytes),
        Err(DecodeError::ProtocolError(_))
    ));
    // CONNACK with Receive Maximum 0.
    let bytes = [0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00];
    assert!(matches!(
        decode_bytes(&bytes),
        Err(DecodeError::ProtocolError(_))
    ));
}

#[test]
fn malformed_subscription_options() {
    let sub = |opts: u8| [0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b't', opts];
    assert_eq!(decode_bytes(&sub(0x03)), Err(DecodeError::InvalidQoS(3)));
    assert!(matches!(
        decode_bytes(&sub(0x40)),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        decode_bytes(&sub(0x30)),
        Err(DecodeError::ProtocolError(_))
    ));
    assert!(matches!(decode_bytes(&sub(0x2E)), Ok(Some(_))));
}

#[test]
fn malformed_no_local_on_shared_subscription() {
    let mut b = BytesMut::from(&[0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0A][..]);
    b.extend_from_slice(b"$share/g/t");
    let mut ok = b.clone();
    ok.put_u8(0x00);
    assert!(matches!(decode(&mut ok, usize::MAX), Ok(Some(_))));
    b.put_u8(0x04);
    assert!(matches!(
        decode(&mut b, usize::MAX),
        Err(DecodeError::ProtocolError(_))
    ));
}

#[test]
fn malformed_subscribe_without_filters() {
    assert!(matches!(
        decode_bytes(&[0x82, 0x03, 0x00, 0x01, 0x00]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn malformed_unsubscribe_without_filters() {
    assert!(matches!(
        decode_bytes(&[0xA2, 0x03, 0x00, 0x01, 0x00]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn malformed_subscribe_invalid_filter() {
    let bytes = [0x82, 0x08, 0x00, 0x01, 0x00, 0x00, 0x02, b'a', b'#', 0x00];
    assert_eq!(decode_bytes(&bytes), Err(DecodeError::InvalidTopicFilter));
    let bytes = [0xA2, 0x07, 0x00, 0x01, 0x00, 0x00, 0x02, b'+', b'+'];
    assert_eq!(decode_bytes(&bytes), Err(DecodeError::InvalidTopicFilter));
}

#[test]
fn malformed_trailing_bytes() {
    assert!(matches!(
        decode_bytes(&[0xC0, 0x01, 0x00]),
        Err(DecodeError::Malformed(_))
    ));
    // PUBACK: id, reason, empty property list, then a stray byte.
    assert!(matches!(
        decode_bytes(&[0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0xFF]),
        Err(DecodeError::Malformed(_))
    ));
    // DISCONNECT likewise.
    assert!(matches!(
        decode_bytes(&[0xE0, 0x03, 0x00, 0x00, 0x00]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn malformed_invalid_reason_codes() {
    // Unknown value.
    assert_eq!(
        decode_bytes(&[0x40, 0x03, 0x00, 0x01, 0x03]),
        Err(DecodeError::InvalidReasonCode(0x03))
    );
    // Known, but not a PUBACK code.
    assert_eq!(
        decode_bytes(&[0x40, 0x03, 0x00, 0x01, 0x01]),
        Err(DecodeError::InvalidReasonCode(0x01))
    );
    // SUBACK list with an unknown code.
    assert_eq!(
        decode_bytes(&[0x90, 0x05, 0x00, 0x01, 0x00, 0x00, 0x05]),
        Err(DecodeError::InvalidReasonCode(0x05))
    );
}

#[test]
fn malformed_packet_identifier_zero() {
    assert!(matches!(
        decode_bytes(&[0x40, 0x02, 0x00, 0x00]),
        Err(DecodeError::ProtocolError(_))
    ));
    assert!(matches!(
        decode_bytes(&[0x32, 0x06, 0x00, 0x01, b't', 0x00, 0x00, 0x00]),
        Err(DecodeError::ProtocolError(_))
    ));
}

#[test]
fn malformed_connack_flags_and_session_present_on_failure() {
    assert!(matches!(
        decode_bytes(&[0x20, 0x03, 0x02, 0x00, 0x00]),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        decode_bytes(&[0x20, 0x03, 0x01, 0x87, 0x00]),
        Err(DecodeError::ProtocolError(_))
    ));
}

/// A minimal CONNECT with the given name, level and flags.
fn connect_bytes(name: &[u8], level: u8, flags: u8) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_u16(u16::try_from(name.len()).expect("short"));
    body.extend_from_slice(name);
    body.put_u8(level);
    body.put_u8(flags);
    body.put_u16(0);
    body.put_u8(0);
    body.put_u16(0);
    let mut pkt = BytesMut::from(&[0x10, u8::try_from(body.len()).expect("short")][..]);
    pkt.extend_from_slice(&body);
    pkt
}

#[test]
fn malformed_connect_header() {
    assert!(matches!(
        decode(&mut connect_bytes(b"MQTT", 5, 0x02), usize::MAX),
        Ok(Some(Packet::Connect(_)))
    ));
    assert!(matches!(
        decode(&mut connect_bytes(b"MQIsdp", 5, 0), usize::MAX),
        Err(DecodeError::ProtocolError(_))
    ));
    assert!(matches!(
        decode(&mut connect_bytes(b"MQTT", 4, 0), usize::MAX),
        Err(DecodeError::ProtocolError(_))
    ));
    // Reserved flag bit 0.
    assert!(matches!(
        decode(&mut connect_bytes(b"MQTT", 5, 0x01), usize::MAX),
        Err(DecodeError::Malformed(_))
    ));
    // Will QoS / retain without the will flag.
    assert!(matches!(
        decode(&mut connect_bytes(b"MQTT", 5, 0x08), usize::MAX),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        decode(&mut connect_bytes(b"MQTT", 5, 0x20), usize::MAX),
        Err(DecodeError::Malformed(_))
    ));
    // Will QoS 3.
    assert_eq!(
        decode(&mut connect_bytes(b"MQTT", 5, 0x1C), usize::MAX),
        Err(DecodeError::InvalidQoS(3))
    );
    // Username flag set but no username: truncated.
    assert!(matches!(
        decode(&mut connect_bytes(b"MQTT", 5, 0x80), usize::MAX),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn malformed_connect_auth_data_without_method() {
    let mut c = Connect::default();
    c.properties
        .push(Property::AuthenticationData(Bytes::from_static(b"x")));
    assert!(matches!(
        encode(&Packet::Connect(Box::new(c)), &mut BytesMut::new()),
        Err(EncodeError::Invalid(_))
    ));
    let mut body = BytesMut::from(&b"\x00\x04MQTT\x05\x00\x00\x00"[..]);
    body.extend_from_slice(&[0x04, 0x16, 0x00, 0x01, b'x', 0x00, 0x00]);
    let mut pkt = BytesMut::from(&[0x10, u8::try_from(body.len()).expect("short")][..]);
    pkt.extend_from_slice(&body);
    assert!(matches!(
        decode(&mut pkt, usize::MAX),
        Err(DecodeError::ProtocolError(_))
    ));
}

// --------------------------------------------------------- encode checks

/// Encoding `p` fails with `want` and leaves `out` exactly as it was.
fn assert_encode_err(p: Packet, want: EncodeError) {
    let mut out = BytesMut::from(&b"prefix"[..]);
    assert_eq!(encode(&p, &mut out), Err(want.clone()), "{p:?}");
    assert_eq!(&out[..], b"prefix");
    assert_eq!(encoded_len(&p), Err(want));
}

#[test]
fn encode_rejects_packet_id_inconsistent_with_qos() {
    assert_encode_err(
        Packet::Publish(Publish {
            qos: QoS::AtLeastOnce,
            topic: s("t"),
            ..Publish::default()
        }),
        EncodeError::InvalidPacketId,
    );
    assert_encode_err(
        Packet::Publish(Publish {
            packet_id: Some(1),
            topic: s("t"),
            ..Publish::default()
        }),
        EncodeError::InvalidPacketId,
    );
    assert_encode_err(
        Packet::Publish(Publish {
            qos: QoS::ExactlyOnce,
            packet_id: Some(0),
            topic: s("t"),
            ..Publish::default()
        }),
        EncodeError::InvalidPacketId,
    );
    assert_encode_err(
        Packet::PubAck(PubResp::new(0)),
        EncodeError::InvalidPacketId,
    );
}

#[test]
fn encode_rejects_bad_topics() {
    assert_encode_err(
        Packet::Publish(Publish {
            topic: s("a/+"),
            ..Publish::default()
        }),
        EncodeError::InvalidTopicName,
    );
    assert_encode_err(
        Packet::Publish(Publish::default()),
        EncodeError::InvalidTopicName,
    );
    let mut sub = full_subscribe();
    sub.filters[0].filter = s("a/#/b");
    assert_encode_err(Packet::Subscribe(sub), EncodeError::InvalidTopicFilter);
    assert_encode_err(
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 1,
            properties: Properties::new(),
            filters: vec![s("$share/g")],
        }),
        EncodeError::InvalidTopicFilter,
    );
    let mut c = full_connect();
    if let Some(w) = c.will.as_mut() {
        w.topic = s("will/#");
    }
    assert_encode_err(Packet::Connect(Box::new(c)), EncodeError::InvalidTopicName);
}

#[test]
fn encode_rejects_property_not_allowed() {
    let mut p = full_publish(QoS::AtMostOnce);
    p.properties.push(Property::ReasonString(s("no")));
    assert_encode_err(
        Packet::Publish(p),
        EncodeError::PropertyNotAllowed {
            id: 0x1F,
            packet: 3,
        },
    );
    let mut c = full_connect();
    if let Some(w) = c.will.as_mut() {
        w.properties.push(Property::TopicAlias(1));
    }
    assert_encode_err(
        Packet::Connect(Box::new(c)),
        EncodeError::PropertyNotAllowed {
            id: 0x23,
            packet: 1,
        },
    );
}

#[test]
fn encode_rejects_duplicates_and_bad_values() {
    let mut p = full_publish(QoS::AtMostOnce);
    p.properties.push(Property::TopicAlias(9));
    assert!(matches!(
        encode(&Packet::Publish(p), &mut BytesMut::new()),
        Err(EncodeError::Invalid(_))
    ));
    let mut sub = full_subscribe();
    sub.properties.set(Property::SubscriptionIdentifier(0));
    assert!(matches!(
        encoded_len(&Packet::Subscribe(sub)),
        Err(EncodeError::Invalid(_))
    ));
}

#[test]
fn encode_rejects_binary_too_long() {
    let long = Bytes::from(vec![0u8; 65536]);
    let mut p = full_publish(QoS::AtMostOnce);
    p.properties.set(Property::CorrelationData(long.clone()));
    assert_encode_err(Packet::Publish(p), EncodeError::BinaryTooLong);
    let c = Connect {
        password: Some(long.clone()),
        ..Connect::default()
    };
    assert_encode_err(Packet::Connect(Box::new(c)), EncodeError::BinaryTooLong);
    let c = Connect {
        will: Some(LastWill {
            topic: s("w"),
            payload: long,
            ..LastWill::default()
        }),
        ..Connect::default()
    };
    assert_encode_err(Packet::Connect(Box::new(c)), EncodeError::BinaryTooLong);
}

#[test]
fn encode_rejects_empty_lists_and_wrong_reasons() {
    assert!(matches!(
        encoded_len(&Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Properties::new(),
            filters: vec![],
        })),
        Err(EncodeError::Invalid(_))
    ));
    assert!(matches!(
        encoded_len(&Packet::Unsubscribe(Unsubscribe {
            packet_id: 1,
            properties: Properties::new(),
            filters: vec![],
        })),
        Err(EncodeError::Invalid(_))
    ));
    assert!(matches!(
        encoded_len(&Packet::PubAck(PubResp {
            reason: ReasonCode::GrantedQoS1,
            ..PubResp::new(1)
        })),
        Err(EncodeError::Invalid(_))
    ));
}

#[test]
fn encode_rejects_remaining_length_over_max() {
    // calloc'd, so the 256 MiB is not touched.
    let payload = Bytes::from(vec![0u8; varint::VARINT_MAX as usize]);
    let p = Packet::Publish(Publish {
        topic: s("t"),
        payload,
        ..Publish::default()
    });
    assert_encode_err(p, EncodeError::PacketTooLarge);
}

#[test]
fn encode_appends_after_existing_content() {
    let mut out = BytesMut::from(&b"xy"[..]);
    encode(&Packet::PingReq, &mut out).expect("valid");
    assert_eq!(&out[..], b"xy\xC0\x00");
}

// ------------------------------------------------------------- properties

#[test]
fn properties_set_replaces_or_appends() {
    let mut p = Properties::new();
    p.set(Property::TopicAlias(1));
    p.set(Property::UserProperty(s("a"), s("1")));
    p.set(Property::TopicAlias(2));
    p.set(Property::UserProperty(s("a"), s("2")));
    p.set(Property::SubscriptionIdentifier(5));
    p.set(Property::SubscriptionIdentifier(6));
    assert_eq!(
        p.iter().collect::<Vec<_>>(),
        vec![
            Property::TopicAlias(2),
            Property::UserProperty(s("a"), s("1")),
            Property::UserProperty(s("a"), s("2")),
            Property::SubscriptionIdentifier(5),
            Property::SubscriptionIdentifier(6),
        ]
    );
    // Stray duplicates pushed by hand collapse into one.
    p.push(Property::TopicAlias(3));
    p.set(Property::TopicAlias(4));
    assert_eq!(
        p.iter()
            .filter(|q| q.id() == PropertyId::TopicAlias)
            .count(),
        1
    );
    assert_eq!(p.get_int(PropertyId::TopicAlias), Some(4));
    p.remove(PropertyId::UserProperty);
    assert!(p.get(PropertyId::UserProperty).is_none());
}

#[test]
fn properties_typed_getters() {
    let p = all_props(ctx(PacketType::ConnAck));
    assert_eq!(p.get_int(PropertyId::MaximumQoS), Some(1)); // byte
    assert_eq!(p.get_int(PropertyId::ReceiveMaximum), Some(65535)); // two-byte
    assert_eq!(p.get_int(PropertyId::SessionExpiryInterval), Some(u32::MAX));
    assert_eq!(p.get_int(PropertyId::ReasonString), None);
    assert_eq!(
        p.get_str(PropertyId::AssignedClientIdentifier).as_deref(),
        Some("auto-1234")
    );
    assert_eq!(
        p.get_binary(PropertyId::AuthenticationData).as_deref(),
        Some(&b"\x01\x02\x03"[..])
    );
    let p = all_props(ctx(PacketType::Publish));
    assert_eq!(
        p.get_int(PropertyId::SubscriptionIdentifier),
        Some(268_435_455)
    ); // varint
    assert_eq!(p.get_str(PropertyId::UserProperty), None);
}

#[test]
fn property_ids_kinds_and_names() {
    let mut n = 0;
    for raw in 0..=255u8 {
        if let Some(id) = PropertyId::from_u8(raw) {
            assert_eq!(id as u8, raw);
            assert_eq!(sample(id).id(), id);
            assert!(!id.name().is_empty());
            n += 1;
        }
    }
    assert_eq!(n, PropertyId::ALL.len());
    assert_eq!(PropertyId::TopicAlias.name(), "Topic Alias");
    assert_eq!(PropertyId::TopicAlias.kind(), PropertyKind::TwoByteInt);
    assert_eq!(
        PropertyId::SubscriptionIdentifier.kind(),
        PropertyKind::VarInt
    );
    assert_eq!(PropertyId::UserProperty.kind(), PropertyKind::Utf8Pair);
    assert_eq!(PropertyId::CorrelationData.kind(), PropertyKind::Binary);
    assert_eq!(
        PropertyId::WillDelayInterval.kind(),
        PropertyKind::FourByteInt
    );
    assert!(PropertyId::UserProperty.is_repeatable());
    assert!(PropertyId::SubscriptionIdentifier.is_repeatable());
    assert!(!PropertyId::TopicAlias.is_repeatable());
}

#[test]
fn property_allowed_table() {
    use PacketType as T;
    use PropertyId as I;
    let only = |id: I, yes: &[PropertyContext]| {
        let mut all: Vec<PropertyContext> = (1..=15)
            .filter_map(PacketType::from_u8)
            .map(PropertyContext::Packet)
            .collect();
        all.push(PropertyContext::Will);
        for c in all {
            assert_eq!(id.allowed_in(c), yes.contains(&c), "{id:?} in {c:?}");
        }
    };
    let w = PropertyContext::Will;
    only(I::TopicAlias, &[ctx(T::Publish)]);
    only(
        I::SubscriptionIdentifier,
        &[ctx(T::Publish), ctx(T::Subscribe)],
    );
    only(
        I::ReasonString,
        &[
            ctx(T::ConnAck),
            ctx(T::PubAck),
            ctx(T::PubRec),
            ctx(T::PubRel),
            ctx(T::PubComp),
            ctx(T::SubAck),
            ctx(T::UnsubAck),
            ctx(T::Disconnect),
            ctx(T::Auth),
        ],
    );
    only(I::WillDelayInterval, &[w]);
    only(
        I::SessionExpiryInterval,
        &[ctx(T::Connect), ctx(T::ConnAck), ctx(T::Disconnect)],
    );
    only(I::ServerReference, &[ctx(T::ConnAck), ctx(T::Disconnect)]);
    for id in [I::AuthenticationMethod, I::AuthenticationData] {
        only(id, &[ctx(T::Connect), ctx(T::ConnAck), ctx(T::Auth)]);
    }
    for id in [
        I::PayloadFormatIndicator,
        I::MessageExpiryInterval,
        I::ContentType,
        I::ResponseTopic,
        I::CorrelationData,
    ] {
        only(id, &[ctx(T::Publish), w]);
    }
    for id in [
        I::ReceiveMaximum,
        I::TopicAliasMaximum,
        I::MaximumPacketSize,
    ] {
        only(id, &[ctx(T::Connect), ctx(T::ConnAck)]);
    }
    for id in [I::RequestProblemInformation, I::RequestResponseInformation] {
        only(id, &[ctx(T::Connect)]);
    }
    for id in [
        I::AssignedClientIdentifier,
        I::ServerKeepAlive,
        I::ResponseInformation,
        I::MaximumQoS,
        I::RetainAvailable,
        I::WildcardSubscriptionAvailable,
        I::SubscriptionIdentifierAvailable,
        I::SharedSubscriptionAvailable,
    ] {
        only(id, &[ctx(T::ConnAck)]);
    }
    let everywhere: Vec<PropertyContext> = (1..=15)
        .filter_map(PacketType::from_u8)
        .filter(|t| !matches!(t, T::PingReq | T::PingResp))
        .map(PropertyContext::Packet)
        .chain([w])
        .collect();
    only(I::UserProperty, &everywhere);

    let mut p = Properties::new();
    p.push(Property::UserProperty(s("k"), s("v")));
    p.push(Property::TopicAlias(1));
    for dir in [Direction::ToServer, Direction::ToClient] {
        assert_eq!(p.first_not_allowed(ctx(T::Publish), dir), None);
        assert_eq!(
            p.first_not_allowed(ctx(T::PubAck), dir),
            Some(PropertyId::TopicAlias)
        );
    }
}

/// The side restrictions: a client's PUBLISH carries no Subscription
/// Identifier (MQTT-3.3.4-6), a server's DISCONNECT no Session Expiry
/// Interval (MQTT-3.14.2-2); everything else is the same both ways.
#[test]
fn property_direction_table() {
    use Direction::{ToClient, ToServer};
    use PacketType as T;
    use PropertyId as I;
    let one_sided = [
        (I::SubscriptionIdentifier, ctx(T::Publish), ToClient),
        (I::SessionExpiryInterval, ctx(T::Disconnect), ToServer),
    ];
    // Packets both sides send; the others travel one way only.
    let two_way = [
        T::Publish,
        T::PubAck,
        T::PubRec,
        T::PubRel,
        T::PubComp,
        T::Disconnect,
        T::Auth,
    ]
    .map(ctx);
    for id in PropertyId::ALL {
        for c in two_way {
            let (to_server, to_client) =
                (id.allowed_from(c, ToServer), id.allowed_from(c, ToClient));
            assert_eq!(id.allowed_in(c), to_server || to_client, "{id:?} in {c:?}");
            match one_sided.iter().find(|(i, x, _)| *i == id && *x == c) {
                Some((_, _, ToServer)) => assert!(to_server && !to_client, "{id:?} in {c:?}"),
                Some((_, _, ToClient)) => assert!(to_client && !to_server, "{id:?} in {c:?}"),
                None => assert_eq!(to_server, to_client, "{id:?} in {c:?}"),
            }
        }
    }
    assert!(I::SubscriptionIdentifier.allowed_from(ctx(T::Subscribe), ToServer));
    assert!(I::SessionExpiryInterval.allowed_from(ctx(T::Connect), ToServer));
}

/// What a client may not send, the codec still carries: a PUBLISH with
/// Subscription Identifiers is what a server delivers (and what a bridge
/// would forward, refused by the client layer's check).
#[test]
fn subscription_identifier_refused_to_server_decoded_from_server() {
    let mut props = Properties::new();
    props.push(Property::SubscriptionIdentifier(5));
    props.push(Property::SubscriptionIdentifier(9));
    let publish_ctx = ctx(PacketType::Publish);
    assert_eq!(
        props.first_not_allowed(publish_ctx, Direction::ToServer),
        Some(PropertyId::SubscriptionIdentifier)
    );
    assert_eq!(
        props.first_not_allowed(publish_ctx, Direction::ToClient),
        None
    );
    let mut will = Properties::new();
    will.push(Property::SubscriptionIdentifier(5));
    assert_eq!(
        will.first_not_allowed(PropertyContext::Will, Direction::ToServer),
        Some(PropertyId::SubscriptionIdentifier)
    );

    let publish = Publish {
        qos: QoS::AtLeastOnce,
        topic: s("a/b"),
        packet_id: Some(1),
        properties: props.clone(),
        payload: Bytes::from_static(b"x"),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    encode(&Packet::Publish(publish), &mut buf).expect("a server's PUBLISH encodes");
    match decode(&mut buf, usize::MAX) {
        Ok(Some(Packet::Publish(p))) => assert_eq!(p.properties, props),
        other => panic!("a server's PUBLISH with Subscription Identifiers: {other:?}"),
    }
}

#[test]
fn properties_encode_decode_standalone() {
    let props = all_props(ctx(PacketType::ConnAck));
    let mut out = BytesMut::new();
    props.encode(&mut out).expect("valid");
    assert_eq!(out.len(), props.block_len());
    let mut b = out.freeze();
    assert_eq!(
        Properties::decode(&mut b, ctx(PacketType::ConnAck)),
        Ok(props)
    );
    assert!(b.is_empty());

    let mut bad = Properties::new();
    bad.push(Property::AuthenticationData(Bytes::from(vec![0; 70_000])));
    let mut out = BytesMut::from(&b"keep"[..]);
    assert_eq!(bad.encode(&mut out), Err(EncodeError::BinaryTooLong));
    assert_eq!(&out[..], b"keep");
}

/// A PUBLISH packed with `n` Subscription Identifiers (2 bytes each).
fn publish_with_sub_ids(n: usize) -> BytesMut {
    let p = Publish {
        topic: s("t"),
        properties: (0..n)
            .map(|_| Property::SubscriptionIdentifier(1))
            .collect(),
        ..Default::default()
    };
    encode_vec(&Packet::Publish(p))
}

#[test]
fn received_property_count_is_capped() {
    let mut at = publish_with_sub_ids(MAX_RECEIVED_PROPERTIES);
    match decode(&mut at, usize::MAX) {
        Ok(Some(Packet::Publish(p))) => assert_eq!(
            p.properties.count(PropertyId::SubscriptionIdentifier),
            MAX_RECEIVED_PROPERTIES
        ),
        other => panic!("{other:?}"),
    }
    let mut over = publish_with_sub_ids(MAX_RECEIVED_PROPERTIES + 1);
    assert_eq!(
        decode(&mut over, usize::MAX),
        Err(DecodeError::TooManyProperties {
            max: MAX_RECEIVED_PROPERTIES
        })
    );
}

/// Issue 8 #1: a decoded list is a view of its packet, not 64 bytes per
/// property: its values point into the received buffer.
#[test]
fn decoded_properties_are_a_view_of_the_packet() {
    let mut p = full_publish(QoS::AtLeastOnce);
    p.properties.push(Property::UserProperty(s("k"), s("v")));
    let mut buf = encode_vec(&Packet::Publish(p));
    let range = buf.as_ptr_range();
    let Ok(Some(Packet::Publish(got))) = decode(&mut buf, usize::MAX) else {
        panic!("decode");
    };
    let inside = |b: &[u8]| range.contains(&b.as_ptr());
    let corr = got
        .properties
        .get_binary(PropertyId::CorrelationData)
        .unwrap();
    assert!(inside(&corr));
    for q in got.properties.iter() {
        if let Property::UserProperty(k, v) = q {
            assert!(inside(k.as_bytes()) && inside(v.as_bytes()));
        }
    }
    // The list itself is two words and an empty Vec, whatever it holds.
    assert!(std::mem::size_of::<Properties>() <= 64);
}

#[test]
fn pushed_unwritable_property_fails_encoding_until_replaced() {
    let mut p = Properties::new();
    p.push(Property::ContentType(s("a")));
    p.set(Property::CorrelationData(Bytes::from(vec![0; 70_000])));
    let mut out = BytesMut::new();
    assert_eq!(p.encode(&mut out), Err(EncodeError::BinaryTooLong));
    p.set(Property::CorrelationData(Bytes::from_static(b"ok")));
    p.encode(&mut out).expect("replaced by a valid value");
    assert_eq!(p.iter().count(), 2);
    p.push(Property::SubscriptionIdentifier(VARINT_MAX_PLUS_ONE));
    assert!(p.encode(&mut BytesMut::new()).is_err());
    p.remove(PropertyId::SubscriptionIdentifier);
    assert!(p.encode(&mut BytesMut::new()).is_ok());
}

const VARINT_MAX_PLUS_ONE: u32 = 268_435_456;

#[test]
fn subscription_options_byte() {
    let o = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        no_local: true,
        retain_as_published: false,
        retain_handling: RetainHandling::DoNotSend,
    };
    assert_eq!(o.to_byte(), 0b0010_0101);
    assert_eq!(SubscriptionOptions::from_byte(0b0010_0101), Ok(o));
    for b in 0..=255u8 {
        if let Ok(o) = SubscriptionOptions::from_byte(b) {
            assert_eq!(o.to_byte(), b);
        }
    }
    assert_eq!(SubscriptionOptions::default().to_byte(), 0);
}

#[test]
fn packet_type_numbers() {
    for v in 0..=255u8 {
        match PacketType::from_u8(v) {
            Some(t) => assert_eq!(t as u8, v),
            None => assert!(v == 0 || v > 15),
        }
    }
}

// -------------------------------------------------------------- zero copy

#[test]
fn decode_is_zero_copy() {
    let p = full_publish(QoS::AtLeastOnce);
    let mut buf = encode_vec(&Packet::Publish(p));
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let Ok(Some(Packet::Publish(got))) = decode(&mut buf, usize::MAX) else {
        panic!("expected a PUBLISH");
    };
    let inside = |ptr: *const u8, len: usize| {
        let a = ptr as usize;
        range.contains(&a) && a + len <= range.end
    };
    assert!(inside(got.payload.as_ptr(), got.payload.len()), "payload");
    assert!(
        inside(got.topic.as_bytes().as_ptr(), got.topic.len()),
        "topic"
    );
    let corr = got
        .properties
        .get_binary(PropertyId::CorrelationData)
        .expect("present");
    assert!(inside(corr.as_ptr(), corr.len()), "correlation data");
}

// ------------------------------------------------------------- robustness

/// xorshift64*: deterministic, good enough to shake the decoder.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

/// Decodes until incomplete or an error; whatever decodes must encode and
/// decode back to the same packet (the fuzz round-trip property).
fn shake(bytes: &[u8], max: usize) -> usize {
    let mut buf = BytesMut::from(bytes);
    let mut n = 0;
    while let Ok(Some(p)) = decode(&mut buf, max) {
        let mut again = BytesMut::new();
        encode(&p, &mut again).unwrap_or_else(|e| panic!("{p:?} decoded but not encodable: {e:?}"));
        assert_eq!(decode(&mut again, usize::MAX), Ok(Some(p)));
        assert!(again.is_empty());
        n += 1;
    }
    n
}

#[test]
fn robustness_random_and_mutated_input() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut decoded = 0;
    // Pure noise, biased towards plausible first bytes.
    for _ in 0..20_000 {
        let len = rng.below(48);
        let mut v: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        if let Some(first) = v.first_mut() {
            if rng.below(2) == 0 {
                *first = (*first & 0xF0)
                    | PacketType::from_u8(*first >> 4).map_or(0, |t| t.required_flags());
            }
        }
        if let Some(l) = v.get_mut(1) {
            *l = u8::try_from(len.saturating_sub(2)).unwrap_or(0);
        }
        let max = [usize::MAX, 16, 1 + rng.below(64)][rng.below(3)];
        decoded += shake(&v, max);
    }
    // Mutations of valid packets.
    let valid: Vec<BytesMut> = samples().iter().map(encode_vec).collect();
    for round in 0..30_000 {
        let base = &valid[round % valid.len()];
        let mut v = base.to_vec();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(v.len());
            match rng.below(5) {
                0 | 1 => {
                    if let Some(b) = v.get_mut(i) {
                        *b ^= 1 << rng.below(8);
                    }
                }
                2 => {
                    if let Some(b) = v.get_mut(i) {
                        *b = rng.byte();
                    }
                }
                3 => v.truncate(i),
                _ => v.insert(i, rng.byte()),
            }
        }
        decoded += shake(&v, usize::MAX);
    }
    // Some mutations stay valid: the round-trip check has been exercised.
    assert!(decoded > 100, "only {decoded} decoded");
}

#[test]
fn malformed_response_topic_with_wildcard() {
    // PUBLISH with Response Topic "a/#".
    let bytes = [
        0x30, 0x0B, 0x00, 0x01, b't', 0x06, 0x08, 0x00, 0x03, b'a', b'/', b'#', b'x',
    ];
    assert!(matches!(
        decode_bytes(&bytes),
        Err(DecodeError::ProtocolError(_))
    ));
    let mut p = full_publish(QoS::AtMostOnce);
    p.properties.set(Property::ResponseTopic(s("a/+")));
    assert!(matches!(
        encoded_len(&Packet::Publish(p)),
        Err(EncodeError::Invalid(_))
    ));
}

#[test]
fn non_minimal_remaining_length_is_accepted() {
    // PINGREQ with remaining length 0 written in two bytes.
    assert_eq!(decode_bytes(&[0xC0, 0x80, 0x00]), Ok(Some(Packet::PingReq)));
}

#[test]
fn errors_display_readably() {
    let e = DecodeError::PacketTooLarge { size: 10, max: 5 };
    assert_eq!(e.to_string(), "packet of 10 bytes exceeds the maximum of 5");
    assert!(DecodeError::UnknownProperty(4).to_string().contains("0x04"));
    assert_eq!(
        EncodeError::Invalid("x").to_string(),
        "x",
        "Invalid carries its own message"
    );
}

#[test]
fn set_publish_packet_id_equals_encoding_with_that_id() {
    // A long topic and payload: a two-byte remaining length.
    for topic in ["t", "a/much/longer/topic/name/than/the/first"] {
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let mut p = full_publish(qos);
            p.topic = s(topic);
            p.payload = Bytes::from(vec![7u8; 300]);
            let mut placeholder = encode_vec(&Packet::Publish(p.clone()));
            for id in [1u16, 0x1234, u16::MAX] {
                set_publish_packet_id(&mut placeholder, id).unwrap();
                p.packet_id = Some(id);
                assert_eq!(placeholder, encode_vec(&Packet::Publish(p.clone())));
            }
        }
    }
}

#[test]
fn set_publish_packet_id_refuses_what_has_no_id() {
    let mut q0 = encode_vec(&Packet::Publish(full_publish(QoS::AtMostOnce)));
    assert!(matches!(
        set_publish_packet_id(&mut q0, 1),
        Err(EncodeError::Invalid(_))
    ));
    let mut q1 = encode_vec(&Packet::Publish(full_publish(QoS::AtLeastOnce)));
    assert_eq!(
        set_publish_packet_id(&mut q1, 0),
        Err(EncodeError::InvalidPacketId)
    );
    let mut ack = encode_vec(&Packet::PubAck(full_resp(
        PacketType::PubAck,
        ReasonCode::Success,
    )));
    assert!(set_publish_packet_id(&mut ack, 1).is_err());
    assert!(set_publish_packet_id(&mut q1[..4], 1).is_err(), "truncated");
    assert!(set_publish_packet_id(&mut [], 1).is_err());
}
