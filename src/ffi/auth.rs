//! Enhanced authentication: the method and data sent in CONNECT, the
//! callback that answers the broker's challenges, and re-authentication.
//!
//! The auth callback runs on a library thread (the runtime's blocking
//! pool) while the `mqtt_connect` or `mqtt_reauthenticate` that started
//! the exchange waits for it; never on the socket reader, which forwards
//! the broker's AUTH packets to the waiting call without waiting itself.
//! So a callback that blocks, even on a publish of the same client, cannot
//! stop acknowledgements from being read (see `client::auth`). It cannot
//! run on the calling thread: that thread is inside the runtime's
//! `block_on`, where a blocking call from the callback could not start.
//! The call returns only after a callback it started has returned, even
//! when it times out; so does `mqtt_client_free`, also for a callback
//! started by an automatic reconnect (the callback passes the client's
//! callback gate, see `client::gate`).

use super::client::mqtt_client;
use super::error::{fail, reason_result, set_last_error, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_OK};
use super::options::mqtt_options;
use super::properties::mqtt_properties;
use super::runtime::block_on_client;
use crate::client::{secret_bytes, AuthAnswer, AuthChallenge, Secret};
use crate::packet::{MqttStr, Property, PropertyId, ReasonCode};
use bytes::Bytes;
use std::ffi::{c_char, c_void, CString};
use std::os::raw::c_int;
use std::sync::RwLock;

/// Where the auth callback puts its answer. Valid only during the callback.
///
/// Threads: the callback's only.
pub struct mqtt_auth_response {
    data: Option<Bytes>,
}

/// Called for each step of enhanced authentication. `reason_code` is 0x18
/// (continue authentication: a challenge; answer it with
/// `mqtt_auth_response_set_data`) or 0x00 (success: the broker's
/// successful CONNACK, or the final AUTH of a re-authentication). The
/// success step is ALWAYS called, with the broker's final authentication
/// data or, when it sent none, with `data` NULL and `len` 0: a method
/// that authenticates the server too (SCRAM's server signature) must
/// refuse a success without the proof, else an impostor broker skips its
/// half by sending no data. `method` is the authentication method (the
/// one set with `mqtt_options_set_auth`), `data` / `len` the broker's
/// authentication data (NULL / 0 when absent).
///
/// Return 0 to go on (send the answer, or accept the success). Any other
/// value ends the exchange: the library sends DISCONNECT with that value
/// as reason code when it is a failure code DISCONNECT allows (0x80-0xA2),
/// else with 0x80, and the waiting `mqtt_connect` / `mqtt_reauthenticate`
/// returns that reason code (refusing a CONNACK success ends that new
/// connection the same way).
///
/// A broker's AUTH 0x18 without an Authentication Method, or an AUTH or
/// CONNACK naming another method, is a protocol error (MQTT 3.15.2.2.2):
/// the callback is not called, the library sends DISCONNECT 0x82 and the
/// call returns `MQTT5C_ERR_PROTOCOL`.
///
/// Everything passed is valid only during the call. Runs on a library
/// thread while the `mqtt_connect`, `mqtt_reauthenticate` or automatic
/// reconnect that started the exchange waits (the call returns only after
/// the callback has, and so does `mqtt_client_free`); it may block and may
/// make calls on the client, blocking ones included (during connect the
/// client is not connected yet).
pub type mqtt_auth_cb = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        reason_code: c_int,
        method: *const c_char,
        data: *const c_void,
        len: usize,
        response: *mut mqtt_auth_response,
    ) -> c_int,
>;

/// A C pointer handed back to C code; we never dereference it.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);
// SAFETY: only passed back to the application's callback; thread-safety
// of what it points to is the application's.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

type AuthFn = unsafe extern "C" fn(
    *mut c_void,
    c_int,
    *const c_char,
    *const c_void,
    usize,
    *mut mqtt_auth_response,
) -> c_int;

