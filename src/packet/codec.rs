//! Fixed header handling, the entry points `decode` / `encode`, and the
//! primitive readers and writers the packet modules share.

use super::v311;
use super::varint::{decode_varint, encode_varint, varint_len, VARINT_MAX};
use super::{
    Auth, ConnAck, Connect, DecodeError, Disconnect, EncodeError, MqttStr, Packet, PacketType,
    ProtocolVersion, PubResp, Publish, ReasonCode, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Decodes one packet from the front of `buf`.
///
/// Returns `Ok(None)` while the packet is incomplete (nothing is consumed).
/// A packet whose whole size exceeds `max_packet_size` is rejected from its
/// fixed header alone, before its body is buffered. On success the packet's
/// bytes are split off `buf` and frozen, so payloads are zero-copy.
///
/// Errors found in the fixed header leave `buf` untouched; errors in the
/// body consume that packet. Either way the connection must be closed.
///
/// Reads the v5 forms: what a v5 connection receives, and the form in
/// which the client stores packets (in flight, queued, persisted) whatever
/// the connection speaks. [`decode_with`] reads either protocol's.
pub fn decode(buf: &mut BytesMut, max_packet_size: usize) -> Result<Option<Packet>, DecodeError> {
    decode_with(buf, max_packet_size, ProtocolVersion::V5)
}

/// [`decode`] for a connection speaking `version`. A 3.1.1 packet decodes
/// into the same structures, without properties (see `v311`).
pub fn decode_with(
    buf: &mut BytesMut,
    max_packet_size: usize,
    version: ProtocolVersion,
) -> Result<Option<Packet>, DecodeError> {
    let Some((total, header_len)) = frame(buf, max_packet_size)? else {
        return Ok(None);
    };
    if buf.len() < total {
        return Ok(None);
    }
    let byte0 = buf[0];
    let ptype = check_fixed_header(byte0)?;
    if version == ProtocolVersion::V311 {
        v311::check_type(ptype, byte0)?;
    }
    let mut body = buf.split_to(total).freeze();
    body.advance(header_len);
    match version {
        ProtocolVersion::V5 => decode_body(ptype, byte0 & 0x0F, body).map(Some),
        ProtocolVersion::V311 => v311::decode_body(ptype, byte0 & 0x0F, body).map(Some),
    }
}

/// The whole size of the packet at the front of `buf`, once all of it is
/// buffered (`None` before), checked against `max_packet_size` from its
/// fixed header alone, as [`decode`] does: a reader can then decide where
/// the packet's bytes should live before it decodes them.
pub fn complete_len(buf: &[u8], max_packet_size: usize) -> Result<Option<usize>, DecodeError> {
    Ok(frame(buf, max_packet_size)?.and_then(|(total, _)| (buf.len() >= total).then_some(total)))
}

/// The whole size and the fixed header's size of the packet at the front
/// of `buf`, once its fixed header is buffered.
fn frame(buf: &[u8], max_packet_size: usize) -> Result<Option<(usize, usize)>, DecodeError> {
    let Some(&byte0) = buf.first() else {
        return Ok(None);
    };
    // Checked first so that garbage is rejected without waiting for more.
    check_fixed_header(byte0)?;
    let Some((remaining, len_bytes)) = decode_varint(buf.get(1..).unwrap_or_default())? else {
        return Ok(None);
    };
    let header_len = 1 + len_bytes;
    let total = usize::try_from(remaining)
        .ok()
        .and_then(|r| r.checked_add(header_len))
        .ok_or(DecodeError::PacketTooLarge {
            size: usize::MAX,
            max: max_packet_size,
        })?;
    if total > max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size: total,
            max: max_packet_size,
        });
    }
    Ok(Some((total, header_len)))
}

/// Validates the first byte: a known type with the flags the spec fixes
/// for it (PUBLISH: QoS 3 and DUP on QoS 0 are malformed).
fn check_fixed_header(byte0: u8) -> Result<PacketType, DecodeError> {
    let ptype = PacketType::from_u8(byte0 >> 4).ok_or(DecodeError::InvalidPacketType(byte0))?;
    let flags = byte0 & 0x0F;
    match ptype {
        PacketType::Publish => {
            let qos = (flags >> 1) & 0x03;
            if qos == 3 {
                return Err(DecodeError::InvalidQoS(qos));
            }
            if qos == 0 && flags & 0x08 != 0 {
                return Err(DecodeError::Malformed("DUP flag set on a QoS 0 PUBLISH"));
            }
        }
        _ if flags != ptype.required_flags() => {
            return Err(DecodeError::InvalidPacketType(byte0));
        }
        _ => {}
    }
    Ok(ptype)
}

