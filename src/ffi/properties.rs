//! `mqtt_properties`: a list of MQTT v5 properties attached to a packet.
//!
//! A received message's properties are a view of the packet read from the
//! socket (no copy), in their wire encoding, where strings are not
//! NUL-terminated and finding the `index`-th occurrence of a property
//! means a scan. So the getters read a [`View`] of the list, built on the
//! first read: NUL-terminated copies of the strings and the positions of
//! every property, which make each getter constant-time (a loop over
//! `mqtt_properties_user_at` with `mqtt_properties_count` in its condition
//! is linear, not quadratic). It is built once (a `OnceLock`, so concurrent
//! readers of a `const` list are safe), costs 4 bytes per property plus
//! the strings, and nothing for a list that is never read. Any setter drops
//! it, so a pointer handed out stays valid until the list is modified or
//! freed.

use super::error::{set_last_error, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_ERR_NOT_FOUND, MQTT5C_OK};
use crate::packet::{MqttStr, Properties, Property, PropertyId, PropertyKind};
use bytes::Bytes;
use std::ffi::{c_char, c_void, CStr};
use std::os::raw::c_int;
use std::sync::OnceLock;

// The `MQTT5C_PROP_*` identifiers, from the property table (build.rs
// writes them into the header from the same table).
macro_rules! property_constants {
    ($($name:ident = $id:literal, $c:ident, $kind:ident, $text:literal, $senders:expr, $doc:literal;)*) => {
        $(
            #[doc = concat!($text, " ", $doc)]
            pub const $c: c_int = $id;
        )*
    };
}
crate::packet::for_each_property!(property_constants);

/// Properties for a CONNECT, PUBLISH, SUBSCRIBE, ... or of a received message.
///
/// Threads: one at a time; a `const` one (a message's) may be read by
/// several at once.
pub struct mqtt_properties {
    pub(crate) inner: Properties,
    /// What the getters read, built on the first read (see [`View`]).
    view: OnceLock<View>,
}

/// One above the highest property identifier (0x2A).
const ID_SLOTS: usize = 0x2B;

/// The getters' view of a list (see the module docs).
struct View {
    /// Every string value, NUL-terminated, back to back; a User Property
    /// is its key then its value. MQTT strings contain no U+0000, so each
    /// ends at the first NUL.
    strings: Box<[u8]>,
    /// The binary values (views of the list, not copies).
    binaries: Box<[Bytes]>,
    /// One per property, grouped by identifier, in list order within a
    /// group: an integer property's value; where a string or a User
    /// Property starts in `strings`; which of `binaries`.
    slots: Box<[u32]>,
    /// The properties with identifier `id` are `slots[first[id]..first[id + 1]]`.
    first: [u32; ID_SLOTS + 1],
}

impl View {
    fn build(list: &Properties) -> View {
        // Counted first, so that everything is allocated once, exactly.
        let mut count = [0u32; ID_SLOTS];
        let mut string_bytes = 0usize;
        for p in list.iter() {
            count[p.id() as usize] += 1;
            string_bytes += match &p {
                Property::UserProperty(k, v) => k.len() + v.len() + 2,
                other => other.as_str().map_or(0, |s| s.len() + 1),
            };
        }
        let mut first = [0u32; ID_SLOTS + 1];
        for id in 0..ID_SLOTS {
            first[id + 1] = first[id] + count[id];
        }
        let mut next = first;
        let mut slots = vec![0u32; first[ID_SLOTS] as usize].into_boxed_slice();
        let mut strings = Vec::with_capacity(string_bytes);
        let mut binaries = Vec::new();
        for p in list.iter() {
            let slot = &mut next[p.id() as usize];
            slots[*slot as usize] = View::slot(&p, &mut strings, &mut binaries);
            *slot += 1;
        }
        View {
            strings: strings.into_boxed_slice(),
            binaries: binaries.into_boxed_slice(),
            slots,
            first,
        }
    }

