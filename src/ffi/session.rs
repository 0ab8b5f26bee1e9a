//! What was said when connecting and disconnecting: CONNECT properties,
//! the CONNACK's properties and session flag, the client identifier in
//! use, and the server's DISCONNECT.

use super::client::mqtt_client;
use super::error::{set_last_error, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_OK};
use super::options::mqtt_options;
use super::properties::mqtt_properties;
use crate::packet::{Direction, PacketType, PropertyContext, PropertyId};
use std::ffi::c_char;
use std::os::raw::c_int;

/// Sets the extra properties of CONNECT: Receive Maximum, Maximum Packet
/// Size (also the limit enforced on incoming packets), Topic Alias
/// Maximum, Request Response Information (ask for the CONNACK's Response
/// Information), Request Problem Information, Session Expiry Interval
/// (`mqtt_options_set_session_expiry` wins when set above 0), user
/// properties, authentication method/data. Replaces properties set before;
/// NULL clears them.
///
/// Ownership: `props` is copied.
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL `opts`, or a
/// property not allowed in CONNECT: the text names it; `opts` is then
/// unchanged).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_connect_properties(
    opts: *mut mqtt_options,
    props: *const mqtt_properties,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        // SAFETY: NULL or a live mqtt_properties (caller's promise).
        let properties = unsafe { mqtt_properties::clone_or_empty(props) };
        if let Some(id) = properties.first_not_allowed(
            PropertyContext::Packet(PacketType::Connect),
            Direction::ToServer,
        ) {
            set_last_error(format!(
                "property {} (0x{:02X}) is not allowed in CONNECT",
                id.name(),
                id as u8
            ));
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        if let Some(max) = properties.get_int(PropertyId::MaximumPacketSize) {
            opts.inner.max_packet_size = max;
        }
        opts.inner.connect_properties = properties;
        MQTT5C_OK
    })
}

/// A copy of the properties of the last CONNACK this client received (also
/// of a refusing one): Assigned Client Identifier, Server Keep Alive,
/// Receive Maximum, Maximum QoS, Retain Available, Maximum Packet Size,
/// Topic Alias Maximum, Wildcard / Subscription Identifier / Shared
/// Subscription Available, Response Information, Server Reference, Reason
/// String, user properties. Read them with `mqtt_properties_get_*`.
///
/// Ownership: the caller owns the copy and frees it with
/// `mqtt_properties_free`.
/// Returns: NULL when no CONNACK was received yet (or `client` is NULL).
/// Blocks: no.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_connack_properties(client: *mut mqtt_client) -> *mut mqtt_properties {
    ffi_guard!({
        let c = try_client!(client);
        match c.client.last_connack() {
            Some(ca) => mqtt_properties::boxed(ca.properties),
            None => {
                set_last_error("no CONNACK received yet");
                std::ptr::null_mut()
            }
        }
    })
}

/// Whether the server had a session for this client at the last connect
/// (the CONNACK's Session Present flag): with Clean Start false and a
/// Session Expiry Interval, 1 means subscriptions and queued messages were
/// kept.
///
/// Returns: true or false, never an error code (which C would read as true):
/// false also before the first CONNACK and for NULL, with `mqtt_last_error()`
/// saying which.
/// Blocks: no.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_session_present(client: *mut mqtt_client) -> bool {
    ffi_guard!({
        let c = try_client!(client);
        match c.client.last_connack() {
            Some(ca) => ca.session_present,
            None => {
                set_last_error("no CONNACK received yet");
                false
            }
        }
    })
}

/// Copies the client identifier in use — the one set in the options, or
/// the one the server assigned at the last connect (empty before the first
/// connect when none was set) — into `buf` with a terminating NUL.
///
/// Ownership: `buf` is the caller's; written only on success.
/// Returns: the identifier's length in bytes (without the NUL) on success,
/// which needs `buflen` > length. With `buf` NULL and `buflen` 0 it only
/// returns the length (to size a buffer). A buffer that is too small gives
/// `MQTT5C_ERR_INVALID_ARGUMENT` with nothing written (`mqtt_last_error()` says
/// how many bytes are needed). Identifiers are at most 65535 bytes.
/// Blocks: no.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_client_get_id(
    client: *mut mqtt_client,
    buf: *mut c_char,
    buflen: usize,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        let id = c.client.client_id();
        let len = id.len();
        if buf.is_null() {
            if buflen == 0 {
                return len as c_int;
            }
            set_last_error("buf is NULL but buflen is not 0");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        if buflen <= len {
            set_last_error(format!(
                "buffer too small: the client id needs {} bytes with its NUL, buflen is {buflen}",
                len + 1
            ));
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        // SAFETY: non-NULL; the caller passes `buflen` > len writable bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(id.as_ptr(), buf as *mut u8, len);
            *buf.add(len) = 0;
        }
        len as c_int
    })
}

/// A copy of the properties of the DISCONNECT the server sent to end the
/// most recent connection: Reason String, Server Reference, Session Expiry
/// Interval, user properties. The reason code itself is what the
/// connection callback received with `MQTT5C_EVENT_DISCONNECTED`. Available
/// from inside that callback and after it.
///
/// Ownership: the caller owns the copy and frees it with
/// `mqtt_properties_free`.
/// Returns: NULL when the most recent connection did not end by a server
/// DISCONNECT (still up, we disconnected, the socket closed, ...) or `client`
/// is NULL.
/// Blocks: no.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_disconnect_properties(client: *mut mqtt_client) -> *mut mqtt_properties {
    ffi_guard!({
        let c = try_client!(client);
        match c.client.last_disconnect() {
            Some(d) => mqtt_properties::boxed(d.properties),
            None => {
                set_last_error("the last connection did not end with a DISCONNECT from the server");
                std::ptr::null_mut()
            }
        }
    })
}
