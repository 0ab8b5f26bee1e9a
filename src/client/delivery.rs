//! Delivery of received messages and connection events to the application.
//!
//! The reader task never runs application code. It appends events to a
//! per-client queue; a drain job on the runtime's blocking pool (at most one
//! per client at a time, which keeps the order) pops them and calls the
//! handler. An idle client has no drain job, so idle clients cost no thread.
//!
//! **Acknowledgements follow the callbacks.** A received QoS 1 message is
//! PUBACKed, a QoS 2 one PUBRECed, by the drain job after its callback
//! returned, never when it is queued: what is queued but not yet delivered
//! when the client disconnects or is freed stays unacknowledged, and the
//! broker sends it again. The acknowledgements of messages handled back to
//! back are written together ([`AckBatch`]), on the connection current at
//! that moment, and only while the message's session entry still holds
//! the token it was queued with (`session::Inbound`): without a connection
//! the broker resends the message on resume, and a resent QoS 2 message
//! that was delivered gets PUBREC without a second delivery.
//!
//! **The bound.** While `limit` events are queued, the reader waits for
//! room before it queues the next one: a slow callback slows the broker
//! down (TCP back-pressure, and for QoS 1/2 the broker's flow control, as
//! they stay unacknowledged) instead of growing memory. The keep-alive
//! does not read that pause as a silent broker (see `keepalive`).
//!
//! **Why a callback may block on the broker without deadlock.** The
//! callback runs on another thread than the reader, so acknowledgements
//! keep being read. While a callback of this client is inside a blocking
//! call ([`BlockingGuard`]) the reader never waits for room, so what the
//! callback waits for is never stuck behind queued messages; memory stays
//! bounded all the same: QoS 1/2 messages are queued (unacknowledged until
//! their callbacks ran, so the broker sends at most our Receive Maximum of
//! them), QoS 0 messages only while fewer than 2 x `limit` events are
//! queued; beyond that they are dropped and counted (`Stats::qos0_dropped`),
//! as QoS 0 allows. So at most `limit` + `limit` QoS 0 + Receive Maximum
//! messages wait, plus connection events and the completions of
//! asynchronous publishes acknowledged meanwhile. A response to a request
//! made from a callback is not held back by the broker's flow control
//! behind those unacknowledged messages: responses come at QoS 0 (see
//! `request`).

use super::gate::Kind;
use super::session::{Completion, Finished, InboundAck};
use super::{lock, Ack, ConnectionEvent, Error, Inner};
use crate::packet::{self, Packet, Properties, PubResp, Publish, QoS, ReasonCode};
use bytes::BytesMut;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub enum Event {
    /// A message, with what acknowledges it once its callback returned
    /// (QoS 1/2).
    Message(Publish, Option<InboundAck>),
    Connection(ConnectionEvent),
    /// The outcome of an asynchronous publish, run as is.
    Completion(Completion, Result<Ack, Error>),
}

/// What the application implements to receive events. Called on a thread of
/// the blocking pool, one event at a time per client, in arrival order.
pub trait Handler: Send + Sync + 'static {
    /// Takes the message by value so the handler can move its parts
    /// (properties, payload) into its own view without copying. A QoS 1/2
    /// message is acknowledged after this returns.
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

/// Whether an event may be queued now (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    Now,
    /// Wait for the drain job to make room.
    Wait,
    /// A QoS 0 message beyond the allowance while a callback blocks.
    Drop,
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
    /// How many acknowledgements a batch holds at most (see [`AckBatch`]).
    ack_batch: usize,
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
const LINGER: Duration = Duration::from_millis(2);

/// The longest an acknowledgement waits for others to share its write,
/// when the queue does not run empty first (see [`AckBatch`]).
const ACK_DELAY: Duration = Duration::from_millis(5);

thread_local! {
    /// The delivery whose callback this thread is running, if any.
    static CURRENT: RefCell<Option<Arc<Delivery>>> = const { RefCell::new(None) };
}

impl Delivery {
    /// `limit`: the queue bound; `receive_maximum`: ours, which caps the
    /// acknowledgement batches (a broker that has sent that many waits
    /// for them).
    pub fn new(limit: usize, receive_maximum: u16) -> Self {
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
            ack_batch: (receive_maximum as usize / 2).clamp(1, 16),
            peak: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock can only come from VecDeque
        // itself; the queue is still consistent, so poisoning is ignored.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an event may be queued now; `qos0` for a QoS 0 message,
    /// the only kind ever dropped (see the module docs).
    pub fn room(&self, qos0: bool) -> Room {
        if self.closed.load(Ordering::Acquire) {
            return Room::Now;
        }
        let len = self.lock().items.len();
        if len < self.limit {
            Room::Now
        } else if self.blocked.load(Ordering::Acquire) == 0 {
            Room::Wait
        } else if qos0 && len >= 2 * self.limit {
            Room::Drop
        } else {
            Room::Now
        }
    }

    /// Waits until an event may be queued; returns [`Room::Now`] or
    /// [`Room::Drop`].
    pub async fn wait_for_room(&self, qos0: bool) -> Room {
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.room(qos0) {
                Room::Wait => notified.await,
                r => return r,
            }
        }
    }