    /// What `p` puts in its slot, appending its strings or binary.
    fn slot(p: &Property, strings: &mut Vec<u8>, binaries: &mut Vec<Bytes>) -> u32 {
        // A list is at most 268,435,455 bytes (its invariant) and its
        // strings take no more room here, so every offset fits.
        let at = u32::try_from(strings.len()).unwrap_or(u32::MAX);
        let mut push = |s: &MqttStr| {
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
        };
        match p {
            Property::UserProperty(k, v) => {
                push(k);
                push(v);
                at
            }
            other => {
                if let Some(v) = other.as_int() {
                    v
                } else if let Some(s) = other.as_str() {
                    push(s);
                    at
                } else if let Some(b) = other.as_binary() {
                    binaries.push(b.clone());
                    u32::try_from(binaries.len() - 1).unwrap_or(u32::MAX)
                } else {
                    0
                }
            }
        }
    }

    /// The slots of the properties with this identifier, in list order.
    fn of(&self, id: PropertyId) -> &[u32] {
        let i = id as usize;
        &self.slots[self.first[i] as usize..self.first[i + 1] as usize]
    }

    /// The NUL-terminated string starting at `at` in `strings`.
    fn string(&self, at: u32) -> Option<&CStr> {
        let rest = self.strings.get(at as usize..)?;
        CStr::from_bytes_until_nul(rest).ok()
    }

    /// The `index`-th User Property: key, value.
    fn user(&self, index: usize) -> Option<(&CStr, &CStr)> {
        let at = *self.of(PropertyId::UserProperty).get(index)?;
        let key = self.string(at)?;
        let value_at = at as usize + key.to_bytes_with_nul().len();
        Some((key, self.string(u32::try_from(value_at).ok()?)?))
    }
}

impl mqtt_properties {
    pub(crate) fn from_inner(inner: Properties) -> mqtt_properties {
        mqtt_properties {
            inner,
            view: OnceLock::new(),
        }
    }

    /// A new heap list for the caller to free with `mqtt_properties_free`.
    pub(crate) fn boxed(inner: Properties) -> *mut mqtt_properties {
        Box::into_raw(Box::new(Self::from_inner(inner)))
    }

    /// The properties behind an optional pointer (NULL = none).
    ///
    /// # Safety
    /// `p` is NULL or points to a live `mqtt_properties`.
    pub(crate) unsafe fn clone_or_empty(p: *const mqtt_properties) -> Properties {
        if p.is_null() {
            Properties::new()
        } else {
            (*p).inner.clone()
        }
    }

    fn view(&self) -> &View {
        self.view.get_or_init(|| View::build(&self.inner))
    }

    /// Modifies the list; pointers handed out before are dropped.
    fn modify(&mut self) -> &mut Properties {
        self.view = OnceLock::new();
        &mut self.inner
    }
}

/// The property id for `prop_id`, or the error text.
fn prop_id(prop_id: c_int) -> Result<PropertyId, String> {
    u8::try_from(prop_id)
        .ok()
        .and_then(PropertyId::from_u8)
        .ok_or_else(|| format!("unknown property identifier {prop_id} (0x{prop_id:X})"))
}

fn kind_name(k: PropertyKind) -> &'static str {
    match k {
        PropertyKind::Byte | PropertyKind::TwoByteInt | PropertyKind::FourByteInt => "an integer",
        PropertyKind::VarInt => "an integer",
        PropertyKind::Utf8String => "a string",
        PropertyKind::Utf8Pair => "a user property (string pair)",
        PropertyKind::Binary => "a binary",
    }
}

