//! The fuzz targets' bodies, shared by the cargo-fuzz crate (fuzz/) and
//! tests/fuzz_corpus.rs, which replays the committed seeds and every crash
//! found on stable: one definition of what each target checks. Not API.
//!
//! Each function takes arbitrary bytes and panics when an invariant breaks.
//! The client target is in [`client`].

pub mod client;

use crate::packet::{complete_len, decode_with, encode_with, ProtocolVersion};
use bytes::BytesMut;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Small enough that the size check is exercised, big enough for real packets.
const MAX_PACKET_SIZE: usize = 64 * 1024;

/// Arbitrary bytes into the incremental decoder, packet after packet, as a
/// reader would: it may refuse them but never panics, a decoded packet
/// takes exactly the bytes its fixed header claims (never more than were
/// given), and an incomplete packet consumes nothing.
pub fn decode(data: &[u8], version: ProtocolVersion) {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        let framed = complete_len(&buf, MAX_PACKET_SIZE);
        match decode_with(&mut buf, MAX_PACKET_SIZE, version) {
            Ok(Some(_)) => {
                let Ok(Some(total)) = framed else {
                    panic!("decoded a packet that complete_len calls {framed:?}");
                };
                assert!(total >= 2 && total <= before, "claims {total} of {before}");
                assert_eq!(before - buf.len(), total, "consumed other than claimed");
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "an incomplete packet consumed bytes");
                assert_eq!(framed, Ok(None), "complete_len disagrees on incomplete");
                break;
            }
            Err(e) => {
                let consumed = before - buf.len();
                match framed {
                    // The fixed header is refused: nothing consumed.
                    Err(_) => assert_eq!(consumed, 0, "{e:?} after a bad header consumed"),
                    // A body refused consumes that one packet, or nothing
                    // when the type is refused before (3.1.1's AUTH).
                    Ok(Some(total)) => assert!(
                        consumed == 0 || consumed == total,
                        "{e:?} consumed {consumed}, the packet is {total}"
                    ),
                    Ok(None) => panic!("{e:?} on what complete_len calls incomplete"),
                }
                break;
            }
        }
    }
}

/// Whatever decodes must encode again in the same protocol (the encoder
/// accepts everything the decoder does) and decode back to an equal packet.
pub fn roundtrip(data: &[u8], version: ProtocolVersion) {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(packet)) = decode_with(&mut buf, usize::MAX, version) {
        let mut out = BytesMut::new();
        if let Err(e) = encode_with(&packet, version, &mut out) {
            panic!("decoded {packet:?} but encoding failed: {e:?}");
        }
        if version == ProtocolVersion::V5 {
            assert_eq!(crate::packet::encoded_len(&packet), Ok(out.len()));
        }
        let again = decode_with(&mut out, usize::MAX, version);
        assert_eq!(again, Ok(Some(packet)), "re-decoding the encoding");
        assert!(out.is_empty(), "encoded packet has trailing bytes");
    }
}

/// The system allocator, counting the bytes in use and their peak, for a
/// memory bound on each input of the client target: the fuzz targets and
/// tests/fuzz_corpus.rs make it their `#[global_allocator]`. Counts are
/// process-wide: what other threads allocate meanwhile counts too.
pub struct CountingAlloc;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

impl CountingAlloc {
    /// Starts a measurement: the bytes in use now, for `peak_growth`.
    pub fn start() -> usize {
        let now = IN_USE.load(Ordering::Relaxed);
        PEAK.store(now, Ordering::Relaxed);
        now
    }

    /// How far the bytes in use rose above `start` since; None when the
    /// process does not count (another global allocator).
    pub fn peak_growth(start: usize) -> Option<usize> {
        COUNTING
            .load(Ordering::Relaxed)
            .then(|| PEAK.load(Ordering::Relaxed).saturating_sub(start))
    }

    fn grew(size: usize) {
        let now = IN_USE.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(now, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
    }
}

// SAFETY: every call goes to the system allocator unchanged; the counters
// only observe.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
            Self::grew(new_size);
        }
        p
    }
}
