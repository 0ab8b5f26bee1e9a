//! Delivery of received messages and connection events to the application.
//!
//! The reader task never runs application code. It appends events to a
//! per-client queue; a drain job on the runtime's blocking pool (at most one
//! per client at a time, which keeps the order) pops them and calls the
//! handler. An idle client has no drain job, so idle clients cost no thread.
//!
//! Why a callback may block on the broker without deadlock: the reader keeps
//! reading (and completing acknowledgements) while a callback runs, because
//! the callback is on another thread. The reader stops reading only when the
//! queue is full, and a full queue stops it only while no callback of this
//! client is inside a blocking call: [`BlockingGuard`] lifts the bound for
//! the duration of such a call, so the acknowledgement the callback waits
//! for is never stuck behind queued messages. The queue then grows by what
//! the broker sends during one round trip, and is bounded again afterwards.

use super::gate::Kind;
use super::session::{Completion, Finished};
use super::{Ack, ConnectionEvent, Error, Inner};
use crate::packet::Publish;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

pub enum Event {
    Message(Publish),
    Connection(ConnectionEvent),
    /// The outcome of an asynchronous publish, run as is.
    Completion(Completion, Result<Ack, Error>),
}

/// What the application implements to receive events. Called on a thread of
/// the blocking pool, one event at a time per client, in arrival order.
pub trait Handler: Send + Sync + 'static {
    /// Takes the message by value so the handler can move its parts
    /// (properties, payload) into its own view without copying.
    fn on_message(&self, message: Publish);
    fn on_connection(&self, event: &ConnectionEvent);
    /// Answers a step of enhanced authentication (see `client::auth`),
    /// called on the blocking pool while `connect` or `reauthenticate`
    /// waits. Without an implementation, challenges are refused and the
    /// server's final data accepted.
    fn on_auth(&self, challenge: &super::AuthChallenge) -> super::AuthAnswer {
        match challenge.reason {
            crate::packet::ReasonCode::Success => super::AuthAnswer::Respond(None),
            _ => super::AuthAnswer::Abort(crate::packet::ReasonCode::UnspecifiedError),
        }
    }
}

pub struct Delivery {
    queue: Mutex<Queue>,
    /// Signalled when the queue shrinks or its bound is lifted.
    space: Notify,
    /// Callbacks of this client now inside a blocking call.
    blocked: AtomicUsize,
    /// Wakes a lingering drain job when an event arrives.
    more: std::sync::Condvar,
    closed: AtomicBool,
    limit: usize,
    /// The most events ever queued at once (a statistic).
    peak: AtomicUsize,
}

struct Queue {
    items: VecDeque<Event>,
    draining: bool,
    /// The drain job is lingering for more events (see [`LINGER`]).
    drainer_waiting: bool,
}

/// How long a drain job waits for more events before it gives its thread
/// back. Under a steady stream the next message usually comes within
/// microseconds; lingering briefly saves a job spawn (and often a thread)
/// per message, and costs an idle client nothing after that.
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

thread_local! {
    /// The delivery whose callback this thread is running, if any.
    static CURRENT: RefCell<Option<Arc<Delivery>>> = const { RefCell::new(None) };
}

impl Delivery {
    pub fn new(limit: usize) -> Self {
        Delivery {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                draining: false,
                drainer_waiting: false,
            }),
            more: std::sync::Condvar::new(),
            space: Notify::new(),
            blocked: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            limit: limit.max(1),
            peak: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock can only come from VecDeque
        // itself; the queue is still consistent, so poisoning is ignored.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has_space(&self) -> bool {
        self.closed.load(Ordering::Acquire)
            || self.blocked.load(Ordering::Acquire) > 0
            || self.lock().items.len() < self.limit
    }

    /// Waits until a message may be queued (see the module docs).
    pub async fn wait_for_space(&self) {
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.has_space() {
                return;
            }
            notified.await;
        }
    }

    /// Queues an event and starts a drain job when none runs.
    pub fn push(&self, inner: &Arc<Inner>, event: Event) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let mut q = self.lock();
        q.items.push_back(event);
        self.peak.fetch_max(q.items.len(), Ordering::Relaxed);
        if q.drainer_waiting {
            q.drainer_waiting = false;
            self.more.notify_one();
        } else if !q.draining {
            q.draining = true;
            drop(q);
            let inner = inner.clone();
            inner.runtime.clone().spawn_blocking(move || drain(inner));
        }
    }

    /// Queues finished asynchronous publishes (see `session::Finished`).
    pub fn push_finished(&self, inner: &Arc<Inner>, finished: Vec<Finished>) {
        for (f, r) in finished {
            self.push(inner, Event::Completion(f, r));
        }
    }

    /// Stops all further callbacks: nothing queued or pushed from now on
    /// reaches the handler. A callback running now finishes.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.space.notify_waiters();
        let mut q = self.lock();
        q.items.clear();
        // A lingering drain job stops now rather than after LINGER.
        if q.drainer_waiting {
            q.drainer_waiting = false;
            self.more.notify_one();
        }
    }

    /// The most events that were ever waiting for the handler at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

fn drain(inner: Arc<Inner>) {
    let d = inner.delivery.clone();
    CURRENT.with(|c| *c.borrow_mut() = Some(d.clone()));
    while let Some(event) = next_event(&d) {
        // Every call of the handler passes the gate, so that `close` and
        // the callback setters can wait for it (see `gate`).
        let Some(_inside) = inner.gate.enter(Kind::Delivery) else {
            let mut q = d.lock();
            q.items.clear();
            q.draining = false;
            break;
        };
        match event {
            Event::Message(p) => inner.handler.on_message(p),
            Event::Connection(e) => inner.handler.on_connection(&e),
            Event::Completion(f, r) => f(r),
        }
    }
    CURRENT.with(|c| *c.borrow_mut() = None);
}

/// The next event for the drain job, waiting up to [`LINGER`] for one;
/// `None` (with `draining` cleared) when none came or the client closed.
fn next_event(d: &Delivery) -> Option<Event> {
    let mut q = d.lock();
    let mut lingered = false;
    loop {
        let before = q.items.len();
        if let Some(e) = q.items.pop_front() {
            drop(q);
            // The reader waits for space only when the queue was full.
            if before >= d.limit {
                d.space.notify_waiters();
            }
            return Some(e);
        }
        if lingered || d.is_closed() {
            q.draining = false;
            return None;
        }
        q.drainer_waiting = true;
        q = match d.more.wait_timeout(q, LINGER) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        };
        q.drainer_waiting = false;
        lingered = true;
    }
}

/// Marks the current thread's callback (if it is in one) as waiting on the
/// broker for as long as the guard lives. Every blocking entry point of the
/// C API holds one while it waits.
pub struct BlockingGuard(Option<Arc<Delivery>>);

impl BlockingGuard {
    pub fn enter() -> BlockingGuard {
        let current = CURRENT.with(|c| c.borrow().clone());
        if let Some(d) = &current {
            d.blocked.fetch_add(1, Ordering::AcqRel);
            d.space.notify_waiters();
        }
        BlockingGuard(current)
    }
}

impl Drop for BlockingGuard {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            d.blocked.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
