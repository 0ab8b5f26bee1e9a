//! The callback gate: every call into application code (message,
//! connection, completion, per-subscription and auth callbacks, and any
//! added later, the TLS client signer) enters it first and leaves it when the call returns.
//!
//! It answers three needs of the C API, where the application frees the
//! `user_data` of a callback once the library says the callback is done:
//! - `close` (`mqtt_client_free`): once the gate is shut, no call starts,
//!   and close waits until no call runs on another thread;
//! - replacing a callback (`mqtt_set_*_callback`, an unsubscribe that ends
//!   a route): the setter swaps the pointer, then waits for the calls that
//!   had started before (later calls use the new pointer), a grace period
//!   as in RCU. Waiting only for earlier calls cannot starve under a
//!   stream of messages, and never blocks a new call: a new call blocked
//!   behind a waiting setter could be the auth callback that the running
//!   callback's `mqtt_connect` waits for, a deadlock;
//! - `mqtt_connect` returning only after the auth callbacks it started.
//!
//! Why these waits cannot deadlock: a thread inside a callback of this
//! client never waits for another callback of this client to return
//! (`wait_for_earlier_calls` returns at once there, `wait_for_kind` gives
//! up once the gate is shut), except in `close`. So `close`, even called
//! from a callback, may wait for the calls on other threads: none of them
//! waits for it in turn. Which calls a thread is inside is known from the
//! records' thread ids.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;

/// What kind of callback a call is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Run by the delivery drain job: messages, connection events,
    /// completions.
    Delivery,
    /// An answer to an authentication step, run by its own job.
    Auth,
    /// The pre-connect hook, run by its own job before an attempt.
    PreConnect,
    /// The TLS client signer, run by the handshake (a reconnection's too).
    Signer,
}

/// The gate of one client; see the module docs.
#[derive(Default)]
pub struct CallbackGate {
    state: Mutex<State>,
    /// Signalled when a call leaves or the gate is shut, while someone waits.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    closed: bool,
    next_id: u64,
    /// The calls running now: a handful at most (one delivery call per
    /// client at a time, plus auth calls).
    running: Vec<Running>,
    /// Threads waiting on `changed`; leaving notifies only when some wait.
    waiters: usize,
}

struct Running {
    id: u64,
    kind: Kind,
    thread: ThreadId,
}

impl State {
    fn inside(&self, me: ThreadId) -> bool {
        self.running.iter().any(|r| r.thread == me)
    }
}

/// A call inside the gate; leaves it when dropped.
pub struct Inside<'a> {
    gate: &'a CallbackGate,
    id: u64,
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        let mut s = self.gate.lock();
        s.running.retain(|r| r.id != self.id);
        if s.waiters > 0 {
            self.gate.changed.notify_all();
        }
    }
}