/// The client's auth callback, if one is set. Its calls pass the
/// client's callback gate (`client::auth`), which is how `mqtt_connect`,
/// `mqtt_set_auth_callback` and `mqtt_client_free` wait for them.
#[derive(Default)]
pub(super) struct AuthCallback {
    callback: RwLock<Option<(AuthFn, UserData)>>,
}

impl AuthCallback {
    /// Runs the C callback for one step (see `client::Handler::on_auth`).
    pub(super) fn answer(&self, ch: &AuthChallenge) -> AuthAnswer {
        let cb = *self.callback.read().unwrap_or_else(|e| e.into_inner());
        let Some((cb, ud)) = cb else {
            return match ch.reason {
                ReasonCode::Success => AuthAnswer::Respond(None),
                _ => AuthAnswer::Abort(ReasonCode::UnspecifiedError),
            };
        };
        // The method is an MqttStr: UTF-8 without NUL.
        let method = CString::new(ch.method.as_str()).unwrap_or_default();
        let (data, len) = match &ch.data {
            Some(d) => (d.as_ptr() as *const c_void, d.len()),
            None => (std::ptr::null(), 0),
        };
        let mut response = mqtt_auth_response { data: None };
        // SAFETY: a function pointer the application registered; every
        // pointer passed outlives the call.
        let rc = unsafe {
            cb(
                ud.0,
                ch.reason as c_int,
                method.as_ptr(),
                data,
                len,
                &mut response,
            )
        };
        if rc == 0 {
            return AuthAnswer::Respond(response.data);
        }
        let reason = u8::try_from(rc)
            .ok()
            .and_then(ReasonCode::from_u8)
            .unwrap_or(ReasonCode::UnspecifiedError);
        AuthAnswer::Abort(reason)
    }
}

/// Sets the authentication data the auth callback answers with (replacing
/// an earlier call in the same callback). Without a call the answer
/// carries no data.
///
/// Ownership: `data` is copied; `response` is the callback's argument. The
/// copies are wiped from memory once the AUTH carrying them is written.
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL response, NULL
/// data with `len` > 0, more than 65535 bytes).
/// Blocks: no.
/// Threads: only inside the auth callback that received `response`.
#[no_mangle]
pub extern "C" fn mqtt_auth_response_set_data(
    response: *mut mqtt_auth_response,
    data: *const c_void,
    len: usize,
) -> c_int {
    ffi_guard!({
        let r = try_mut!(response, "response");
        let data = try_slice!(data, len, "data");
        if data.len() > u16::MAX as usize {
            set_last_error("authentication data is longer than 65535 bytes");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        r.data = Some(secret_bytes(data));
        MQTT5C_OK
    })
}

/// Sets enhanced authentication for CONNECT: the Authentication Method
/// (e.g. "SCRAM-SHA-256") and the initial Authentication Data (`data` may
/// be NULL with `len` 0 for none). `method` NULL removes both. The
/// broker's challenges go to the callback set with
/// `mqtt_set_auth_callback`; a broker that does not support the method
/// refuses the connection (`mqtt_connect` returns 0x8C bad authentication
/// method, or 0x87 not authorized / 0x86 when the credentials fail).
///
/// Ownership: both are copied. The data's copies are wiped from memory when the
/// options or the client are freed, and those in each encoded CONNECT once it
/// is written.
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts, bad UTF-8,
/// over 65535 bytes).
/// Blocks: no.
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_auth(
    opts: *mut mqtt_options,
    method: *const c_char,
    data: *const c_void,
    len: usize,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        let o = &mut opts.inner;
        let Some(method) = try_opt_str!(method, "method") else {
            o.connect_properties
                .remove(PropertyId::AuthenticationMethod);
            o.connect_properties.remove(PropertyId::AuthenticationData);
            o.auth_data = None;
            return MQTT5C_OK;
        };
        let data = try_slice!(data, len, "data");
        let Ok(method) = MqttStr::new(method) else {
            set_last_error("authentication method is longer than 65535 bytes");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        if data.len() > u16::MAX as usize {
            set_last_error("authentication data is longer than 65535 bytes");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        o.connect_properties
            .set(Property::AuthenticationMethod(method));
        // Kept apart from the property list, which would copy it into
        // buffers nobody wipes (see client::secrets).
        o.connect_properties.remove(PropertyId::AuthenticationData);
        o.auth_data = (len > 0).then(|| Secret::new(data));
        MQTT5C_OK
    })
}

/// Sets (or with `cb` NULL, removes) the callback that answers the
/// broker's authentication challenges (see `mqtt_auth_cb`). Without one, a
/// challenge aborts the exchange with DISCONNECT 0x80, and a success is
/// accepted unverified.
///
/// Ownership, Returns, Blocks, Threads: as `mqtt_set_message_callback`:
/// `user_data` must stay valid until the callback is replaced (this
/// function returned again) or the client freed; this waits for the
/// callbacks running on other threads (an auth callback answering a
/// challenge of a connect in progress included), except when called from
/// inside a callback of this client.
#[no_mangle]
pub extern "C" fn mqtt_set_auth_callback(
    client: *mut mqtt_client,
    cb: mqtt_auth_cb,
    user_data: *mut c_void,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        *c.callbacks
            .auth
            .callback
            .write()
            .unwrap_or_else(|e| e.into_inner()) = cb.map(|f| (f, UserData(user_data)));
        c.leave_then_wait_for_callbacks();
        MQTT5C_OK
    })
}