    /// Waits until an event that is never dropped may be queued.
    pub async fn wait_for_space(&self) {
        self.wait_for_room(false).await;
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
    /// reaches the handler (nor is acknowledged). A callback running now
    /// finishes.
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
    let mut acks = AckBatch::new(d.ack_batch);
    while let Some(event) = next_event(&inner, &d, &mut acks) {
        // Every call of the handler passes the gate, so that `close` and
        // the callback setters can wait for it (see `gate`).
        let Some(_inside) = inner.gate.enter(Kind::Delivery) else {
            // Callbacks that returned are acknowledged while a connection
            // is still there; the rest is dropped unacknowledged.
            acks.flush(&inner);
            let mut q = d.lock();
            q.items.clear();
            q.draining = false;
            break;
        };
        match event {
            Event::Message(p, ack) => {
                inner.handler.on_message(p);
                acks.extend(ack);
            }
            Event::Connection(e) => inner.handler.on_connection(&e),
            Event::Completion(f, r) => f(r),
        }
    }
    CURRENT.with(|c| *c.borrow_mut() = None);
}

/// The next event for the drain job, waiting up to [`LINGER`] for one;
/// `None` (with `draining` cleared) when none came or the client closed.
/// Writes the pending acknowledgements when they are due, and always
/// before the queue is found empty: the job that may end then leaves none.
fn next_event(inner: &Arc<Inner>, d: &Delivery, acks: &mut AckBatch) -> Option<Event> {
    let mut lingered = false;
    loop {
        let mut q = d.lock();
        let before = q.items.len();
        if let Some(e) = q.items.pop_front() {
            drop(q);
            // The reader waits for space only when the queue was full.
            if before >= d.limit {
                d.space.notify_waiters();
            }
            if acks.due() {
                acks.flush(inner);
            }
            return Some(e);
        }
        if !acks.is_empty() {
            drop(q);
            acks.flush(inner);
            continue;
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

/// Acknowledgements of messages whose callbacks returned, not yet written.
/// One write per message would cost a system call each, so they are
/// written together: when the queue runs empty, when `max` are pending (at
/// most half our Receive Maximum, so that a broker waiting for them to
/// send more is never starved), or when the oldest has waited
/// [`ACK_DELAY`] while the queue kept the job busy.
struct AckBatch {
    items: Vec<InboundAck>,
    first: Option<Instant>,
    max: usize,
}

impl AckBatch {
    fn new(max: usize) -> Self {
        AckBatch {
            items: Vec::new(),
            first: None,
            max,
        }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn extend(&mut self, ack: Option<InboundAck>) {
        if let Some(a) = ack {
            if self.items.is_empty() {
                self.first = Some(Instant::now());
            }
            self.items.push(a);
        }
    }

    fn due(&self) -> bool {
        self.items.len() >= self.max || self.first.is_some_and(|t| t.elapsed() >= ACK_DELAY)
    }

    fn flush(&mut self, inner: &Arc<Inner>) {
        if !self.items.is_empty() {
            acknowledge(inner, &self.items);
            self.items.clear();
            self.first = None;
        }
    }
}

/// Acknowledges, in one write on the current connection, the messages of
/// `acks` whose session entries still hold their tokens. Without a
/// connection the entries are settled all the same (see the module docs).
fn acknowledge(inner: &Arc<Inner>, acks: &[InboundAck]) {
    // Taken before the session is looked at: a connection that ends and is
    // replaced in between (clearing the session if it was not resumed)
    // fails this write, so an old message is never acknowledged into a
    // new session.
    let conn = inner.current();
    let mut buf = BytesMut::new();
    {
        let mut s = lock(&inner.session);
        for a in acks {
            if s.settle(a) && conn.is_some() {
                encode_ack(a, &mut buf);
            }
        }
    }
    if let Some(conn) = conn.filter(|_| !buf.is_empty()) {
        // A failed write ends the connection (the reader reports it); the
        // broker resends what was not acknowledged.
        let _ = inner.runtime.block_on(inner.send(&conn, buf.freeze()));
    }
}

/// Appends the PUBACK (QoS 1) or PUBREC (QoS 2) of `ack` to `buf`.
pub(super) fn encode_ack(ack: &InboundAck, buf: &mut BytesMut) {
    let r = PubResp {
        packet_id: ack.id,
        reason: ReasonCode::Success,
        properties: Properties::new(),
    };
    let p = match ack.qos {
        QoS::ExactlyOnce => Packet::PubRec(r),
        _ => Packet::PubAck(r),
    };
    // Four bytes, no properties: encoding cannot fail.
    let _ = packet::encode(&p, buf);
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
