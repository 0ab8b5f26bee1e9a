//! Error codes, their static texts, and the per-thread last error detail.
//!
//! Codes never change meaning; a retired code stays reserved.

use crate::client::Error;
use crate::packet::ReasonCode;
use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::os::raw::c_int;

/// Success.
pub const MQTT5C_OK: c_int = 0;
/// A NULL, malformed or out-of-range argument; nothing was sent.
pub const MQTT5C_ERR_INVALID_ARGUMENT: c_int = -1;
/// The client has no connection.
pub const MQTT5C_ERR_NOT_CONNECTED: c_int = -2;
/// The connection ended before the call completed.
pub const MQTT5C_ERR_CONNECTION_LOST: c_int = -3;
/// No answer within the connect or operation timeout.
pub const MQTT5C_ERR_TIMEOUT: c_int = -4;
/// A network error (connection refused, unreachable, reset, ...).
pub const MQTT5C_ERR_IO: c_int = -5;
/// The broker broke the MQTT protocol.
pub const MQTT5C_ERR_PROTOCOL: c_int = -6;
/// The packet exceeds the broker's Maximum Packet Size; nothing was sent.
pub const MQTT5C_ERR_PACKET_TOO_LARGE: c_int = -7;
/// A bug in the library (a caught panic); please report it.
pub const MQTT5C_ERR_INTERNAL: c_int = -8;
/// The requested item (property, ...) is not present.
pub const MQTT5C_ERR_NOT_FOUND: c_int = -9;
/// A TLS failure: handshake (unknown issuer, expired or mismatched
/// certificate, alert from the server) or TLS configuration.
pub const MQTT5C_ERR_TLS: c_int = -10;
/// `mqtt_connect` on a client that is already connected.
pub const MQTT5C_ERR_ALREADY_CONNECTED: c_int = -11;
/// The call is not allowed at this time (for example `mqtt_global_init`
/// after the runtime has started, or a call on a client that
/// `mqtt_client_free` is freeing: it returns at once with this code).
pub const MQTT5C_ERR_BAD_STATE: c_int = -12;
/// The offline queue is full (policy `MQTT5C_QUEUE_FAIL_NEW`: the new
/// message is refused, nothing is queued), or a queued message was dropped
/// to make room (policy `MQTT5C_QUEUE_DROP_OLDEST`: its publish callback
/// gets this code). See `mqtt_options_set_offline_queue`.
pub const MQTT5C_ERR_QUEUE_FULL: c_int = -13;
/// The message's Message Expiry Interval passed while it waited in the
/// offline queue: it was dropped, never sent.
pub const MQTT5C_ERR_EXPIRED: c_int = -14;
/// The persistence store (`mqtt_options_set_persistence_dir`) could not
/// write (disk full, I/O error): the message was not stored; the text
/// names the file.
pub const MQTT5C_ERR_PERSISTENCE: c_int = -15;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records the detail of this thread's latest failure. Control characters
/// are escaped here too, whatever the text's origin (see `redact`): the
/// texts go to logs.
pub(crate) fn set_last_error(msg: impl Into<String>) {
    let mut msg = crate::redact::peer(&msg.into()).into_bytes();
    msg.retain(|&b| b != 0);
    // Interior NULs were just removed, so this cannot fail.
    let c = CString::new(msg).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Maps a client error to its code and records its text.
pub(crate) fn fail(e: Error) -> c_int {
    set_last_error(e.to_string());
    match e {
        Error::InvalidArgument(_) => MQTT5C_ERR_INVALID_ARGUMENT,
        Error::NotConnected => MQTT5C_ERR_NOT_CONNECTED,
        Error::AlreadyConnected => MQTT5C_ERR_ALREADY_CONNECTED,
        Error::ConnectionLost => MQTT5C_ERR_CONNECTION_LOST,
        Error::Timeout(_) => MQTT5C_ERR_TIMEOUT,
        Error::Io(_) => MQTT5C_ERR_IO,
        Error::Protocol(_) => MQTT5C_ERR_PROTOCOL,
        Error::PacketTooLarge { .. } => MQTT5C_ERR_PACKET_TOO_LARGE,
        Error::Refused { reason, .. }
        | Error::Rejected { reason, .. }
        | Error::RedirectRefused { reason, .. } => reason as c_int,
        Error::Tls(_) => MQTT5C_ERR_TLS,
        Error::AttemptSkipped(_) => MQTT5C_ERR_NOT_CONNECTED,
        Error::AuthAborted(reason) => reason as c_int,
        Error::Closed => MQTT5C_ERR_BAD_STATE,
        Error::QueueFull(_) => MQTT5C_ERR_QUEUE_FULL,
        Error::Expired => MQTT5C_ERR_EXPIRED,
        Error::Persistence(_) => MQTT5C_ERR_PERSISTENCE,
        Error::AlreadyAcknowledged(_) => MQTT5C_ERR_BAD_STATE,
        Error::StaleAck(_) => MQTT5C_ERR_NOT_FOUND,
        Error::Internal(_) => MQTT5C_ERR_INTERNAL,
    }
}

/// Like `fail`, and when the connection was lost because the server sent
/// DISCONNECT, the text gives its reason, reason string and server reference.
pub(crate) fn fail_on(client: &crate::client::MqttClient, e: Error) -> c_int {
    let lost = matches!(e, Error::ConnectionLost);
    let rc = fail(e);
    if lost {
        if let Some(d) = client.last_disconnect() {
            set_last_error(disconnect_text("connection lost", &d));
        }
    }
    rc
}

/// "what: the server sent DISCONNECT <reason> (0xNN): <reason string>; server reference <ref>".
pub(crate) fn disconnect_text(what: &str, d: &crate::packet::Disconnect) -> String {
    use crate::packet::PropertyId;
    let mut msg = format!(
        "{what}: the server sent DISCONNECT {} (0x{:02X})",
        d.reason.description(),
        d.reason as u8
    );
    // The server's texts, escaped (see `redact`).
    if let Some(s) = d.properties.get_str(PropertyId::ReasonString) {
        msg.push_str(": ");
        msg.push_str(&crate::redact::peer(&s));
    }
    if let Some(s) = d.properties.get_str(PropertyId::ServerReference) {
        msg.push_str("; server reference ");
        msg.push_str(&crate::redact::peer(&s));
    }
    msg
}

/// Returns a broker reason code as the call's result, recording a text
/// (with the broker's reason string, if any) when it reports a failure.
pub(crate) fn reason_result(
    what: &str,
    reason: ReasonCode,
    reason_string: Option<String>,
) -> c_int {
    if reason.is_error() {
        let mut msg = format!(
            "{what} failed: {} (0x{:02X})",
            reason.description(),
            reason as u8
        );
        if let Some(s) = reason_string {
            msg.push_str(": ");
            msg.push_str(&s);
        }
        set_last_error(msg);
    }
    reason as c_int
}

/// Static text for any return value of this library: 0, an `MQTT5C_ERR_*`
/// code, or a broker reason code (1..=255).
///
/// Ownership: the string is static; do not free it.
/// Returns: never NULL; "unknown error code" for an unknown value.
/// Blocks: no.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_strerror(rc: c_int) -> *const c_char {
    ffi_guard!({
        let s: &'static [u8] = match rc {
            MQTT5C_OK => b"success\0",
            MQTT5C_ERR_INVALID_ARGUMENT => b"invalid argument\0",
            MQTT5C_ERR_NOT_CONNECTED => b"not connected\0",
            MQTT5C_ERR_CONNECTION_LOST => b"connection lost\0",
            MQTT5C_ERR_TIMEOUT => b"timed out\0",
            MQTT5C_ERR_IO => b"network I/O error\0",
            MQTT5C_ERR_PROTOCOL => b"MQTT protocol error\0",
            MQTT5C_ERR_PACKET_TOO_LARGE => b"packet too large for the broker\0",
            MQTT5C_ERR_INTERNAL => b"internal error (a bug in mqtt5c)\0",
            MQTT5C_ERR_NOT_FOUND => b"not found\0",
            MQTT5C_ERR_TLS => b"TLS error\0",
            MQTT5C_ERR_ALREADY_CONNECTED => b"already connected\0",
            MQTT5C_ERR_BAD_STATE => b"not allowed at this time\0",
            MQTT5C_ERR_QUEUE_FULL => b"offline queue full\0",
            MQTT5C_ERR_EXPIRED => b"message expired before it could be sent\0",
            MQTT5C_ERR_PERSISTENCE => b"persistence store failed\0",
            1..=255 => match ReasonCode::from_u8(rc as u8) {
                Some(r) => reason_text(r),
                None => b"unknown reason code\0",
            },
            _ => b"unknown error code\0",
        };
        s.as_ptr() as *const c_char
    })
}