/// Re-authenticates on the live connection: sends AUTH (reason 0x19) with
/// the method given at connect and `data` (may be NULL with `len` 0),
/// answers the broker's challenges through the auth callback (which runs
/// on a library thread while this call waits, not on the calling thread),
/// and returns when the broker ends the exchange. Messages keep
/// flowing meanwhile. One re-authentication runs at a time per client; a
/// second call waits for the first.
///
/// Ownership: everything is borrowed for the call; the copies of `data` are
/// wiped from memory once the AUTH is written; `props` (may be NULL: reason
/// string, user properties) is copied.
/// Returns: 0 when the broker accepted (AUTH success; the connection carries
/// on); the broker's DISCONNECT reason (>= 0x80, e.g. 0x87) when it refused,
/// after which the connection is closed; the callback's abort reason when it
/// aborted (we sent DISCONNECT, also when it refused the final success);
/// `MQTT5C_ERR_PROTOCOL` (the broker broke the exchange, e.g. AUTH 0x18 without
/// our method: we sent DISCONNECT 0x82); `MQTT5C_ERR_INVALID_ARGUMENT` (no
/// authentication method was set for connect, a property not allowed in AUTH),
/// `MQTT5C_ERR_NOT_CONNECTED`, `MQTT5C_ERR_CONNECTION_LOST`,
/// `MQTT5C_ERR_TIMEOUT` (operation timeout for a step),
/// `MQTT5C_ERR_PACKET_TOO_LARGE`.
/// Blocks: until the exchange ends, and then as `mqtt_connect` until no auth
/// callback runs.
/// Threads: any, including callbacks (not from the auth callback itself: the
/// second exchange would wait for the first, which waits for the callback).
#[no_mangle]
pub extern "C" fn mqtt_reauthenticate(
    client: *mut mqtt_client,
    data: *const c_void,
    len: usize,
    props: *const mqtt_properties,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        let data = try_slice!(data, len, "data");
        if data.len() > u16::MAX as usize {
            set_last_error("authentication data is longer than 65535 bytes");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        let data = (len > 0).then(|| secret_bytes(data));
        // SAFETY: NULL or a live mqtt_properties (caller's promise).
        let properties = unsafe { mqtt_properties::clone_or_empty(props) };
        let r = block_on_client(&c.client, c.client.reauthenticate(data, properties));
        c.leave_then_wait_for_auth_callbacks();
        match r {
            Ok(ack) => reason_result(
                "re-authentication",
                ack.reason,
                crate::client::reason_string(&ack.properties),
            ),
            Err(e) => fail(e),
        }
    })
}
