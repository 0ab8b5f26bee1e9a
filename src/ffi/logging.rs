//! The log callback (`mqtt_set_log_callback`): the client's diagnostic
//! lines (see `client::logging`) handed to C, with an optional free
//! function for the callback's `user_data` (zenoh-c's habit), called
//! exactly once.

use super::client::{mqtt_client, UserData};
use super::error::{set_last_error, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_OK};
use crate::client::{CallbackGate, Level};
use std::ffi::{c_char, c_void, CString};
use std::os::raw::c_int;
use std::sync::{Arc, Mutex, RwLock};

/// Log level: something failed that the application should know about (a
/// persistence write, a protocol error of the broker: the connection ends).
pub const MQTT5C_LOG_ERROR: c_int = 1;
/// Log level: something went wrong and the client carries on (a lost
/// connection, a failed connection attempt, a dropped message, a broker
/// beyond our Receive Maximum).
pub const MQTT5C_LOG_WARNING: c_int = 2;
/// Log level: the connection's life (attempts, successes, disconnects with
/// their cause, reconnection scheduling, redirections).
pub const MQTT5C_LOG_INFO: c_int = 3;
/// Log level: details.
pub const MQTT5C_LOG_DEBUG: c_int = 4;

/// Receives one diagnostic line of the client: `level` is one of
/// `MQTT5C_LOG_*`, `line` a NUL-terminated UTF-8 text without a newline or
/// other control characters (text from the broker has them escaped), at
/// most about 1 KiB, valid only during the call. A line never contains a
/// password, authentication data, a WebSocket header or a message's
/// payload; a URL is shown without its user information and query.
///
/// Threads: runs on the client's callback pool like the message callback,
/// one call at a time per client and in order with the message, connection
/// and completion callbacks, never on the thread that reads the socket: a
/// slow log callback delays the client's other callbacks, never its
/// network. It may call any function of the library, blocking ones
/// included (as the message callback may).
pub type mqtt_log_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, level: c_int, line: *const c_char)>;

/// Releases a callback's `user_data` (see `mqtt_set_log_callback`).
pub type mqtt_free_cb = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

type LogFn = unsafe extern "C" fn(*mut c_void, c_int, *const c_char);
type FreeFn = unsafe extern "C" fn(*mut c_void);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Pushes and takes do not panic midway; poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `user_data` with its free function, released exactly once.
struct Owned {
    user_data: UserData,
    free: Option<FreeFn>,
}

impl Owned {
    fn release(self) {
        if let Some(f) = self.free {
            // SAFETY: the function the application gave for this
            // `user_data`; no call of its callback runs any more (see
            // the callers).
            unsafe { f(self.user_data.0) };
        }
    }
}

/// The log callback of one client.
#[derive(Default)]
pub(crate) struct LogCallback {
    /// The callback, the level it asked for, its `user_data`. The level
    /// is checked again at the call: lines queued for a callback that was
    /// then replaced reach the new one only if its level takes them.
    current: RwLock<Option<(LogFn, Level, Owned)>>,
    /// Replaced from inside a callback of the client, where the old
    /// callback may still be running (it may be the caller): released by
    /// the next replacement made outside callbacks, or `mqtt_client_free`.
    retired: Mutex<Vec<Owned>>,
}

impl LogCallback {
    /// Calls the callback, if one is set, with `line`.
    pub(crate) fn call(&self, level: Level, line: &str) {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        let Some((cb, ud)) = current
            .as_ref()
            .filter(|(_, wanted, _)| level <= *wanted)
            .map(|(cb, _, o)| (*cb, o.user_data))
        else {
            return;
        };
        // Not held through the call, which may set the callback itself: a
        // setter releases `user_data` only once this call has returned (it
        // passes the callback gate, see `mqtt_set_log_callback`).
        drop(current);
        // `logging` makes lines without control characters, NUL included.
        let line = CString::new(line).unwrap_or_default();
        // SAFETY: a function pointer the application registered; the line
        // outlives the call.
        unsafe { cb(ud.0, level as u8 as c_int, line.as_ptr()) };
    }

