//! The MQTT 3.1.1 forms of the packets (OASIS standard, 2014).
//!
//! A 3.1.1 packet decodes into the same structures as a v5 one, with no
//! properties and the v5 reason code that the 3.1.1 return code stands
//! for (see [`CONNACK_RETURN_CODES`] and [`SUBACK_RETURN_CODES`]); an
//! UNSUBACK has no reason codes at all. Encoding is strict: a packet
//! that carries anything 3.1.1 cannot say (a property, a reason code
//! other than success, subscription options beyond QoS, AUTH) is refused,
//! never silently cut down. Decoding is zero-copy and validated as the v5
//! one is, with the 3.1.1 rules where they differ (a password needs a
//! user name, fixed lengths for the acknowledgements, packet type 15 is
//! reserved).

use super::codec::{
    check_binary, check_packet_id, expect_end, put_binary, put_str, read_binary, read_packet_id,
    read_str, read_u16, read_u8, sum,
};
use super::topic::{is_valid_topic_filter, is_valid_topic_name};
use super::{
    ConnAck, Connect, DecodeError, Disconnect, EncodeError, LastWill, Packet, PacketType,
    Properties, PubResp, Publish, QoS, ReasonCode, SubAck, Subscribe, SubscribeFilter,
    SubscriptionOptions, UnsubAck, Unsubscribe,
};
use bytes::{BufMut, Bytes, BytesMut};

/// The protocol a connection speaks; the codec reads and writes its forms.
/// The numbers are the CONNECT Protocol Level (and the C API's
/// `MQTT_PROTOCOL_V311` / `MQTT_PROTOCOL_V5`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
#[repr(u8)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (Protocol Level 4).
    V311 = 4,
    /// MQTT 5.0 (Protocol Level 5).
    #[default]
    V5 = 5,
}

impl ProtocolVersion {
    pub fn from_level(level: u8) -> Option<ProtocolVersion> {
        match level {
            4 => Some(ProtocolVersion::V311),
            5 => Some(ProtocolVersion::V5),
            _ => None,
        }
    }

    /// "3.1.1" or "5.0", for messages.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolVersion::V311 => "3.1.1",
            ProtocolVersion::V5 => "5.0",
        }
    }
}

/// CONNACK return codes of 3.1.1 (spec 3.2.2.3) and the v5 reason codes
/// they stand for. The one table of this mapping, both directions.
pub const CONNACK_RETURN_CODES: [(u8, ReasonCode); 6] = [
    (0, ReasonCode::Success),
    (1, ReasonCode::UnsupportedProtocolVersion),
    (2, ReasonCode::ClientIdentifierNotValid),
    (3, ReasonCode::ServerUnavailable),
    (4, ReasonCode::BadUserNameOrPassword),
    (5, ReasonCode::NotAuthorized),
];

/// SUBACK return codes of 3.1.1 (spec 3.9.3) and their v5 reason codes.
pub const SUBACK_RETURN_CODES: [(u8, ReasonCode); 4] = [
    (0x00, ReasonCode::Success),
    (0x01, ReasonCode::GrantedQoS1),
    (0x02, ReasonCode::GrantedQoS2),
    (0x80, ReasonCode::UnspecifiedError),
];

fn from_return_code(table: &[(u8, ReasonCode)], raw: u8) -> Result<ReasonCode, DecodeError> {
    table
        .iter()
        .find(|(code, _)| *code == raw)
        .map(|&(_, rc)| rc)
        .ok_or(DecodeError::InvalidReasonCode(raw))
}

fn to_return_code(table: &[(u8, ReasonCode)], rc: ReasonCode) -> Result<u8, EncodeError> {
    table
        .iter()
        .find(|(_, r)| *r == rc)
        .map(|&(code, _)| code)
        .ok_or(EncodeError::Invalid(
            "reason code without an MQTT 3.1.1 return code",
        ))
}

const PROTOCOL_NAME: &[u8] = b"MQTT";

// Connect Flags bits (spec 3.1.2.3); the same places as in v5.
const RESERVED: u8 = 0x01;
const CLEAN_SESSION: u8 = 0x02;
const WILL_FLAG: u8 = 0x04;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

