//! Variable byte integers (spec section 1.5.5): at most four bytes.

use super::DecodeError;
use bytes::BufMut;

/// Largest value a variable byte integer can hold.
pub(crate) const VARINT_MAX: u32 = 268_435_455;

/// Decodes from the start of `buf`: `Ok(None)` if more bytes are needed,
/// otherwise the value and the number of bytes it took.
///
/// A fourth byte that still has its continuation bit set is
/// [`DecodeError::BadRemainingLength`]. Non-minimal encodings (e.g.
/// `0x80 0x00` for 0) are accepted: the spec binds the sender, and being
/// lenient here costs nothing.
pub fn decode_varint(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        Err(DecodeError::BadRemainingLength)
    } else {
        Ok(None)
    }
}

/// Appends `value` (must be at most [`VARINT_MAX`]).
pub fn encode_varint(value: u32, out: &mut impl BufMut) {
    debug_assert!(value <= VARINT_MAX, "varint {value} out of range");
    let mut v = value;
    loop {
        // The low byte masked to seven bits; no truncating cast needed.
        let byte = v.to_le_bytes()[0] & 0x7F;
        v >>= 7;
        if v == 0 {
            out.put_u8(byte);
            return;
        }
        out.put_u8(byte | 0x80);
    }
}

/// Number of bytes [`encode_varint`] writes for `value` (5 for values above
/// [`VARINT_MAX`], which callers reject before encoding).
pub fn varint_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        2_097_152..=VARINT_MAX => 4,
        _ => 5,
    }
}

/// [`varint_len`] for a `usize` length; anything too big for a varint
/// counts as 5 bytes so the total overshoots and is rejected.
pub(super) fn varint_len_usize(value: usize) -> usize {
    u32::try_from(value).map_or(5, varint_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_boundaries_round_trip() {
        for &(v, n) in &[
            (0u32, 1usize),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (2_097_151, 3),
            (2_097_152, 4),
            (VARINT_MAX, 4),
        ] {
            let mut out = Vec::new();
            encode_varint(v, &mut out);
            assert_eq!(out.len(), n, "{v}");
            assert_eq!(varint_len(v), n);
            assert_eq!(decode_varint(&out), Ok(Some((v, n))));
            // Every proper prefix is incomplete, not an error.
            for k in 0..n {
                assert_eq!(decode_varint(&out[..k]), Ok(None));
            }
        }
    }

    #[test]
    fn varint_spec_examples() {
        assert_eq!(decode_varint(&[0xC1, 0x02]), Ok(Some((321, 2))));
        assert_eq!(
            decode_varint(&[0xFF, 0xFF, 0xFF, 0x7F]),
            Ok(Some((VARINT_MAX, 4)))
        );
    }

    #[test]
    fn varint_five_bytes_is_rejected() {
        assert_eq!(
            decode_varint(&[0x80, 0x80, 0x80, 0x80, 0x01]),
            Err(DecodeError::BadRemainingLength)
        );
        // Known to be too long as soon as the fourth byte arrives.
        assert_eq!(
            decode_varint(&[0xFF, 0xFF, 0xFF, 0xFF]),
            Err(DecodeError::BadRemainingLength)
        );
    }

    #[test]
    fn varint_len_above_max() {
        assert_eq!(varint_len(VARINT_MAX + 1), 5);
        assert_eq!(varint_len_usize(usize::MAX), 5);
    }
}
