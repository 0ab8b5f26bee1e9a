//! `mqtt_client`: the connection, its calls and its callbacks.

use super::calls::{Calls, ClientCall};
use super::error::{
    fail, fail_on, reason_result, set_last_error, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_OK,
};
use super::message::mqtt_message;
use super::options::mqtt_options;
use super::properties::mqtt_properties;
use super::runtime::{block_on_client, Registration};
use crate::client::{
    Ack, CallbackGate, ClientOptions, Completion, ConnectionEvent, DisconnectCause, Handler,
    MqttClient, PublishNow, ResubscribeFailure,
};
use crate::packet::{
    MqttStr, Properties, Publish, QoS, ReasonCode, RetainHandling, SubscribeFilter,
    SubscriptionOptions,
};
use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// The connection is up (`reason_code` is the CONNACK reason, 0); also
/// after each automatic reconnect (`mqtt_options_set_auto_reconnect`).
pub const MQTT5C_EVENT_CONNECTED: c_int = 1;
/// The connection ended. `reason_code` is the DISCONNECT reason (ours or
/// the broker's, 0x00-0xFF), or `MQTT5C_ERR_CONNECTION_LOST` (socket closed
/// without DISCONNECT), `MQTT5C_ERR_IO` (network error), `MQTT5C_ERR_TIMEOUT`
/// (keep-alive: the broker stayed silent, see `mqtt_options_set_keep_alive`).
/// Fires once per connection; a reconnection that follows fires
/// `MQTT5C_EVENT_RECONNECTING` before each attempt, and
/// `MQTT5C_EVENT_CONNECTED` when one succeeds.
pub const MQTT5C_EVENT_DISCONNECTED: c_int = 2;
/// Automatic reconnection (`mqtt_options_set_auto_reconnect`, or
/// `mqtt_options_set_connect_retry` after a failed `mqtt_connect`) is
/// about to make an attempt; `reason_code` is the attempt's number,
/// counted from 1 after each loss (or failed `mqtt_connect`).
pub const MQTT5C_EVENT_RECONNECTING: c_int = 3;
/// After an automatic reconnect that found no session (the broker lost
/// it), subscribing again to a filter the client was subscribed to failed
/// (see `mqtt_options_set_resubscribe`). `reason_code` is the SUBACK's
/// refusal (>= 0x80, e.g. 0x87 not authorized), or `MQTT5C_ERR_TIMEOUT`
/// (no SUBACK within the operation timeout), `MQTT5C_ERR_PACKET_TOO_LARGE`
/// or `MQTT5C_ERR_PROTOCOL`. During the callback, `mqtt_last_error()` (on
/// the callback's thread) names the filter and gives the broker's reason
/// string. The filter stays recorded: the next reconnect that finds no
/// session tries again; unsubscribe to stop that. One event per filter.
pub const MQTT5C_EVENT_RESUBSCRIBE_FAILED: c_int = 4;

pub const MQTT5C_QOS0: c_int = 0;
pub const MQTT5C_QOS1: c_int = 1;
pub const MQTT5C_QOS2: c_int = 2;

/// Subscription option: do not receive our own publishes.
pub const MQTT5C_SUB_NO_LOCAL: c_int = 0x04;
/// Subscription option: keep the retain flag as published.
pub const MQTT5C_SUB_RETAIN_AS_PUBLISHED: c_int = 0x08;
/// Subscription option: send retained messages only for a new subscription.
pub const MQTT5C_SUB_RETAIN_HANDLING_NEW_ONLY: c_int = 0x10;
/// Subscription option: never send retained messages on subscribe.
pub const MQTT5C_SUB_RETAIN_HANDLING_NONE: c_int = 0x20;

/// Called for each received message, in the order the broker sent them.
/// `message` and everything reached from it are valid only during the call.
/// A QoS 1 message is acknowledged (PUBACK), a QoS 2 one PUBRECed, after
/// this returns (with manual acknowledgement, `mqtt_options_set_manual_ack`,
/// when the application calls `mqtt_ack` instead): a message queued for it
/// but not yet delivered when the client disconnects or is freed is sent
/// again by the broker when the session resumes.
pub type mqtt_message_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, message: *const mqtt_message)>;

/// Called when the connection goes up or down (`MQTT5C_EVENT_*`), in order
/// with the messages.
pub type mqtt_connection_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: c_int, reason_code: c_int)>;

/// An MQTT client. Create with `mqtt_client_new`, free with `mqtt_client_free`.
///
/// Threads: any number at once, and its own callbacks.
pub struct mqtt_client {
    pub(crate) client: MqttClient,
    pub(crate) callbacks: Arc<Callbacks>,
    /// The calls inside this client's functions (see `calls`).
    pub(crate) calls: Calls,
    /// Counts the client as live for `mqtt_global_cleanup`; last, so that
    /// it is dropped after the rest.
    _registration: Registration,
}

/// A C pointer handed back to C code; we never dereference it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserData(pub(crate) *mut c_void);
// SAFETY: the library only passes the pointer back to the application's
// callback; thread-safety of what it points to is the application's.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

/// The C message callback type without the Option.
pub(crate) type MessageFn = unsafe extern "C" fn(*mut c_void, *const mqtt_message);