fn decode_body(ptype: PacketType, flags: u8, body: Bytes) -> Result<Packet, DecodeError> {
    Ok(match ptype {
        PacketType::Connect => Packet::Connect(Box::new(Connect::decode_body(body)?)),
        PacketType::ConnAck => Packet::ConnAck(ConnAck::decode_body(body)?),
        PacketType::Publish => Packet::Publish(Publish::decode_body(flags, body)?),
        PacketType::PubAck => Packet::PubAck(PubResp::decode_body(ptype, body)?),
        PacketType::PubRec => Packet::PubRec(PubResp::decode_body(ptype, body)?),
        PacketType::PubRel => Packet::PubRel(PubResp::decode_body(ptype, body)?),
        PacketType::PubComp => Packet::PubComp(PubResp::decode_body(ptype, body)?),
        PacketType::Subscribe => Packet::Subscribe(Subscribe::decode_body(body)?),
        PacketType::SubAck => Packet::SubAck(SubAck::decode_body(body)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode_body(body)?),
        PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode_body(body)?),
        PacketType::PingReq => {
            expect_end(&body)?;
            Packet::PingReq
        }
        PacketType::PingResp => {
            expect_end(&body)?;
            Packet::PingResp
        }
        PacketType::Disconnect => Packet::Disconnect(Disconnect::decode_body(body)?),
        PacketType::Auth => Packet::Auth(Auth::decode_body(body)?),
    })
}

/// Appends the encoded packet to `out` in one piece. On error `out` is left
/// as it was and nothing should be sent.
///
/// Everything is validated and sized first; then `out` grows once by the
/// exact size and the packet is written.
///
/// Writes the v5 form (see [`decode`]); [`encode_with`] writes either.
pub fn encode(packet: &Packet, out: &mut BytesMut) -> Result<(), EncodeError> {
    encode_with(packet, ProtocolVersion::V5, out)
}

/// [`encode`] in the form of `version`. For 3.1.1 a packet carrying
/// anything that protocol cannot say (properties, reason codes, AUTH,
/// subscription options beyond QoS) is refused, nothing written.
pub fn encode_with(
    packet: &Packet,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    if version == ProtocolVersion::V311 {
        return encode_v311(packet, out);
    }
    let remaining = remaining_len(packet)?;
    let total = total_len(remaining)?;
    // `remaining_len` checked it fits a varint, hence a u32.
    let remaining32 = u32::try_from(remaining).map_err(|_| EncodeError::PacketTooLarge)?;
    let start = out.len();
    out.reserve(total);
    out.put_u8(((packet.packet_type() as u8) << 4) | first_byte_flags(packet));
    encode_varint(remaining32, out);
    if let Err(e) = encode_body(packet, out) {
        // Unreachable after validation; keep the promise to leave `out` alone.
        out.truncate(start);
        return Err(e);
    }
    debug_assert_eq!(
        out.len() - start,
        total,
        "encoded_len disagrees with encode"
    );
    Ok(())
}

fn encode_v311(packet: &Packet, out: &mut BytesMut) -> Result<(), EncodeError> {
    let remaining = v311::body_len(packet)?;
    if remaining > VARINT_MAX as usize {
        return Err(EncodeError::PacketTooLarge);
    }
    let total = total_len(remaining)?;
    let remaining32 = u32::try_from(remaining).map_err(|_| EncodeError::PacketTooLarge)?;
    let start = out.len();
    out.reserve(total);
    out.put_u8(((packet.packet_type() as u8) << 4) | first_byte_flags(packet));
    encode_varint(remaining32, out);
    if let Err(e) = v311::encode_body(packet, out) {
        out.truncate(start);
        return Err(e);
    }
    debug_assert_eq!(out.len() - start, total, "v311::body_len disagrees");
    Ok(())
}

/// The whole encoded size of `packet` (fixed header included), so a caller
/// can check a peer's Maximum Packet Size before encoding.
pub fn encoded_len(packet: &Packet) -> Result<usize, EncodeError> {
    total_len(remaining_len(packet)?)
}

/// The whole encoded size of `publish` sent with a payload of
/// `payload_len` bytes in place of its own (which should be empty).
pub fn publish_len(publish: &Publish, payload_len: usize) -> Result<usize, EncodeError> {
    let remaining = publish_remaining_len(publish, payload_len)?;
    total_len(remaining)
}

fn publish_remaining_len(publish: &Publish, payload_len: usize) -> Result<usize, EncodeError> {
    let len = (publish.body_len()? - publish.payload.len())
        .checked_add(payload_len)
        .ok_or(EncodeError::PacketTooLarge)?;
    if len > VARINT_MAX as usize {
        return Err(EncodeError::PacketTooLarge);
    }
    Ok(len)
}

