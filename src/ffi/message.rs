//! `mqtt_message`: a received message as the message callback sees it.
//!
//! The payload is a view of the bytes read from the socket (no copy); the
//! topic is copied into a per-thread buffer to add its terminating NUL.
//! `mqtt_message_copy` makes an owned message that shares the payload and
//! properties with the original (reference-counted `Bytes`, no copy) and
//! has its own NUL-terminated topic.

use super::properties::mqtt_properties;
use crate::packet::Publish;
use std::ffi::{c_char, c_void};
use std::os::raw::c_int;

/// A received message. The one passed to a callback is valid only during
/// that callback; one from `mqtt_message_copy` or `mqtt_request` lives until
/// `mqtt_message_free`.
///
/// Threads: read-only; any thread while it is valid.
pub struct mqtt_message {
    /// Made by `into_owned` (may be freed by `mqtt_message_free`).
    owned: bool,
    pub(crate) publish: Publish,
    /// The topic followed by a NUL.
    pub(crate) topic_c: Vec<u8>,
    /// The message's properties (moved out of `publish`).
    pub(crate) properties: mqtt_properties,
    /// With manual acknowledgement, what `mqtt_ack` takes (0: none).
    pub(crate) ack_id: u64,
}

impl mqtt_message {
    /// Builds the C view of `publish`, reusing `topic_buf`'s allocation.
    pub(crate) fn new(mut publish: Publish, mut topic_buf: Vec<u8>) -> mqtt_message {
        topic_buf.clear();
        topic_buf.extend_from_slice(publish.topic.as_str().as_bytes());
        topic_buf.push(0);
        let properties = mqtt_properties::from_inner(std::mem::take(&mut publish.properties));
        mqtt_message {
            owned: false,
            publish,
            topic_c: topic_buf,
            properties,
            ack_id: 0,
        }
    }
}

/// The message's topic (NUL-terminated UTF-8).
///
/// Ownership: borrowed from the message; valid as long as the message.
/// Returns: NULL if `message` is NULL.
/// Blocks: no.
/// Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_message_topic(message: *const mqtt_message) -> *const c_char {
    ffi_guard!({ try_ref!(message, "message").topic_c.as_ptr() as *const c_char })
}

/// The message's payload and, through `len` (may be NULL), its length.
///
/// Ownership: borrowed from the message; valid as long as the message. It is
/// not NUL-terminated.
/// Returns: NULL if `message` is NULL; an empty payload gives a non-NULL
/// pointer and length 0.
/// Blocks: no.
/// Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_message_payload(
    message: *const mqtt_message,
    len: *mut usize,
) -> *const c_void {
    ffi_guard!({
        let m = try_ref!(message, "message");
        if !len.is_null() {
            // SAFETY: non-NULL; the caller passes a writable size_t.
            unsafe { *len = m.publish.payload.len() };
        }
        let p = m.publish.payload.as_ptr();
        if p.is_null() {
            b"\0".as_ptr() as *const c_void
        } else {
            p as *const c_void
        }
    })
}

/// The QoS the message was delivered with (0, 1 or 2).
///
/// Returns: `MQTT5C_ERR_INVALID_ARGUMENT` if `message` is NULL.
/// Blocks: no.
/// Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_message_qos(message: *const mqtt_message) -> c_int {
    ffi_guard!({ try_ref!(message, "message").publish.qos as c_int })
}

/// Whether the message has the retain flag (a retained message sent on
/// subscription, or retained as published).
///
/// Returns: false if `message` is NULL.
/// Blocks: no.
/// Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_message_retain(message: *const mqtt_message) -> bool {
    ffi_guard!({ try_ref!(message, "message").publish.retain })
}

/// Whether the broker flagged the message as a possible duplicate (DUP).
///
/// Returns: false if `message` is NULL.
/// Blocks: no.
/// Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_message_dup(message: *const mqtt_message) -> bool {
    ffi_guard!({ try_ref!(message, "message").publish.dup })
}

/// The message's properties (user properties, content type, ...).
///
/// They include the Subscription Identifiers of the subscriptions the
/// message matched, which only a server may send: to forward the message
/// (a bridge), publish a copy without them (`mqtt_properties_copy`, then
/// `mqtt_properties_remove(copy, MQTT5C_PROP_SUBSCRIPTION_IDENTIFIER)`);
/// `mqtt_publish` refuses them.
///
/// Ownership: borrowed from the message; never free it.
/// Returns: never NULL for a valid message (possibly an empty list); NULL if
/// `message` is NULL.
/// Blocks: no.
/// Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_message_properties(message: *const mqtt_message) -> *const mqtt_properties {
    ffi_guard!({ &try_ref!(message, "message").properties as *const mqtt_properties })
}

impl mqtt_message {
    /// A heap message the caller owns and frees with `mqtt_message_free`.
    pub(crate) fn into_owned(publish: Publish) -> *mut mqtt_message {
        let mut m = mqtt_message::new(publish, Vec::new());
        m.owned = true;
        Box::into_raw(Box::new(m))
    }
}

/// Makes an owned copy of a message, usable after the callback returns and
/// from any thread. The copy keeps the message's ack id
/// (`mqtt_message_ack_id`).
///
/// Ownership: `message` is borrowed; the caller owns the copy and frees it with
/// `mqtt_message_free`. The payload and property values are shared with the
/// original without copying (reference counted); only the topic is copied.
/// Returns: NULL if `message` is NULL.
/// Blocks: no.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_message_copy(message: *const mqtt_message) -> *mut mqtt_message {
    ffi_guard!({
        let m = try_ref!(message, "message");
        let mut publish = m.publish.clone();
        publish.properties = m.properties.inner.clone();
        let copy = mqtt_message::into_owned(publish);
        // SAFETY: just made by into_owned, not shared yet.
        unsafe { (*copy).ack_id = m.ack_id };
        copy
    })
}

/// Frees a message from `mqtt_message_copy` or `mqtt_request`. NULL is a
/// no-op. The message a callback receives is not the caller's: passing it
/// here is refused (nothing is freed; `mqtt_last_error()` says so).
///
/// Ownership: consumes `message`, its topic, payload and properties.
/// Blocks: no.
/// Threads: any, not concurrently with other use of `message`.
#[no_mangle]
pub extern "C" fn mqtt_message_free(message: *mut mqtt_message) {
    ffi_guard!({
        if message.is_null() {
            return;
        }
        // SAFETY: non-NULL; the caller passes a live message.
        if !unsafe { (*message).owned } {
            super::error::set_last_error(
                "mqtt_message_free: this message belongs to the callback; only messages from mqtt_message_copy or mqtt_request are freed",
            );
            return;
        }
        // SAFETY: owned messages are made by Box::into_raw in into_owned;
        // the caller gives up ownership.
        drop(unsafe { Box::from_raw(message) });
    })
}

#[allow(dead_code)]
fn _assert_send(m: mqtt_message) -> impl Send {
    m
}
