//! Several servers, redirection, and the pre-connect callback: where a
//! connection attempt goes and with what credentials (see
//! `client::attempt` and `client::redirect`).

use super::client::{mqtt_client, UserData};
use super::error::{set_last_error, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_OK};
use super::options::mqtt_options;
use crate::client::ClientOptions;
use crate::transport::BrokerUrl;
use std::ffi::{c_char, c_void, CString};
use std::os::raw::{c_int, c_uint};
use std::sync::RwLock;

/// Adds a further server, tried after the URL given to `mqtt_connect`
/// and the servers added before it. `url` takes every form `mqtt_connect`
/// accepts (each server its own transport; the TLS settings of the
/// options apply to each TLS one). Adding a URL twice, or the one given
/// to `mqtt_connect`, changes nothing: each server is tried once a round.
///
/// `mqtt_connect` tries the URL it is given, then, if that attempt fails,
/// these servers in turn, each within the connect timeout, and returns
/// the first success or the last failure (each failure is logged, see
/// `mqtt_set_log_callback`). With automatic reconnection
/// (`mqtt_options_set_auto_reconnect`) every reconnection makes rounds: a round tries each server
/// once, first the one the client was last connected to, then the URL
/// given to `mqtt_connect`, then these in the order added; the delay is
/// applied per round (waited before it, doubled after each failed round);
/// `MQTT5C_EVENT_RECONNECTING` fires before each attempt, numbered on
/// across the rounds.
///
/// Sessions: a session lives on one broker (or one cluster sharing
/// sessions). A reconnection goes back to the server of the last
/// connection first, so that a session with a Session Expiry Interval is
/// resumed there; a failover to another broker usually finds no session
/// (CONNACK Session Present 0): the client then publishes the
/// unacknowledged QoS 1/2 messages afresh and subscribes again
/// (`mqtt_options_set_resubscribe`), as after any lost session.
///
/// Ownership: `url` is copied.
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts or url; a
/// malformed URL or an unknown scheme, with the reason in `mqtt_last_error()`;
/// a URL whose transport this build leaves out, see `mqtt_connect`; the options
/// are then unchanged).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_add_server(opts: *mut mqtt_options, url: *const c_char) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let url = try_str!(url, "url");
        match BrokerUrl::parse(url) {
            Ok(u) => {
                if !opts.inner.servers.contains(&u) {
                    opts.inner.servers.push(u);
                }
                MQTT5C_OK
            }
            Err(e) => {
                set_last_error(format!("mqtt_options_add_server: {e}"));
                MQTT5C_ERR_INVALID_ARGUMENT
            }
        }
    })
}

/// Follows server redirections, at most `max_hops` in a row; 0 (the
/// default) turns them off. A broker may refuse a connection with CONNACK
/// 0x9C (Use another server) or 0x9D (Server moved), or end one with
/// DISCONNECT 0x9C / 0x9D, and name another server in a Server Reference
/// property (MQTT v5 4.11; the spec leaves its format open). Accepted
/// references: "host", "host:port", "[v6addr]:port" (same transport as
/// the connection sent away, same WebSocket path, the scheme's default
/// port when none is given), a URL in the forms `mqtt_connect` takes, or
/// a space-separated list of these (the first is used).
///
/// Never to a weaker transport: the transport stays the same (mqtts stays
/// mqtts, wss stays wss) or gains TLS (mqtt to mqtts, ws to wss); a
/// reference to anything else is refused, as is any from a unix://
/// connection. A TLS connection to the new server verifies its
/// certificate against the new host's name (a server name set with
/// `mqtt_options_set_tls_server_name`, if any, is for the configured
/// servers only). While certificate verification is off
/// (`mqtt_options_set_tls_insecure_skip_verify`) no redirect to a TLS
/// server is followed: its name could not be verified. The credentials
/// and everything else of the options go to the new server.
///
/// A CONNACK redirection is followed within the same attempt (the
/// `mqtt_connect` call, or one reconnect attempt), each hop within the
/// connect timeout. A DISCONNECT redirection needs automatic
/// reconnection: the reconnection goes to the new server first (a hop),
/// then, if that fails, to the configured servers as usual. The hop
/// count starts again after each successful connection. A redirection
/// not followed (off, more than `max_hops`, a weaker transport,
/// verification off, a malformed reference) is logged (`mqtt_set_log_callback`); for a CONNACK,
/// `mqtt_connect` returns the refusal's reason code (0x9C or 0x9D) and
/// `mqtt_last_error()` says where the broker sent the client and why it
/// did not go. See the README on why to be careful with redirects.
///
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_follow_redirects(
    opts: *mut mqtt_options,
    max_hops: c_uint,
) -> c_int {
    ffi_guard!({
        try_mut!(opts, "opts").inner.follow_redirects = max_hops;
        MQTT5C_OK
    })
}