const NO_PROPERTIES: EncodeError = EncodeError::Invalid("properties have no MQTT 3.1.1 form");

fn no_properties(p: &Properties) -> Result<(), EncodeError> {
    if p.is_empty() {
        Ok(())
    } else {
        Err(NO_PROPERTIES)
    }
}

/// Packet type 15 (AUTH in v5) is reserved in 3.1.1.
pub(super) fn check_type(ptype: PacketType, byte0: u8) -> Result<(), DecodeError> {
    if ptype == PacketType::Auth {
        return Err(DecodeError::InvalidPacketType(byte0));
    }
    Ok(())
}

// ------------------------------------------------------------- decoding

pub(super) fn decode_body(
    ptype: PacketType,
    flags: u8,
    body: Bytes,
) -> Result<Packet, DecodeError> {
    Ok(match ptype {
        PacketType::Connect => Packet::Connect(Box::new(decode_connect(body)?)),
        PacketType::ConnAck => Packet::ConnAck(decode_connack(body)?),
        PacketType::Publish => Packet::Publish(decode_publish(flags, body)?),
        PacketType::PubAck => Packet::PubAck(decode_pubresp(body)?),
        PacketType::PubRec => Packet::PubRec(decode_pubresp(body)?),
        PacketType::PubRel => Packet::PubRel(decode_pubresp(body)?),
        PacketType::PubComp => Packet::PubComp(decode_pubresp(body)?),
        PacketType::Subscribe => Packet::Subscribe(decode_subscribe(body)?),
        PacketType::SubAck => Packet::SubAck(decode_suback(body)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(decode_unsubscribe(body)?),
        PacketType::UnsubAck => Packet::UnsubAck(UnsubAck {
            packet_id: decode_id_only(body)?,
            properties: Properties::new(),
            reasons: Vec::new(),
        }),
        PacketType::PingReq => {
            expect_end(&body)?;
            Packet::PingReq
        }
        PacketType::PingResp => {
            expect_end(&body)?;
            Packet::PingResp
        }
        PacketType::Disconnect => {
            expect_end(&body)?;
            Packet::Disconnect(Disconnect::normal())
        }
        // Refused with the fixed header (`check_type`).
        PacketType::Auth => return Err(DecodeError::InvalidPacketType(0xF0)),
    })
}

fn decode_connect(mut body: Bytes) -> Result<Connect, DecodeError> {
    if read_binary(&mut body)? != PROTOCOL_NAME {
        return Err(DecodeError::ProtocolError("protocol name is not MQTT"));
    }
    if read_u8(&mut body)? != ProtocolVersion::V311 as u8 {
        return Err(DecodeError::ProtocolError("protocol level is not 4"));
    }
    let flags = read_u8(&mut body)?;
    if flags & RESERVED != 0 {
        return Err(DecodeError::Malformed("reserved CONNECT flag set"));
    }
    let will_flag = flags & WILL_FLAG != 0;
    let will_qos_bits = (flags >> WILL_QOS_SHIFT) & 0x03;
    if !will_flag && (will_qos_bits != 0 || flags & WILL_RETAIN != 0) {
        return Err(DecodeError::Malformed(
            "will QoS or retain without will flag",
        ));
    }
    let will_qos = QoS::from_u8(will_qos_bits).ok_or(DecodeError::InvalidQoS(will_qos_bits))?;
    if flags & PASSWORD != 0 && flags & USERNAME == 0 {
        return Err(DecodeError::Malformed(
            "password without user name (MQTT 3.1.1)",
        ));
    }
    let keep_alive = read_u16(&mut body)?;
    let client_id = read_str(&mut body)?;
    let will = if will_flag {
        let topic = read_str(&mut body)?;
        if !is_valid_topic_name(&topic) {
            return Err(DecodeError::InvalidTopicName);
        }
        Some(LastWill {
            topic,
            payload: read_binary(&mut body)?,
            qos: will_qos,
            retain: flags & WILL_RETAIN != 0,
            properties: Properties::new(),
        })
    } else {
        None
    };
    let username = (flags & USERNAME != 0)
        .then(|| read_str(&mut body))
        .transpose()?;
    let password = (flags & PASSWORD != 0)
        .then(|| read_binary(&mut body))
        .transpose()?;
    expect_end(&body)?;
    Ok(Connect {
        clean_start: flags & CLEAN_SESSION != 0,
        keep_alive,
        properties: Properties::new(),
        client_id,
        will,
        username,
        password,
    })
}

fn decode_connack(mut body: Bytes) -> Result<ConnAck, DecodeError> {
    let ack_flags = read_u8(&mut body)?;
    if ack_flags & 0xFE != 0 {
        return Err(DecodeError::Malformed("reserved CONNACK flag set"));
    }
    let reason = from_return_code(&CONNACK_RETURN_CODES, read_u8(&mut body)?)?;
    expect_end(&body)?;
    let session_present = ack_flags & 0x01 != 0;
    if session_present && reason.is_error() {
        return Err(DecodeError::ProtocolError(
            "session present on a failed CONNACK",
        ));
    }
    Ok(ConnAck {
        session_present,
        reason,
        properties: Properties::new(),
    })
}

fn decode_publish(flags: u8, mut body: Bytes) -> Result<Publish, DecodeError> {
    let qos_bits = (flags >> 1) & 0x03;
    let qos = QoS::from_u8(qos_bits).ok_or(DecodeError::InvalidQoS(qos_bits))?;
    let topic = read_str(&mut body)?;
    // No topic alias in 3.1.1: the topic is never empty.
    if !is_valid_topic_name(&topic) {
        return Err(DecodeError::InvalidTopicName);
    }
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        _ => Some(read_packet_id(&mut body)?),
    };
    Ok(Publish {
        dup: flags & 0x08 != 0,
        qos,
        retain: flags & 0x01 != 0,
        topic,
        packet_id,
        properties: Properties::new(),
        payload: body,
    })
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK: a packet id, nothing else.
fn decode_id_only(mut body: Bytes) -> Result<u16, DecodeError> {
    let id = read_packet_id(&mut body)?;
    expect_end(&body)?;
    Ok(id)
}

fn decode_pubresp(body: Bytes) -> Result<PubResp, DecodeError> {
    Ok(PubResp::new(decode_id_only(body)?))
}

fn decode_subscribe(mut body: Bytes) -> Result<Subscribe, DecodeError> {
    let packet_id = read_packet_id(&mut body)?;
    let mut filters = Vec::new();
    while !body.is_empty() {
        let filter = read_str(&mut body)?;
        if !is_valid_topic_filter(&filter) {
            return Err(DecodeError::InvalidTopicFilter);
        }
        let b = read_u8(&mut body)?;
        if b & !0x03 != 0 {
            return Err(DecodeError::Malformed(
                "reserved bits of the requested QoS byte set (MQTT 3.1.1)",
            ));
        }
        let qos = QoS::from_u8(b).ok_or(DecodeError::InvalidQoS(b))?;
        filters.push(SubscribeFilter {
            filter,
            options: SubscriptionOptions {
                qos,
                ..Default::default()
            },
        });
    }
    if filters.is_empty() {
        return Err(DecodeError::Malformed("SUBSCRIBE without topic filters"));
    }
    Ok(Subscribe {
        packet_id,
        properties: Properties::new(),
        filters,
    })
}

fn decode_suback(mut body: Bytes) -> Result<SubAck, DecodeError> {
    let packet_id = read_packet_id(&mut body)?;
    let mut reasons = Vec::with_capacity(body.len());
    while !body.is_empty() {
        reasons.push(from_return_code(&SUBACK_RETURN_CODES, read_u8(&mut body)?)?);
    }
    if reasons.is_empty() {
        return Err(DecodeError::Malformed("SUBACK without return codes"));
    }
    Ok(SubAck {
        packet_id,
        properties: Properties::new(),
        reasons,
    })
}

fn decode_unsubscribe(mut body: Bytes) -> Result<Unsubscribe, DecodeError> {
    let packet_id = read_packet_id(&mut body)?;
    let mut filters = Vec::new();
    while !body.is_empty() {
        let filter = read_str(&mut body)?;
        if !is_valid_topic_filter(&filter) {
            return Err(DecodeError::InvalidTopicFilter);
        }
        filters.push(filter);
    }
    if filters.is_empty() {
        return Err(DecodeError::Malformed("UNSUBSCRIBE without topic filters"));
    }
    Ok(Unsubscribe {
        packet_id,
        properties: Properties::new(),
        filters,
    })
}

// ------------------------------------------------------------- encoding

/// Validates `packet` for 3.1.1 and returns its remaining length.
pub(super) fn body_len(packet: &Packet) -> Result<usize, EncodeError> {
    Ok(match packet {
        Packet::Connect(c) => connect_len(c)?,
        Packet::ConnAck(c) => {
            no_properties(&c.properties)?;
            to_return_code(&CONNACK_RETURN_CODES, c.reason)?;
            if c.session_present && c.reason.is_error() {
                return Err(EncodeError::Invalid("session present on a failed CONNACK"));
            }
            2
        }
        Packet::Publish(p) => publish_len(p, p.payload.len())?,
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            check_packet_id(r.packet_id)?;
            no_properties(&r.properties)?;
            if r.reason != ReasonCode::Success {
                return Err(EncodeError::Invalid(
                    "reason codes in acknowledgements have no MQTT 3.1.1 form",
                ));
            }
            2
        }
        Packet::Subscribe(s) => {
            check_packet_id(s.packet_id)?;
            no_properties(&s.properties)?;
            if s.filters.is_empty() {
                return Err(EncodeError::Invalid("SUBSCRIBE without topic filters"));
            }
            let mut len = 2;
            for f in &s.filters {
                if !is_valid_topic_filter(&f.filter) {
                    return Err(EncodeError::InvalidTopicFilter);
                }
                let plain = SubscriptionOptions {
                    qos: f.options.qos,
                    ..Default::default()
                };
                if f.options != plain {
                    return Err(EncodeError::Invalid(
                        "subscription options beyond QoS have no MQTT 3.1.1 form",
                    ));
                }
                len = sum([len, 2 + f.filter.len() + 1]);
            }
            len
        }
        Packet::SubAck(s) => {
            check_packet_id(s.packet_id)?;
            no_properties(&s.properties)?;
            if s.reasons.is_empty() {
                return Err(EncodeError::Invalid("SUBACK without return codes"));
            }
            for &rc in &s.reasons {
                to_return_code(&SUBACK_RETURN_CODES, rc)?;
            }
            sum([2, s.reasons.len()])
        }
        Packet::Unsubscribe(u) => {
            check_packet_id(u.packet_id)?;
            no_properties(&u.properties)?;
            if u.filters.is_empty() {
                return Err(EncodeError::Invalid("UNSUBSCRIBE without topic filters"));
            }
            let mut len = 2;
            for f in &u.filters {
                if !is_valid_topic_filter(f) {
                    return Err(EncodeError::InvalidTopicFilter);
                }
                len = sum([len, 2 + f.len()]);
            }
            len
        }
        Packet::UnsubAck(u) => {
            check_packet_id(u.packet_id)?;
            no_properties(&u.properties)?;
            if !u.reasons.is_empty() {
                return Err(EncodeError::Invalid(
                    "UNSUBACK reason codes have no MQTT 3.1.1 form",
                ));
            }
            2
        }
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => {
            no_properties(&d.properties)?;
            if d.reason != ReasonCode::Success {
                return Err(EncodeError::Invalid(
                    "DISCONNECT reason codes have no MQTT 3.1.1 form",
                ));
            }
            0
        }
        Packet::Auth(_) => return Err(EncodeError::Invalid("AUTH does not exist in MQTT 3.1.1")),
    })
}

