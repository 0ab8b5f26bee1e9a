//! The records of the persistence log and their checksum.
//!
//! A record on disk is `[length u32][crc32 u32][kind u8][body]`, integers
//! little-endian; `length` counts kind and body, and the CRC covers the
//! length bytes, the kind and the body, so a torn or flipped length is
//! caught as surely as a torn body. Bodies:
//!
//! | kind | record | body |
//! | --- | --- | --- |
//! | 1 | [`Record::Stored`] | seq u64, packet id u16, QoS u8, topic length u16, topic, encoded PUBLISH |
//! | 2 | [`Record::Released`] | packet id u16 |
//! | 3 | [`Record::Completed`] | packet id u16 |
//! | 4 | [`Record::InboundHeld`] | packet id u16 |
//! | 5 | [`Record::InboundReleased`] | packet id u16 |
//! | 6 | [`Record::Reset`] | (none) |
//! | 7 | [`Record::Queued`] | queue seq u64, QoS u8, queued at (ms since 1970) u64, encoded PUBLISH |
//! | 8 | [`Record::Unqueued`] | queue seq u64 |
//! | 9 | [`Record::StoredFromQueue`] | queue seq u64, then a Stored body |
//!
//! The topic of a Stored record is empty unless the PUBLISH carries a
//! topic alias instead of its topic (aliases die with their connection:
//! a resend puts the topic back, see `resend`). A queued PUBLISH has a
//! placeholder packet id; the one it gets when it is sent is in the
//! StoredFromQueue record, which moves it from the queue to the messages
//! in flight in one step (two records could be torn apart by a crash,
//! leaving the message in both: sent twice).

use crate::packet::{self, MqttStr, Packet, QoS};
use bytes::{Bytes, BytesMut};

/// Bytes before the kind: length and CRC.
pub const PREFIX: usize = 8;

/// The longest `length` accepted: a PUBLISH of the protocol's largest
/// size with its topic and fields. A longer one is corruption (reading it
/// would allocate whatever a flipped bit says).
pub const MAX_LEN: usize = 268_435_460 + u16::MAX as usize + 32;

/// An outgoing QoS 1/2 publish as stored: what a resend needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Its place in the send order (`Session`'s `sent`).
    pub seq: u64,
    pub id: u16,
    pub qos: QoS,
    /// PUBREC came and PUBREL went out (QoS 2): a resend is a PUBREL.
    pub released: bool,
    /// The topic, when `packet` carries a topic alias instead.
    pub alias_topic: Option<MqttStr>,
    /// The encoded PUBLISH, with its packet id.
    pub packet: Bytes,
}

/// A QoS 1/2 publish waiting in the offline queue, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// Its place in the queue (increasing; not reused).
    pub qseq: u64,
    pub qos: QoS,
    /// When it was queued, in milliseconds since 1970 (wall clock: its
    /// Message Expiry Interval counts across a restart).
    pub queued_at_ms: u64,
    /// The encoded PUBLISH, with a placeholder packet id.
    pub packet: Bytes,
}

/// One change of the persisted state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An outgoing QoS 1/2 publish was accepted (`released` is false).
    Stored(Outgoing),
    /// PUBREC came for the outgoing publish `id`; PUBREL is due.
    Released(u16),
    /// The outgoing publish `id` is done (acknowledged, or discarded).
    Completed(u16),
    /// An incoming QoS 2 message `id` was delivered and PUBREC is due:
    /// a resend of it must not be delivered again.
    InboundHeld(u16),
    /// PUBREL came for the incoming message `id`; PUBCOMP is due.
    InboundReleased(u16),
    /// Everything before is void (a new session on the server).
    Reset,
    /// A QoS 1/2 publish was queued while the client reconnects.
    Queued(QueuedMessage),
    /// The queued publish `qseq` left the queue unsent (dropped, expired,
    /// refused by the new connection).
    Unqueued(u64),
    /// The queued publish `qseq` was sent: now in flight as `Outgoing`.
    StoredFromQueue(u64, Outgoing),
}

const STORED: u8 = 1;
const RELEASED: u8 = 2;
const COMPLETED: u8 = 3;
const INBOUND_HELD: u8 = 4;
const INBOUND_RELEASED: u8 = 5;
const RESET: u8 = 6;
const QUEUED: u8 = 7;
const UNQUEUED: u8 = 8;
const STORED_FROM_QUEUE: u8 = 9;

