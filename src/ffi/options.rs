//! `mqtt_options`: connection settings, copied by `mqtt_client_new`.

use super::error::{set_last_error, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_OK};
use super::properties::mqtt_properties;
use crate::client::{ClientOptions, QueuePolicy, Reconnect, Secret};
use crate::packet::{self, Direction, LastWill, MqttStr, PropertyContext, QoS};
use bytes::Bytes;
use std::ffi::{c_char, c_void};
use std::os::raw::c_int;
use std::time::Duration;

/// Connection settings. Create with `mqtt_options_new`, set, pass to
/// `mqtt_client_new` (which copies them), free with `mqtt_options_free`.
///
/// Threads: one at a time.
pub struct mqtt_options {
    pub(crate) inner: ClientOptions,
}

/// Creates options with the defaults: server-assigned client id, keep
/// alive 60 s, clean start, session expiry 0, connect timeout 30 s,
/// operation timeout 30 s, TCP_NODELAY and TCP_QUICKACK on, no automatic
/// reconnection (and so no offline queue in use; its bounds default to
/// 10000 messages and 8 MiB, new messages refused when full, QoS 0
/// queued), re-subscription after a lost session on.
///
/// Ownership: the caller frees the result with `mqtt_options_free`.
/// Returns: NULL only on a caught panic.
/// Blocks: no.
/// Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_options_new() -> *mut mqtt_options {
    ffi_guard!({
        Box::into_raw(Box::new(mqtt_options {
            inner: ClientOptions::default(),
        }))
    })
}

/// Frees options. NULL is a no-op. Clients made from them are unaffected.
///
/// Ownership: consumes `opts`.
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_free(opts: *mut mqtt_options) {
    ffi_guard!({
        if !opts.is_null() {
            // SAFETY: made by Box::into_raw in mqtt_options_new; the caller
            // gives up ownership.
            drop(unsafe { Box::from_raw(opts) });
        }
    })
}

/// Sets the client identifier. NULL or "" lets the server assign one
/// (read it back with `mqtt_client_get_id` after connecting); every later
/// connect of the client (automatic reconnects and `mqtt_connect`) then
/// sends the assigned one, so that its session can resume.
///
/// Ownership: copied.
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, invalid
/// UTF-8, over 65535 bytes).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_client_id(
    opts: *mut mqtt_options,
    client_id: *const c_char,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let id = try_opt_str!(client_id, "client_id").unwrap_or("");
        match MqttStr::new(id) {
            Ok(s) => {
                opts.inner.client_id = s;
                MQTT5C_OK
            }
            Err(_) => {
                set_last_error("client_id is longer than 65535 bytes");
                MQTT5C_ERR_INVALID_ARGUMENT
            }
        }
    })
}

/// Sets the keep-alive interval K in seconds (0 disables it). The server's
/// Server Keep Alive, if it sends one, takes precedence. PINGREQ is sent
/// when nothing was sent, or nothing heard from the broker, for K. The
/// connection is lost (`MQTT5C_EVENT_DISCONNECTED` with `MQTT5C_ERR_TIMEOUT`)
/// when, from then on, the broker shows no sign of life for K/2: no bytes
/// from it, and no bytes of ours taken after waiting for room in the
/// socket (a large write that keeps draining counts as alive). So a
/// silent broker is detected within 1.5 × K of its last sign of life, also
/// while a publish is blocked in a write; that call then returns
/// `MQTT5C_ERR_CONNECTION_LOST`.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_keep_alive(opts: *mut mqtt_options, seconds: u16) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.keep_alive = seconds;
        MQTT5C_OK
    })
}

/// Sets Clean Start (default true). With false and a session expiry, a
/// reconnect with the same client id resumes the session.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_clean_start(
    opts: *mut mqtt_options,
    clean_start: bool,
) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.clean_start = clean_start;
        MQTT5C_OK
    })
}

/// Sets the Session Expiry Interval in seconds (0: the session ends with
/// the connection; 0xFFFFFFFF: never expires).
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_session_expiry(opts: *mut mqtt_options, seconds: u32) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.session_expiry = seconds;
        MQTT5C_OK
    })
}