fn connect_len(c: &Connect) -> Result<usize, EncodeError> {
    no_properties(&c.properties)?;
    if c.password.is_some() && c.username.is_none() {
        return Err(EncodeError::Invalid(
            "a password without a user name has no MQTT 3.1.1 form",
        ));
    }
    let mut len = sum([2 + PROTOCOL_NAME.len() + 1 + 1 + 2, 2 + c.client_id.len()]);
    if let Some(will) = &c.will {
        no_properties(&will.properties)?;
        if !is_valid_topic_name(&will.topic) {
            return Err(EncodeError::InvalidTopicName);
        }
        check_binary(&will.payload)?;
        len = sum([len, 2 + will.topic.len(), 2 + will.payload.len()]);
    }
    if let Some(u) = &c.username {
        len = sum([len, 2 + u.len()]);
    }
    if let Some(p) = &c.password {
        check_binary(p)?;
        len = sum([len, 2 + p.len()]);
    }
    Ok(len)
}

/// The remaining length of `p` sent with a payload of `payload_len` bytes.
fn publish_len(p: &Publish, payload_len: usize) -> Result<usize, EncodeError> {
    match (p.qos, p.packet_id) {
        (QoS::AtMostOnce, None) => {}
        (QoS::AtMostOnce, Some(_)) | (_, None) => return Err(EncodeError::InvalidPacketId),
        (_, Some(id)) => check_packet_id(id)?,
    }
    if p.dup && p.qos == QoS::AtMostOnce {
        return Err(EncodeError::Invalid("DUP set on a QoS 0 PUBLISH"));
    }
    no_properties(&p.properties)?;
    if !is_valid_topic_name(&p.topic) {
        return Err(EncodeError::InvalidTopicName);
    }
    let id_len = if p.packet_id.is_some() { 2 } else { 0 };
    Ok(sum([2 + p.topic.len() + id_len, payload_len]))
}