/// Appends a Stored record for `o` (its `released` flag is not part of
/// it: a released entry is a Stored record followed by a Released one).
pub fn encode_stored(o: &Outgoing, out: &mut Vec<u8>) {
    let body = stored_fields(o, Vec::with_capacity(13));
    frame(STORED, &[&body, &o.packet], out);
}

/// The fields of a Stored body before its packet, after `body`.
fn stored_fields(o: &Outgoing, mut body: Vec<u8>) -> Vec<u8> {
    let topic: &[u8] = o.alias_topic.as_ref().map_or(&[], |t| t.as_bytes());
    body.extend_from_slice(&o.seq.to_le_bytes());
    body.extend_from_slice(&o.id.to_le_bytes());
    body.push(o.qos as u8);
    // An MqttStr is at most 65535 bytes long.
    body.extend_from_slice(&(topic.len() as u16).to_le_bytes());
    body.extend_from_slice(topic);
    body
}

fn encode_queued(q: &QueuedMessage, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(17);
    body.extend_from_slice(&q.qseq.to_le_bytes());
    body.push(q.qos as u8);
    body.extend_from_slice(&q.queued_at_ms.to_le_bytes());
    frame(QUEUED, &[&body, &q.packet], out);
}

/// Appends `r` in its on-disk form.
pub fn encode(r: &Record, out: &mut Vec<u8>) {
    let (kind, id) = match r {
        Record::Stored(o) => return encode_stored(o, out),
        Record::Released(id) => (RELEASED, *id),
        Record::Completed(id) => (COMPLETED, *id),
        Record::InboundHeld(id) => (INBOUND_HELD, *id),
        Record::InboundReleased(id) => (INBOUND_RELEASED, *id),
        Record::Reset => return frame(RESET, &[], out),
        Record::Queued(q) => return encode_queued(q, out),
        Record::Unqueued(qseq) => return frame(UNQUEUED, &[&qseq.to_le_bytes()], out),
        Record::StoredFromQueue(qseq, o) => {
            let fields = stored_fields(o, qseq.to_le_bytes().to_vec());
            return frame(STORED_FROM_QUEUE, &[&fields, &o.packet], out);
        }
    };
    frame(kind, &[&id.to_le_bytes()], out);
}

/// Writes prefix, kind and the body made of `parts`.
fn frame(kind: u8, parts: &[&[u8]], out: &mut Vec<u8>) {
    let body_len: usize = parts.iter().map(|p| p.len()).sum();
    // Bodies are bounded by MAX_LEN, far below u32::MAX.
    let len = (1 + body_len) as u32;
    let mut crc = Crc32::new();
    crc.update(&len.to_le_bytes());
    crc.update(&[kind]);
    for p in parts {
        crc.update(p);
    }
    out.reserve(PREFIX + 1 + body_len);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.finish().to_le_bytes());
    out.push(kind);
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// The `length` field of a record prefix, if it is in range.
pub fn length(prefix: &[u8; PREFIX]) -> Result<usize, String> {
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if len == 0 || len > MAX_LEN {
        return Err(format!("record length {len} out of range"));
    }
    Ok(len)
}

/// Checks and decodes one record: `prefix` and `rest` (kind and body,
/// `length` bytes). An error says what is wrong (checksum, kind, body).
pub fn decode(prefix: &[u8; PREFIX], rest: Bytes) -> Result<Record, String> {
    let stored_crc = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    let mut crc = Crc32::new();
    crc.update(&prefix[..4]);
    crc.update(&rest);
    if crc.finish() != stored_crc {
        return Err("checksum mismatch".into());
    }
    let kind = rest[0];
    let body = rest.slice(1..);
    let id = || -> Result<u16, String> {
        match body[..] {
            [a, b] => Ok(u16::from_le_bytes([a, b])),
            _ => Err(format!("kind {kind} with a body of {} bytes", body.len())),
        }
    };
    match kind {
        STORED => decode_stored(body).map(Record::Stored),
        RELEASED => id().map(Record::Released),
        COMPLETED => id().map(Record::Completed),
        INBOUND_HELD => id().map(Record::InboundHeld),
        INBOUND_RELEASED => id().map(Record::InboundReleased),
        RESET if body.is_empty() => Ok(Record::Reset),
        QUEUED => decode_queued(body).map(Record::Queued),
        UNQUEUED => qseq(&body).map(Record::Unqueued),
        STORED_FROM_QUEUE if body.len() >= 8 => {
            let q = qseq(&body[..8])?;
            decode_stored(body.slice(8..)).map(|o| Record::StoredFromQueue(q, o))
        }
        _ => Err(format!("unknown record kind {kind}")),
    }
}

