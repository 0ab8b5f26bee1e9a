//! A packet's list of properties, kept in its wire encoding.
//!
//! Why not a `Vec<Property>`: a `Property` takes 64 bytes while a property
//! may take 2 on the wire (a Subscription Identifier), so a broker packing
//! a PUBLISH with them made us spend over 30 times what it sent. Kept as
//! the encoded bytes, a received list is a zero-copy view of its packet and
//! costs nothing beyond it; a value is decoded when asked for, without
//! copying (strings and binaries are views of the list too).
//!
//! Lookups scan the list. Lists are short in practice, and a received one
//! holds at most [`MAX_RECEIVED_PROPERTIES`]; where the C API offers
//! indexed access it builds an index once per list (`ffi/properties.rs`).

use super::codec::{read_u8, read_varint};
use super::properties::{Direction, PropertyContext};
use super::varint::{decode_varint, encode_varint, varint_len_usize, VARINT_MAX};
use super::{DecodeError, EncodeError, MqttStr, Property, PropertyId, PropertyKind};
use bytes::{Bytes, BytesMut};
use std::ops::Range;

/// The most properties we accept in one received packet (all identifiers
/// together); more is refused with [`DecodeError::TooManyProperties`],
/// which ends the connection with DISCONNECT 0x95 (Packet too large).
///
/// Only User Property and Subscription Identifier may repeat. A broker
/// sends one Subscription Identifier per subscription of ours that a
/// message matches, and forwards the User Properties its publisher set:
/// ten thousand is far beyond both, while each property costs the C API's
/// index 4 bytes and its reader a call. (The C API states the number in
/// its documentation rather than exporting this constant.)
///
/// cbindgen:ignore
pub const MAX_RECEIVED_PROPERTIES: usize = 10_000;

/// An ordered list of properties (repeatable ones keep their order).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Properties {
    /// Each property's identifier byte and value, back to back, as on the
    /// wire (without the list's length prefix). Invariant: well-formed (it
    /// was either decoded and checked, or written by [`Self::push`]) and at
    /// most [`VARINT_MAX`] bytes long.
    raw: Bytes,
    /// Properties that could not be written into `raw` (binary data over
    /// 65535 bytes, ...) and why: the encoder reports the first. Dropped
    /// when their identifier is set or removed again. Empty in practice
    /// (the C API checks what it is given), so it allocates nothing.
    unwritable: Vec<(PropertyId, EncodeError)>,
}

/// The id of the property starting at `at` and where it ends, when a whole
/// one starts there.
fn entry_end(raw: &[u8], at: usize) -> Option<(PropertyId, usize)> {
    let id = PropertyId::from_u8(*raw.get(at)?)?;
    let value = raw.get(at + 1..)?;
    let prefixed = |from: usize| {
        let b = value.get(from..from + 2)?;
        Some(2 + usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let len = match id.kind() {
        PropertyKind::Byte => 1,
        PropertyKind::TwoByteInt => 2,
        PropertyKind::FourByteInt => 4,
        PropertyKind::VarInt => decode_varint(value).ok()??.1,
        PropertyKind::Utf8String | PropertyKind::Binary => prefixed(0)?,
        PropertyKind::Utf8Pair => {
            let key = prefixed(0)?;
            key + prefixed(key)?
        }
    };
    let end = at + 1 + len;
    (end <= raw.len()).then_some((id, end))
}

/// The properties of a well-formed list as (id, byte range with the id).
struct Spans<'a> {
    raw: &'a [u8],
    at: usize,
}

impl Iterator for Spans<'_> {
    type Item = (PropertyId, Range<usize>);
    fn next(&mut self) -> Option<Self::Item> {
        let (id, end) = entry_end(self.raw, self.at)?;
        let range = self.at..end;
        self.at = end;
        Some((id, range))
    }
}

/// The properties of a list, decoded one at a time (see [`Properties::iter`]).
pub struct Iter<'a> {
    raw: &'a Bytes,
    spans: Spans<'a>,
}

impl Iterator for Iter<'_> {
    type Item = Property;
    fn next(&mut self) -> Option<Property> {
        let (id, range) = self.spans.next()?;
        let mut value = self.raw.slice(range.start + 1..range.end);
        // Cannot fail: the list is well-formed (its invariant).
        Property::read(id, &mut value).ok()
    }
}

/// Why `p` cannot be written at all, unlike values the spec forbids (a
/// Topic Alias 0, ...), which are written and refused by the encoder.
fn unwritable(p: &Property) -> Option<EncodeError> {
    match p {
        Property::CorrelationData(b) | Property::AuthenticationData(b)
            if b.len() > usize::from(u16::MAX) =>
        {
            Some(EncodeError::BinaryTooLong)
        }
        Property::SubscriptionIdentifier(v) if *v > VARINT_MAX => Some(EncodeError::Invalid(
            "Subscription Identifier above 268,435,455",
        )),
        _ => None,
    }
}

/// Bit of `id` in a "seen" set; every identifier is below 64.
fn seen_bit(id: PropertyId) -> u64 {
    1u64 << (id as u8)
}

