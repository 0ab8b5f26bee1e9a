//! MQTT 3.1.1 codec tests: a round trip of each of the 14 packet types,
//! the exact bytes of the forms that differ from v5, one named test per
//! malformed input, encode refusals of what 3.1.1 cannot say, and
//! zero-copy decoding.

use super::*;
use bytes::{Bytes, BytesMut};

const V311: ProtocolVersion = ProtocolVersion::V311;

fn s(v: &str) -> MqttStr {
    MqttStr::new(v).expect("test strings are valid")
}

fn enc(p: &Packet) -> BytesMut {
    let mut b = BytesMut::new();
    encode_with(p, V311, &mut b).expect("encodes as 3.1.1");
    b
}

fn dec(bytes: &[u8]) -> Result<Option<Packet>, DecodeError> {
    decode_with(&mut BytesMut::from(bytes), usize::MAX, V311)
}

fn enc_err(p: &Packet) -> EncodeError {
    let mut b = BytesMut::from(&b"keep"[..]);
    let e = encode_with(p, V311, &mut b).expect_err("refused as 3.1.1");
    assert_eq!(&b[..], b"keep", "a refused packet writes nothing");
    e
}

fn roundtrip(p: Packet) {
    let b = enc(&p);
    assert_eq!(dec(&b).unwrap(), Some(p), "bytes {:02x?}", &b[..]);
}

fn prop_list() -> Properties {
    let mut p = Properties::new();
    p.push(Property::UserProperty(s("k"), s("v")));
    p
}

fn sub(filter: &str, qos: QoS) -> SubscribeFilter {
    SubscribeFilter {
        filter: s(filter),
        options: SubscriptionOptions {
            qos,
            ..Default::default()
        },
    }
}