/// The body of a Stored record. The packet must decode as the QoS 1/2
/// PUBLISH the fields describe: a record that passed its checksum but
/// does not (a bug, a hand-edited file) is never sent to a broker.
fn decode_stored(body: Bytes) -> Result<Outgoing, String> {
    const FIXED: usize = 13;
    if body.len() < FIXED {
        return Err("stored publish record too short".into());
    }
    let seq = u64::from_le_bytes(body[..8].try_into().unwrap_or_default());
    let id = u16::from_le_bytes([body[8], body[9]]);
    let qos = QoS::from_u8(body[10])
        .filter(|q| *q != QoS::AtMostOnce)
        .ok_or_else(|| format!("stored publish with QoS {}", body[10]))?;
    let topic_len = u16::from_le_bytes([body[11], body[12]]) as usize;
    if body.len() < FIXED + topic_len {
        return Err("stored publish record too short for its topic".into());
    }
    let alias_topic = match topic_len {
        0 => None,
        _ => Some(
            MqttStr::from_bytes(body.slice(FIXED..FIXED + topic_len))
                .map_err(|e| format!("stored topic: {e}"))?,
        ),
    };
    let packet = body.slice(FIXED + topic_len..);
    check_publish(&packet, Some(id), qos)?;
    Ok(Outgoing {
        seq,
        id,
        qos,
        released: false,
        alias_topic,
        packet,
    })
}

/// A queue sequence number: exactly eight bytes.
fn qseq(body: &[u8]) -> Result<u64, String> {
    let b: [u8; 8] = body
        .try_into()
        .map_err(|_| format!("a queue number of {} bytes", body.len()))?;
    Ok(u64::from_le_bytes(b))
}

/// The body of a Queued record; the packet checked as for Stored (with
/// any packet id: a placeholder).
fn decode_queued(body: Bytes) -> Result<QueuedMessage, String> {
    const FIXED: usize = 17;
    if body.len() < FIXED {
        return Err("queued publish record too short".into());
    }
    let qseq = qseq(&body[..8])?;
    let qos = QoS::from_u8(body[8])
        .filter(|q| *q != QoS::AtMostOnce)
        .ok_or_else(|| format!("queued publish with QoS {}", body[8]))?;
    let queued_at_ms = u64::from_le_bytes(body[9..17].try_into().unwrap_or_default());
    let packet = body.slice(FIXED..);
    check_publish(&packet, None, qos)?;
    Ok(QueuedMessage {
        qseq,
        qos,
        queued_at_ms,
        packet,
    })
}