/// Encodes `publish` with `payload` in place of its own payload (which
/// should be empty), so a caller's buffer is copied exactly once: into
/// `out`. Validation and the leave-`out`-alone promise are as `encode`.
pub fn encode_publish(
    publish: &Publish,
    payload: &[u8],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    if !publish.payload.is_empty() {
        return Err(EncodeError::Invalid(
            "encode_publish takes the payload separately",
        ));
    }
    let remaining = publish_remaining_len(publish, payload.len())?;
    let total = total_len(remaining)?;
    let remaining32 = u32::try_from(remaining).map_err(|_| EncodeError::PacketTooLarge)?;
    let start = out.len();
    out.reserve(total);
    out.put_u8(((PacketType::Publish as u8) << 4) | publish.header_flags());
    encode_varint(remaining32, out);
    if let Err(e) = publish.encode_body(out) {
        out.truncate(start);
        return Err(e);
    }
    out.extend_from_slice(payload);
    debug_assert_eq!(
        out.len() - start,
        total,
        "publish_len disagrees with encode_publish"
    );
    Ok(())
}

/// Replaces the packet identifier of an encoded QoS 1/2 PUBLISH (the two
/// bytes after the topic) in place. Its size does not change, so a client
/// can encode a message first and allocate its identifier after, in the
/// same step that records the message as in flight.
pub fn set_publish_packet_id(packet: &mut [u8], id: u16) -> Result<(), EncodeError> {
    const NOT_PUBLISH: EncodeError = EncodeError::Invalid("not an encoded QoS 1/2 PUBLISH");
    check_packet_id(id)?;
    let first = *packet.first().ok_or(NOT_PUBLISH)?;
    if first >> 4 != PacketType::Publish as u8 || (first >> 1) & 0x03 == 0 {
        return Err(NOT_PUBLISH);
    }
    let Ok(Some((_, varint))) = decode_varint(&packet[1..]) else {
        return Err(NOT_PUBLISH);
    };
    let topic_at = 1 + varint;
    let topic_len = match packet.get(topic_at..topic_at + 2) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]) as usize,
        None => return Err(NOT_PUBLISH),
    };
    let id_at = topic_at + 2 + topic_len;
    packet
        .get_mut(id_at..id_at + 2)
        .ok_or(NOT_PUBLISH)?
        .copy_from_slice(&id.to_be_bytes());
    Ok(())
}

fn total_len(remaining: usize) -> Result<usize, EncodeError> {
    let r = u32::try_from(remaining).map_err(|_| EncodeError::PacketTooLarge)?;
    Ok(1 + varint_len(r) + remaining)
}

/// Validates `packet` and returns its remaining length.
fn remaining_len(packet: &Packet) -> Result<usize, EncodeError> {
    let len = match packet {
        Packet::Connect(p) => p.body_len()?,
        Packet::ConnAck(p) => p.body_len()?,
        Packet::Publish(p) => p.body_len()?,
        Packet::PubAck(p) => p.body_len(PacketType::PubAck)?,
        Packet::PubRec(p) => p.body_len(PacketType::PubRec)?,
        Packet::PubRel(p) => p.body_len(PacketType::PubRel)?,
        Packet::PubComp(p) => p.body_len(PacketType::PubComp)?,
        Packet::Subscribe(p) => p.body_len()?,
        Packet::SubAck(p) => p.body_len()?,
        Packet::Unsubscribe(p) => p.body_len()?,
        Packet::UnsubAck(p) => p.body_len()?,
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(p) => p.body_len()?,
        Packet::Auth(p) => p.body_len()?,
    };
    if len > VARINT_MAX as usize {
        return Err(EncodeError::PacketTooLarge);
    }
    Ok(len)
}

fn first_byte_flags(packet: &Packet) -> u8 {
    match packet {
        Packet::Publish(p) => p.header_flags(),
        other => other.packet_type().required_flags(),
    }
}

fn encode_body(packet: &Packet, out: &mut BytesMut) -> Result<(), EncodeError> {
    match packet {
        Packet::Connect(p) => p.encode_body(out),
        Packet::ConnAck(p) => p.encode_body(out),
        Packet::Publish(p) => p.encode_body(out),
        Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
            p.encode_body(out)
        }
        Packet::Subscribe(p) => p.encode_body(out),
        Packet::SubAck(p) => p.encode_body(out),
        Packet::Unsubscribe(p) => p.encode_body(out),
        Packet::UnsubAck(p) => p.encode_body(out),
        Packet::PingReq | Packet::PingResp => Ok(()),
        Packet::Disconnect(p) => p.encode_body(out),
        Packet::Auth(p) => p.encode_body(out),
    }
}

