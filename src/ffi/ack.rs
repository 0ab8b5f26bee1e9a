//! Manual acknowledgement: the application, not the end of the message
//! callback, decides when a received QoS 1/2 message is acknowledged
//! (`client::acks`, `MqttClient::ack`).

use super::client::mqtt_client;
use super::error::{fail, set_last_error, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_OK};
use super::message::mqtt_message;
use super::options::mqtt_options;
use crate::packet::ReasonCode;
use std::os::raw::c_int;

/// Turns manual acknowledgement on or off (default off).
///
/// Off, a received QoS 1 message is acknowledged (PUBACK), a QoS 2 one
/// PUBRECed, once its message callback returned. On, that happens only when
/// the application calls `mqtt_ack` with the message's ack id
/// (`mqtt_message_ack_id`): from any thread, at any time after the
/// callback started (inside it, or long after it returned). A gateway
/// acknowledges once it has stored or forwarded the message, so a crash in
/// between loses nothing: the broker still holds the message and sends it
/// again when the session resumes.
///
/// Back-pressure: a message not acknowledged yet counts against our
/// Receive Maximum (`mqtt_options_set_receive_maximum`, default 100), so a
/// broker that keeps it sends no more QoS 1/2 messages once that many are
/// unacknowledged, until `mqtt_ack` frees a slot. An application that
/// never acknowledges stalls its QoS 1/2 stream (QoS 0 messages still
/// come).
///
/// A message that no callback receives (no message callback set and no
/// matching `mqtt_subscribe_cb` route) is acknowledged automatically. The
/// PUBREL / PUBCOMP half of QoS 2 stays automatic.
///
/// Ownership: none.
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_manual_ack(opts: *mut mqtt_options, on: bool) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.manual_ack = on;
        MQTT5C_OK
    })
}

/// The message's ack id, for `mqtt_ack`, with manual acknowledgement on
/// (`mqtt_options_set_manual_ack`): non-zero for a QoS 1/2 message, unique
/// for each receipt by the client. 0 for a QoS 0 message, for every
/// message when manual acknowledgement is off, and for a response returned
/// by `mqtt_request` (acknowledged by the library). A copy
/// (`mqtt_message_copy`) has the same ack id as the original.
///
/// Ownership: `message` is borrowed.
/// Returns: the ack id, or 0 (also when `message` is NULL).
/// Blocks: no.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_message_ack_id(message: *const mqtt_message) -> u64 {
    ffi_guard!({ try_ref!(message, "message").ack_id })
}

/// Acknowledges a received QoS 1/2 message, with manual acknowledgement on
/// (`mqtt_options_set_manual_ack`): sends its PUBACK (QoS 1) or PUBREC (QoS
/// 2; the broker's PUBREL is then answered with PUBCOMP automatically).
///
/// `ack_id` comes from `mqtt_message_ack_id`. 0 (a QoS 0 message, which
/// has no acknowledgement) is accepted and does nothing, so code that acks
/// every message needs no QoS test. `reason_code` is 0x00 (success) or a
/// PUBACK/PUBREC failure: 0x80 unspecified error, 0x83 implementation
/// specific error, 0x87 not authorized, 0x90 topic name invalid, 0x91
/// packet identifier in use, 0x97 quota exceeded, 0x99 payload format
/// invalid. With a failure the broker takes the message as refused and
/// does not send it again (for QoS 2, no PUBREL follows).
///
/// The acknowledgement is written as soon as the connection's writer is
/// free; `mqtt_ack` does not wait for it. Connections and sessions:
/// - an ack id stays valid across reconnects that resume the session
///   (Session Present 1): the broker sends the unacknowledged message again
///   (DUP), and that resend is not delivered again (no second callback,
///   no new ack id); `mqtt_ack` with the id it had acknowledges it on the
///   new connection. Acknowledged while the client is disconnected, the
///   acknowledgement answers the broker's resend once the session resumes;
/// - when a reconnect finds no session (Session Present 0: the broker lost
///   it, and the message with it), the ids of earlier messages are stale:
///   `MQTT5C_ERR_NOT_FOUND`;
/// - a message received by another process (an earlier run of the
///   application) is sent again by the broker and delivered as a new
///   message, with a new ack id;
/// - unacknowledged messages stay unacknowledged when the client
///   disconnects or is freed: the broker sends them again to the next
///   client with the same client id that resumes the session.
///
/// Ownership: none.
/// Returns: `MQTT5C_OK` (the acknowledgement is queued for sending, or `ack_id`
/// is 0); `MQTT5C_ERR_INVALID_ARGUMENT` (NULL client, a `reason_code` not
/// listed above, manual acknowledgement off, an ack id this client never handed
/// out, a failure `reason_code` on an MQTT 3.1.1 connection, whose
/// PUBACK/PUBREC cannot refuse: the message stays unacknowledged, to be
/// acknowledged with 0x00); `MQTT5C_ERR_BAD_STATE` (acknowledged already, or the client is being
/// freed); `MQTT5C_ERR_NOT_FOUND` (stale: its session is gone).
/// `mqtt_last_error()` says which. Nothing is sent on an error.
/// Blocks: no.
/// Threads: any, including callbacks of the client (any kind: a message
/// callback acknowledging its own message, or a completion of
/// `mqtt_publish_async` acknowledging the message it forwarded).
#[no_mangle]
pub extern "C" fn mqtt_ack(client: *mut mqtt_client, ack_id: u64, reason_code: c_int) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        let reason = u8::try_from(reason_code).ok().and_then(ReasonCode::from_u8);
        let Some(reason) = reason else {
            set_last_error(format!(
                "reason_code {reason_code} is not an MQTT reason code (use 0x00, or a PUBACK failure >= 0x80)"
            ));
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        match c.client.ack(ack_id, reason) {
            Ok(()) => MQTT5C_OK,
            Err(e) => fail(e),
        }
    })
}
