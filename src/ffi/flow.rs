//! Flow control and size options (Receive Maximum, Maximum Packet Size,
//! topic aliases both ways) and the client's flow-control counters.
//!
//! The limits we advertise are CONNECT properties: these setters put them
//! into the options' connect properties, so setting the same property
//! through connect properties has the same effect (the later call wins).

use super::client::mqtt_client;
use super::error::{set_last_error, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_OK};
use super::options::mqtt_options;
use crate::client::{DEFAULT_MAX_PACKET_SIZE, PROTOCOL_MAX_PACKET_SIZE};
use crate::packet::{Property, PropertyId};
use std::os::raw::c_int;

/// `mqtt_client_get_stat`: QoS 1/2 messages the broker sent beyond our
/// Receive Maximum (counted in the default, lenient mode).
pub const MQTT5C_STAT_RECEIVE_MAXIMUM_EXCEEDED: c_int = 1;
/// `mqtt_client_get_stat`: the most inbound QoS 1/2 messages in flight at
/// once: received and not yet acknowledged (we acknowledge after the
/// message callback returned), and QoS 2 ones until the broker's PUBREL.
pub const MQTT5C_STAT_INBOUND_INFLIGHT_PEAK: c_int = 2;
/// `mqtt_client_get_stat`: the most received messages (and connection
/// events, completions) that were ever waiting for the callbacks at once.
/// It stays at most the delivery queue's message bound
/// (`mqtt_options_set_delivery_queue`), except while a callback is inside
/// a blocking call: then at most twice the bound, plus twice our Receive
/// Maximum in QoS 1/2 messages, plus small messages that fit in twice the
/// byte bound (plus connection events and `mqtt_publish_async`
/// completions).
pub const MQTT5C_STAT_DELIVERY_QUEUE_PEAK: c_int = 3;
/// `mqtt_client_get_stat`: QoS 0 messages dropped because, while a
/// callback of the client was inside a blocking call, twice the delivery
/// queue's bound in messages or in bytes was already waiting (the first
/// drop of each connection is logged, see `mqtt_set_log_callback`).
pub const MQTT5C_STAT_QOS0_DROPPED: c_int = 4;
/// `mqtt_client_get_stat`: publishes that went into the offline queue
/// (`mqtt_options_set_offline_queue`).
pub const MQTT5C_STAT_QUEUED: c_int = 5;
/// `mqtt_client_get_stat`: queued publishes the full offline queue
/// dropped to make room (policy `MQTT5C_QUEUE_DROP_OLDEST`).
pub const MQTT5C_STAT_QUEUE_DROPPED: c_int = 6;
/// `mqtt_client_get_stat`: queued publishes dropped because their Message
/// Expiry Interval passed before they could be sent.
pub const MQTT5C_STAT_QUEUE_EXPIRED: c_int = 7;
/// `mqtt_client_get_stat`: publishes in the offline queue now (not a
/// counter). Reading it, or any counter, drops the expired ones first.
pub const MQTT5C_STAT_QUEUE_LENGTH: c_int = 8;
/// `mqtt_client_get_stat`: filters whose re-subscription after a lost
/// session failed (see `MQTT5C_EVENT_RESUBSCRIBE_FAILED`).
pub const MQTT5C_STAT_RESUBSCRIBE_FAILED: c_int = 9;
/// `mqtt_client_get_stat`: the most bytes of received messages (topic,
/// properties, payload, plus a per-message overhead of about 150 bytes)
/// that were ever waiting for the callbacks at once. It stays at most the
/// delivery queue's byte bound plus one message
/// (`mqtt_options_set_delivery_queue`), except while a callback is inside
/// a blocking call (see there).
pub const MQTT5C_STAT_DELIVERY_QUEUE_PEAK_BYTES: c_int = 10;

/// Sets the Receive Maximum we advertise in CONNECT: how many QoS 1/2
/// messages the broker may have in flight to us, i.e. send before we
/// acknowledge them (after their callbacks). Default 100 (libmosquitto
/// advertises 20): enough for 2,000 messages/s over a 50 ms round trip,
/// and while a callback blocks at most twice that many QoS 1/2 messages
/// wait in memory (each up to the Maximum Packet Size). 65535, the
/// protocol's maximum, is not sent. What
/// happens when the broker exceeds it: see
/// `mqtt_options_set_receive_maximum_strict`. Wins over a Receive Maximum
/// set with `mqtt_options_set_connect_properties` before; one set there
/// later wins over this.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, or 0,
/// which the protocol forbids).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_receive_maximum(opts: *mut mqtt_options, max: u16) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        if max == 0 {
            set_last_error("the Receive Maximum must be at least 1");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        opts.inner
            .connect_properties
            .remove(PropertyId::ReceiveMaximum);
        opts.inner.receive_maximum = max;
        MQTT5C_OK
    })
}

