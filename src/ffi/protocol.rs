//! Which MQTT version a client speaks: 5.0, 3.1.1, or 5.0 with a fallback
//! to 3.1.1 for a broker that refuses it.

use super::client::mqtt_client;
use super::error::{
    set_last_error, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_ERR_NOT_CONNECTED, MQTT5C_OK,
};
use super::options::mqtt_options;
use crate::packet::ProtocolVersion;
use std::ffi::{c_char, c_int};

/// MQTT 3.1.1 (CONNECT Protocol Level 4). The same value as libmosquitto's
/// `MQTT_PROTOCOL_V311`, so including both headers is fine.
pub const MQTT_PROTOCOL_V311: c_int = 4;
/// MQTT 5.0 (CONNECT Protocol Level 5), the default. The same value as
/// libmosquitto's `MQTT_PROTOCOL_V5`.
pub const MQTT_PROTOCOL_V5: c_int = 5;
/// Try MQTT 5.0; when the broker refuses it (a 3.1.1 CONNACK "unacceptable
/// protocol version", or the connection closed right after the v5
/// CONNECT), connect again at once with 3.1.1, and keep 3.1.1 for every
/// later connection of the client (reconnections too).
pub const MQTT_PROTOCOL_AUTO: c_int = 0;

/// Chooses the MQTT version: `MQTT_PROTOCOL_V5` (the default),
/// `MQTT_PROTOCOL_V311` or `MQTT_PROTOCOL_AUTO`. On a 3.1.1 connection
/// what only v5 has is refused with `MQTT5C_ERR_INVALID_ARGUMENT` and a
/// `mqtt_last_error()` naming it, nothing sent: properties of any packet,
/// subscription options beyond QoS, DISCONNECT reason codes,
/// re-authentication, `mqtt_request` without a reply suffix
/// (`mqtt_options_set_reply_suffix`); and at connect, a session expiry,
/// CONNECT or will properties, enhanced authentication. Clean Start is sent as Clean Session. CONNACK
/// return codes 1-5 are returned as the v5 reason codes 0x84, 0x85, 0x88,
/// 0x86, 0x87, a refused subscription (0x80) as 0x80, an UNSUBACK as 0x00
/// for each filter.
///
/// Ownership: borrows `opts`; the client made from it copies the choice.
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, or
/// another value).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_protocol_version(
    opts: *mut mqtt_options,
    version: c_int,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        opts.inner.protocol_version = match version {
            MQTT_PROTOCOL_V311 => Some(ProtocolVersion::V311),
            MQTT_PROTOCOL_V5 => Some(ProtocolVersion::V5),
            MQTT_PROTOCOL_AUTO => None,
            _ => {
                set_last_error(format!(
                    "protocol version {version}: use MQTT_PROTOCOL_V311 (4), MQTT_PROTOCOL_V5 \
                     (5) or MQTT_PROTOCOL_AUTO (0)"
                ));
                return MQTT5C_ERR_INVALID_ARGUMENT;
            }
        };
        MQTT5C_OK
    })
}

/// MQTT 3.1.1 only: the reply suffix of `mqtt_request`'s convention
/// there (3.1.1 has no Response Topic or Correlation Data). With it, a
/// request on `topic` subscribes to `topic` + `suffix` (once per connection),
/// publishes the payload to `topic` without properties, and takes the next
/// message on `topic` + `suffix` as its reply; and every message the client
/// receives on a topic not ending in `suffix` reports `topic` + `suffix` as
/// its `MQTT5C_PROP_RESPONSE_TOPIC`, so a responder written for v5 (see
/// examples-c/rpc_server.c) answers it unchanged. Requests on one topic
/// are made one at a time (no correlation data tells their replies
/// apart), and the convention cannot tell two requesters on the same
/// topic apart: one that needs to puts its client id in the topic.
/// Without a suffix `mqtt_request` is refused on 3.1.1; on v5 the suffix
/// is not used. NULL or "" unsets it (the default).
///
/// Ownership: borrows `opts` and `suffix` (copied).
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, a
/// suffix that is not UTF-8 or holds '+' or '#').
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_reply_suffix(
    opts: *mut mqtt_options,
    suffix: *const c_char,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let suffix = try_opt_str!(suffix, "suffix").unwrap_or("");
        if suffix.contains(['+', '#', '\0']) {
            set_last_error(format!(
                "reply suffix '{suffix}' must not contain '+', '#' or NUL"
            ));
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        opts.inner.reply_suffix = (!suffix.is_empty()).then(|| suffix.to_string());
        MQTT5C_OK
    })
}

/// The MQTT version the live connection speaks: `MQTT_PROTOCOL_V311` or
/// `MQTT_PROTOCOL_V5` (with `MQTT_PROTOCOL_AUTO`, the one agreed).
///
/// Ownership: borrows `client`.
/// Returns: the version, or `MQTT5C_ERR_NOT_CONNECTED` when there is no
/// connection now, `MQTT5C_ERR_INVALID_ARGUMENT` for NULL.
/// Blocks: no.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_client_protocol_version(client: *const mqtt_client) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        match c.client.protocol_version() {
            Some(v) => c_int::from(v as u8),
            None => {
                set_last_error("not connected: no protocol version agreed");
                MQTT5C_ERR_NOT_CONNECTED
            }
        }
    })
}
