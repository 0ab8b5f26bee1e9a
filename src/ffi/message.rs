//! `mqtt_message`: a received message as the message callback sees it.
//!
//! The payload is a view of the bytes read from the socket (no copy); the
//! topic is copied into a per-thread buffer to add its terminating NUL.

use super::properties::mqtt_properties;
use crate::packet::Publish;
use std::ffi::{c_char, c_void};
use std::os::raw::c_int;

/// A received message. Valid only during the callback it is passed to.
pub struct mqtt_message {
    pub(crate) publish: Publish,
    /// The topic followed by a NUL.
    pub(crate) topic_c: Vec<u8>,
    /// The message's properties (moved out of `publish`).
    pub(crate) properties: mqtt_properties,
}

impl mqtt_message {
    /// Builds the C view of `publish`, reusing `topic_buf`'s allocation.
    pub(crate) fn new(mut publish: Publish, mut topic_buf: Vec<u8>) -> mqtt_message {
        topic_buf.clear();
        topic_buf.extend_from_slice(publish.topic.as_str().as_bytes());
        topic_buf.push(0);
        let properties = mqtt_properties {
            inner: std::mem::take(&mut publish.properties),
        };
        mqtt_message {
            publish,
            topic_c: topic_buf,
            properties,
        }
    }
}

/// The message's topic (NUL-terminated UTF-8).
///
/// Ownership: borrowed from the message; valid as long as the message.
/// Returns: NULL if `message` is NULL. Blocks: no. Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_message_topic(message: *const mqtt_message) -> *const c_char {
    ffi_guard!({ try_ref!(message, "message").topic_c.as_ptr() as *const c_char })
}

/// The message's payload and, through `len` (may be NULL), its length.
///
/// Ownership: borrowed from the message; valid as long as the message. It
/// is not NUL-terminated. Returns: NULL if `message` is NULL; an empty
/// payload gives a non-NULL pointer and length 0. Blocks: no. Threads: any.
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
/// Returns: `MQTT_ERR_INVALID_ARGUMENT` if `message` is NULL.
/// Blocks: no. Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_message_qos(message: *const mqtt_message) -> c_int {
    ffi_guard!({ try_ref!(message, "message").publish.qos as c_int })
}

/// Whether the message has the retain flag (a retained message sent on
/// subscription, or retained as published).
///
/// Returns: false if `message` is NULL. Blocks: no. Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_message_retain(message: *const mqtt_message) -> bool {
    ffi_guard!({ try_ref!(message, "message").publish.retain })
}

/// Whether the broker flagged the message as a possible duplicate (DUP).
///
/// Returns: false if `message` is NULL. Blocks: no. Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_message_dup(message: *const mqtt_message) -> bool {
    ffi_guard!({ try_ref!(message, "message").publish.dup })
}

/// The message's properties (user properties, content type, ...).
///
/// Ownership: borrowed from the message; never free it. Returns: never NULL
/// for a valid message (possibly an empty list); NULL if `message` is NULL.
/// Blocks: no. Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_message_properties(message: *const mqtt_message) -> *const mqtt_properties {
    ffi_guard!({ &try_ref!(message, "message").properties as *const mqtt_properties })
}

#[allow(dead_code)]
fn _assert_send(m: mqtt_message) -> impl Send {
    m
}