    /// Swaps in `new` and runs `then` (which sets the client's level to
    /// match) under the same lock, so that concurrent setters leave the
    /// level of the callback that won; returns the old one to release,
    /// unless the new one passed the same `user_data` (a new level or
    /// callback for the same context): that one stays in use, and the new
    /// registration releases it.
    fn replace(&self, new: Option<(LogFn, Level, Owned)>, then: impl FnOnce()) -> Option<Owned> {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let kept = new.as_ref().map(|(_, _, o)| o.user_data.0);
        let old = std::mem::replace(&mut *current, new).map(|(_, _, o)| o);
        then();
        old.filter(|o| Some(o.user_data.0) != kept)
    }

    fn current_user_data(&self) -> Option<*mut c_void> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.as_ref().map(|(_, _, o)| o.user_data.0)
    }

    fn retire(&self, old: Owned) {
        let mut retired = lock(&self.retired);
        // Released once, however many registrations passed it.
        if !retired.iter().any(|o| o.user_data.0 == old.user_data.0) {
            retired.push(old);
        }
    }

    /// Outside callbacks, once the old callback's calls have returned:
    /// releases `old` and the retired ones, each `user_data` once (`old`
    /// may also be among the retired: registered again from a callback).
    fn settle(&self, old: Option<Owned>) {
        if let Some(o) = old {
            self.retire(o);
        }
        self.release_retired();
    }

    fn release_retired(&self) {
        let retired = std::mem::take(&mut *lock(&self.retired));
        // Registered again since it was retired: the current registration
        // releases it.
        let current = self.current_user_data();
        for o in retired {
            if Some(o.user_data.0) != current {
                o.release();
            }
        }
    }

    /// For `mqtt_client_free`, once no callback of the client runs:
    /// releases the current `user_data` and the retired ones.
    pub(crate) fn release_all(&self) {
        let current = self.replace(None, || {});
        let kept = current.as_ref().map(|o| o.user_data.0);
        let retired = std::mem::take(&mut *lock(&self.retired));
        // A retired `user_data` registered again is released once, as the
        // current one.
        for o in retired {
            if Some(o.user_data.0) != kept {
                o.release();
            }
        }
        if let Some(o) = current {
            o.release();
        }
    }
}