fn accessor(k: PropertyKind, set: bool) -> &'static str {
    match (k, set) {
        (PropertyKind::Utf8String, true) => "mqtt_properties_set_string",
        (PropertyKind::Utf8String, false) => "mqtt_properties_get_string",
        (PropertyKind::Binary, true) => "mqtt_properties_set_binary",
        (PropertyKind::Binary, false) => "mqtt_properties_get_binary",
        (PropertyKind::Utf8Pair, true) => "mqtt_properties_add_user",
        (PropertyKind::Utf8Pair, false) => "mqtt_properties_user_at",
        (_, true) => "mqtt_properties_set_int",
        (_, false) => "mqtt_properties_get_int",
    }
}

/// `id` if it is of a kind in `want`, else sets the error naming it.
fn check_kind(raw: c_int, want: &[PropertyKind], set: bool) -> Option<PropertyId> {
    let id = match prop_id(raw) {
        Ok(id) => id,
        Err(e) => {
            set_last_error(e);
            return None;
        }
    };
    if !want.contains(&id.kind()) {
        set_last_error(format!(
            "property {} (0x{:02X}) is {} property, not {}; use {}",
            id.name(),
            id as u8,
            kind_name(id.kind()),
            kind_name(want[0]),
            accessor(id.kind(), set)
        ));
        return None;
    }
    Some(id)
}

const INT_KINDS: [PropertyKind; 4] = [
    PropertyKind::Byte,
    PropertyKind::TwoByteInt,
    PropertyKind::FourByteInt,
    PropertyKind::VarInt,
];

/// The integer property `id` with `value`, or the error text.
fn int_property(id: PropertyId, value: u32) -> Result<Property, String> {
    use Property as P;
    use PropertyId as I;
    let range = |lo: u32, hi: u32| {
        if (lo..=hi).contains(&value) {
            Ok(value)
        } else {
            Err(format!(
                "value {value} out of range for property {} (0x{:02X}): must be {lo}..={hi}",
                id.name(),
                id as u8
            ))
        }
    };
    let flag = || range(0, 1).map(|v| v as u8);
    let two = |lo| range(lo, 65_535).map(|v| v as u16);
    Ok(match id {
        I::PayloadFormatIndicator => P::PayloadFormatIndicator(flag()?),
        I::RequestProblemInformation => P::RequestProblemInformation(flag()?),
        I::RequestResponseInformation => P::RequestResponseInformation(flag()?),
        I::MaximumQoS => P::MaximumQoS(flag()?),
        I::RetainAvailable => P::RetainAvailable(flag()?),
        I::WildcardSubscriptionAvailable => P::WildcardSubscriptionAvailable(flag()?),
        I::SubscriptionIdentifierAvailable => P::SubscriptionIdentifierAvailable(flag()?),
        I::SharedSubscriptionAvailable => P::SharedSubscriptionAvailable(flag()?),
        I::ServerKeepAlive => P::ServerKeepAlive(two(0)?),
        I::ReceiveMaximum => P::ReceiveMaximum(two(1)?),
        I::TopicAliasMaximum => P::TopicAliasMaximum(two(0)?),
        I::TopicAlias => P::TopicAlias(two(1)?),
        I::MessageExpiryInterval => P::MessageExpiryInterval(value),
        I::SessionExpiryInterval => P::SessionExpiryInterval(value),
        I::WillDelayInterval => P::WillDelayInterval(value),
        I::MaximumPacketSize => P::MaximumPacketSize(range(1, u32::MAX)?),
        I::SubscriptionIdentifier => P::SubscriptionIdentifier(range(1, 268_435_455)?),
        _ => return Err(format!("property {} is not an integer", id.name())),
    })
}

fn string_property(id: PropertyId, s: MqttStr) -> Result<Property, String> {
    use Property as P;
    use PropertyId as I;
    Ok(match id {
        I::ContentType => P::ContentType(s),
        I::ResponseTopic => {
            if !crate::packet::topic::is_valid_topic_name(&s) {
                return Err(format!(
                    "Response Topic '{}' is not a valid topic name (empty, or contains + or #)",
                    s.as_str()
                ));
            }
            P::ResponseTopic(s)
        }
        I::AssignedClientIdentifier => P::AssignedClientIdentifier(s),
        I::AuthenticationMethod => P::AuthenticationMethod(s),
        I::ResponseInformation => P::ResponseInformation(s),
        I::ServerReference => P::ServerReference(s),
        I::ReasonString => P::ReasonString(s),
        _ => return Err(format!("property {} is not a string", id.name())),
    })
}