/// Sets user name and password. `username` NULL clears both; `password`
/// may be NULL (with `password_len` 0) for a user name alone; the password
/// is binary data of `password_len` bytes.
///
/// Ownership: both are copied. The password is never logged, and its copies are
/// wiped from memory when the options or the client are freed.
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT`.
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_credentials(
    opts: *mut mqtt_options,
    username: *const c_char,
    password: *const c_void,
    password_len: usize,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let Some(user) = try_opt_str!(username, "username") else {
            opts.inner.username = None;
            opts.inner.password = None;
            return MQTT5C_OK;
        };
        let pass = try_slice!(password, password_len, "password");
        if pass.len() > u16::MAX as usize {
            set_last_error("password is longer than 65535 bytes");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        let Ok(user) = MqttStr::new(user) else {
            set_last_error("username is longer than 65535 bytes");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        opts.inner.username = Some(user);
        opts.inner.password = (!password.is_null()).then(|| Secret::new(pass));
        MQTT5C_OK
    })
}

/// Sets the will message the broker publishes if the connection ends
/// without DISCONNECT. `topic` NULL removes the will. `props` (may be NULL)
/// are will properties (Will Delay Interval, Message Expiry, ...).
///
/// Ownership: everything is copied.
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (invalid topic, QoS,
/// or a property not allowed in a will).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_will(
    opts: *mut mqtt_options,
    topic: *const c_char,
    payload: *const c_void,
    len: usize,
    qos: c_int,
    retain: bool,
    props: *const mqtt_properties,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let Some(topic) = try_opt_str!(topic, "topic") else {
            opts.inner.will = None;
            return MQTT5C_OK;
        };
        let payload = try_slice!(payload, len, "payload");
        if !packet::topic::is_valid_topic_name(topic) {
            set_last_error(format!("invalid will topic '{topic}': it must be non-empty and must not contain '+' or '#'"));
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        let Some(qos) = u8::try_from(qos).ok().and_then(QoS::from_u8) else {
            set_last_error(format!("invalid will QoS {qos}: must be 0, 1 or 2"));
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        // SAFETY: NULL or a live mqtt_properties (caller's promise).
        let properties = unsafe { mqtt_properties::clone_or_empty(props) };
        if let Some(id) = properties.first_not_allowed(PropertyContext::Will, Direction::ToServer) {
            set_last_error(format!(
                "property {} is not allowed in a will message",
                id.name()
            ));
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        let Ok(topic) = MqttStr::new(topic) else {
            set_last_error("will topic is longer than 65535 bytes");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        opts.inner.will = Some(LastWill {
            topic,
            payload: Bytes::copy_from_slice(payload),
            qos,
            retain,
            properties,
        });
        MQTT5C_OK
    })
}

/// Sets how long `mqtt_connect` waits for the connection and CONNACK, in
/// milliseconds (default 30000; 0 restores the default).
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_connect_timeout(opts: *mut mqtt_options, ms: u32) -> c_int {
    ffi_guard!({
        let ms = if ms == 0 { 30_000 } else { ms };
        try_mut!(opts, "opts").inner.connect_timeout = Duration::from_millis(ms as u64);
        MQTT5C_OK
    })
}

/// Sets how long a blocking call waits for its outcome, in milliseconds:
/// `mqtt_publish` (for a Receive Maximum slot and the acknowledgement),
/// `mqtt_subscribe`, `mqtt_unsubscribe` (and their `_many` forms),
/// `mqtt_request` without a timeout of its own, `mqtt_reauthenticate`;
/// with automatic reconnection, the wait for the reconnect included.
/// Default 30000 (30 s): long enough to ride out a broker restart or a
/// short outage, short enough that a caller is not stuck for the 1.5 ×
/// keep-alive it takes to declare a frozen broker lost. 0 waits without
/// a limit (as long as the connection lives; with automatic reconnection,
/// until the outcome, `mqtt_disconnect` or `mqtt_client_free`).
/// A call that times out returns `MQTT5C_ERR_TIMEOUT` and its message is
/// not withdrawn: a QoS 1/2 message stays in flight (or in the offline
/// queue) and may still be delivered, so publishing it again may deliver
/// it twice.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_operation_timeout(opts: *mut mqtt_options, ms: u32) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.operation_timeout =
            (ms > 0).then(|| Duration::from_millis(ms as u64));
        MQTT5C_OK
    })
}

/// Turns automatic reconnection on (`min_delay_ms` > 0) or off
/// (`min_delay_ms` 0, the default, as in Paho C). When a connection that
/// came up ends other than by `mqtt_disconnect` or `mqtt_client_free`
/// (socket closed, network error, keep-alive timeout, protocol error, or
/// a server DISCONNECT), the client connects again to the server of its
/// last successful connection, with the same options (TLS, credentials,
/// authentication, Clean Start, Session Expiry). The first attempt waits
/// `min_delay_ms`; each failed attempt doubles the wait, up to
/// `max_delay_ms`; every wait is shortened by up to a fifth at random, so
/// that many clients that lost one broker do not come back in lockstep.
/// A connection lost less than `max_delay_ms` after an automatic
/// reconnection made it does not start over at `min_delay_ms`: the first
/// wait is twice the one before that reconnection, up to `max_delay_ms`
/// (a server that accepts and drops the client at once is not hammered).
/// With further servers (`mqtt_options_add_server`) each wait is followed
/// by a round of attempts, one per server, the last one connected to
/// first. Attempts go on until one succeeds, `mqtt_disconnect` or `mqtt_connect`
/// is called, or the client is freed.
///
/// Not after a server DISCONNECT with 0x8E (session taken over: another
/// client uses this client id, and coming back would push it off in turn,
/// for ever), 0x9C (use another server) or 0x9D (server moved;
/// `mqtt_disconnect_properties` gives the Server Reference; unless
/// redirects are followed, `mqtt_options_set_follow_redirects`): the
/// application decides, and may call `mqtt_connect` from the connection
/// callback. (mosquitto 2.0 closes the socket on a takeover without
/// sending 0x8E; give each client its own id.) A CONNACK refusal (0x86
/// bad credentials, 0x8A banned, ...) counts as a failed attempt.
///
/// Events: the loss fires `MQTT5C_EVENT_DISCONNECTED` once; each successful
/// reconnect fires `MQTT5C_EVENT_CONNECTED` (`mqtt_session_present` tells
/// whether the session was resumed; with Clean Start false and a Session
/// Expiry, QoS 1/2 messages still unacknowledged are resent). Failed
/// `MQTT5C_EVENT_RECONNECTING` fires before each attempt, with the
/// attempt's number (from 1) as `reason_code`; each attempt and its result
/// are logged (`mqtt_set_log_callback`).
///
/// Calls ride out the reconnect, within the operation timeout
/// (`mqtt_options_set_operation_timeout`): a blocking `mqtt_publish` at
/// QoS 1/2, `mqtt_subscribe`, `mqtt_unsubscribe` or `mqtt_request`
/// waiting when the connection is lost, or called while the client
/// reconnects, waits for the new connection and returns the real outcome
/// (a message in flight is resent when the session resumed, or published
/// afresh on a new session; a publish made meanwhile goes through the
/// offline queue, `mqtt_options_set_offline_queue`; a subscribe goes out
/// on the new connection). `mqtt_publish_async` queues too and reports
/// after delivery. When the session was lost, the client also subscribes
/// again to what it was subscribed to (`mqtt_options_set_resubscribe`).
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts,
/// `max_delay_ms` < `min_delay_ms`).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_auto_reconnect(
    opts: *mut mqtt_options,
    min_delay_ms: u32,
    max_delay_ms: u32,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        if min_delay_ms == 0 {
            opts.inner.reconnect = None;
            return MQTT5C_OK;
        }
        if max_delay_ms < min_delay_ms {
            set_last_error(format!(
                "max_delay_ms ({max_delay_ms}) is less than min_delay_ms ({min_delay_ms})"
            ));
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        opts.inner.reconnect = Some(Reconnect {
            min_delay: Duration::from_millis(min_delay_ms as u64),
            max_delay: Duration::from_millis(max_delay_ms as u64),
        });
        MQTT5C_OK
    })
}

/// With `on` (default off) and automatic reconnection
/// (`mqtt_options_set_auto_reconnect`), an `mqtt_connect` whose attempt
/// fails keeps trying in the background, like a reconnection after a lost
/// connection (same delays; `MQTT5C_EVENT_RECONNECTING` before each attempt,
/// numbered from 1; `MQTT5C_EVENT_CONNECTED` when one succeeds), so that a
/// gateway that starts before its network is up needs no retry loop of
/// its own. `mqtt_connect` still returns the failure of its first attempt
/// (`MQTT5C_ERR_IO`, `MQTT5C_ERR_TIMEOUT`, `MQTT5C_ERR_TLS`, a CONNACK refusal,
/// ...); meanwhile the client is reconnecting: publishes go into the
/// offline queue and blocking calls wait, as during any reconnection.
/// Not retried: `MQTT5C_ERR_INVALID_ARGUMENT` (a bad URL),
/// `MQTT5C_ERR_ALREADY_CONNECTED`, `MQTT5C_ERR_BAD_STATE`, and the reason
/// code of an auth callback that aborted. `mqtt_disconnect` or
/// `mqtt_client_free` stops the attempts; another `mqtt_connect` takes
/// over. Without automatic reconnection this option does nothing.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_connect_retry(opts: *mut mqtt_options, on: bool) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.connect_retry = on;
        MQTT5C_OK
    })
}

/// `mqtt_options_set_offline_queue`: a full queue refuses the new
/// message (`MQTT5C_ERR_QUEUE_FULL`).
pub const MQTT5C_QUEUE_FAIL_NEW: c_int = 0;
/// `mqtt_options_set_offline_queue`: a full queue drops its oldest QoS 0
/// message, then its oldest message, to take the new one.
pub const MQTT5C_QUEUE_DROP_OLDEST: c_int = 1;

/// Bounds the offline queue: where publishes made while the client
/// reconnects (automatic reconnection on) wait for the connection, at most
/// `max_messages` messages and `max_bytes` bytes (each message counted as
/// its encoded PUBLISH: topic, properties, payload and a few bytes of
/// header). Defaults: 10000 messages, 8 MiB, `MQTT5C_QUEUE_FAIL_NEW`: the
/// library never drops a message it accepted, and a publish that does not
/// fit returns `MQTT5C_ERR_QUEUE_FULL` at once. `MQTT5C_QUEUE_DROP_OLDEST`
/// makes room instead, dropping the oldest QoS 0 message, or the oldest
/// message when none is QoS 0; the dropped message's publish callback (or
/// blocking call) gets `MQTT5C_ERR_QUEUE_FULL`, and it is counted
/// (`MQTT5C_STAT_QUEUE_DROPPED`). A message larger than `max_bytes` is
/// refused under either policy. 0 for either bound turns the queue off:
/// publishes made while reconnecting return `MQTT5C_ERR_NOT_CONNECTED`.
///
/// Queued messages go out in order once the client is connected again:
/// after the QoS 1/2 messages that were in flight at the loss, and before
/// any publish made after the reconnect. A message whose Message Expiry
/// Interval passes while it waits is dropped and counted
/// (`MQTT5C_STAT_QUEUE_EXPIRED`; its callback or call gets
/// `MQTT5C_ERR_EXPIRED`), never sent late; one sent after waiting carries
/// the interval that remains. QoS 0 messages are queued too, unless
/// `mqtt_options_set_offline_queue_qos0` says otherwise. Messages
/// `mqtt_disconnect` finds queued stay queued for the next connection
/// (their waiting calls and callbacks get `MQTT5C_ERR_CONNECTION_LOST`);
/// `mqtt_client_free` drops them. The queue is in memory only: a crash of
/// the process loses it.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, unknown
/// policy).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_offline_queue(
    opts: *mut mqtt_options,
    max_messages: usize,
    max_bytes: usize,
    policy: c_int,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let policy = match policy {
            MQTT5C_QUEUE_FAIL_NEW => QueuePolicy::FailNew,
            MQTT5C_QUEUE_DROP_OLDEST => QueuePolicy::DropOldest,
            _ => {
                set_last_error(format!(
                    "unknown offline queue policy {policy}: use MQTT5C_QUEUE_FAIL_NEW or MQTT5C_QUEUE_DROP_OLDEST"
                ));
                return MQTT5C_ERR_INVALID_ARGUMENT;
            }
        };
        let q = &mut opts.inner.offline_queue;
        q.max_messages = max_messages;
        q.max_bytes = max_bytes;
        q.policy = policy;
        MQTT5C_OK
    })
}

/// Whether QoS 0 messages published while reconnecting go into the
/// offline queue (`on`, the default) or are refused with
/// `MQTT5C_ERR_NOT_CONNECTED` (for data that is worthless when late). A
/// queued QoS 0 message is never dropped silently: only by the
/// `MQTT5C_QUEUE_DROP_OLDEST` policy (first among the messages, counted) or
/// by its expiry.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_offline_queue_qos0(opts: *mut mqtt_options, on: bool) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.offline_queue.qos0 = on;
        MQTT5C_OK
    })
}

/// Whether, after an automatic reconnect whose CONNACK says the broker has
/// no session for the client (Session Present 0: a clean start, an expired
/// session, a broker restarted without persistence), the client subscribes
/// again to every filter it was subscribed to (default on): with the same
/// options and the same SUBSCRIBE properties, so Subscription Identifiers
/// and the callbacks of `mqtt_subscribe_cb` keep working. It happens before
/// the offline queue goes out, and the client waits for the SUBACKs
/// first. A refused filter is reported with `MQTT5C_EVENT_RESUBSCRIBE_FAILED`
/// and counted (`MQTT5C_STAT_RESUBSCRIBE_FAILED`). Filters are recorded when
/// a SUBACK grants them and forgotten when unsubscribed; an
/// `mqtt_connect` by the application that finds no session forgets them
/// all (the application subscribes afresh then). The response topic of
/// `mqtt_request` is not among them (each connection subscribes to it when
/// a request needs it).
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_resubscribe(opts: *mut mqtt_options, on: bool) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.resubscribe = on;
        MQTT5C_OK
    })
}

/// Connects through a proxy, for every transport but `unix://`:
/// `"http://[user:pass@]host:port"` (HTTP CONNECT, Basic authentication),
/// `"socks5://[user:pass@]host:port"` (SOCKS5, the broker's name resolved
/// here) or `"socks5h://..."` (resolved by the proxy). User and password
/// are percent-decoded; the port defaults to 1080. TLS runs end to end
/// through the tunnel and verifies the broker, not the proxy. NULL: no
/// proxy (the default). A proxy set here wins over the environment (see
/// `mqtt_options_set_proxy_from_env`).
///
/// When the proxy refuses the tunnel, asks for authentication we do not
/// have or refuses ours, answers with something that is not its protocol,
/// or closes the connection at once, `mqtt_connect` fails with
/// `MQTT5C_ERR_IO` and `mqtt_last_error()` starts "proxy HOST:PORT" and
/// says which.
///
/// Ownership: `proxy_url` is borrowed for the call; user name and password are
/// copied into buffers wiped from memory when the options or the client are
/// freed (as the broker's password).
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, a URL
/// that is not one of the above; the text says what is wrong, without the
/// password).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_proxy(
    opts: *mut mqtt_options,
    proxy_url: *const c_char,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let url = try_opt_str!(proxy_url, "proxy_url");
        match opts.inner.set_proxy(url) {
            Ok(()) => MQTT5C_OK,
            Err(e) => {
                set_last_error(e);
                MQTT5C_ERR_INVALID_ARGUMENT
            }
        }
    })
}