/// Writes the body of a packet `body_len` accepted.
pub(super) fn encode_body(packet: &Packet, out: &mut BytesMut) -> Result<(), EncodeError> {
    match packet {
        Packet::Connect(c) => encode_connect(c, out)?,
        Packet::ConnAck(c) => {
            out.put_u8(u8::from(c.session_present));
            out.put_u8(to_return_code(&CONNACK_RETURN_CODES, c.reason)?);
        }
        Packet::Publish(p) => {
            encode_publish_head(p, out)?;
            out.extend_from_slice(&p.payload);
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            out.put_u16(r.packet_id)
        }
        Packet::Subscribe(s) => {
            out.put_u16(s.packet_id);
            for f in &s.filters {
                put_str(out, &f.filter)?;
                out.put_u8(f.options.qos as u8);
            }
        }
        Packet::SubAck(s) => {
            out.put_u16(s.packet_id);
            for &rc in &s.reasons {
                out.put_u8(to_return_code(&SUBACK_RETURN_CODES, rc)?);
            }
        }
        Packet::Unsubscribe(u) => {
            out.put_u16(u.packet_id);
            for f in &u.filters {
                put_str(out, f)?;
            }
        }
        Packet::UnsubAck(u) => out.put_u16(u.packet_id),
        Packet::PingReq | Packet::PingResp | Packet::Disconnect(_) => {}
        Packet::Auth(_) => return Err(EncodeError::Invalid("AUTH does not exist in MQTT 3.1.1")),
    }
    Ok(())
}