/// Creates an empty property list.
///
/// Ownership: the caller owns the result and frees it with
/// `mqtt_properties_free`. Functions that take properties copy them.
/// Returns: NULL only on a caught panic.
/// Blocks: no.
/// Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_properties_new() -> *mut mqtt_properties {
    ffi_guard!({ mqtt_properties::boxed(Properties::new()) })
}

/// Frees a property list made by `mqtt_properties_new`,
/// `mqtt_properties_copy`, `mqtt_connack_properties` or
/// `mqtt_disconnect_properties`. NULL is a no-op.
///
/// Ownership: consumes `props`; do not use it afterwards. Never pass the
/// properties of a received message (those belong to the message).
/// Blocks: no.
/// Threads: any, but not concurrently with other use of `props`.
#[no_mangle]
pub extern "C" fn mqtt_properties_free(props: *mut mqtt_properties) {
    ffi_guard!({
        if !props.is_null() {
            // SAFETY: made by Box::into_raw (mqtt_properties::boxed); the
            // caller gives up ownership.
            drop(unsafe { Box::from_raw(props) });
        }
    })
}

/// Makes an independent copy of a property list (for example to keep a
/// received message's properties past the callback).
///
/// Ownership: `props` is borrowed; the caller owns the copy and frees it with
/// `mqtt_properties_free`. Binary and string values are shared with the
/// original without copying (reference counted), which is invisible to the
/// caller.
/// Returns: NULL if `props` is NULL.
/// Blocks: no.
/// Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_properties_copy(props: *const mqtt_properties) -> *mut mqtt_properties {
    ffi_guard!({ mqtt_properties::boxed(try_ref!(props, "props").inner.clone()) })
}