/// The packet must be one whole PUBLISH at `qos`, with packet id `id`
/// when one is given.
fn check_publish(packet: &Bytes, id: Option<u16>, qos: QoS) -> Result<(), String> {
    let mut buf = BytesMut::from(&packet[..]);
    match packet::decode(&mut buf, usize::MAX) {
        Ok(Some(Packet::Publish(p))) if buf.is_empty() => {
            let id_fits = id.map_or(true, |id| p.packet_id == Some(id));
            if !id_fits || p.qos != qos {
                return Err(format!(
                    "stored PUBLISH has packet id {:?} and QoS {}, the record says {id:?} and {}",
                    p.packet_id, p.qos as u8, qos as u8
                ));
            }
            Ok(())
        }
        Ok(_) => Err("stored packet is not one whole PUBLISH".into()),
        Err(e) => Err(format!("stored PUBLISH does not decode: {e}")),
    }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib and
/// `crc32fast` compute it. Our own, table-driven, rather than a new
/// dependency: twenty lines, and a record costs far less to checksum
/// than to fdatasync.
pub struct Crc32(u32);

const TABLE: [u32; 256] = table();

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

impl Crc32 {
    pub fn new() -> Self {
        Crc32(!0)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c = TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    pub fn finish(&self) -> u32 {
        !self.0
    }
}

/// The CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(bytes);
    c.finish()
}

/// A Stored record's packet: a QoS `qos` PUBLISH with id `id` (for tests
/// of this module and its users).
#[cfg(test)]
pub fn test_publish(id: u16, qos: QoS, payload: &[u8]) -> Bytes {
    let p = packet::Publish {
        qos,
        topic: MqttStr::new("t/x").unwrap(),
        packet_id: Some(id),
        ..Default::default()
    };
    let mut b = BytesMut::new();
    packet::encode_publish(&p, payload, &mut b).unwrap();
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let mut c = Crc32::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finish(), 0xCBF4_3926, "incremental");
    }

    fn split(bytes: &[u8]) -> ([u8; PREFIX], Bytes) {
        let prefix: [u8; PREFIX] = bytes[..PREFIX].try_into().unwrap();
        let len = length(&prefix).unwrap();
        assert_eq!(bytes.len(), PREFIX + len, "one record");
        (prefix, Bytes::copy_from_slice(&bytes[PREFIX..]))
    }

    fn stored(id: u16, alias: Option<&str>) -> Record {
        Record::Stored(Outgoing {
            seq: 0x0102_0304_0506_0708,
            id,
            qos: QoS::ExactlyOnce,
            released: false,
            alias_topic: alias.map(|t| MqttStr::new(t).unwrap()),
            packet: test_publish(id, QoS::ExactlyOnce, b"payload"),
        })
    }

    #[test]
    fn every_kind_round_trips() {
        let all = [
            stored(7, None),
            stored(65535, Some("a/topic")),
            Record::Released(1),
            Record::Completed(2),
            Record::InboundHeld(3),
            Record::InboundReleased(65535),
            Record::Reset,
            Record::Queued(QueuedMessage {
                qseq: 1 << 40,
                qos: QoS::AtLeastOnce,
                queued_at_ms: 1_700_000_000_000,
                packet: test_publish(u16::MAX, QoS::AtLeastOnce, b"queued"),
            }),
            Record::Unqueued(7),
            match stored(9, Some("a/b")) {
                Record::Stored(o) => Record::StoredFromQueue(3, o),
                _ => unreachable!(),
            },
        ];
        for r in all {
            let mut b = Vec::new();
            encode(&r, &mut b);
            let (prefix, rest) = split(&b);
            assert_eq!(decode(&prefix, rest).unwrap(), r);
        }
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        for r in [stored(9, Some("x")), Record::Completed(9), Record::Reset] {
            let mut good = Vec::new();
            encode(&r, &mut good);
            for bit in 0..good.len() * 8 {
                let mut b = good.clone();
                b[bit / 8] ^= 1 << (bit % 8);
                let prefix: [u8; PREFIX] = b[..PREFIX].try_into().unwrap();
                let ok = match length(&prefix) {
                    Ok(len) if len == b.len() - PREFIX => {
                        decode(&prefix, Bytes::copy_from_slice(&b[PREFIX..])).is_ok()
                    }
                    // A changed length no longer matches the bytes there.
                    _ => false,
                };
                assert!(!ok, "flip of bit {bit} of {r:?} went unnoticed");
            }
        }
    }

    #[test]
    fn a_record_whose_packet_disagrees_is_refused() {
        // Checksummed correctly, but the packet has id 8, the record 7.
        let mut o = match stored(7, None) {
            Record::Stored(o) => o,
            _ => unreachable!(),
        };
        o.packet = test_publish(8, QoS::ExactlyOnce, b"p");
        let mut b = Vec::new();
        encode_stored(&o, &mut b);
        let (prefix, rest) = split(&b);
        let e = decode(&prefix, rest).unwrap_err();
        assert!(e.contains("packet id"), "{e}");
    }

    #[test]
    fn lengths_out_of_range_are_refused() {
        let mut p = [0u8; PREFIX];
        assert!(length(&p).is_err(), "zero");
        p[..4].copy_from_slice(&(MAX_LEN as u32 + 1).to_le_bytes());
        assert!(length(&p).is_err(), "too long");
    }
}