/// Called before every connection attempt: each one `mqtt_connect` makes
/// (one per server, see `mqtt_options_add_server`), each attempt of an
/// automatic reconnection, and each redirection followed
/// (`mqtt_options_set_follow_redirects`). `url` is where the attempt goes
/// (scheme in its canonical form: mqtt, mqtts, ws, wss, unix; port always
/// shown); `attempt` its number, from 1 for each `mqtt_connect` call and
/// for each reconnection (the number `MQTT5C_EVENT_RECONNECTING` carried
/// just before; a redirection keeps the number of its attempt).
///
/// `opts` is the client's own copy of its connect settings: change it
/// with the usual setters and the changes hold for this attempt and the
/// later ones: `mqtt_options_set_credentials` (user name, password),
/// `mqtt_options_set_auth` (Authentication Method and Data),
/// `mqtt_options_set_connect_properties` and the other CONNECT property
/// setters (except Receive Maximum, Topic Alias Maximum, Maximum Packet
/// Size and Request Response Information, which keep the values the
/// client was made with). Other settings changed there are ignored. It
/// is the place for credentials that expire between reconnects (a JWT, a
/// SAS token): fetch a fresh one and set it. Secrets set there are wiped
/// from memory like those of `mqtt_options_set_credentials`. `url` and
/// `opts` are valid only during the call; do not free `opts`.
///
/// Return 0 to make the attempt, non-zero to skip it (the next server, or
/// the next round of a reconnection, comes next; changes made to `opts`
/// are kept). `mqtt_connect` whose every attempt was skipped returns
/// `MQTT5C_ERR_NOT_CONNECTED`, with `mqtt_last_error()` saying so.
///
/// Runs on a library thread, never on the thread that reads the socket
/// nor on the thread inside `mqtt_connect`, while the attempt waits for
/// it (the connect timeout starts after it). It may block (fetching a
/// token over the network, say) and may call the client's functions,
/// except `mqtt_connect` and `mqtt_disconnect`, which return
/// `MQTT5C_ERR_INVALID_ARGUMENT` there (they would wait for the attempt,
/// which waits for the callback); return non-zero to skip instead.
/// While it runs the client is not connected: a publish queues (during
/// a reconnection) or returns `MQTT5C_ERR_NOT_CONNECTED`. A call that would
/// wait for the reconnection (a QoS 1/2 `mqtt_publish`, `mqtt_subscribe`,
/// `mqtt_unsubscribe`, `mqtt_request` during a reconnection) returns
/// `MQTT5C_ERR_INVALID_ARGUMENT` at once instead of holding the
/// reconnection until its operation timeout; `mqtt_publish_async` queues.
pub type mqtt_pre_connect_cb = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        url: *const c_char,
        attempt: c_uint,
        opts: *mut mqtt_options,
    ) -> c_int,
>;

type PreConnectFn =
    unsafe extern "C" fn(*mut c_void, *const c_char, c_uint, *mut mqtt_options) -> c_int;

/// The client's pre-connect callback, if one is set. Its calls pass the
/// client's callback gate (`client::attempt`), which is how
/// `mqtt_set_pre_connect_callback` and `mqtt_client_free` wait for them.
#[derive(Default)]
pub(super) struct PreConnectCallback {
    callback: RwLock<Option<(PreConnectFn, UserData)>>,
}

impl PreConnectCallback {
    pub(super) fn is_set(&self) -> bool {
        self.callback
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Runs the C callback with `settings` as its `mqtt_options`; true
    /// when it returned 0 (or none is set any more).
    pub(super) fn call(&self, url: &str, attempt: u32, settings: &mut ClientOptions) -> bool {
        let cb = *self.callback.read().unwrap_or_else(|e| e.into_inner());
        let Some((cb, ud)) = cb else {
            return true;
        };
        // A parsed URL has no control characters, NUL included.
        let url = CString::new(url).unwrap_or_default();
        let mut opts = mqtt_options {
            inner: std::mem::take(settings),
        };
        // SAFETY: a function pointer the application registered; `url`
        // and `opts` outlive the call.
        let rc = unsafe { cb(ud.0, url.as_ptr(), attempt, &mut opts) };
        *settings = opts.inner;
        rc == 0
    }
}

/// Sets (or with `cb` NULL, removes) the callback run before every
/// connection attempt (see `mqtt_pre_connect_cb`). Removing it leaves the
/// settings as the last call left them.
///
/// Ownership: `user_data` is passed back as is; it must stay valid until the
/// callback is replaced (this function returned again) or the client freed.
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL client).
/// Blocks: as `mqtt_set_message_callback`, until the callbacks of this client
/// running on other threads when it was called (a pre-connect callback of an
/// attempt in progress included) have returned, except when called from inside
/// a callback of this client.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_set_pre_connect_callback(
    client: *mut mqtt_client,
    cb: mqtt_pre_connect_cb,
    user_data: *mut c_void,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        *c.callbacks
            .pre_connect
            .callback
            .write()
            .unwrap_or_else(|e| e.into_inner()) = cb.map(|f| (f, UserData(user_data)));
        c.leave_then_wait_for_callbacks();
        MQTT5C_OK
    })
}
