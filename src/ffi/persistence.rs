//! Persistence across crashes: the option that turns it on (the store is
//! `client::persist`; `mqtt_client_new` opens it).

use super::error::MQTT5C_OK;
use super::options::mqtt_options;
use std::ffi::{c_char, CStr, OsStr};
use std::os::raw::c_int;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Keeps the client's QoS 1/2 session state in files in the directory
/// `path` (created if missing), so that a crash of the process, or a
/// power cut, loses nothing the client accepted.
///
/// What is on disk, and when (each is written with the others of the
/// moment and flushed with fdatasync, which returns once the data is on
/// the device; concurrent publishers share one flush):
/// - a QoS 1/2 message published with `mqtt_publish_async` (or
///   `mqtt_publish`), with its packet id and its place in the send order,
///   before the call returns `MQTT5C_OK`: a message whose publish returned
///   `MQTT5C_OK` is never lost;
/// - for a QoS 2 publish, the broker's PUBREC, before our PUBREL is sent
///   (so a restarted client sends PUBREL, never the message again);
/// - for a received QoS 2 message, its delivery, before our PUBREC is
///   sent, and the broker's PUBREL, before our PUBCOMP is sent: a
///   restarted client acknowledges the broker's resend of a message it
///   delivered without delivering it again.
///
/// The next client with the same client id and directory (in this process
/// or the next) loads that state in `mqtt_client_new`: its first connect
/// that resumes the session (Clean Start 0 and a Session Expiry Interval,
/// `mqtt_options_set_clean_start`, `mqtt_options_set_session_expiry`)
/// resends the messages in the order they were first sent, before any new
/// publish. A connect that finds no session on the broker (Clean Start 1,
/// or the broker lost it) publishes them afresh, in order, except a QoS 2
/// message whose PUBREC had come (the broker has it). A QoS 1/2 message
/// queued while the client reconnects (`mqtt_options_set_offline_queue`)
/// is on disk before its publish returns too, and the next client
/// publishes it after those resends. A record torn by a power cut
/// during its write is detected by its checksum when the log is loaded:
/// it and what follows it are discarded, with a warning line for the
/// first log callback set (`mqtt_set_log_callback`; those were records of
/// calls that had not returned yet).
///
/// One client at a time may use a directory with a client id: the
/// directory holds a lock file per client id (`flock`), and
/// `mqtt_client_new` of a second client, in this or another process,
/// returns NULL with `mqtt_last_error()` naming the directory.
/// `mqtt_client_free` releases it. A client id is required
/// (`mqtt_options_set_client_id`): the files are named after it.
///
/// A write that fails (disk full, I/O error) fails the publishes waiting
/// for it with `MQTT5C_ERR_PERSISTENCE` (the message is in the session in
/// memory all the same, and may still be delivered while this process
/// lives); the next write rewrites the whole state, so persistence
/// recovers once the disk has room again.
///
/// Ownership: `path` is copied; NULL or "" turns persistence off (the default).
/// Returns: `MQTT5C_OK` or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL opts).
/// Blocks: no (the directory is opened by `mqtt_client_new`).
/// Threads: any, not concurrently with other use of `opts`.
#[no_mangle]
pub extern "C" fn mqtt_options_set_persistence_dir(
    opts: *mut mqtt_options,
    path: *const c_char,
) -> c_int {
    ffi_guard!({
        let opts = try_mut!(opts, "opts");
        opts.inner.persistence_dir = if path.is_null() {
            None
        } else {
            // SAFETY: non-NULL; the caller promises a NUL-terminated
            // string. A path is bytes: it need not be UTF-8.
            let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
            (!bytes.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(bytes)))
        };
        MQTT5C_OK
    })
}
