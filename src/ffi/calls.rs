//! The calls inside each client's exported functions, counted so that
//! `mqtt_client_free` can wait until they have left before it frees the
//! client. A binding with a garbage collector may run a finalizer that
//! frees a client while another thread is still inside a blocking call on
//! it; `mqtt_client_free` closes the client first (every waiting call
//! returns promptly), then waits here.

use super::client::mqtt_client;
use crate::client::CallbackGate;
use std::cell::RefCell;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

thread_local! {
    /// The clients (their counts) this thread is inside a call of. The
    /// TLS signer runs inline in the handshake of `mqtt_connect`, on the
    /// caller's thread: a `mqtt_client_free` it makes must not wait for
    /// that call, which cannot leave before the free returns.
    static ON_THIS_THREAD: RefCell<Vec<*const Count>> = const { RefCell::new(Vec::new()) };
}

/// A client whose free waits for the calls under it on the freeing thread.
struct Deferred(*mut mqtt_client);

// SAFETY: the pointer is only freed (by the last call to leave), the
// client being Sync.
unsafe impl Send for Deferred {}

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
    /// Set, under `lock`, by a free made from inside a call on this client
    /// (see `ON_THIS_THREAD`): the call that leaves last frees the client.
    deferred: Mutex<Option<Deferred>>,
}

impl Count {
    fn leave(&self) {
        // SeqCst on both sides: either this sees `freeing` and notifies,
        // or the freeing thread, which sets `freeing` before it reads
        // `inside`, sees the decrement. Each decrement notifies: a free
        // under calls of its own thread waits for the others only.
        let was = self.inside.fetch_sub(1, Ordering::SeqCst);
        if self.freeing.load(Ordering::SeqCst) {
            let held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.left.notify_all();
            let deferred = if was == 1 {
                lock(&self.deferred).take()
            } else {
                None
            };
            drop(held);
            if let Some(Deferred(client)) = deferred {
                // SAFETY: the freed client's pointer, given up by its
                // mqtt_client_free; this was the last call inside it.
                unsafe { super::client::finish_free(client) };
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Calls {
    /// For `mqtt_client_free`, after it closed the client: waits until
    /// every call inside has left, and returns true: `client` may be
    /// freed. A call may still enter meanwhile (from a callback of the
    /// client, say); it returns promptly too. Called from inside calls on
    /// this client on this thread (a TLS signer in `mqtt_connect`'s
    /// handshake), waits for the calls of other threads only and returns
    /// false: the call that leaves last frees `client` (`finish_free`).
    pub(crate) fn wait_until_none_inside(&self, client: *mut mqtt_client) -> bool {
        let c = &self.0;
        let me = Arc::as_ptr(c);
        let mine = ON_THIS_THREAD.with(|v| v.borrow().iter().filter(|&&p| p == me).count());
        c.freeing.store(true, Ordering::SeqCst);
        let mut held = lock(&c.lock);
        while c.inside.load(Ordering::SeqCst) > mine {
            held = c.left.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        if mine == 0 {
            return true;
        }
        // Our own calls are still inside (they leave after this returns),
        // so none reaches zero before this is set.
        *lock(&c.deferred) = Some(Deferred(client));
        false
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
        ON_THIS_THREAD.with(|v| v.borrow_mut().push(Arc::as_ptr(&count)));
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
        let me = Arc::as_ptr(&self.count);
        // `try_with`: a call dropped while the thread exits has no list left.
        let _ = ON_THIS_THREAD.try_with(|v| {
            let mut v = v.borrow_mut();
            if let Some(at) = v.iter().rposition(|&p| p == me) {
                v.remove(at);
            }
        });
        // May free the client (a deferred free): `self.client` is not
        // used after this.
        self.count.leave();
    }
}