/// Chooses what happens when the broker has more QoS 1/2 messages in
/// flight to us than our Receive Maximum. false (the default): the message
/// is processed normally, counted (`MQTT5C_STAT_RECEIVE_MAXIMUM_EXCEEDED`)
/// and the first excess of each connection is logged (at
/// `MQTT5C_LOG_WARNING`, see `mqtt_set_log_callback`). true: the spec's
/// reaction, DISCONNECT with reason 0x93 (the connection callback reports
/// `MQTT5C_EVENT_DISCONNECTED` with 0x93). mosquitto 2.0 exceeds it once a
/// queue for us builds up (it counts a QoS 2 message done at PUBREC), so
/// strict mode would drop connections to it. While a callback is inside
/// a blocking call, twice our Receive Maximum of QoS 1/2 messages waiting
/// for the callbacks ends the connection with 0x93 in strict mode; by
/// default more are queued only within twice the
/// delivery queue's byte bound, and beyond it the library stops reading
/// until there is room (see `mqtt_options_set_delivery_queue`).
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_receive_maximum_strict(
    opts: *mut mqtt_options,
    strict: bool,
) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.strict_receive_maximum = strict;
        MQTT5C_OK
    })
}

/// Sets the Maximum Packet Size we advertise in CONNECT and enforce, in
/// bytes. Default 1 MiB (1048576): a broker cannot make the client read
/// more than that for one packet. Raise it to receive larger messages: a
/// broker that keeps the protocol never sends us a message over it but
/// discards it (MQTT-3.1.2-25), and nothing tells us (no error, no
/// event; its publisher is told it was delivered). 268435460, the protocol's largest packet, means no limit and is not
/// sent; larger values mean the same. 0 restores the default. A larger
/// incoming packet ends the connection with DISCONNECT 0x95, before its
/// body is read; the connection callback reports 0x95. Messages waiting
/// for the callbacks are bounded in bytes too: see
/// `mqtt_options_set_delivery_queue`.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, or below
/// 16 bytes, too small for a CONNACK).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_maximum_packet_size(
    opts: *mut mqtt_options,
    bytes: u32,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let bytes = if bytes == 0 {
            DEFAULT_MAX_PACKET_SIZE
        } else {
            bytes
        };
        if bytes < 16 {
            set_last_error("the Maximum Packet Size must be at least 16 bytes");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        opts.inner.max_packet_size = bytes.min(PROTOCOL_MAX_PACKET_SIZE);
        // The option is the one source: a value set among the connect
        // properties earlier is replaced.
        opts.inner
            .connect_properties
            .remove(PropertyId::MaximumPacketSize);
        MQTT5C_OK
    })
}

/// Sets the Topic Alias Maximum we advertise in CONNECT: how many topic
/// aliases the broker may use in messages to us (default 0: none). Aliases
/// the broker sets are resolved before the message callback sees the
/// message, so callbacks always get the full topic. An alias of 0 or above
/// the maximum ends the connection with DISCONNECT 0x94, an alias used
/// before it was set with 0x82; the connection callback reports the code.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_topic_alias_maximum(opts: *mut mqtt_options, max: u16) -> c_int {
    ffi_guard!({
        let props = &mut try_mut!(opts, "opts").inner.connect_properties;
        if max == 0 {
            props.remove(PropertyId::TopicAliasMaximum);
        } else {
            props.set(Property::TopicAliasMaximum(max));
        }
        MQTT5C_OK
    })
}

/// Sets how many topic aliases we use for our publishes (default 65535:
/// as many as the broker's Topic Alias Maximum allows; 0 turns outgoing
/// aliases off). Aliases are automatic: the first publish to a topic sends
/// the topic and binds an alias, later ones send only the alias; when all
/// are bound, or the topics bound would hold more than 64 KiB (topic bytes
/// plus 128 per topic), the least recently used one is rebound. They last for one
/// connection; a QoS 1/2 message resent after a reconnect carries its
/// topic. A Topic Alias property passed to `mqtt_publish` is refused.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_outgoing_topic_aliases(
    opts: *mut mqtt_options,
    max: u16,
) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.outgoing_topic_aliases = max;
        MQTT5C_OK
    })
}