/// With `on` true, a client without a proxy set by
/// `mqtt_options_set_proxy` takes one from the environment, read at each
/// connection: `HTTPS_PROXY` for TLS (`mqtts://`, `wss://`; `ALL_PROXY`
/// when it is unset), `ALL_PROXY` for the others, none for a host that
/// `NO_PROXY` names (comma-separated host names, each matching itself and
/// its subdomains, or IP addresses; `*` for all). Lower-case names are
/// read too. Default off: the environment is never read unless asked.
/// A malformed variable makes `mqtt_connect` fail with
/// `MQTT5C_ERR_INVALID_ARGUMENT` naming it.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_proxy_from_env(opts: *mut mqtt_options, on: bool) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.proxy.from_env = on;
        MQTT5C_OK
    })
}

/// Turns TCP_NODELAY (Nagle's algorithm off) on or off; default on.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_tcp_nodelay(opts: *mut mqtt_options, on: bool) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.tcp.nodelay = on;
        MQTT5C_OK
    })
}

/// Turns TCP quick ACKs (Linux TCP_QUICKACK, re-armed after each read) on
/// or off; default on. Together with TCP_NODELAY this takes a QoS 1 round
/// trip on loopback from ~40-90 ms to well under 1 ms.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_tcp_quickack(opts: *mut mqtt_options, on: bool) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.tcp.quickack = on;
        MQTT5C_OK
    })
}