/// Whether `rc`, the status a call returned (or a callback received),
/// means success: `MQTT5C_OK` or a broker reason code below 0x80, such as
/// 0x01/0x02 (granted QoS 1/2), 0x10 (no matching subscribers) or 0x11
/// (no subscription existed). `rc != MQTT5C_OK`, libmosquitto's habit,
/// reads those as failures. The same test as the `MQTT5C_SUCCEEDED(rc)`
/// macro, for bindings that cannot use a macro. Not for the functions
/// that return a count or a length.
///
/// Returns: true or false.
/// Blocks: no.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_succeeded(rc: c_int) -> bool {
    ffi_guard!({ (MQTT5C_OK..0x80).contains(&rc) })
}

// The `MQTT5C_RC_*` reason codes and their `mqtt_strerror` texts, from the
// reason code table (build.rs writes the constants into the header from
// the same table).
macro_rules! reason_constants {
    ($($name:ident = $value:literal, $c:ident, $text:literal, $packets:expr;)*) => {
        $(
            #[doc = concat!("Reason code ", stringify!($value), ": ", $text, ".")]
            pub const $c: c_int = $value;
        )*

        /// NUL-terminated descriptions of the reason codes, for `mqtt_strerror`.
        fn reason_text(r: ReasonCode) -> &'static [u8] {
            match r {
                $(ReasonCode::$name => concat!($text, "\0").as_bytes(),)*
            }
        }
    };
}
crate::packet::for_each_reason_code!(reason_constants);

/// The detail of the calling thread's most recent failure ("" if none).
///
/// Per OS thread: the text belongs to the thread that made the failing
/// call, and the next failing call on that thread replaces it. Read it on
/// the same OS thread, right after the call and before any other call into
/// this library. Bindings whose tasks move between OS threads must pin
/// them: in Go, read it in the same cgo sequence as the call, with the
/// goroutine locked to its thread (`runtime.LockOSThread`), or else it may
/// be another goroutine's text or none; in C#, read it right after the
/// call, before any `await` (the continuation may run on another thread).
///
/// The text is one line: it never contains a control character (text
/// from the server, such as a reason string, has them escaped as `\n`,
/// `\x1b`, ...), nor a URL's user information or query string (shown as
/// `<redacted>`), nor a password, authentication data or header value.
///
/// Ownership: the string belongs to the library; it stays valid until the next
/// call into this library on the same thread. Copy it to keep it.
/// Returns: never NULL.
/// Blocks: no.
/// Threads: any; each thread has its own.
#[no_mangle]
pub extern "C" fn mqtt_last_error() -> *const c_char {
    ffi_guard!({ LAST_ERROR.with(|e| e.borrow().as_ptr()) })
}