/// Reads one of the client's counters (`MQTT5C_STAT_*`), cumulative over
/// all its connections. `mqtt_client_get_stats` reads them all, and more
/// (messages and bytes by QoS, reconnects, in flight).
///
/// Ownership: `value` is written only on success.
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL argument,
/// unknown `stat`).
/// Blocks: no.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_client_get_stat(
    client: *mut mqtt_client,
    stat: c_int,
    value: *mut u64,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        let out = try_mut!(value, "value");
        // Expired queued messages are dropped (and counted) first.
        let queue_length = c.client.offline_queue_len() as u64;
        let stats = c.client.stats();
        *out = match stat {
            MQTT5C_STAT_RECEIVE_MAXIMUM_EXCEEDED => stats.receive_maximum_exceeded(),
            MQTT5C_STAT_INBOUND_INFLIGHT_PEAK => stats.inbound_inflight_peak(),
            MQTT5C_STAT_DELIVERY_QUEUE_PEAK => c.client.delivery_queue_peak() as u64,
            MQTT5C_STAT_QOS0_DROPPED => stats.qos0_dropped(),
            MQTT5C_STAT_QUEUED => stats.queued(),
            MQTT5C_STAT_QUEUE_DROPPED => stats.queue_dropped(),
            MQTT5C_STAT_QUEUE_EXPIRED => stats.queue_expired(),
            MQTT5C_STAT_QUEUE_LENGTH => queue_length,
            MQTT5C_STAT_RESUBSCRIBE_FAILED => stats.resubscribe_failed(),
            MQTT5C_STAT_DELIVERY_QUEUE_PEAK_BYTES => c.client.delivery_queue_peak_bytes() as u64,
            _ => {
                set_last_error(format!("unknown statistic {stat}"));
                return MQTT5C_ERR_INVALID_ARGUMENT;
            }
        };
        MQTT5C_OK
    })
}

/// The client's counters, read at once by `mqtt_client_get_stats`.
/// Cumulative over all its connections unless said otherwise ("now").
///
/// Extensible: every field is a `uint64_t`, and new ones are only ever
/// added at the end. Pass `sizeof(mqtt5c_stats)` of your header: a library
/// older than your header fills the fields it knows and sets `size` to the
/// bytes it filled (zeroing the rest), a newer one fills only what your
/// struct has room for. A field is valid when
/// `size >= offsetof(mqtt5c_stats, field) + sizeof field`.
///
/// Each counter is exact on its own (relaxed atomics: the QoS 0 publish
/// path pays two additions per message); the fields are not one instant's
/// snapshot of all of them together. `[0]`, `[1]`, `[2]` index by QoS.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct mqtt5c_stats {
    /// Bytes of this struct the library filled (written by it).
    pub size: u64,
    /// PUBLISH packets handed to the network as new messages, by QoS: the
    /// first transmission of each (a resend after a reconnect is not
    /// counted again), offline-queued ones when they go out.
    pub messages_sent: [u64; 3],
    /// The payload bytes of `messages_sent`.
    pub payload_bytes_sent: [u64; 3],
    /// PUBLISH packets received as new messages, by QoS: every QoS 0 one
    /// (dropped ones too, see `qos0_dropped`), each QoS 1/2 one once (a
    /// resend of one already received is not counted again); responses to
    /// `mqtt_request` included.
    pub messages_received: [u64; 3],
    /// The payload bytes of `messages_received`.
    pub payload_bytes_received: [u64; 3],
    /// Connections made by automatic reconnection
    /// (`mqtt_options_set_auto_reconnect`, `mqtt_options_set_connect_retry`).
    pub reconnects: u64,
    /// Attempts automatic reconnection made, successful or not.
    pub reconnect_attempts: u64,
    /// Now: outgoing QoS 1/2 messages in flight (written or waiting for a
    /// resend, not yet completely acknowledged).
    pub outbound_in_flight: u64,
    /// Now: incoming QoS 1/2 messages not yet acknowledged (queued, in
    /// their callback, or QoS 2 until the broker's PUBREL).
    pub inbound_in_flight: u64,
    /// Now: publishes in the offline queue (as `MQTT5C_STAT_QUEUE_LENGTH`).
    pub offline_queue_length: u64,
    /// Publishes that went into the offline queue (`MQTT5C_STAT_QUEUED`).
    pub queued: u64,
    /// Queued publishes the full offline queue dropped
    /// (`MQTT5C_STAT_QUEUE_DROPPED`).
    pub queue_dropped: u64,
    /// Queued publishes that expired (`MQTT5C_STAT_QUEUE_EXPIRED`).
    pub queue_expired: u64,
    /// Received QoS 0 messages dropped while a callback blocked
    /// (`MQTT5C_STAT_QOS0_DROPPED`).
    pub qos0_dropped: u64,
    /// Now: messages, connection events and completions waiting for the
    /// callbacks.
    pub delivery_queue_length: u64,
    /// `MQTT5C_STAT_DELIVERY_QUEUE_PEAK`.
    pub delivery_queue_peak: u64,
    /// `MQTT5C_STAT_DELIVERY_QUEUE_PEAK_BYTES`.
    pub delivery_queue_peak_bytes: u64,
    /// `MQTT5C_STAT_RECEIVE_MAXIMUM_EXCEEDED`.
    pub receive_maximum_exceeded: u64,
    /// `MQTT5C_STAT_INBOUND_INFLIGHT_PEAK`.
    pub inbound_inflight_peak: u64,
    /// `MQTT5C_STAT_RESUBSCRIBE_FAILED`.
    pub resubscribe_failed: u64,
    /// System calls that wrote to the network (fewer than the packets when
    /// packets ready together share one).
    pub writes: u64,
    /// Log lines dropped because 256 were waiting for a slow log callback
    /// (`mqtt_set_log_callback`).
    pub log_dropped: u64,
}