impl Properties {
    pub fn new() -> Self {
        Properties::default()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty() && self.unwritable.is_empty()
    }

    /// The properties in order. Each is decoded as it comes, without
    /// copying its strings or binary data.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            raw: &self.raw,
            spans: self.spans(),
        }
    }

    fn spans(&self) -> Spans<'_> {
        Spans {
            raw: &self.raw,
            at: 0,
        }
    }

    /// How many properties with this id the list holds.
    pub fn count(&self, id: PropertyId) -> usize {
        self.spans().filter(|(i, _)| *i == id).count()
    }

    /// Appends a property (use [`Self::set`] for a single-valued one).
    pub fn push(&mut self, p: Property) {
        if let Some(e) = self.writable(&p) {
            self.unwritable.push((p.id(), e));
            return;
        }
        // No copy when this list is the only owner of its bytes, and the
        // spare capacity is kept, so pushing n properties costs O(n).
        let mut out = BytesMut::from(std::mem::take(&mut self.raw));
        let before = out.len();
        if let Err(e) = p.write(&mut out) {
            // Unreachable once `writable` passed; never keep half of it.
            out.truncate(before);
            self.unwritable.push((p.id(), e));
        }
        self.raw = out.freeze();
    }

    /// Why `p` cannot be added to this list, if it cannot.
    fn writable(&self, p: &Property) -> Option<EncodeError> {
        unwritable(p).or_else(|| {
            let len = self.raw.len().saturating_add(p.encoded_len());
            (len > VARINT_MAX as usize).then_some(EncodeError::PacketTooLarge)
        })
    }

    /// A copy in memory of its own (see [`MqttStr::detached`]), for a list
    /// kept after its packet was handled.
    pub fn detached(&self) -> Self {
        Properties {
            raw: Bytes::copy_from_slice(&self.raw),
            unwritable: self.unwritable.clone(),
        }
    }

    /// The first property with this id.
    pub fn get(&self, id: PropertyId) -> Option<Property> {
        let (_, range) = self.spans().find(|(i, _)| *i == id)?;
        let mut value = self.raw.slice(range.start + 1..range.end);
        Property::read(id, &mut value).ok()
    }

    /// Removes every property with this id.
    pub fn remove(&mut self, id: PropertyId) {
        self.unwritable.retain(|(u, _)| *u != id);
        if self.spans().any(|(i, _)| i == id) {
            self.rebuild(id, None);
        }
    }

    /// Replaces a single-valued property, or appends a repeatable one.
    ///
    /// A replaced property keeps its position; stray duplicates of a
    /// single-valued id (pushed by hand) are dropped so the list stays valid.
    pub fn set(&mut self, p: Property) {
        let id = p.id();
        if id.is_repeatable() {
            return self.push(p);
        }
        self.unwritable.retain(|(u, _)| *u != id);
        if !self.spans().any(|(i, _)| i == id) {
            return self.push(p);
        }
        match self.writable(&p) {
            Some(e) => {
                self.rebuild(id, None);
                self.unwritable.push((id, e));
            }
            None => self.rebuild(id, Some(&p)),
        }
    }

    /// Rewrites the list without the properties with `id`, putting
    /// `replacement` (already checked writable) where the first one was.
    fn rebuild(&mut self, id: PropertyId, replacement: Option<&Property>) {
        let mut out = BytesMut::with_capacity(self.raw.len());
        let mut placed = replacement.is_none();
        for (i, range) in self.spans() {
            if i != id {
                out.extend_from_slice(&self.raw[range]);
            } else if !placed {
                placed = true;
                if let Some(p) = replacement {
                    // Checked writable by the caller.
                    let _ = p.write(&mut out);
                }
            }
        }
        self.raw = out.freeze();
    }

    /// Value of an integer property (byte, two-byte, four-byte or varint).
    pub fn get_int(&self, id: PropertyId) -> Option<u32> {
        self.get(id).and_then(|p| p.as_int())
    }

    /// Value of a string property (not of a User Property pair).
    pub fn get_str(&self, id: PropertyId) -> Option<MqttStr> {
        self.get(id).and_then(|p| p.as_str().cloned())
    }

    /// Value of a binary property; a view of the list's bytes.
    pub fn get_binary(&self, id: PropertyId) -> Option<Bytes> {
        self.get(id).and_then(|p| p.as_binary().cloned())
    }

    /// The first property not allowed in `ctx` sent in `dir`, if any: a
    /// client checks what it sends with `Direction::ToServer`.
    pub fn first_not_allowed(&self, ctx: PropertyContext, dir: Direction) -> Option<PropertyId> {
        let unwritable = self.unwritable.iter().map(|(id, _)| *id);
        self.spans()
            .map(|(id, _)| id)
            .chain(unwritable)
            .find(|id| !id.allowed_from(ctx, dir))
    }

    /// Encoded length of the property list, without its own length prefix.
    pub fn encoded_len(&self) -> usize {
        self.raw.len()
    }

    /// Appends the length prefix and the properties.
    ///
    /// Checks binary lengths and values first; `out` is untouched on error.
    /// Whether each property suits the packet is the caller's business
    /// (see [`Properties::first_not_allowed`]).
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.check_values()?;
        self.write(out)
    }

    /// Refuses what cannot be written and values the spec forbids.
    fn check_values(&self) -> Result<(), EncodeError> {
        if let Some((_, e)) = self.unwritable.first() {
            return Err(e.clone());
        }
        self.iter().try_for_each(|p| p.check())
    }

    /// Decodes a property list (length prefix included) from the front of
    /// `buf`, checking ids, duplicates, values, that each is allowed in
    /// `ctx` and that there are at most [`MAX_RECEIVED_PROPERTIES`]. The
    /// list is a view of `buf`: nothing is copied.
    pub fn decode(buf: &mut Bytes, ctx: PropertyContext) -> Result<Properties, DecodeError> {
        let len = usize::try_from(read_varint(buf)?)
            .map_err(|_| DecodeError::Malformed("property length does not fit memory"))?;
        if buf.len() < len {
            return Err(DecodeError::Malformed(
                "property length longer than the packet",
            ));
        }
        let raw = buf.split_to(len);
        check_received(raw.clone(), ctx)?;
        Ok(Properties {
            raw,
            unwritable: Vec::new(),
        })
    }

    // ---- crate-internal encode helpers used by the packet modules ----

    /// Everything the encoder must refuse for this list in `ctx`: a
    /// property the packet may not carry, a repeated single-valued one,
    /// an over-long binary or a value the spec forbids.
    pub(super) fn validate(&self, ctx: PropertyContext) -> Result<(), EncodeError> {
        let unwritable = self.unwritable.iter().map(|(id, _)| *id);
        let mut seen = 0u64;
        for id in self.spans().map(|(id, _)| id).chain(unwritable) {
            if !id.allowed_in(ctx) {
                return Err(EncodeError::PropertyNotAllowed {
                    id: id as u8,
                    packet: ctx.packet_number(),
                });
            }
            if !id.repeatable_in(ctx) {
                if seen & seen_bit(id) != 0 {
                    return Err(EncodeError::Invalid("single-valued property appears twice"));
                }
                seen |= seen_bit(id);
            }
        }
        self.check_values()
    }

    /// Length prefix plus list.
    pub(super) fn block_len(&self) -> usize {
        let len = self.encoded_len();
        len.saturating_add(varint_len_usize(len))
    }

    /// Writes the length prefix and the list; call after [`Self::validate`].
    pub(super) fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let len = u32::try_from(self.raw.len())
            .ok()
            .filter(|&l| l <= VARINT_MAX)
            .ok_or(EncodeError::PacketTooLarge)?;
        encode_varint(len, out);
        out.extend_from_slice(&self.raw);
        Ok(())
    }
}

