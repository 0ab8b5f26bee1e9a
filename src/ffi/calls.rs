//! The calls inside each client's exported functions, counted so that
//! `mqtt_client_free` can wait until they have left before it frees the
//! client. A binding with a garbage collector may run a finalizer that
//! frees a client while another thread is still inside a blocking call on
//! it; `mqtt_client_free` closes the client first (every waiting call
//! returns promptly), then waits here.

use super::client::mqtt_client;
use crate::client::CallbackGate;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// The count of one client. Each call holds a reference of its own, so
/// that the call leaving last may still notify the freeing thread after
/// that thread has freed the `mqtt_client` itself.
#[derive(Default)]
pub(crate) struct Calls(Arc<Count>);

#[derive(Default)]
struct Count {
    inside: AtomicUsize,
    freeing: AtomicBool,
    lock: Mutex<()>,
    left: Condvar,
}

impl Count {
    fn leave(&self) {
        // SeqCst on both sides: either this sees `freeing` and notifies,
        // or the freeing thread, which sets `freeing` before it reads
        // `inside`, sees the decrement.
        if self.inside.fetch_sub(1, Ordering::SeqCst) == 1 && self.freeing.load(Ordering::SeqCst) {
            let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.left.notify_all();
        }
    }
}

impl Calls {
    /// For `mqtt_client_free`, after it closed the client: waits until
    /// every call inside has left. A call may still enter meanwhile (from
    /// a callback of the client, say); it returns promptly too.
    pub(crate) fn wait_until_none_inside(&self) {
        let c = &self.0;
        c.freeing.store(true, Ordering::SeqCst);
        let mut held = c.lock.lock().unwrap_or_else(|e| e.into_inner());
        while c.inside.load(Ordering::SeqCst) > 0 {
            held = c.left.wait(held).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A call inside one client's exported function, from its first use of
/// the client to its last (see `try_client!`).
pub(crate) struct ClientCall<'a> {
    client: &'a mqtt_client,
    count: Arc<Count>,
}

impl<'a> ClientCall<'a> {
    pub(crate) fn enter(client: &'a mqtt_client) -> ClientCall<'a> {
        let count = client.calls.0.clone();
        count.inside.fetch_add(1, Ordering::SeqCst);
        ClientCall { client, count }
    }

    /// Leaves the client, then waits until its callbacks that started
    /// before now on other threads have returned: for a function that has
    /// just replaced or removed a callback, after which the caller may free
    /// the old `user_data`. The wait is outside the client: a callback
    /// that calls `mqtt_client_free` meanwhile waits for the calls inside,
    /// and this one must not be among them.
    pub(crate) fn leave_then_wait_for_callbacks(self) {
        let gate: Arc<CallbackGate> = self.client.client.callback_gate().clone();
        drop(self);
        gate.wait_for_earlier_calls();
    }

    /// Leaves the client, then waits until no auth callback of the client
    /// runs on another thread (outside the client, as above).
    pub(crate) fn leave_then_wait_for_auth_callbacks(self) {
        let client = self.client.client.clone();
        drop(self);
        client.wait_for_auth_callbacks();
    }
}

impl Deref for ClientCall<'_> {
    type Target = mqtt_client;
    fn deref(&self) -> &mqtt_client {
        self.client
    }
}

impl Drop for ClientCall<'_> {
    fn drop(&mut self) {
        self.count.leave();
    }
}