/// Bounds the queue of received messages waiting for the message
/// callback, in messages and in bytes (topic, properties and payload of
/// each, plus about 150 bytes of overhead per message). Defaults: 1000
/// messages, 8 MiB (8388608). When either bound is reached the library
/// stops reading from the socket until a callback returned: a slow
/// callback slows the broker down (TCP back-pressure; QoS 1/2 messages
/// stay unacknowledged, so the broker's flow control holds the rest)
/// instead of growing memory, and nothing is dropped. The queue holds at
/// most `max_bytes` plus one message (at most the Maximum Packet Size,
/// `mqtt_options_set_maximum_packet_size`).
///
/// While a callback of the client is inside a blocking call (a publish
/// waiting for its PUBACK, ...) the library goes on reading, so that what
/// the call waits for gets through; memory stays bounded all the same:
/// QoS 0 messages are queued while less than twice either bound waits
/// (more are dropped and counted, `MQTT5C_STAT_QOS0_DROPPED`); QoS 1/2
/// messages up to twice our Receive Maximum whatever their size (they are
/// unacknowledged until their callbacks ran, so a broker keeping our
/// Receive Maximum sends no more than once it). Beyond that the broker
/// breaks the protocol: in strict mode (`mqtt_options_set_receive_maximum_strict`)
/// the connection ends with DISCONNECT 0x93; by default such messages are
/// queued while less than twice `max_bytes` waits, then the library stops
/// reading until the blocking call ends (at the latest at its timeout).
/// So at most 2 x `max_bytes` + (2 x Receive Maximum + 1) x Maximum
/// Packet Size bytes of messages wait.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, or a bound
/// of 0).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_delivery_queue(
    opts: *mut mqtt_options,
    max_messages: usize,
    max_bytes: usize,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        if max_messages == 0 || max_bytes == 0 {
            set_last_error("the delivery queue bounds must be at least 1");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        opts.inner.delivery_queue_limit = max_messages;
        opts.inner.delivery_queue_bytes = max_bytes;
        MQTT5C_OK
    })
}

/// Sets the delivery queue's bound in messages (default 1000) and leaves
/// its bound in bytes as it is; `mqtt_options_set_delivery_queue` sets
/// both and says how they work.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts or 0).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_delivery_queue_limit(
    opts: *mut mqtt_options,
    messages: usize,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        if messages == 0 {
            set_last_error("the delivery queue limit must be at least 1");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        opts.inner.delivery_queue_limit = messages;
        MQTT5C_OK
    })
}