fn encode_connect(c: &Connect, out: &mut BytesMut) -> Result<(), EncodeError> {
    put_binary(out, PROTOCOL_NAME)?;
    out.put_u8(ProtocolVersion::V311 as u8);
    let mut flags = 0;
    if c.clean_start {
        flags |= CLEAN_SESSION;
    }
    if let Some(will) = &c.will {
        flags |= WILL_FLAG | ((will.qos as u8) << WILL_QOS_SHIFT);
        if will.retain {
            flags |= WILL_RETAIN;
        }
    }
    if c.username.is_some() {
        flags |= USERNAME;
    }
    if c.password.is_some() {
        flags |= PASSWORD;
    }
    out.put_u8(flags);
    out.put_u16(c.keep_alive);
    put_str(out, &c.client_id)?;
    if let Some(will) = &c.will {
        put_str(out, &will.topic)?;
        put_binary(out, &will.payload)?;
    }
    if let Some(u) = &c.username {
        put_str(out, u)?;
    }
    if let Some(p) = &c.password {
        put_binary(out, p)?;
    }
    Ok(())
}

/// Topic and packet id: what comes before the payload.
fn encode_publish_head(p: &Publish, out: &mut BytesMut) -> Result<(), EncodeError> {
    put_str(out, &p.topic)?;
    if let Some(id) = p.packet_id {
        out.put_u16(id);
    }
    Ok(())
}