fn full_connect() -> Connect {
    Connect {
        clean_start: false,
        keep_alive: 30,
        properties: Properties::new(),
        client_id: s("dev-1"),
        will: Some(LastWill {
            topic: s("status/dev-1"),
            payload: Bytes::from_static(b"offline"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::new(),
        }),
        username: Some(s("user")),
        password: Some(Bytes::from_static(b"pw")),
    }
}

// ------------------------------------------------------------ round trips

/// One or more of each of the 14 packet types (also the fuzz seeds, see
/// `seeds`).
pub(super) fn samples() -> Vec<Packet> {
    let mut all = Vec::new();
    all.push(Packet::Connect(Box::new(full_connect())));
    all.push(Packet::Connect(Box::new(Connect {
        clean_start: true,
        ..Default::default()
    })));
    for (_, rc) in CONNACK_RETURN_CODES {
        all.push(Packet::ConnAck(ConnAck {
            session_present: false,
            reason: rc,
            properties: Properties::new(),
        }));
    }
    all.push(Packet::ConnAck(ConnAck {
        session_present: true,
        reason: ReasonCode::Success,
        properties: Properties::new(),
    }));
    for (qos, id) in [(QoS::AtMostOnce, None), (QoS::ExactlyOnce, Some(7))] {
        all.push(Packet::Publish(Publish {
            dup: id.is_some(),
            qos,
            retain: true,
            topic: s("a/b"),
            packet_id: id,
            properties: Properties::new(),
            payload: Bytes::from_static(b"\x00payload\xff"),
        }));
    }
    all.push(Packet::PubAck(PubResp::new(1)));
    all.push(Packet::PubRec(PubResp::new(2)));
    all.push(Packet::PubRel(PubResp::new(3)));
    all.push(Packet::PubComp(PubResp::new(65535)));
    all.push(Packet::Subscribe(Subscribe {
        packet_id: 9,
        properties: Properties::new(),
        filters: vec![sub("a/+", QoS::AtMostOnce), sub("b/#", QoS::ExactlyOnce)],
    }));
    all.push(Packet::SubAck(SubAck {
        packet_id: 9,
        properties: Properties::new(),
        reasons: SUBACK_RETURN_CODES.iter().map(|&(_, rc)| rc).collect(),
    }));
    all.push(Packet::Unsubscribe(Unsubscribe {
        packet_id: 10,
        properties: Properties::new(),
        filters: vec![s("a/+"), s("b/#")],
    }));
    all.push(Packet::UnsubAck(UnsubAck {
        packet_id: 10,
        properties: Properties::new(),
        reasons: Vec::new(),
    }));
    all.push(Packet::PingReq);
    all.push(Packet::PingResp);
    all.push(Packet::Disconnect(Disconnect::normal()));
    all
}

#[test]
fn v311_roundtrip_every_packet_type() {
    let samples = samples();
    for t in 1..=14 {
        assert!(samples.iter().any(|p| p.packet_type() as u8 == t), "{t}");
    }
    for p in samples {
        roundtrip(p);
    }
}

// ------------------------------------------------------------ exact bytes

#[test]
fn v311_connect_bytes() {
    let c = Connect {
        clean_start: true,
        keep_alive: 60,
        client_id: s("c"),
        username: Some(s("u")),
        password: Some(Bytes::from_static(b"p")),
        ..Default::default()
    };
    let b = enc(&Packet::Connect(Box::new(c)));
    assert_eq!(
        &b[..],
        b"\x10\x13\x00\x04MQTT\x04\xc2\x00\x3c\x00\x01c\x00\x01u\x00\x01p"
    );
}

#[test]
fn v311_connack_return_codes_map_to_v5_reason_codes() {
    let expect = [(1, 0x84), (2, 0x85), (3, 0x88), (4, 0x86), (5, 0x87)];
    for (raw, v5) in expect {
        let Some(Packet::ConnAck(c)) = dec(&[0x20, 2, 0, raw]).unwrap() else {
            panic!("CONNACK expected");
        };
        assert_eq!(c.reason as u8, v5, "return code {raw}");
    }
}

#[test]
fn v311_suback_failure_maps_to_0x80() {
    let Some(Packet::SubAck(s)) = dec(&[0x90, 4, 0, 1, 0x80, 0x01]).unwrap() else {
        panic!("SUBACK expected");
    };
    assert_eq!(
        s.reasons,
        [ReasonCode::UnspecifiedError, ReasonCode::GrantedQoS1]
    );
}

#[test]
fn v311_publish_has_no_property_length() {
    let p = Publish {
        qos: QoS::AtLeastOnce,
        topic: s("t"),
        packet_id: Some(5),
        payload: Bytes::from_static(b"hi"),
        ..Default::default()
    };
    assert_eq!(
        &enc(&Packet::Publish(p))[..],
        b"\x32\x07\x00\x01t\x00\x05hi"
    );
}

#[test]
fn v311_acks_are_two_bytes() {
    assert_eq!(
        &enc(&Packet::PubRel(PubResp::new(0x0102)))[..],
        b"\x62\x02\x01\x02"
    );
    let u = UnsubAck {
        packet_id: 3,
        properties: Properties::new(),
        reasons: Vec::new(),
    };
    assert_eq!(&enc(&Packet::UnsubAck(u))[..], b"\xb0\x02\x00\x03");
    assert_eq!(
        &enc(&Packet::Disconnect(Disconnect::normal()))[..],
        b"\xe0\x00"
    );
}

#[test]
fn v311_incomplete_is_none() {
    let b = enc(&Packet::Connect(Box::new(full_connect())));
    for cut in 0..b.len() {
        assert_eq!(dec(&b[..cut]).unwrap(), None, "cut at {cut}");
    }
}

#[test]
fn v311_publish_payload_is_zero_copy() {
    let p = Publish {
        topic: s("zero/copy"),
        payload: Bytes::from_static(b"payload bytes"),
        ..Default::default()
    };
    let mut buf = enc(&Packet::Publish(p));
    let range = buf.as_ptr_range();
    let Some(Packet::Publish(got)) = decode_with(&mut buf, usize::MAX, V311).unwrap() else {
        panic!("PUBLISH expected");
    };
    assert!(range.contains(&got.payload.as_ptr()));
    assert!(range.contains(&got.topic.as_bytes().as_ptr()));
}

// ------------------------------------------------------ malformed input

#[test]
fn v311_malformed_auth_packet_type_is_reserved() {
    assert_eq!(dec(&[0xF0, 0]), Err(DecodeError::InvalidPacketType(0xF0)));
}

#[test]
fn v311_malformed_connack_unknown_return_code() {
    assert_eq!(
        dec(&[0x20, 2, 0, 6]),
        Err(DecodeError::InvalidReasonCode(6))
    );
}

#[test]
fn v311_malformed_connack_with_v5_properties() {
    // A v5 CONNACK (property length 0) is one byte too long for 3.1.1.
    assert!(matches!(
        dec(&[0x20, 3, 0, 0, 0]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v311_malformed_connack_session_present_on_refusal() {
    assert!(matches!(
        dec(&[0x20, 2, 1, 5]),
        Err(DecodeError::ProtocolError(_))
    ));
}

#[test]
fn v311_malformed_connack_reserved_flags() {
    assert!(matches!(
        dec(&[0x20, 2, 2, 0]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v311_malformed_puback_with_reason_code() {
    // v5's PUBACK with a reason code: a trailing byte in 3.1.1.
    assert!(matches!(
        dec(&[0x40, 3, 0, 1, 0x10]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v311_malformed_puback_packet_id_zero() {
    assert!(matches!(
        dec(&[0x40, 2, 0, 0]),
        Err(DecodeError::ProtocolError(_))
    ));
}

#[test]
fn v311_malformed_unsuback_with_reason_codes() {
    assert!(matches!(
        dec(&[0xB0, 3, 0, 1, 0]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v311_malformed_suback_unknown_return_code() {
    assert_eq!(
        dec(&[0x90, 3, 0, 1, 0x87]),
        Err(DecodeError::InvalidReasonCode(0x87))
    );
}

#[test]
fn v311_malformed_suback_without_return_codes() {
    assert!(matches!(
        dec(&[0x90, 2, 0, 1]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v311_malformed_publish_empty_topic() {
    // No topic alias in 3.1.1 to stand for an empty topic.
    assert_eq!(
        dec(&[0x30, 3, 0, 0, b'x']),
        Err(DecodeError::InvalidTopicName)
    );
}

#[test]
fn v311_malformed_publish_wildcard_topic() {
    assert_eq!(
        dec(&[0x30, 3, 0, 1, b'#']),
        Err(DecodeError::InvalidTopicName)
    );
}

#[test]
fn v311_malformed_publish_truncated_packet_id() {
    assert!(matches!(
        dec(&[0x32, 4, 0, 1, b't', 0]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v311_malformed_publish_qos3() {
    assert_eq!(dec(&[0x36, 3, 0, 1, b't']), Err(DecodeError::InvalidQoS(3)));
}

#[test]
fn v311_malformed_subscribe_option_bits() {
    // No Local (a v5 option) is a reserved bit in 3.1.1.
    assert!(matches!(
        dec(&[0x82, 6, 0, 1, 0, 1, b'a', 0x04]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v311_malformed_connect_password_without_username() {
    let b = b"\x10\x0f\x00\x04MQTT\x04\x42\x00\x00\x00\x00\x00\x01p";
    assert!(matches!(dec(b), Err(DecodeError::Malformed(_))));
}

#[test]
fn v311_malformed_connect_level_5() {
    let b = b"\x10\x0d\x00\x04MQTT\x05\x02\x00\x00\x00\x00\x00";
    assert!(matches!(dec(b), Err(DecodeError::ProtocolError(_))));
}

#[test]
fn v311_malformed_disconnect_with_reason_code() {
    assert!(matches!(dec(&[0xE0, 1, 0]), Err(DecodeError::Malformed(_))));
}

#[test]
fn v311_malformed_pubrel_flags() {
    assert_eq!(
        dec(&[0x60, 2, 0, 1]),
        Err(DecodeError::InvalidPacketType(0x60))
    );
}

#[test]
fn v311_malformed_pubrec_with_reason_code() {
    // v5's PUBREC refusing the message (0x80): a trailing byte in 3.1.1.
    assert!(matches!(
        dec(&[0x50, 3, 0, 1, 0x80]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v311_malformed_pubrel_with_reason_code() {
    // v5's PUBREL "Packet Identifier not found" (0x92).
    assert!(matches!(
        dec(&[0x62, 3, 0, 1, 0x92]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v311_malformed_pubcomp_with_v5_properties() {
    // v5's long form: reason code and property length.
    assert!(matches!(
        dec(&[0x70, 4, 0, 1, 0, 0]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v311_malformed_pubcomp_packet_id_zero() {
    assert!(matches!(
        dec(&[0x70, 2, 0, 0]),
        Err(DecodeError::ProtocolError(_))
    ));
}

#[test]
fn v311_malformed_subscribe_without_filters() {
    assert!(matches!(
        dec(&[0x82, 2, 0, 1]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v311_malformed_unsubscribe_without_filters() {
    assert!(matches!(
        dec(&[0xA2, 2, 0, 1]),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v311_malformed_unsubscribe_wrong_flags() {
    assert_eq!(
        dec(&[0xA0, 5, 0, 1, 0, 1, b'a']),
        Err(DecodeError::InvalidPacketType(0xA0))
    );
}

#[test]
fn v311_malformed_unsuback_packet_id_zero() {
    assert!(matches!(
        dec(&[0xB0, 2, 0, 0]),
        Err(DecodeError::ProtocolError(_))
    ));
}

#[test]
fn v311_malformed_pingreq_with_a_body() {
    assert!(matches!(dec(&[0xC0, 1, 0]), Err(DecodeError::Malformed(_))));
}

#[test]
fn v311_malformed_pingresp_with_a_body() {
    assert!(matches!(dec(&[0xD0, 1, 0]), Err(DecodeError::Malformed(_))));
}

#[test]
fn v311_malformed_publish_qos0_with_dup() {
    // MQTT-3.3.1-2: DUP is 0 on every QoS 0 message.
    assert!(dec(&[0x38, 3, 0, 1, b't']).is_err());
}

// ------------------------------------------------- encode refusals

#[test]
fn v311_refuses_properties() {
    let p = Publish {
        topic: s("t"),
        properties: prop_list(),
        ..Default::default()
    };
    assert!(matches!(
        enc_err(&Packet::Publish(p)),
        EncodeError::Invalid(_)
    ));
    let c = Connect {
        properties: prop_list(),
        ..Default::default()
    };
    assert!(matches!(
        enc_err(&Packet::Connect(Box::new(c))),
        EncodeError::Invalid(_)
    ));
}

#[test]
fn v311_refuses_what_it_cannot_say() {
    let mut no_local = sub("a", QoS::AtLeastOnce);
    no_local.options.no_local = true;
    let s1 = Subscribe {
        packet_id: 1,
        properties: Properties::new(),
        filters: vec![no_local],
    };
    assert!(matches!(
        enc_err(&Packet::Subscribe(s1)),
        EncodeError::Invalid(_)
    ));
    let mut ack = PubResp::new(1);
    ack.reason = ReasonCode::NoMatchingSubscribers;
    assert!(matches!(
        enc_err(&Packet::PubAck(ack)),
        EncodeError::Invalid(_)
    ));
    let d = Disconnect {
        reason: ReasonCode::DisconnectWithWillMessage,
        properties: Properties::new(),
    };
    assert!(matches!(
        enc_err(&Packet::Disconnect(d)),
        EncodeError::Invalid(_)
    ));
    let a = Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: Properties::new(),
    };
    assert!(matches!(enc_err(&Packet::Auth(a)), EncodeError::Invalid(_)));
    let c = Connect {
        password: Some(Bytes::from_static(b"pw")),
        ..Default::default()
    };
    assert!(matches!(
        enc_err(&Packet::Connect(Box::new(c))),
        EncodeError::Invalid(_)
    ));
    let refused = ConnAck {
        session_present: false,
        reason: ReasonCode::Banned,
        properties: Properties::new(),
    };
    assert!(matches!(
        enc_err(&Packet::ConnAck(refused)),
        EncodeError::Invalid(_)
    ));
}

#[test]
fn v311_and_v5_forms_differ_where_expected() {
    // What a v5 decoder makes of a 3.1.1 CONNACK refusing the version.
    let mut b = BytesMut::from(&[0x20u8, 2, 0, 1][..]);
    assert_eq!(
        decode(&mut b, usize::MAX),
        Err(DecodeError::InvalidReasonCode(1))
    );
    // Packets without properties nor reason codes are the same bytes.
    let mut v5 = BytesMut::new();
    encode(&Packet::PubAck(PubResp::new(4)), &mut v5).unwrap();
    assert_eq!(v5, enc(&Packet::PubAck(PubResp::new(4))));
}

// ------------------------------------------------------ robustness

/// Decodes all of `bytes` as 3.1.1; whatever decodes encodes again and
/// decodes back equal. Returns how many packets decoded.
fn shake(bytes: &[u8]) -> usize {
    let mut buf = BytesMut::from(bytes);
    let mut n = 0;
    while let Ok(Some(p)) = decode_with(&mut buf, usize::MAX, V311) {
        let mut again = BytesMut::new();
        encode_with(&p, V311, &mut again)
            .unwrap_or_else(|e| panic!("{p:?} decoded but not encodable: {e:?}"));
        assert_eq!(decode_with(&mut again, usize::MAX, V311), Ok(Some(p)));
        assert!(again.is_empty());
        n += 1;
    }
    n
}

#[test]
fn v311_robustness_mutated_input() {
    let valid: Vec<BytesMut> = [
        Packet::Connect(Box::new(full_connect())),
        Packet::ConnAck(ConnAck {
            session_present: true,
            reason: ReasonCode::Success,
            properties: Properties::new(),
        }),
        Packet::Publish(Publish {
            qos: QoS::ExactlyOnce,
            topic: s("a/b"),
            packet_id: Some(7),
            payload: Bytes::from_static(b"payload"),
            ..Default::default()
        }),
        Packet::PubRel(PubResp::new(3)),
        Packet::Subscribe(Subscribe {
            packet_id: 9,
            properties: Properties::new(),
            filters: vec![sub("a/+", QoS::AtLeastOnce), sub("#", QoS::ExactlyOnce)],
        }),
        Packet::SubAck(SubAck {
            packet_id: 9,
            properties: Properties::new(),
            reasons: vec![ReasonCode::GrantedQoS1, ReasonCode::UnspecifiedError],
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 10,
            properties: Properties::new(),
            filters: vec![s("a/+")],
        }),
        Packet::PingReq,
        Packet::Disconnect(Disconnect::normal()),
    ]
    .iter()
    .map(enc)
    .collect();
    // xorshift64: deterministic, no dependency.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut below = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let mut decoded = 0;
    for round in 0..30_000 {
        let mut v = valid[round % valid.len()].to_vec();
        for _ in 0..1 + below(4) {
            let i = below(v.len());
            match below(4) {
                0 | 1 => {
                    if let Some(b) = v.get_mut(i) {
                        *b ^= 1 << below(8);
                    }
                }
                2 => v.truncate(i),
                _ => v.insert(i, below(256) as u8),
            }
        }
        decoded += shake(&v);
    }
    assert!(decoded > 100, "only {decoded} decoded");
}