// ---- readers: every one checks the length first, so none can panic ----

fn truncated() -> DecodeError {
    DecodeError::Malformed("packet shorter than its contents claim")
}

pub(super) fn read_u8(buf: &mut Bytes) -> Result<u8, DecodeError> {
    if buf.is_empty() {
        return Err(truncated());
    }
    Ok(buf.get_u8())
}

pub(super) fn read_u16(buf: &mut Bytes) -> Result<u16, DecodeError> {
    if buf.len() < 2 {
        return Err(truncated());
    }
    Ok(buf.get_u16())
}

pub(super) fn read_u32(buf: &mut Bytes) -> Result<u32, DecodeError> {
    if buf.len() < 4 {
        return Err(truncated());
    }
    Ok(buf.get_u32())
}

pub(super) fn read_varint(buf: &mut Bytes) -> Result<u32, DecodeError> {
    match decode_varint(buf) {
        Ok(Some((v, n))) => {
            buf.advance(n);
            Ok(v)
        }
        // Inside a complete packet, "need more bytes" means truncated.
        Ok(None) => Err(truncated()),
        Err(_) => Err(DecodeError::Malformed(
            "variable byte integer longer than four bytes",
        )),
    }
}

/// Takes `len` bytes off the front without copying.
pub(super) fn read_slice(buf: &mut Bytes, len: usize) -> Result<Bytes, DecodeError> {
    if buf.len() < len {
        return Err(truncated());
    }
    Ok(buf.split_to(len))
}

/// Binary Data: a two-byte length and that many bytes, zero-copy.
pub(super) fn read_binary(buf: &mut Bytes) -> Result<Bytes, DecodeError> {
    let len = read_u16(buf)?;
    read_slice(buf, usize::from(len))
}

/// UTF-8 Encoded String, checked for UTF-8 and U+0000, zero-copy.
pub(super) fn read_str(buf: &mut Bytes) -> Result<MqttStr, DecodeError> {
    MqttStr::from_bytes(read_binary(buf)?)
}

/// A packet identifier, which the spec requires to be non-zero.
pub(super) fn read_packet_id(buf: &mut Bytes) -> Result<u16, DecodeError> {
    match read_u16(buf)? {
        0 => Err(DecodeError::ProtocolError("packet identifier 0")),
        id => Ok(id),
    }
}

/// A reason code that exists and that `ptype` may carry.
pub(super) fn read_reason(buf: &mut Bytes, ptype: PacketType) -> Result<ReasonCode, DecodeError> {
    let raw = read_u8(buf)?;
    match ReasonCode::from_u8(raw) {
        Some(rc) if rc.allowed_in(ptype) => Ok(rc),
        _ => Err(DecodeError::InvalidReasonCode(raw)),
    }
}

pub(super) fn expect_end(buf: &Bytes) -> Result<(), DecodeError> {
    if buf.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::Malformed(
            "trailing bytes after packet contents",
        ))
    }
}

// ---- writers and encode-side checks ----

/// Binary Data must fit its two-byte length.
pub(super) fn check_binary(b: &[u8]) -> Result<(), EncodeError> {
    if b.len() > usize::from(u16::MAX) {
        Err(EncodeError::BinaryTooLong)
    } else {
        Ok(())
    }
}

pub(super) fn check_packet_id(id: u16) -> Result<(), EncodeError> {
    if id == 0 {
        Err(EncodeError::InvalidPacketId)
    } else {
        Ok(())
    }
}

pub(super) fn check_reason(rc: ReasonCode, ptype: PacketType) -> Result<(), EncodeError> {
    if rc.allowed_in(ptype) {
        Ok(())
    } else {
        Err(EncodeError::Invalid(
            "reason code not allowed in this packet",
        ))
    }
}

pub(super) fn put_binary(out: &mut BytesMut, b: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(b.len()).map_err(|_| EncodeError::BinaryTooLong)?;
    out.put_u16(len);
    out.extend_from_slice(b);
    Ok(())
}

pub(super) fn put_str(out: &mut BytesMut, s: &MqttStr) -> Result<(), EncodeError> {
    let len = u16::try_from(s.len()).map_err(|_| EncodeError::InvalidString)?;
    out.put_u16(len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Adds lengths without overflow; a saturated sum is far above
/// [`VARINT_MAX`] and gets rejected as too large.
pub(super) fn sum<const N: usize>(parts: [usize; N]) -> usize {
    parts.iter().fold(0usize, |acc, &n| acc.saturating_add(n))
}
