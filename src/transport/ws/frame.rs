//! RFC 6455 frames, client side: parsing the headers of the server's
//! frames (never masked) and writing our own (always masked).

use std::io;

pub(super) const CONTINUATION: u8 = 0x0;
pub(super) const TEXT: u8 = 0x1;
pub(super) const BINARY: u8 = 0x2;
pub(super) const CLOSE: u8 = 0x8;
pub(super) const PING: u8 = 0x9;
pub(super) const PONG: u8 = 0xA;

/// The longest frame header: 2 bytes, 8 of extended length, 4 of mask.
pub(super) const MAX_HEADER: usize = 14;
/// The longest payload of a control frame (RFC 6455 5.5).
pub(super) const MAX_CONTROL: usize = 125;

/// A frame header as the server sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub fin: bool,
    pub opcode: u8,
    /// Declared payload length: only a claim until the bytes arrive.
    pub len: u64,
}

impl Header {
    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("WebSocket protocol error: {what}"),
    )
}

/// Parses the frame header at the start of `b`: `None` when more bytes
/// are needed, else the header and its length in bytes.
pub(super) fn parse_header(b: &[u8]) -> io::Result<Option<(Header, usize)>> {
    let [b0, b1, ..] = *b else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(bad(
            "reserved bits set in a frame (no extension was agreed)",
        ));
    }
    // RFC 6455 5.1: a client closes the connection on a masked frame.
    if b1 & 0x80 != 0 {
        return Err(bad("the server sent a masked frame"));
    }
    let (len, header_len) = match b1 & 0x7F {
        126 => match b.get(2..4) {
            Some(l) => (u64::from(u16::from_be_bytes([l[0], l[1]])), 4),
            None => return Ok(None),
        },
        127 => match b.get(2..10) {
            Some(l) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(l);
                let len = u64::from_be_bytes(a);
                if len >> 63 != 0 {
                    return Err(bad("frame length with the most significant bit set"));
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let h = Header {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0F,
        len,
    };
    match h.opcode {
        CONTINUATION | TEXT | BINARY => {}
        CLOSE | PING | PONG => {
            if !h.fin {
                return Err(bad("fragmented control frame"));
            }
            if h.len > MAX_CONTROL as u64 {
                return Err(bad("control frame longer than 125 bytes"));
            }
        }
        op => return Err(bad(&format!("reserved opcode 0x{op:X}"))),
    }
    Ok(Some((h, header_len)))
}

/// Appends the header of a final (FIN) frame with a masked payload of
/// `len` bytes.
pub(super) fn put_header(out: &mut Vec<u8>, opcode: u8, len: usize, mask: [u8; 4]) {
    out.push(0x80 | opcode);
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
}

/// Appends `data` masked with `mask`, `data` starting at byte `offset` of
/// the frame's payload.
pub(super) fn put_masked(out: &mut Vec<u8>, data: &[u8], mask: [u8; 4], offset: usize) {
    let start = out.len();
    out.extend_from_slice(data);
    let mut m = mask;
    m.rotate_left(offset % 4);
    // Eight bytes at a time: the compiler vectorizes this loop.
    let word = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut chunks = out[start..].chunks_exact_mut(8);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(a) ^ word).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= m[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(fin: bool, opcode: u8, len: u64) -> Header {
        Header { fin, opcode, len }
    }

    #[test]
    fn parses_the_three_length_forms() {
        assert_eq!(parse_header(&[0x82]).unwrap(), None);
        assert_eq!(
            parse_header(&[0x82, 5, 9, 9]).unwrap(),
            Some((h(true, BINARY, 5), 2))
        );
        assert_eq!(parse_header(&[0x02, 126, 1]).unwrap(), None);
        assert_eq!(
            parse_header(&[0x02, 126, 1, 0]).unwrap(),
            Some((h(false, BINARY, 256), 4))
        );
        assert_eq!(parse_header(&[0x80, 127, 0, 0, 0, 0, 0x0F]).unwrap(), None);
        // The hostile header of issue 8: 260,000,000 bytes declared.
        let big = 260_000_000u64.to_be_bytes();
        let mut b = vec![0x82, 127];
        b.extend_from_slice(&big);
        assert_eq!(
            parse_header(&b).unwrap(),
            Some((h(true, BINARY, 260_000_000), 10))
        );
    }

    #[test]
    fn refuses_what_rfc_6455_forbids() {
        for bad in [
            &[0xC2, 0][..],                   // RSV1 without an extension
            &[0x82, 0x81, 1, 2, 3, 4, 0][..], // masked by the server
            &[0x09, 0][..],                   // fragmented ping
            &[0x89, 126, 0, 126][..],         // ping over 125 bytes
            &[0x83, 0][..],                   // reserved opcode
            &[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0][..],
        ] {
            assert!(parse_header(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn masks_from_any_offset() {
        let data: Vec<u8> = (0..37u8).collect();
        let mask = [0x11, 0x22, 0x44, 0x88];
        let whole = {
            let mut v = Vec::new();
            put_masked(&mut v, &data, mask, 0);
            v
        };
        for (i, (m, d)) in whole.iter().zip(&data).enumerate() {
            assert_eq!(m ^ mask[i % 4], *d);
        }
        // In pieces, as the writer sends a long payload.
        let mut pieces = Vec::new();
        put_masked(&mut pieces, &data[..5], mask, 0);
        put_masked(&mut pieces, &data[5..22], mask, 5);
        put_masked(&mut pieces, &data[22..], mask, 22);
        assert_eq!(pieces, whole);
    }

    #[test]
    fn writes_minimal_lengths() {
        let mut v = Vec::new();
        put_header(&mut v, BINARY, 125, [1, 2, 3, 4]);
        assert_eq!(v, [0x82, 0x80 | 125, 1, 2, 3, 4]);
        v.clear();
        put_header(&mut v, PONG, 126, [0; 4]);
        assert_eq!(&v[..4], &[0x8A, 0x80 | 126, 0, 126]);
        v.clear();
        put_header(&mut v, BINARY, 70_000, [0; 4]);
        assert_eq!(&v[..10], &[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }
}
