//! Variable byte integers (spec section 1.5.5): at most four bytes.

use super::DecodeError;
use bytes::BufMut;

/// Largest value a variable byte integer can hold.
pub const VARINT_MAX: u32 = 268_435_455;

/// Decodes from the start of `buf`: `Ok(None)` if more bytes are needed,
/// otherwise the value and the number of bytes it took.
pub fn decode_varint(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let _ = buf;
    todo!()
}

/// Appends `value` (must be at most [`VARINT_MAX`]).
pub fn encode_varint(value: u32, out: &mut impl BufMut) {
    let _ = (value, out);
    todo!()
}

pub fn varint_len(value: u32) -> usize {
    let _ = value;
    todo!()
}
