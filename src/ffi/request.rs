//! `mqtt_request`: MQTT v5 request/response in one blocking call.

use super::client::mqtt_client;
use super::error::{fail_on, set_last_error, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_OK};
use super::message::mqtt_message;
use super::properties::mqtt_properties;
use super::runtime::block_on_client;
use crate::packet::QoS;
use std::ffi::{c_char, c_void};
use std::os::raw::c_int;
use std::time::Duration;

/// Sends a request and waits for its response: publishes `len` bytes of
/// `payload` to `topic` at `qos` with a Response Topic and a fresh
/// Correlation Data, and returns the first message that comes back on the
/// response topic with that Correlation Data.
///
/// The response topic is subscribed once per connection, on the first
/// request: `<Response Information>/<client id>/mqtt5c-responses` when the
/// CONNACK carried Response Information (ask for it with
/// `MQTT5C_PROP_REQUEST_RESPONSE_INFORMATION` in
/// `mqtt_options_set_connect_properties`), else
/// `mqtt5c/responses/<client id>`, the id with '%', '/', '+' and '#'
/// percent-escaped (`%25`, `%2F`, `%2B`, `%23`): one topic level, distinct
/// for distinct ids. A responder publishes its answer to the request's Response Topic
/// with the request's Correlation Data (see examples-c/rpc_server.c).
/// Responses are matched as they are read from the socket and go straight
/// to the waiting call, never through the message callback; so requests
/// from many threads at once, and from inside callbacks, all work. The
/// response topic is subscribed at QoS 0, so responses arrive at QoS 0:
/// the broker's flow control does not hold them back behind messages
/// still waiting for their callbacks. A
/// response that comes after its request gave up goes to the message
/// callback.
///
/// On MQTT 3.1.1, which has neither Response Topic nor Correlation Data,
/// the reply is the next message on `topic` + the reply suffix, and
/// requests on one topic go one at a time (`mqtt_options_set_reply_suffix`;
/// refused without one, and with `props`).
///
/// Ownership: `topic`, `payload` (may be NULL when `len` is 0) and `props`
/// (may be NULL; must not hold Response Topic or Correlation Data) are
/// borrowed. On success `*response` receives a message the caller owns and
/// frees with `mqtt_message_free`; it is written only on success.
/// With automatic reconnection a request rides out a lost connection: made
/// while the client reconnects, it waits for the new connection; lost
/// before its response came, it is published again on the next connection
/// with the same Correlation Data (the response, at QoS 0, is lost with
/// the connection), so a responder may see one request twice.
///
/// Returns: `MQTT5C_OK`; `MQTT5C_ERR_TIMEOUT` when no response came within
/// `timeout_ms` (0: the operation timeout of the options, 30 s by default;
/// without one, no limit); `MQTT5C_ERR_INVALID_ARGUMENT` (bad topic, QoS,
/// property; nothing sent); `MQTT5C_ERR_NOT_CONNECTED`,
/// `MQTT5C_ERR_CONNECTION_LOST` (lost without automatic reconnection, or
/// `mqtt_disconnect` stopped it), `MQTT5C_ERR_QUEUE_FULL`; a reason code >=
/// 0x80 when the broker refused the response subscription or the request
/// publish.
/// Blocks: until the response arrives, the timeout, or the connection ends (and
/// no reconnection follows).
/// Threads: any, concurrently, including callbacks.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn mqtt_request(
    client: *mut mqtt_client,
    topic: *const c_char,
    payload: *const c_void,
    len: usize,
    qos: c_int,
    props: *const mqtt_properties,
    timeout_ms: u32,
    response: *mut *mut mqtt_message,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        let topic = try_str!(topic, "topic");
        let payload = try_slice!(payload, len, "payload");
        let response = try_mut!(response, "response");
        let Some(qos) = u8::try_from(qos).ok().and_then(QoS::from_u8) else {
            set_last_error(format!("invalid QoS {qos}: must be 0, 1 or 2"));
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        // SAFETY: NULL or a live mqtt_properties (caller's promise).
        let properties = unsafe { mqtt_properties::clone_or_empty(props) };
        let timeout = if timeout_ms > 0 {
            Some(Duration::from_millis(timeout_ms as u64))
        } else {
            c.client.options().operation_timeout
        };
        match block_on_client(
            &c.client,
            c.client.request(topic, payload, qos, properties, timeout),
        ) {
            Ok(p) => {
                *response = mqtt_message::into_owned(p);
                MQTT5C_OK
            }
            Err(e) => fail_on(&c.client, e),
        }
    })
}