/// Reads all of the client's counters into `out` (see `mqtt5c_stats`):
/// `mqtt5c_stats s; if (mqtt_client_get_stats(client, &s, sizeof s) ==
/// MQTT5C_OK) ...`
///
/// Ownership: `out` is the caller's, written only on success: the first
/// `min(out_size, the library's size)` bytes with the counters (`size`
/// says how many), the rest of `out_size` zeroed.
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL client or
/// out, or `out_size` below 8 or not a multiple of 8).
/// Blocks: no (takes the client's session lock briefly, for the in-flight
/// counts).
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_client_get_stats(
    client: *const mqtt_client,
    out: *mut mqtt5c_stats,
    out_size: usize,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        if out.is_null() {
            set_last_error("out is NULL");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        if out_size < 8 || out_size % 8 != 0 {
            set_last_error(format!(
                "out_size {out_size} is not the size of a mqtt5c_stats (pass sizeof(mqtt5c_stats))"
            ));
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        let mut s = stats_of(&c.client);
        let filled = out_size.min(std::mem::size_of::<mqtt5c_stats>());
        s.size = filled as u64;
        // SAFETY: `out` is non-NULL and the caller promises `out_size`
        // writable bytes; `s` has `filled` readable ones; they do not
        // overlap (`s` is ours).
        unsafe {
            let dst = out.cast::<u8>();
            std::ptr::copy_nonoverlapping((&s as *const mqtt5c_stats).cast::<u8>(), dst, filled);
            std::ptr::write_bytes(dst.add(filled), 0, out_size - filled);
        }
        MQTT5C_OK
    })
}

fn stats_of(client: &crate::client::MqttClient) -> mqtt5c_stats {
    use crate::packet::QoS;
    const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
    // Expired queued messages are dropped (and counted) first.
    let offline_queue_length = client.offline_queue_len() as u64;
    let st = client.stats();
    mqtt5c_stats {
        size: 0,
        messages_sent: QOS.map(|q| st.messages_sent(q)),
        payload_bytes_sent: QOS.map(|q| st.payload_bytes_sent(q)),
        messages_received: QOS.map(|q| st.messages_received(q)),
        payload_bytes_received: QOS.map(|q| st.payload_bytes_received(q)),
        reconnects: st.reconnects(),
        reconnect_attempts: st.reconnect_attempts(),
        outbound_in_flight: client.outbound_in_flight() as u64,
        inbound_in_flight: client.inbound_in_flight() as u64,
        offline_queue_length,
        queued: st.queued(),
        queue_dropped: st.queue_dropped(),
        queue_expired: st.queue_expired(),
        qos0_dropped: st.qos0_dropped(),
        delivery_queue_length: client.delivery_queue_len() as u64,
        delivery_queue_peak: client.delivery_queue_peak() as u64,
        delivery_queue_peak_bytes: client.delivery_queue_peak_bytes() as u64,
        receive_maximum_exceeded: st.receive_maximum_exceeded(),
        inbound_inflight_peak: st.inbound_inflight_peak(),
        resubscribe_failed: st.resubscribe_failed(),
        writes: st.writes(),
        log_dropped: st.log_dropped(),
    }
}