/// Appends a User Property (a key/value pair; repeatable, order kept).
///
/// Ownership: `key` and `value` are copied.
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` for NULL, non-UTF-8
/// strings, U+0000 or strings over 65535 bytes.
/// Blocks: no.
/// Threads: any, but not concurrently with other use of `props`.
#[no_mangle]
pub extern "C" fn mqtt_properties_add_user(
    props: *mut mqtt_properties,
    key: *const c_char,
    value: *const c_char,
) -> c_int {
    ffi_guard!({
        let props = try_mut!(props, "props");
        let key = try_str!(key, "key");
        let value = try_str!(value, "value");
        let (Ok(k), Ok(v)) = (MqttStr::new(key), MqttStr::new(value)) else {
            set_last_error("user property key or value is longer than 65535 bytes");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        props.modify().push(Property::UserProperty(k, v));
        MQTT5C_OK
    })
}

/// Sets an integer property (byte, two-byte, four-byte or variable byte
/// integer) by its `MQTT5C_PROP_*` identifier: Payload Format Indicator,
/// Message Expiry Interval, Subscription Identifier, Session Expiry
/// Interval, Receive Maximum, Maximum Packet Size, Topic Alias Maximum,
/// Topic Alias, Request Response Information, Request Problem Information,
/// Will Delay Interval, ... A property already present is replaced (in
/// place); Subscription Identifier is repeatable and is appended.
///
/// Whether the property suits the packet is checked where the list is
/// used (publish, subscribe, connect options, will ...), which then returns
/// `MQTT5C_ERR_INVALID_ARGUMENT` naming the property and sends nothing.
///
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL `props`, an
/// unknown identifier, a property that is not an integer — the text names it
/// and the right setter —, or a value out of its range, e.g. 2 for a 0/1 flag,
/// 0 for Receive Maximum, above 65535 for a two-byte property).
/// Blocks: no.
/// Threads: any, but not concurrently with other use of `props`; string
/// pointers got from `props` before become invalid.
#[no_mangle]
pub extern "C" fn mqtt_properties_set_int(
    props: *mut mqtt_properties,
    prop_id: c_int,
    value: u32,
) -> c_int {
    ffi_guard!({
        let props = try_mut!(props, "props");
        let Some(id) = check_kind(prop_id, &INT_KINDS, true) else {
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        match int_property(id, value) {
            Ok(p) => {
                props.modify().set(p);
                MQTT5C_OK
            }
            Err(e) => {
                set_last_error(e);
                MQTT5C_ERR_INVALID_ARGUMENT
            }
        }
    })
}

/// Sets a UTF-8 string property by its `MQTT5C_PROP_*` identifier: Content
/// Type, Response Topic (must be a valid topic name), Authentication
/// Method, Reason String, ... (not User Property: use
/// `mqtt_properties_add_user`). A property already present is replaced.
///
/// Ownership: `value` is copied.
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL, not UTF-8,
/// over 65535 bytes, an unknown identifier, or a property that is not a string
/// — the text names it).
/// Blocks: no.
/// Threads: any, but not concurrently with other use of `props`; string
/// pointers got from `props` before become invalid.
#[no_mangle]
pub extern "C" fn mqtt_properties_set_string(
    props: *mut mqtt_properties,
    prop_id: c_int,
    value: *const c_char,
) -> c_int {
    ffi_guard!({
        let props = try_mut!(props, "props");
        let Some(id) = check_kind(prop_id, &[PropertyKind::Utf8String], true) else {
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        let value = try_str!(value, "value");
        let Ok(s) = MqttStr::new(value) else {
            set_last_error(format!(
                "value of property {} is longer than 65535 bytes",
                id.name()
            ));
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        match string_property(id, s) {
            Ok(p) => {
                props.modify().set(p);
                MQTT5C_OK
            }
            Err(e) => {
                set_last_error(e);
                MQTT5C_ERR_INVALID_ARGUMENT
            }
        }
    })
}

/// Sets a binary property by its `MQTT5C_PROP_*` identifier: Correlation
/// Data or Authentication Data. A property already present is replaced.
///
/// Ownership: `len` bytes of `data` are copied (`data` may be NULL when `len`
/// is 0).
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (over 65535 bytes, an
/// unknown identifier, or a property that is not binary).
/// Blocks: no.
/// Threads: any, but not concurrently with other use of `props`.
#[no_mangle]
pub extern "C" fn mqtt_properties_set_binary(
    props: *mut mqtt_properties,
    prop_id: c_int,
    data: *const c_void,
    len: usize,
) -> c_int {
    ffi_guard!({
        let props = try_mut!(props, "props");
        let Some(id) = check_kind(prop_id, &[PropertyKind::Binary], true) else {
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        let data = try_slice!(data, len, "data");
        if data.len() > u16::MAX as usize {
            set_last_error(format!(
                "value of property {} is longer than 65535 bytes",
                id.name()
            ));
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        let b = Bytes::copy_from_slice(data);
        let p = match id {
            PropertyId::CorrelationData => Property::CorrelationData(b),
            _ => Property::AuthenticationData(b),
        };
        props.modify().set(p);
        MQTT5C_OK
    })
}

/// Removes every property with this identifier (nothing if absent).
///
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL, unknown
/// identifier).
/// Blocks: no.
/// Threads: any, but not concurrently with other use of `props`; string
/// pointers got from `props` before become invalid.
#[no_mangle]
pub extern "C" fn mqtt_properties_remove(props: *mut mqtt_properties, prop_id: c_int) -> c_int {
    ffi_guard!({
        let props = try_mut!(props, "props");
        match self::prop_id(prop_id) {
            Ok(id) => {
                props.modify().remove(id);
                MQTT5C_OK
            }
            Err(e) => {
                set_last_error(e);
                MQTT5C_ERR_INVALID_ARGUMENT
            }
        }
    })
}

/// Reads an integer property (the first one, for Subscription Identifier:
/// see `mqtt_properties_get_int_at` for the others).
///
/// Ownership: `out` is written only on success.
/// Returns: `MQTT5C_OK`, `MQTT5C_ERR_NOT_FOUND` when the property is absent, or
/// `MQTT5C_ERR_INVALID_ARGUMENT` (NULL, unknown identifier, not an integer
/// property).
/// Blocks: no.
/// Threads: any, concurrently with other readers.
#[no_mangle]
pub extern "C" fn mqtt_properties_get_int(
    props: *const mqtt_properties,
    prop_id: c_int,
    out: *mut u32,
) -> c_int {
    mqtt_properties_get_int_at(props, prop_id, 0, out)
}

/// Reads the `index`-th (from 0) occurrence of an integer property: all
/// Subscription Identifiers of a received message are read this way, with
/// `mqtt_properties_count` giving how many there are.
///
/// Ownership: `out` is written only on success.
/// Returns: `MQTT5C_OK`, `MQTT5C_ERR_NOT_FOUND` when there is no such
/// occurrence, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL, unknown identifier, not
/// an integer property).
/// Blocks: no.
/// Threads: any, concurrently with other readers.
#[no_mangle]
pub extern "C" fn mqtt_properties_get_int_at(
    props: *const mqtt_properties,
    prop_id: c_int,
    index: usize,
    out: *mut u32,
) -> c_int {
    ffi_guard!({
        let props = try_ref!(props, "props");
        let out = try_mut!(out, "out");
        let Some(id) = check_kind(prop_id, &INT_KINDS, false) else {
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        match props.view().of(id).get(index) {
            Some(&v) => {
                *out = v;
                MQTT5C_OK
            }
            None => {
                set_last_error(format!("property {} #{index} is not present", id.name()));
                MQTT5C_ERR_NOT_FOUND
            }
        }
    })
}

/// Reads a UTF-8 string property (Content Type, Response Topic, Reason
/// String, Assigned Client Identifier, Server Reference, ...).
///
/// Ownership: the string belongs to `props` and is NUL-terminated (a copy made
/// on the first read of this list); it stays valid until `props` is modified or
/// freed (for a message's properties: as long as the message).
/// Returns: NULL when absent (`mqtt_last_error()` then says why), or for NULL
/// `props`, an unknown identifier or a non-string property.
/// Blocks: no.
/// Threads: any, concurrently with other readers.
#[no_mangle]
pub extern "C" fn mqtt_properties_get_string(
    props: *const mqtt_properties,
    prop_id: c_int,
) -> *const c_char {
    mqtt_properties_get_string_len(props, prop_id, std::ptr::null_mut())
}

/// Like `mqtt_properties_get_string`, and gives the string's length in
/// bytes (without the NUL) through `len` (may be NULL; written only when
/// the string is found). MQTT strings cannot contain U+0000, so the length
/// is always `strlen` of the result; it saves the scan.
///
/// Ownership, Returns, Blocks, Threads: as `mqtt_properties_get_string`.
#[no_mangle]
pub extern "C" fn mqtt_properties_get_string_len(
    props: *const mqtt_properties,
    prop_id: c_int,
    len: *mut usize,
) -> *const c_char {
    ffi_guard!({
        let props = try_ref!(props, "props");
        let Some(id) = check_kind(prop_id, &[PropertyKind::Utf8String], false) else {
            return std::ptr::null();
        };
        let view = props.view();
        let Some(s) = view.of(id).first().and_then(|&at| view.string(at)) else {
            set_last_error(format!("property {} is not present", id.name()));
            return std::ptr::null();
        };
        if !len.is_null() {
            // SAFETY: non-NULL; the caller passes a writable size_t.
            unsafe { *len = s.to_bytes().len() };
        }
        s.as_ptr()
    })
}

/// Reads a binary property (Correlation Data, Authentication Data) and,
/// through `len` (may be NULL), its length.
///
/// Ownership: the bytes belong to `props` (no copy; not NUL-terminated) and
/// stay valid until `props` is modified or freed.
/// Returns: NULL when absent, or for NULL `props`, an unknown identifier or a
/// non-binary property; an empty value gives a non-NULL pointer and length 0.
/// `len` is written only when found.
/// Blocks: no.
/// Threads: any, concurrently with other readers.
#[no_mangle]
pub extern "C" fn mqtt_properties_get_binary(
    props: *const mqtt_properties,
    prop_id: c_int,
    len: *mut usize,
) -> *const c_void {
    ffi_guard!({
        let props = try_ref!(props, "props");
        let Some(id) = check_kind(prop_id, &[PropertyKind::Binary], false) else {
            return std::ptr::null();
        };
        let view = props.view();
        let Some(b) = view
            .of(id)
            .first()
            .and_then(|&i| view.binaries.get(i as usize))
        else {
            set_last_error(format!("property {} is not present", id.name()));
            return std::ptr::null();
        };
        if !len.is_null() {
            // SAFETY: non-NULL; the caller passes a writable size_t.
            unsafe { *len = b.len() };
        }
        if b.is_empty() {
            b"\0".as_ptr() as *const c_void
        } else {
            b.as_ptr() as *const c_void
        }
    })
}

/// How many properties with this identifier the list holds: 0 or 1 for
/// most; any number for User Property and Subscription Identifier (a
/// received message carries one identifier per matching subscription).
/// A received packet holds at most 10,000 properties in all: a broker
/// sending more is disconnected with 0x95 (Packet too large).
///
/// Returns: the count; 0 for NULL `props` or an unknown identifier.
/// Blocks: no.
/// Threads: any, concurrently with other readers.
#[no_mangle]
pub extern "C" fn mqtt_properties_count(props: *const mqtt_properties, prop_id: c_int) -> usize {
    ffi_guard!({
        let props = try_ref!(props, "props");
        match self::prop_id(prop_id) {
            Ok(id) => props.view().of(id).len(),
            Err(e) => {
                set_last_error(e);
                0
            }
        }
    })
}

/// Reads the `index`-th (from 0) User Property, in the order they were
/// added or received. Constant time, as `mqtt_properties_get_int_at` and
/// `mqtt_properties_count`: the first read of a list indexes it (4 bytes
/// per property plus a copy of its strings), so reading all n properties
/// costs O(n).
///
/// Ownership: `*key` and `*value` belong to `props`, NUL-terminated, valid
/// until `props` is modified or freed; written only on success (either may be
/// NULL if not wanted).
/// Returns: `MQTT5C_OK`, `MQTT5C_ERR_NOT_FOUND` when `index` >= the count,
/// `MQTT5C_ERR_INVALID_ARGUMENT` for NULL `props`.
/// Blocks: no.
/// Threads: any, concurrently with other readers.
#[no_mangle]
pub extern "C" fn mqtt_properties_user_at(
    props: *const mqtt_properties,
    index: usize,
    key: *mut *const c_char,
    value: *mut *const c_char,
) -> c_int {
    ffi_guard!({
        let props = try_ref!(props, "props");
        let Some((k, v)) = props.view().user(index) else {
            set_last_error(format!("user property #{index} is not present"));
            return MQTT5C_ERR_NOT_FOUND;
        };
        if !key.is_null() {
            // SAFETY: non-NULL; the caller passes a writable pointer.
            unsafe { *key = k.as_ptr() };
        }
        if !value.is_null() {
            // SAFETY: as above.
            unsafe { *value = v.as_ptr() };
        }
        MQTT5C_OK
    })
}