/// Checks a received list: known ids allowed in `ctx`, no repeated
/// single-valued one, values well-formed and allowed, not too many.
fn check_received(mut block: Bytes, ctx: PropertyContext) -> Result<(), DecodeError> {
    let mut seen = 0u64;
    let mut count = 0usize;
    while !block.is_empty() {
        count += 1;
        if count > MAX_RECEIVED_PROPERTIES {
            return Err(DecodeError::TooManyProperties {
                max: MAX_RECEIVED_PROPERTIES,
            });
        }
        let raw = read_u8(&mut block)?;
        let id = PropertyId::from_u8(raw).ok_or(DecodeError::UnknownProperty(raw))?;
        if !id.allowed_in(ctx) {
            return Err(DecodeError::PropertyNotAllowed {
                id: raw,
                packet: ctx.packet_number(),
            });
        }
        if !id.repeatable_in(ctx) {
            if seen & seen_bit(id) != 0 {
                return Err(DecodeError::DuplicateProperty(raw));
            }
            seen |= seen_bit(id);
        }
        let p = Property::read(id, &mut block)?;
        if let Some(why) = p.value_problem() {
            return Err(DecodeError::ProtocolError(why));
        }
    }
    Ok(())
}

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        // Authentication Data may be a secret (a token): never printed.
        for p in self.iter() {
            match p {
                Property::AuthenticationData(d) => list.entry(&format_args!(
                    "AuthenticationData(<{} bytes redacted>)",
                    d.len()
                )),
                p => list.entry(&p),
            };
        }
        for (id, e) in &self.unwritable {
            list.entry(&format_args!("<unwritable {}: {e}>", id.name()));
        }
        list.finish()
    }
}

impl From<Vec<Property>> for Properties {
    fn from(list: Vec<Property>) -> Self {
        list.into_iter().collect()
    }
}

impl FromIterator<Property> for Properties {
    fn from_iter<I: IntoIterator<Item = Property>>(iter: I) -> Self {
        let mut props = Properties::new();
        iter.into_iter().for_each(|p| props.push(p));
        props
    }
}

impl<'a> IntoIterator for &'a Properties {
    type Item = Property;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}