#[derive(Default)]
pub(crate) struct Callbacks {
    message: RwLock<
        Option<(
            unsafe extern "C" fn(*mut c_void, *const mqtt_message),
            UserData,
        )>,
    >,
    connection: RwLock<Option<(unsafe extern "C" fn(*mut c_void, c_int, c_int), UserData)>>,
    pub(super) auth: super::auth::AuthCallback,
    pub(super) pre_connect: super::failover::PreConnectCallback,
    /// Per-subscription callbacks (`mqtt_subscribe_cb`).
    pub(crate) routes: super::subscribe::Routes,
    /// The log callback (`mqtt_set_log_callback`).
    pub(crate) log: super::logging::LogCallback,
    /// Whether the connection of the messages being delivered speaks
    /// 3.1.1: set from each CONNECTED event, which comes in order with
    /// the messages, so a message queued before a reconnect still counts
    /// as from the connection it arrived on.
    on_v311: AtomicBool,
    /// The client's callback gate, shared with it: `on_message` checks it
    /// between the calls it makes for one message.
    gate: Arc<CallbackGate>,
}

thread_local! {
    /// Reused for each message's NUL-terminated topic on delivery threads.
    static TOPIC_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Handler for Callbacks {
    fn on_message(&self, publish: Publish) {
        self.on_message_with_ack(publish, 0);
    }

    /// Returns whether a callback was called (see `Handler`).
    fn on_message_with_ack(&self, publish: Publish, ack_id: u64) -> bool {
        // Per-subscription callbacks first: routed here, on the delivery
        // thread, so they keep the arrival order with everything else.
        let v311 = self.on_v311.load(Ordering::Relaxed);
        let routed = self.routes.targets(&publish, v311);
        if routed.is_empty()
            && self
                .message
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_none()
        {
            return false;
        }
        let buf = TOPIC_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
        let mut msg = mqtt_message::new(publish, buf);
        msg.ack_id = ack_id;
        let mut called: Vec<(MessageFn, UserData)> = Vec::new();
        for &(id, lineage) in &routed {
            // Checked again before each call: the callback before may have
            // freed the client, or ended this route and freed its data.
            if self.gate.is_closed() {
                break;
            }
            // The route as registered now: one replaced since (by a call
            // on another thread, or by the callback before) hands the
            // message to its successor for the same filter; one ended
            // hands it to nobody.
            let Some((cb, ud)) = self.routes.get(id, lineage) else {
                continue;
            };
            if called
                .iter()
                .any(|&(c, u)| c as usize == cb as usize && u == ud)
            {
                continue;
            }
            // SAFETY: a function pointer the application registered, its
            // route still registered; a call that ends the route waits for
            // this call to return. The message outlives the call.
            unsafe { cb(ud.0, &msg) };
            called.push((cb, ud));
        }
        // No route matched, or every one that did has ended since: the
        // message callback's.
        if called.is_empty() && (routed.is_empty() || !self.gate.is_closed()) {
            let cb = *self.message.read().unwrap_or_else(|e| e.into_inner());
            if let Some((cb, ud)) = cb {
                // SAFETY: as above.
                unsafe { cb(ud.0, &msg) };
                called.push((cb, ud));
            }
        }
        TOPIC_BUF.with(|b| *b.borrow_mut() = msg.topic_c);
        !called.is_empty()
    }

    fn on_connection(&self, event: &ConnectionEvent) {
        if let ConnectionEvent::Connected { version, .. } = event {
            let v311 = *version == crate::packet::ProtocolVersion::V311;
            self.on_v311.store(v311, Ordering::Relaxed);
        }
        let cb = *self.connection.read().unwrap_or_else(|e| e.into_inner());
        let Some((cb, ud)) = cb else { return };
        let (ev, code) = match event {
            ConnectionEvent::Connected { .. } => (MQTT5C_EVENT_CONNECTED, 0),
            ConnectionEvent::Disconnected(cause) => (MQTT5C_EVENT_DISCONNECTED, cause_code(cause)),
            ConnectionEvent::Reconnecting { attempt } => (
                MQTT5C_EVENT_RECONNECTING,
                c_int::try_from(*attempt).unwrap_or(c_int::MAX),
            ),
            ConnectionEvent::ResubscribeFailed { filter, failure } => (
                MQTT5C_EVENT_RESUBSCRIBE_FAILED,
                resubscribe_code(filter, failure),
            ),
        };
        // SAFETY: a function pointer the application registered.
        unsafe { cb(ud.0, ev, code) };
    }

    fn on_log(&self, level: crate::client::Level, line: &str) {
        self.log.call(level, line);
    }

    fn on_auth(&self, challenge: &crate::client::AuthChallenge) -> crate::client::AuthAnswer {
        self.auth.answer(challenge)
    }

    fn has_pre_connect(&self) -> bool {
        self.pre_connect.is_set()
    }

    fn before_connect(&self, url: &str, attempt: u32, settings: &mut ClientOptions) -> bool {
        self.pre_connect.call(url, attempt, settings)
    }
}

/// The code of a failed re-subscription; its text goes to this thread's
/// last error, for the callback to read.
fn resubscribe_code(filter: &str, failure: &ResubscribeFailure) -> c_int {
    let what = format!("re-subscription to '{filter}' after a lost session failed");
    let (code, text) = match failure {
        ResubscribeFailure::Refused {
            reason,
            reason_string,
        } => {
            let mut t = format!("{what}: {} (0x{:02X})", reason.description(), *reason as u8);
            if let Some(s) = reason_string {
                t.push_str(": ");
                t.push_str(s);
            }
            (*reason as c_int, t)
        }
        ResubscribeFailure::Timeout => (
            super::error::MQTT5C_ERR_TIMEOUT,
            format!("{what}: no SUBACK within the operation timeout"),
        ),
        ResubscribeFailure::TooLarge => (
            super::error::MQTT5C_ERR_PACKET_TOO_LARGE,
            format!("{what}: the SUBSCRIBE exceeds the server's Maximum Packet Size"),
        ),
        ResubscribeFailure::Protocol(why) => {
            (super::error::MQTT5C_ERR_PROTOCOL, format!("{what}: {why}"))
        }
    };
    set_last_error(text);
    code
}

fn cause_code(cause: &DisconnectCause) -> c_int {
    match cause {
        DisconnectCause::Server(d) => d.reason as c_int,
        DisconnectCause::Client(r) => *r as c_int,
        DisconnectCause::Protocol(r, _) => *r as c_int,
        DisconnectCause::Closed => super::error::MQTT5C_ERR_CONNECTION_LOST,
        DisconnectCause::Io(_) => super::error::MQTT5C_ERR_IO,
        DisconnectCause::KeepAliveTimeout => super::error::MQTT5C_ERR_TIMEOUT,
    }
}

/// Creates a disconnected client. With a persistence directory
/// (`mqtt_options_set_persistence_dir`), opens and locks the client id's
/// store there and loads what an earlier client left in it.
///
/// Ownership: `opts` is copied and stays the caller's (NULL = defaults). The
/// caller owns the client and frees it with `mqtt_client_free`.
/// Returns: NULL on failure, with the reason in `mqtt_last_error()`: a caught
/// panic, a call from a callback while `mqtt_global_cleanup` stops the
/// library's threads, a child of `fork()` from a process whose library
/// threads ran (see `mqtt_global_cleanup`), or with persistence: no client
/// id, the store in use by another process or client (the text names the
/// directory), a file that cannot be read or is not a mqtt5c log of this
/// client id.
/// Blocks: no; the first call in the process (or after
/// `mqtt_global_cleanup`) starts the shared runtime; with persistence, on
/// reading the store; while another thread is inside `mqtt_global_cleanup`.
/// Threads: any.
#[no_mangle]
pub extern "C" fn mqtt_client_new(opts: *const mqtt_options) -> *mut mqtt_client {
    ffi_guard!({
        let options = if opts.is_null() {
            ClientOptions::default()
        } else {
            // SAFETY: non-NULL; the caller passes live options.
            unsafe { (*opts).inner.clone() }
        };
        let registration = match Registration::new() {
            Ok(r) => r,
            Err(_) => return std::ptr::null_mut(),
        };
        let callbacks = Arc::new(Callbacks::default());
        let opened = MqttClient::open(
            options,
            callbacks.clone(),
            registration.handle().clone(),
            callbacks.gate.clone(),
        );
        let client = match opened {
            Ok(c) => c,
            Err(e) => {
                set_last_error(e.to_string());
                return std::ptr::null_mut();
            }
        };
        Box::into_raw(Box::new(mqtt_client {
            client,
            callbacks,
            calls: Calls::default(),
            _registration: registration,
        }))
    })
}

/// Closes the connection (without DISCONNECT, so the broker publishes the
/// will; call `mqtt_disconnect` first for a clean end), stops a
/// reconnection, and frees the client. NULL is a no-op.
///
/// Events and messages still queued for the callbacks are dropped without
/// being delivered, `MQTT5C_EVENT_DISCONNECTED` included (QoS 1/2 messages
/// stay unacknowledged, so the broker sends them again when the session
/// resumes): after `mqtt_disconnect`, a program that needs that event
/// waits for it in its connection callback before it calls this.
///
/// Ownership: consumes `client`. Other threads may be inside calls on the
/// client when this is called (a finalizer of a garbage-collected binding,
/// say): those calls return promptly with an error (`MQTT5C_ERR_BAD_STATE`, or
/// the error of what they waited for, such as `MQTT5C_ERR_CONNECTION_LOST`),
/// and this waits until they have left. So do calls that the client's callbacks
/// make while this waits for them. Any other call that starts once this was
/// called is the caller's bug (it may use freed memory), as is a second free.
/// Blocks: until every call inside the client has left, and until no callback
/// of this client (message, connection, publish completion, subscription, auth,
/// log) runs on another thread; then calls the log callback's `free_user_data`
/// (see `mqtt_set_log_callback`); after this returns none runs any more, so every
/// `user_data` given to the client may be freed.
/// Threads: any, including this client's own callbacks (then it does not wait
/// for that callback, which must not use the client afterwards; its `message`
/// stays valid until it returns). From the TLS signer callback running inside
/// this client's `mqtt_connect` (on that call's thread), the client is closed
/// at once and freed when that `mqtt_connect` returns (`MQTT5C_ERR_BAD_STATE`);
/// the log callback's `free_user_data` runs then. Not two clients from each other's callbacks
/// at the same time (a callback of B frees A while a callback of A frees B):
/// each free waits for the other's running callback, a deadlock.
#[no_mangle]
pub extern "C" fn mqtt_client_free(client: *mut mqtt_client) {
    ffi_guard!({
        if client.is_null() {
            return;
        }
        // SAFETY: made by mqtt_client_new and not freed yet (the caller's
        // promise); only borrowed until no call is inside it any more.
        let c = unsafe { &*client };
        c.client.close();
        if c.calls.wait_until_none_inside(client) {
            // SAFETY: the caller gives up ownership, and no call uses it
            // any more.
            unsafe { finish_free(client) };
        }
        // Else called from inside a call on this client on this thread
        // (its TLS signer, in the handshake of its `mqtt_connect`): the
        // client is closed, no callback runs any more, and that call,
        // which returns MQTT5C_ERR_BAD_STATE, frees it as it leaves.
    })
}

/// The end of `mqtt_client_free`, once no call is inside the client.
///
/// # Safety
/// `client` was made by `mqtt_client_new`, closed, and is used by nothing
/// any more.
pub(crate) unsafe fn finish_free(client: *mut mqtt_client) {
    // SAFETY: live until the drop below (the caller's promise).
    let c = unsafe { &*client };
    // No callback runs any more: the log callback's `user_data` goes.
    c.callbacks.log.release_all();
    // SAFETY: made by Box::into_raw in mqtt_client_new; ownership given up.
    drop(unsafe { Box::from_raw(client) });
}

/// Sets (or with `cb` NULL, removes) the message callback.
///
/// Ownership: `user_data` is passed back as is; it must stay valid until the
/// callback is replaced (this function returned again) or the client freed.
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT`.
/// Blocks: until the callbacks of this client that were running on other
/// threads when it was called have returned (calls that start later use the new
/// callback): once it returns, the old `user_data` is unused and may be freed.
/// Called from inside a callback of this client it does not wait (that callback
/// may be the old one, and waiting for another could deadlock): the old
/// `user_data` may then be in use until the callbacks running at that moment
/// have returned (that one, and an auth callback answering a challenge on
/// another thread).
/// Threads: any, including callbacks.
///
/// Callback threads: the message, connection and completion callbacks of
/// all clients run on one small pool of library threads (4, started when
/// needed, gone after a second without work), one callback at a time per
/// client, in order; never on the thread that reads the socket. A callback
/// may block, in library calls or on the application's own locks. When
/// every pool thread has been inside a callback for 100 ms with no
/// callback returning while other clients' events wait (callbacks waiting
/// for each other), the pool adds a thread, and again every 100 ms while
/// that lasts; the extra threads leave once nothing waits.
#[no_mangle]
pub extern "C" fn mqtt_set_message_callback(
    client: *mut mqtt_client,
    cb: mqtt_message_cb,
    user_data: *mut c_void,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        *c.callbacks
            .message
            .write()
            .unwrap_or_else(|e| e.into_inner()) = cb.map(|f| (f, UserData(user_data)));
        c.leave_then_wait_for_callbacks();
        MQTT5C_OK
    })
}

/// Sets (or with `cb` NULL, removes) the connection callback.
///
/// Ownership, Returns, Blocks, Threads: as `mqtt_set_message_callback`.
#[no_mangle]
pub extern "C" fn mqtt_set_connection_callback(
    client: *mut mqtt_client,
    cb: mqtt_connection_cb,
    user_data: *mut c_void,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        *c.callbacks
            .connection
            .write()
            .unwrap_or_else(|e| e.into_inner()) = cb.map(|f| (f, UserData(user_data)));
        c.leave_then_wait_for_callbacks();
        MQTT5C_OK
    })
}

/// Connects to the broker at `url`; the scheme (in any letter case) picks
/// the transport: "mqtt://host:port" or "tcp://" (TCP, port 1883 by
/// default), "mqtts://", "ssl://" or "tls://" (TLS, 8883),
/// "ws://host:port/path" (WebSocket, 80, path "/mqtt" by default), "wss://"
/// (WebSocket over TLS, 443), "unix:///path/to/socket". IPv6 literals in
/// brackets: "mqtt://[::1]:1883". When this attempt fails, the servers
/// added with `mqtt_options_add_server` are tried in turn, each within the
/// connect timeout, and the result is the first success or the last
/// failure; a CONNACK redirection is followed when
/// `mqtt_options_set_follow_redirects` allows it. A library built without
/// TLS or WebSocket (Cargo features `tls`, `websocket`) refuses the URLs
/// that need them at once, before any connection attempt.
///
/// Ownership: `url` is borrowed for the call.
/// Returns: `MQTT5C_OK`; a CONNACK reason code >= 0x80 when the broker refuses
/// (e.g. 0x86 bad user name or password, 0x87 not authorized);
/// `MQTT5C_ERR_INVALID_ARGUMENT` (malformed URL or unknown scheme, with the
/// reason in `mqtt_last_error()`; a URL whose transport this build leaves out,
/// the text beginning "this build of libmqtt5c leaves TLS out" or "...
/// WebSocket out"), `MQTT5C_ERR_TLS` (TLS handshake failed: unknown issuer,
/// expired certificate, name mismatch, alert from the server such as
/// "certificate required"; the text says which), `MQTT5C_ERR_IO`,
/// `MQTT5C_ERR_TIMEOUT`, `MQTT5C_ERR_ALREADY_CONNECTED`, `MQTT5C_ERR_PROTOCOL`
/// (also a refused WebSocket upgrade). With enhanced authentication
/// (`mqtt_options_set_auth`) the auth callback answers the broker's challenges
/// meanwhile, and is asked to accept the CONNACK success (with the broker's
/// final data, or NULL); when it aborts or refuses, the return value is the
/// reason code of the DISCONNECT we sent; a broker that breaks the exchange
/// (AUTH 0x18 without our Authentication Method) gets DISCONNECT 0x82 and the
/// result is `MQTT5C_ERR_PROTOCOL`.
/// Blocks: until CONNACK or the connect timeout, and then until no auth
/// callback of this client runs on another thread (one it started may still run
/// after a timeout); when called from inside a callback of this client, not
/// longer than until the client is being freed. The timeout covers nothing
/// after CONNACK, so once the connection is up and `MQTT5C_EVENT_CONNECTED`
/// queued, the call returns `MQTT5C_OK`. When the broker resumed the session,
/// the QoS 1/2 messages still in flight are resent after that, in the
/// background: in the order first sent, at most the broker's new Receive
/// Maximum in flight at a time, and before any new QoS 1/2 publish (see
/// `mqtt_publish`); when it did not, they are published afresh, in order. A
/// reconnection in progress (`mqtt_options_set_auto_reconnect`) is stopped
/// first; if it had just succeeded, the result is
/// `MQTT5C_ERR_ALREADY_CONNECTED`. When the attempt fails, the client keeps
/// trying in the background if `mqtt_options_set_connect_retry` is on (the
/// error is returned all the same; see there); otherwise the calls that waited
/// for the stopped reconnection return `MQTT5C_ERR_CONNECTION_LOST`.
/// `mqtt_client_free` on another thread makes it return at once
/// (`MQTT5C_ERR_BAD_STATE`).
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_connect(client: *mut mqtt_client, url: *const c_char) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        let url = try_str!(url, "url");
        let r = block_on_client(&c.client, c.client.connect(url));
        c.leave_then_wait_for_auth_callbacks();
        match r {
            Ok(info) => info.reason as c_int,
            Err(e) => fail(e),
        }
    })
}

/// The checked arguments of `mqtt_publish` and `mqtt_publish_async`.
struct PublishArgs<'a> {
    client: ClientCall<'a>,
    topic: &'a str,
    payload: &'a [u8],
    qos: QoS,
    properties: Properties,
}

/// Checks the arguments the two publish functions share (same checks,
/// same texts); `Err` is the code to return.
fn publish_args<'a>(
    client: *mut mqtt_client,
    topic: *const c_char,
    payload: *const c_void,
    len: usize,
    qos: c_int,
    props: *const mqtt_properties,
) -> Result<PublishArgs<'a>, c_int> {
    let client = try_client!(client);
    let topic = try_str!(topic, "topic");
    let payload = try_slice!(payload, len, "payload");
    let Some(qos) = u8::try_from(qos).ok().and_then(QoS::from_u8) else {
        set_last_error(format!("invalid QoS {qos}: must be 0, 1 or 2"));
        return Err(MQTT5C_ERR_INVALID_ARGUMENT);
    };
    // SAFETY: NULL or a live mqtt_properties (caller's promise).
    let properties = unsafe { mqtt_properties::clone_or_empty(props) };
    Ok(PublishArgs {
        client,
        topic,
        payload,
        qos,
        properties,
    })
}

/// Publishes `len` bytes of `payload` to `topic`.
///
/// With automatic reconnection (`mqtt_options_set_auto_reconnect`) the call
/// rides out a lost connection: a QoS 1/2 message in flight when it is
/// lost is resent on the next connection (published afresh when the
/// broker lost the session), and the call returns its acknowledgement; a
/// publish made while the client reconnects goes into the offline queue
/// (`mqtt_options_set_offline_queue`) and goes out after the reconnect.
///
/// Ownership: everything is borrowed for the call (the payload is copied once,
/// into the packet or the queue). `payload` may be NULL when `len` is 0;
/// `props` may be NULL.
/// Returns: for QoS 0 `MQTT5C_OK` once written (or queued); for QoS 1 the
/// PUBACK reason, for QoS 2 the PUBCOMP reason or a failing PUBREC's (0, 0x10
/// no matching subscribers, or >= 0x80 a refusal); or
/// `MQTT5C_ERR_INVALID_ARGUMENT` (bad topic, QoS, a property a client may not
/// publish, e.g. Subscription Identifier), `MQTT5C_ERR_PACKET_TOO_LARGE`,
/// `MQTT5C_ERR_NOT_CONNECTED` (no connection and none coming),
/// `MQTT5C_ERR_QUEUE_FULL` (reconnecting, and the offline queue refused the
/// message, or dropped it later to make room: policy
/// `MQTT5C_QUEUE_DROP_OLDEST`), `MQTT5C_ERR_EXPIRED` (its Message Expiry
/// Interval passed in the queue), `MQTT5C_ERR_CONNECTION_LOST`,
/// `MQTT5C_ERR_TIMEOUT`, `MQTT5C_ERR_PROTOCOL` (the broker acknowledged with
/// the wrong packet for the QoS, MQTT v5 4.3: PUBACK or a PUBCOMP before PUBREC
/// for QoS 2, PUBREC or PUBCOMP for QoS 1; we sent DISCONNECT 0x82 and the
/// message is treated as after `MQTT5C_ERR_CONNECTION_LOST`, never as
/// delivered). On an argument error nothing is sent and the connection is
/// untouched. What becomes of the message after `MQTT5C_ERR_TIMEOUT` (the
/// operation timeout passed, `mqtt_options_set_operation_timeout`) or
/// `MQTT5C_ERR_CONNECTION_LOST` (the connection was lost without automatic
/// reconnection, or `mqtt_disconnect` stopped the reconnection): a QoS 1/2
/// message is not withdrawn. It stays in flight in the session, or in the
/// offline queue, and goes out on the next connection: resent (with DUP) if the
/// session resumes, published afresh on a new session. So it may still be
/// delivered, and publishing it again may deliver it twice. (A message larger
/// than the new connection's Maximum Packet Size is then discarded without
/// being sent, MQTT-3.1.2-25; logged, see `mqtt_set_log_callback`.) With a persistence
/// directory (`mqtt_options_set_persistence_dir`), `MQTT5C_ERR_PERSISTENCE`
/// when a QoS 1/2 message could not be stored.
/// Blocks: QoS 0 until written or queued (right after a reconnect, first until
/// the messages in flight at the loss and the offline queue went out); QoS 1/2
/// until acknowledged (first until the messages in flight at a reconnect and
/// the offline queue went out, and until the broker's Receive Maximum allows
/// another message in flight; with persistence, also until the message is on
/// disk), across reconnects; at most the operation timeout.
/// Threads: any, concurrently, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_publish(
    client: *mut mqtt_client,
    topic: *const c_char,
    payload: *const c_void,
    len: usize,
    qos: c_int,
    retain: bool,
    props: *const mqtt_properties,
) -> c_int {
    ffi_guard!({
        let a = match publish_args(client, topic, payload, len, qos, props) {
            Ok(a) => a,
            Err(rc) => return rc,
        };
        let client = &a.client.client;
        let outcome = match client.outgoing(a.topic, a.qos, retain, a.properties) {
            Err(e) => Err(e),
            Ok(publish) => {
                // QoS 0 on a free writer: written on this thread, no
                // block_on (docs/performance.md). Inside the runtime's
                // context all the same, for what a failed write starts.
                let now = {
                    let _rt = client.runtime().enter();
                    client.publish_now(&publish, a.payload)
                };
                match now {
                    PublishNow::Done(r) => r,
                    PublishNow::Rest(rest) => block_on_client(client, client.publish_rest(rest)),
                    PublishNow::NotNow => {
                        block_on_client(client, client.publish_outgoing(publish, a.payload))
                    }
                }
            }
        };
        match outcome {
            Ok(ack) => reason_result(
                "publish",
                ack.reason,
                crate::client::reason_string(&ack.properties),
            ),
            Err(e) => fail_on(&a.client.client, e),
        }
    })
}

/// Called once for each `mqtt_publish_async` that returned `MQTT5C_OK`, on
/// the client's callback thread, in order with the message and connection
/// callbacks. `result` is `MQTT5C_OK` for QoS 0; for QoS 1 the PUBACK reason,
/// for QoS 2 the PUBCOMP reason or a failing PUBREC's (0, 0x10 no matching
/// subscribers, >= 0x80 a refusal, with the text in `mqtt_last_error()`);
/// or `MQTT5C_ERR_CONNECTION_LOST`, `MQTT5C_ERR_QUEUE_FULL`, `MQTT5C_ERR_EXPIRED`
/// (see `mqtt_publish_async`). `ack_props` (reason string, user
/// properties of the acknowledgement) is never NULL, possibly empty, and
/// valid only during the call.
pub type mqtt_publish_cb = Option<
    unsafe extern "C" fn(user_data: *mut c_void, result: c_int, ack_props: *const mqtt_properties),
>;

/// Publishes like `mqtt_publish` but returns once the PUBLISH is written,
/// without waiting for the acknowledgement; `cb` reports it later. Same
/// checks, same errors, same texts as `mqtt_publish`.
///
/// Flow control: before writing a QoS 1/2 message, it waits for a free
/// slot of the broker's Receive Maximum (mosquitto: 20 by default), so at
/// most that many messages are in flight and there is no unbounded queue
/// (unlike `mosquitto_publish`). A slot is freed when the acknowledgement
/// is read and its callback queued; while callbacks are slow, the queue of
/// callbacks (`mqtt_options_set_delivery_queue`) fills, the library
/// stops reading, and publishing waits too.
///
/// Ownership: `topic`, `payload`, `props` are borrowed for the call (the
/// payload is copied once, into the packet). `payload` may be NULL when `len`
/// is 0; `props` and `cb` may be NULL. `user_data` is passed back to `cb` as is
/// and must stay valid until `cb` ran, or the client is freed:
/// `mqtt_client_free` drops the callbacks of publishes not yet completed
/// without calling them (their `user_data` is not handed back; count your own
/// if you must release it).
/// Returns: `MQTT5C_OK` once written, or queued while the client reconnects
/// (automatic reconnection on; see `mqtt_options_set_offline_queue`); then `cb`
/// (if not NULL) is called exactly once: QoS 0 with `MQTT5C_OK` right after the
/// write, QoS 1/2 with the acknowledgement. With automatic reconnection, a
/// message in flight when the connection is lost, or queued, completes after it
/// went out on a later connection; it completes with `MQTT5C_ERR_QUEUE_FULL`
/// when the full queue dropped it (policy `MQTT5C_QUEUE_DROP_OLDEST`),
/// `MQTT5C_ERR_EXPIRED` when its Message Expiry Interval passed in the queue.
/// It completes with `MQTT5C_ERR_CONNECTION_LOST` when the connection ends
/// (also during the write) and no reconnection follows, or `mqtt_disconnect`
/// stops it: the message stays in the session (or the queue) and goes out on
/// the next connection (or is discarded then, if it is larger than the new
/// connection's Maximum Packet Size, as `mqtt_publish` says), but its outcome
/// has been reported. It completes with `MQTT5C_ERR_PROTOCOL` when the broker
/// acknowledged it with the wrong packet (see `mqtt_publish`; the connection
/// then ends; the message stays in the session, as after
/// `MQTT5C_ERR_CONNECTION_LOST`). Or a negative error, as `mqtt_publish`
/// (`MQTT5C_ERR_INVALID_ARGUMENT`, `MQTT5C_ERR_PACKET_TOO_LARGE`,
/// `MQTT5C_ERR_NOT_CONNECTED`, `MQTT5C_ERR_QUEUE_FULL`,
/// `MQTT5C_ERR_CONNECTION_LOST`, `MQTT5C_ERR_PERSISTENCE`), and then `cb` is
/// never called. With a persistence directory, a QoS 1/2 message is on disk
/// when this returns `MQTT5C_OK` (see `mqtt_options_set_persistence_dir`). The
/// operation timeout does not apply: nothing waits for the broker's answer.
/// Blocks: until written or queued (QoS 1/2 with persistence: and on disk), and
/// first, right after a reconnect, until the messages in flight at the loss and
/// the offline queue went out (any QoS), until a Receive Maximum slot is free
/// (QoS 1/2), or room is free in the callback queue (QoS 0 with a `cb`).
/// Threads: any, concurrently, including callbacks (`cb` itself may call any
/// function, blocking ones included, `mqtt_publish_async` too).
#[no_mangle]
pub extern "C" fn mqtt_publish_async(
    client: *mut mqtt_client,
    topic: *const c_char,
    payload: *const c_void,
    len: usize,
    qos: c_int,
    retain: bool,
    props: *const mqtt_properties,
    cb: mqtt_publish_cb,
    user_data: *mut c_void,
) -> c_int {
    ffi_guard!({
        let a = match publish_args(client, topic, payload, len, qos, props) {
            Ok(a) => a,
            Err(rc) => return rc,
        };
        let then = cb.map(|f| completion(f, UserData(user_data)));
        let published =
            a.client
                .client
                .publish_then(a.topic, a.payload, a.qos, retain, a.properties, then);
        match block_on_client(&a.client.client, published) {
            Ok(()) => MQTT5C_OK,
            Err(e) => fail_on(&a.client.client, e),
        }
    })
}

/// The C callback of `mqtt_publish_async` as the client's completion.
fn completion(
    f: unsafe extern "C" fn(*mut c_void, c_int, *const mqtt_properties),
    ud: UserData,
) -> Completion {
    Box::new(move |r: Result<Ack, crate::client::Error>| {
        // The whole (Send) wrapper is captured, not its pointer field.
        let ud = ud;
        let (code, props) = match r {
            Ok(ack) => {
                let why = crate::client::reason_string(&ack.properties);
                (reason_result("publish", ack.reason, why), ack.properties)
            }
            Err(e) => (fail(e), Properties::new()),
        };
        let props = mqtt_properties::from_inner(props);
        // SAFETY: a function pointer the application gave with this
        // publish; the properties outlive the call.
        unsafe { f(ud.0, code, &props) };
    })
}

/// Subscription options from `qos | MQTT5C_SUB_*` flags.
pub(crate) fn sub_options(options: c_int) -> Result<SubscriptionOptions, String> {
    if !(0..=0x3F).contains(&options) {
        return Err(format!(
            "invalid subscription options 0x{options:X}: unknown bits set"
        ));
    }
    let qos = QoS::from_u8((options & 0x03) as u8).ok_or_else(|| {
        format!(
            "invalid subscription QoS {}: must be 0, 1 or 2",
            options & 3
        )
    })?;
    let retain_handling = match (options >> 4) & 0x03 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => {
            return Err(
                "MQTT5C_SUB_RETAIN_HANDLING_NEW_ONLY and MQTT5C_SUB_RETAIN_HANDLING_NONE exclude each other"
                    .into(),
            )
        }
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: options & MQTT5C_SUB_NO_LOCAL != 0,
        retain_as_published: options & MQTT5C_SUB_RETAIN_AS_PUBLISHED != 0,
        retain_handling,
    })
}

/// Subscribes to `filter` with `options` = QoS | `MQTT5C_SUB_*` flags.
///
/// With automatic reconnection, a call made while the client reconnects
/// waits for the new connection, and a SUBSCRIBE whose connection is lost
/// before its SUBACK is sent again on the next one (within the operation
/// timeout). A granted filter is subscribed again after a reconnect that
/// lost the session (`mqtt_options_set_resubscribe`).
///
/// Ownership: borrowed for the call; `props` may be NULL.
/// Returns: the SUBACK reason code: the granted QoS (0, 1, 2) or a refusal (>=
/// 0x80, e.g. 0x87 not authorized); or `MQTT5C_ERR_INVALID_ARGUMENT`,
/// `MQTT5C_ERR_NOT_CONNECTED`, `MQTT5C_ERR_CONNECTION_LOST` (lost without
/// automatic reconnection, or `mqtt_disconnect` stopped it),
/// `MQTT5C_ERR_TIMEOUT` (the operation timeout passed; the subscription may
/// still have been made).
/// Blocks: until SUBACK; when it replaces a route of `mqtt_subscribe_cb`, then
/// until a call of that route's callback running on another thread has returned
/// (not from inside a callback of this client), after which the route's
/// `user_data` may be freed.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_subscribe(
    client: *mut mqtt_client,
    filter: *const c_char,
    options: c_int,
    props: *const mqtt_properties,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        let filter = try_str!(filter, "filter");
        let options = match sub_options(options) {
            Ok(o) => o,
            Err(e) => {
                set_last_error(e);
                return MQTT5C_ERR_INVALID_ARGUMENT;
            }
        };
        let Ok(filter) = MqttStr::new(filter) else {
            set_last_error("filter is longer than 65535 bytes");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        // SAFETY: NULL or a live mqtt_properties (caller's promise).
        let properties = unsafe { mqtt_properties::clone_or_empty(props) };
        let filters = vec![SubscribeFilter {
            filter: filter.clone(),
            options,
        }];
        let (rc, ended) = match block_on_client(&c.client, c.client.subscribe(filters, properties))
        {
            Ok(ack) => single_result(&c, "subscribe", filter, &ack.reasons, &ack.properties),
            Err(e) => (fail_on(&c.client, e), false),
        };
        super::subscribe::leave(c, rc, ended)
    })
}

/// The result of a one-filter SUBSCRIBE or UNSUBSCRIBE: its reason code,
/// and whether it ended a `mqtt_subscribe_cb` route.
fn single_result(
    c: &mqtt_client,
    what: &str,
    filter: MqttStr,
    reasons: &[ReasonCode],
    properties: &Properties,
) -> (c_int, bool) {
    let ended = match super::subscribe::settle_routes(c, what, &[filter], reasons) {
        Ok(ended) => ended,
        Err(rc) => return (rc, false),
    };
    // settle_routes checked there is exactly one reason code.
    let why = crate::client::reason_string(properties);
    (reason_result(what, reasons[0], why), ended)
}

/// Unsubscribes from `filter`.
///
/// Ownership: borrowed for the call; `props` may be NULL.
/// Returns: the UNSUBACK reason code (0, 0x11 no subscription existed, or >=
/// 0x80), or a negative `MQTT5C_ERR_*` as `mqtt_subscribe` (which it follows
/// across reconnects too).
/// Blocks: until UNSUBACK; when it ends a route of `mqtt_subscribe_cb`, then as
/// `mqtt_subscribe`.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_unsubscribe(
    client: *mut mqtt_client,
    filter: *const c_char,
    props: *const mqtt_properties,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        let filter = try_str!(filter, "filter");
        let Ok(filter) = MqttStr::new(filter) else {
            set_last_error("filter is longer than 65535 bytes");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        // SAFETY: NULL or a live mqtt_properties (caller's promise).
        let properties = unsafe { mqtt_properties::clone_or_empty(props) };
        let unsubscribed = c.client.unsubscribe(vec![filter.clone()], properties);
        let (rc, ended) = match block_on_client(&c.client, unsubscribed) {
            Ok(ack) => single_result(&c, "unsubscribe", filter, &ack.reasons, &ack.properties),
            Err(e) => (fail_on(&c.client, e), false),
        };
        super::subscribe::leave(c, rc, ended)
    })
}

/// Sends DISCONNECT with `reason_code` (0 normal; 0x04 asks the broker to
/// publish the will) and closes the connection. The acknowledgements of
/// the QoS 1/2 messages whose callbacks returned go out first, in the same
/// write (the broker does not send those again). The connection callback
/// then reports `MQTT5C_EVENT_DISCONNECTED` with this reason, on the
/// callback thread, usually after this returned: `mqtt_client_free` drops
/// the event if it has not been delivered yet (and the messages still
/// queued), so a program that needs it waits for it in the connection
/// callback before freeing the client. The client can connect again
/// afterwards. While the client is reconnecting
/// (`mqtt_options_set_auto_reconnect`) it stops the reconnection instead:
/// nothing is sent and no further event fires (the loss was reported);
/// calls waiting for the reconnection return `MQTT5C_ERR_CONNECTION_LOST`
/// and publish callbacks waiting for it are called with that code, while
/// their messages stay queued or in the session for the next
/// `mqtt_connect`.
///
/// Ownership: `props` (may be NULL) is borrowed.
/// Returns: `MQTT5C_OK` (also when it stopped a reconnection),
/// `MQTT5C_ERR_NOT_CONNECTED` (neither connected nor reconnecting),
/// `MQTT5C_ERR_INVALID_ARGUMENT` (a reason code that is not a DISCONNECT
/// reason, spec 3.14.2.1; a property not allowed in DISCONNECT; a Session
/// Expiry Interval above 0 when the CONNECT of this connection had none, spec
/// 3.14.2.2.2: nothing is sent and the connection stays up),
/// `MQTT5C_ERR_TIMEOUT` (DISCONNECT could not be written in time, see Blocks;
/// the connection is closed all the same and the broker, without DISCONNECT,
/// publishes the will).
/// Blocks: until DISCONNECT is written (or a reconnection attempt in progress
/// is abandoned); when a write in progress or a broker that stopped reading
/// holds it up, at most the keep-alive interval or the connect timeout,
/// whichever is shorter (the connect timeout when keep-alive is 0), then the
/// socket is closed anyway. An `mqtt_connect` running on another thread is
/// waited for first (up to its connect timeout, and as long
/// as its TLS signer callback takes); what it connected is then
/// disconnected.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_disconnect(
    client: *mut mqtt_client,
    reason_code: c_int,
    props: *const mqtt_properties,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        // Whether the code suits DISCONNECT is the client's check (the
        // reason table); here only whether it is a reason code at all.
        let reason = u8::try_from(reason_code).ok().and_then(ReasonCode::from_u8);
        let Some(reason) = reason else {
            set_last_error(format!("0x{reason_code:X} is not a DISCONNECT reason code"));
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        // SAFETY: NULL or a live mqtt_properties (caller's promise).
        let properties = unsafe { mqtt_properties::clone_or_empty(props) };
        match block_on_client(&c.client, c.client.disconnect(reason, properties)) {
            Ok(()) => MQTT5C_OK,
            Err(e) => fail(e),
        }
    })
}

/// Whether the client is connected now.
///
/// Returns: true or false, never an error code (which C would read as true):
/// false for NULL too, with `mqtt_last_error()` saying so.
/// Blocks: no.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_is_connected(client: *mut mqtt_client) -> bool {
    ffi_guard!({ try_client!(client).client.is_connected() })
}
