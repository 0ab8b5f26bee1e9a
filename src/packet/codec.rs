//! Fixed header handling and the entry points `decode` / `encode`.

use super::{DecodeError, EncodeError, Packet};
use bytes::BytesMut;

/// Decodes one packet from the front of `buf`.
///
/// Returns `Ok(None)` while the packet is incomplete (nothing is consumed).
/// A packet whose whole size exceeds `max_packet_size` is rejected from its
/// fixed header alone, before its body is buffered. On success the packet's
/// bytes are split off `buf` and frozen, so payloads are zero-copy.
pub fn decode(buf: &mut BytesMut, max_packet_size: usize) -> Result<Option<Packet>, DecodeError> {
    let _ = (buf, max_packet_size);
    todo!()
}

/// Appends the encoded packet to `out` in one piece. On error `out` is left
/// as it was and nothing should be sent.
pub fn encode(packet: &Packet, out: &mut BytesMut) -> Result<(), EncodeError> {
    let _ = (packet, out);
    todo!()
}

/// The whole encoded size of `packet` (fixed header included), so a caller
/// can check a peer's Maximum Packet Size before encoding.
pub fn encoded_len(packet: &Packet) -> Result<usize, EncodeError> {
    let _ = packet;
    todo!()
}