impl CallbackGate {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the state is being changed; poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on `changed` until `done` holds.
    fn wait_until<'a>(
        &'a self,
        mut s: MutexGuard<'a, State>,
        mut done: impl FnMut(&State) -> bool,
    ) {
        s.waiters += 1;
        while !done(&s) {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.waiters -= 1;
    }

    /// Enters the gate for one call of application code; `None` once the
    /// gate is shut (the call must not be made).
    pub fn enter(&self, kind: Kind) -> Option<Inside<'_>> {
        let mut s = self.lock();
        if s.closed {
            return None;
        }
        let id = s.next_id;
        s.next_id += 1;
        s.running.push(Running {
            id,
            kind,
            thread: std::thread::current().id(),
        });
        Some(Inside { gate: self, id })
    }

    /// Lets no call start from now on; wakes waits that give up when the
    /// gate is shut.
    pub fn shut(&self) {
        let mut s = self.lock();
        s.closed = true;
        if s.waiters > 0 {
            self.changed.notify_all();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Whether this thread is inside a callback of this gate.
    pub fn is_inside(&self) -> bool {
        self.lock().inside(std::thread::current().id())
    }

    /// Whether this thread is inside a callback of this kind.
    pub fn is_inside_kind(&self, kind: Kind) -> bool {
        let me = std::thread::current().id();
        self.lock()
            .running
            .iter()
            .any(|r| r.thread == me && r.kind == kind)
    }

    /// Which callback that runs during a connection attempt (the
    /// pre-connect hook, the TLS signer) this thread is inside, if any: a
    /// call from there that waits for the attempt would wait for ever.
    pub fn inside_attempt_callback(&self) -> Option<Kind> {
        let me = std::thread::current().id();
        self.lock()
            .running
            .iter()
            .find(|r| r.thread == me && matches!(r.kind, Kind::PreConnect | Kind::Signer))
            .map(|r| r.kind)
    }

    /// After `shut`: waits until no call runs on another thread. A call
    /// on this thread (close called from a callback) is not waited for.
    pub fn wait_for_other_threads(&self) {
        let me = std::thread::current().id();
        let s = self.lock();
        self.wait_until(s, |s| s.running.iter().all(|r| r.thread == me));
    }

    /// Waits until the calls that started before now, on other threads,
    /// have returned; for a setter that has just replaced a callback (the
    /// calls that start later see the new one). From inside a callback of
    /// this gate it returns at once: that callback may be one of them, and
    /// waiting for another one could deadlock (see the module docs).
    pub fn wait_for_earlier_calls(&self) {
        let me = std::thread::current().id();
        let s = self.lock();
        if s.inside(me) {
            return;
        }
        let before = s.next_id;
        self.wait_until(s, |s| s.running.iter().all(|r| r.id >= before));
    }

    /// Waits until no call of `kind` runs on another thread. Inside a
    /// callback of this gate, gives up once the gate is shut: `close`,
    /// called from that other call, waits for this thread in turn.
    pub fn wait_for_kind(&self, kind: Kind) {
        let me = std::thread::current().id();
        let s = self.lock();
        let inside = s.inside(me);
        self.wait_until(s, |s| {
            (inside && s.closed) || s.running.iter().all(|r| r.kind != kind || r.thread == me)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    /// Runs a call of `kind` on another thread until `release` receives.
    fn call_on_thread(
        gate: &Arc<CallbackGate>,
        kind: Kind,
    ) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let g = gate.clone();
        let t = std::thread::spawn(move || {
            let _inside = g.enter(kind).expect("gate open");
            entered_tx.send(()).unwrap();
            let _ = release_rx.recv();
        });
        entered.recv().unwrap();
        (release, t)
    }

    #[test]
    fn a_shut_gate_lets_no_call_in() {
        let g = CallbackGate::default();
        assert!(g.enter(Kind::Delivery).is_some());
        g.shut();
        assert!(g.is_closed());
        assert!(g.enter(Kind::Delivery).is_none());
        assert!(g.enter(Kind::Auth).is_none());
    }

    #[test]
    fn close_waits_for_a_call_on_another_thread_but_not_for_its_own() {
        let g = Arc::new(CallbackGate::default());
        let (release, t) = call_on_thread(&g, Kind::Auth);
        let mine = g.enter(Kind::Delivery).unwrap();
        assert!(g.is_inside());
        g.shut();
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            d.store(true, Ordering::SeqCst);
            release.send(()).unwrap();
        });
        g.wait_for_other_threads();
        assert!(done.load(Ordering::SeqCst), "returned while a call ran");
        drop(mine);
        t.join().unwrap();
        releaser.join().unwrap();
    }

    #[test]
    fn a_setter_waits_for_earlier_calls_only() {
        let g = Arc::new(CallbackGate::default());
        let (release, t) = call_on_thread(&g, Kind::Delivery);
        let (tx, rx) = mpsc::channel();
        let g2 = g.clone();
        let setter = std::thread::spawn(move || {
            g2.wait_for_earlier_calls();
            tx.send(()).unwrap();
        });
        // Still waiting for the earlier call...
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        // ...but not for a call that starts after it began.
        let later = call_on_thread(&g, Kind::Delivery);
        release.send(()).unwrap();
        rx.recv_timeout(Duration::from_secs(10))
            .expect("setter returned once the earlier call had");
        later.0.send(()).unwrap();
        later.1.join().unwrap();
        t.join().unwrap();
        setter.join().unwrap();
    }

    #[test]
    fn a_setter_inside_a_callback_does_not_wait() {
        let g = Arc::new(CallbackGate::default());
        let (release, t) = call_on_thread(&g, Kind::Auth);
        let _mine = g.enter(Kind::Delivery).unwrap();
        g.wait_for_earlier_calls();
        release.send(()).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn waiting_for_a_kind_gives_up_inside_a_callback_once_shut() {
        let g = Arc::new(CallbackGate::default());
        let (release, t) = call_on_thread(&g, Kind::Auth);
        let g2 = g.clone();
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _inside = g2.enter(Kind::Delivery).unwrap();
            g2.wait_for_kind(Kind::Auth);
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        g.shut();
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the wait gave up when the gate was shut");
        release.send(()).unwrap();
        t.join().unwrap();
        waiter.join().unwrap();
    }
}
