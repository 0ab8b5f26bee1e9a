//! `mqtt_properties`: a list of MQTT v5 properties attached to a packet.

use super::error::{set_last_error, MQTT_ERR_INVALID_ARGUMENT, MQTT_OK};
use crate::packet::{MqttStr, Properties, Property};
use std::ffi::c_char;
use std::os::raw::c_int;

/// Properties for a CONNECT, PUBLISH, SUBSCRIBE, ... or of a received message.
pub struct mqtt_properties {
    pub(crate) inner: Properties,
}

impl mqtt_properties {
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
}

/// Creates an empty property list.
///
/// Ownership: the caller owns the result and frees it with
/// `mqtt_properties_free`. Functions that take properties copy them.
/// Returns: NULL only on a caught panic. Blocks: no. Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_properties_new() -> *mut mqtt_properties {
    ffi_guard!({
        Box::into_raw(Box::new(mqtt_properties {
            inner: Properties::new(),
        }))
    })
}

/// Frees a property list made by `mqtt_properties_new`. NULL is a no-op.
///
/// Ownership: consumes `props`; do not use it afterwards. Never pass the
/// properties of a received message (those belong to the message).
/// Blocks: no. Threads: any, but not concurrently with other use of `props`.
#[no_mangle]
pub extern "C" fn mqtt_properties_free(props: *mut mqtt_properties) {
    ffi_guard!({
        if !props.is_null() {
            // SAFETY: made by Box::into_raw in mqtt_properties_new; the
            // caller gives up ownership.
            drop(unsafe { Box::from_raw(props) });
        }
    })
}

/// Appends a User Property (a key/value pair; repeatable, order kept).
///
/// Ownership: `key` and `value` are copied. Returns: `MQTT_OK`, or
/// `MQTT_ERR_INVALID_ARGUMENT` for NULL, non-UTF-8 strings, U+0000 or
/// strings over 65535 bytes. Blocks: no. Threads: any, but not concurrently
/// with other use of `props`.
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
            return MQTT_ERR_INVALID_ARGUMENT;
        };
        props.inner.push(Property::UserProperty(k, v));
        MQTT_OK
    })
}