/// Sets (or with `cb` NULL, removes) the client's log callback: its
/// diagnostic lines at `level` and more severe (`MQTT5C_LOG_ERROR` fewest,
/// `MQTT5C_LOG_DEBUG` all). Off by default; the library writes nothing to
/// stdout or stderr. Lines at levels the callback did not ask for are not
/// even formatted. What is logged: each connection attempt and its result
/// (with the broker's reason code), the cause of each disconnect
/// (DISCONNECT reason codes, network errors, keep-alive timeouts),
/// reconnection scheduling, redirections, dropped messages (QoS 0 while a
/// callback blocks, the full offline queue), persistence errors, protocol
/// errors of the broker with the reason code we sent. The lines logged
/// while `mqtt_client_new` opened the persistence store (a damaged record
/// discarded) are handed to the first callback set. Up to 256 lines wait
/// for a slow callback; further ones are dropped and counted
/// (`mqtt5c_stats.log_dropped`); lines still waiting for a replaced
/// callback reach the new one only at the levels it asked for. See
/// `mqtt_log_cb` for the thread it runs on and what a line never contains.
///
/// Ownership: `user_data` is passed back to `cb` as is. `free_user_data`
/// (may be NULL) is called with it exactly once, when it is no longer used
/// (so never while a registration holds it: setting the callback again
/// with the same `user_data`, to change the level, does not release it;
/// the last registration's `free_user_data` does, once):
/// after this callback was replaced or removed (by this function, once the
/// calls of the old callback have returned) or the client freed (inside
/// `mqtt_client_free`, after the last callback). Replaced from inside a
/// callback of this client, the old `user_data` is released later: by the
/// next `mqtt_set_log_callback` called outside the client's callbacks, or
/// by `mqtt_client_free`. With `cb` NULL, `user_data` and `free_user_data`
/// are ignored (and not called). After `mqtt_client_free` returned, no log
/// callback runs. When `mqtt_client_free` is called from inside the log
/// callback, `free_user_data` runs before that callback returns: the
/// callback must not use `user_data` after the call.
/// Returns: `MQTT5C_OK`, or `MQTT5C_ERR_INVALID_ARGUMENT` (NULL client, or
/// `cb` given with a `level` that is not one of `MQTT5C_LOG_*`; nothing
/// changes and `free_user_data` is not called).
/// Blocks: as `mqtt_set_message_callback`: until the callbacks of this client
/// running on other threads when it was called have returned (calls that start
/// later use the new callback), then runs the old `free_user_data`; from
/// inside a callback of this client it does not wait.
/// Threads: any, including callbacks (the log callback too).
#[no_mangle]
pub extern "C" fn mqtt_set_log_callback(
    client: *mut mqtt_client,
    cb: mqtt_log_cb,
    user_data: *mut c_void,
    free_user_data: mqtt_free_cb,
    level: c_int,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        let new = match cb {
            None => None,
            Some(f) => {
                let Some(level) = u8::try_from(level).ok().and_then(Level::from_u8) else {
                    set_last_error(format!(
                        "invalid log level {level}: must be MQTT5C_LOG_ERROR (1) to \
                         MQTT5C_LOG_DEBUG (4)"
                    ));
                    return MQTT5C_ERR_INVALID_ARGUMENT;
                };
                Some((f, level))
            }
        };
        let callbacks = c.callbacks.clone();
        let gate: Arc<CallbackGate> = c.client.callback_gate().clone();
        // Lines already queued for the old callback reach the new one only
        // at the levels it asked for (`LogCallback::call` checks).
        let old = callbacks.log.replace(
            new.map(|(f, level)| {
                (
                    f,
                    level,
                    Owned {
                        user_data: UserData(user_data),
                        free: free_user_data,
                    },
                )
            }),
            || c.client.set_log_level(new.map(|(_, level)| level)),
        );
        if gate.is_inside() {
            // The old callback may be running: this very call may come
            // from it, or from an auth callback while it runs on the pool.
            if let Some(o) = old {
                callbacks.log.retire(o);
            }
            return MQTT5C_OK;
        }
        // Outside the client while waiting (see `leave_then_wait_for_callbacks`).
        c.leave_then_wait_for_callbacks();
        callbacks.log.settle(old);
        MQTT5C_OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static FREED_A: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn log(_: *mut c_void, _: c_int, _: *const c_char) {}
    unsafe extern "C" fn free_a(_: *mut c_void) {
        FREED_A.fetch_add(1, Ordering::SeqCst);
    }
    unsafe extern "C" fn free_other(_: *mut c_void) {}

    fn reg(ud: usize, free: FreeFn) -> Option<(LogFn, Level, Owned)> {
        let user_data = UserData(ud as *mut c_void);
        Some((
            log,
            Level::Info,
            Owned {
                user_data,
                free: Some(free),
            },
        ))
    }

    #[test]
    fn a_user_data_registered_again_from_a_callback_is_released_once() {
        let l = LogCallback::default();
        assert!(l.replace(reg(1, free_a), || {}).is_none());
        // From inside callbacks: A replaced by B, then A set again.
        let a = l.replace(reg(2, free_other), || {}).unwrap();
        l.retire(a);
        let b = l.replace(reg(1, free_a), || {}).unwrap();
        l.retire(b);
        // Then from outside: C replaces A.
        let old = l.replace(reg(3, free_other), || {});
        l.settle(old);
        assert_eq!(FREED_A.load(Ordering::SeqCst), 1);
        l.release_all();
        assert_eq!(FREED_A.load(Ordering::SeqCst), 1);
    }
}
