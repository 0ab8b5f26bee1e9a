//! Delivery of received messages and connection events to the application.
//!
//! The reader task never runs application code. It appends events to a
//! per-client queue; a thread of the process-wide callback pool (see
//! `pool`: at most one per client at a time, which keeps the order) pops
//! them and calls the handler. An idle client is in no pool list, so idle
//! clients cost no thread; a client already scheduled takes new events
//! without a wake-up.
//!
//! **Acknowledgements follow the callbacks.** A received QoS 1 message is
//! PUBACKed, a QoS 2 one PUBRECed, once its callback returned, never when
//! it is queued: what is queued but not yet delivered when the client
//! disconnects or is freed stays unacknowledged, and the broker sends it
//! again. The drain job hands the acknowledgement to the client's pending
//! acknowledgements and goes on; a flush task writes them (see `acks`),
//! on the connection current at that moment, and only while the message's
//! session entry still holds the token it was queued with
//! (`session::Inbound`): without a connection the broker resends the
//! message on resume, and the resend gets the acknowledgement without a
//! second delivery. The drain job never waits for the writer or the
//! broker. With manual acknowledgement (`ClientOptions::manual_ack`) the
//! application acknowledges instead, when it chooses (`acks`); the
//! message holds a slot of our Receive Maximum until then.
//!
//! **The bound.** While `limit` events, or `max_bytes` bytes of them
//! (see [`cost`]: a message costs its topic, properties and payload plus
//! the queue entry), are queued, the reader waits for room before it
//! queues the next one: a slow callback slows the broker down (TCP
//! back-pressure, and for QoS 1/2 the broker's flow control, as they stay
//! unacknowledged) instead of growing memory. So the queue holds at most
//! `max_bytes` plus one message (at most our Maximum Packet Size). The
//! keep-alive does not read that pause as a silent broker (see
//! `keepalive`).
//!
//! **Why a callback may block on the broker without deadlock.** The
//! callback runs on another thread than the reader, so acknowledgements
//! keep being read. While a callback of this client is inside a blocking
//! call ([`BlockingGuard`]) the reader does not wait for room, so what the
//! callback waits for is never stuck behind queued messages; memory stays
//! bounded all the same:
//! - QoS 0 messages are queued only while fewer than 2 x `limit` events
//!   and 2 x `max_bytes` bytes are queued; beyond that they are dropped
//!   and counted (`Stats::qos0_dropped`), as QoS 0 allows;
//! - QoS 1/2 messages are queued while fewer than 2 x our Receive
//!   Maximum of them are queued, whatever their size. They stay
//!   unacknowledged until their callbacks ran, so a broker that keeps our
//!   Receive Maximum never sends more than that; the factor 2 tolerates
//!   brokers that exceed it in bursts (mosquitto 2.0 was measured at 16
//!   for 10). Waiting for room below that could wait for ever, as the
//!   callback may be waiting for an acknowledgement that sits in the
//!   socket behind them. A broker beyond that breaks the protocol by far:
//!   with the strict option the connection ends with the spec's reaction,
//!   DISCONNECT 0x93 ([`Room::Exceeded`]); by default (mosquitto 2.0 goes
//!   past it in longer bursts under a flood) the message is queued while
//!   fewer than 2 x `max_bytes` bytes are queued, and beyond that the
//!   reader waits for room as when no callback blocks. That wait lasts
//!   until the callback's call ends (at the latest with its operation
//!   timeout): the price of a broker that breaks the protocol, paid in
//!   time, not memory. What was not acknowledged is resent on resume.
//!
//! So at most 2 x `max_bytes` + (2 x Receive Maximum + 1) x our Maximum
//! Packet Size bytes, and 2 x `limit` + 2 x Receive Maximum messages (plus
//! those that fit in 2 x `max_bytes`) wait, plus connection events and the
//! completions of asynchronous publishes acknowledged meanwhile. A
//! response to a request made from a callback is not held back by the
//! broker's flow control behind those unacknowledged messages: responses
//! come at QoS 0 (see `request`).

use super::gate::Kind;
use super::pool;
use super::session::{Completion, Finished, InboundAck};
use super::{Ack, ClientOptions, ConnectionEvent, DisconnectCause, Error, Inner};
use crate::packet::Publish;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

pub enum Event {
    /// A message, with what acknowledges it once its callback returned
    /// (QoS 1/2).
    Message(Publish, Option<InboundAck>),
    Connection(ConnectionEvent),
    /// The outcome of an asynchronous publish, run as is.
    Completion(Completion, Result<Ack, Error>),
    /// A diagnostic line for `Handler::on_log` (see `logging`): outside
    /// the queue's bound, never waited for.
    Log(super::Level, String),
}

/// What the application implements to receive events. Called on a thread of
/// the callback pool (see `pool`), one event at a time per client, in
/// arrival order. A panic in `on_message`, `on_connection` or `on_log` (or
/// a completion) ends that call only: it is caught, logged, and the next
/// event is delivered (a message's acknowledgement goes as after a return).
pub trait Handler: Send + Sync + 'static {
    /// Takes the message by value so the handler can move its parts
    /// (properties, payload) into its own view without copying. A QoS 1/2
    /// message is acknowledged after this returns.
    fn on_message(&self, message: Publish);
    /// With manual acknowledgement on (`ClientOptions::manual_ack`), called
    /// instead of `on_message`: `ack_id` is what `MqttClient::ack` takes
    /// to acknowledge a QoS 1/2 message, 0 for QoS 0. Returns whether the
    /// application saw the message (and so has its ack id); one it did
    /// not see (no callback for it) is acknowledged at once, as after its
    /// callback without manual acknowledgement. By default it calls
    /// `on_message` and returns true.
    fn on_message_with_ack(&self, message: Publish, ack_id: u64) -> bool {
        let _ = ack_id;
        self.on_message(message);
        true
    }
    fn on_connection(&self, event: &ConnectionEvent);
    /// A diagnostic line at `level` (see `logging`), for a handler that
    /// asked for them (`MqttClient::set_log_level`); called in order with
    /// the other events. The same lines go to the `log` facade.
    fn on_log(&self, level: super::Level, line: &str) {
        let _ = (level, line);
    }
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
    /// Whether `before_connect` is to be called (checked before each
    /// attempt, so that no thread is used when there is nothing to run).
    /// A panic here or in `before_connect` fails that attempt.
    fn has_pre_connect(&self) -> bool {
        false
    }
    /// Called before each connection attempt to `url` (the attempt's
    /// number: from 1 per `connect` call or per reconnection), on the
    /// blocking pool (see `attempt`): may change the user name, password,
    /// Authentication Method and Data and CONNECT properties in
    /// `settings`, for this attempt and later ones. False skips the
    /// attempt.
    fn before_connect(
        &self,
        _url: &str,
        _attempt: u32,
        _settings: &mut super::ClientOptions,
    ) -> bool {
        true
    }
}

/// What is about to be queued, for [`Delivery::room`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// A QoS 0 message: dropped beyond its allowance.
    Qos0,
    /// A QoS 1/2 message, acknowledged after its callback.
    Qos12,
    /// A connection event or a completion: never dropped.
    Other,
}

/// Whether an event may be queued now (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    Now,
    /// Wait for the drain job to make room.
    Wait,
    /// A QoS 0 message beyond the allowance while a callback blocks.
    Drop,
    /// A QoS 1/2 message beyond twice our Receive Maximum while a callback
    /// blocks: the broker broke the protocol (DISCONNECT 0x93).
    Exceeded,
}

pub struct Delivery {
    queue: Mutex<Queue>,
    /// Signalled when the queue shrinks or its bound is lifted.
    space: Notify,
    /// Callbacks of this client now inside a blocking call.
    blocked: AtomicUsize,
    closed: AtomicBool,
    limit: usize,
    /// The bound in bytes (see [`cost`]).
    max_bytes: usize,
    /// The most QoS 1/2 messages queued regardless of their size while a
    /// callback blocks: twice our Receive Maximum (see the module docs).
    acked_limit: usize,
    /// Beyond `acked_limit` while a callback blocks: DISCONNECT 0x93
    /// rather than queueing (the strict Receive Maximum option).
    strict: bool,
    /// The most events ever queued at once (a statistic).
    peak: AtomicUsize,
    /// The most bytes ever queued at once (a statistic).
    peak_bytes: AtomicUsize,
}

struct Queue {
    items: VecDeque<Event>,
    /// How many of `items` are log lines, which the bound leaves out.
    logs: usize,
    /// How many of `items` are QoS 1/2 messages.
    acked: usize,
    /// What `items` cost (see [`cost`]).
    bytes: usize,
    /// The client is in the pool's ready list or being run (see `pool`).
    draining: bool,
}

thread_local! {
    /// The delivery whose callback this thread is running, if any.
    static CURRENT: RefCell<Option<Arc<Delivery>>> = const { RefCell::new(None) };
}

/// What a queued event costs against the byte bound: a message its
/// topic, properties and payload (about its size on the wire), a
/// connection event the server's DISCONNECT or the texts it carries, a
/// completion the properties of the acknowledgement, every event its
/// queue entry.
fn cost(e: &Event) -> usize {
    // Bounded apart (see `logging`): never a reason for the reader to wait.
    if let Event::Log(..) = e {
        return 0;
    }
    let entry = std::mem::size_of::<Event>();
    entry
        + match e {
            Event::Message(p, _) => p.topic.len() + p.properties.encoded_len() + p.payload.len(),
            Event::Connection(ConnectionEvent::Disconnected(c)) => match c {
                DisconnectCause::Server(d) => d.properties.encoded_len(),
                DisconnectCause::Io(why) | DisconnectCause::Protocol(_, why) => why.len(),
                _ => 0,
            },
            Event::Connection(ConnectionEvent::ResubscribeFailed { filter, .. }) => filter.len(),
            // The broker's PUBACK/PUBCOMP properties, up to our Maximum
            // Packet Size.
            Event::Completion(_, Ok(ack)) => ack.properties.encoded_len(),
            _ => 0,
        }
}

impl Delivery {
    /// Bounds from the options: the queue's `delivery_queue_limit` and
    /// `delivery_queue_bytes`, and our Receive Maximum, which bounds the
    /// QoS 1/2 messages queued while a callback blocks.
    pub fn new(o: &ClientOptions) -> Self {
        Delivery {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                logs: 0,
                acked: 0,
                bytes: 0,
                draining: false,
            }),
            space: Notify::new(),
            blocked: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            limit: o.delivery_queue_limit.max(1),
            max_bytes: o.delivery_queue_bytes.max(1),
            acked_limit: 2 * (o.receive_maximum() as usize).max(1),
            strict: o.strict_receive_maximum,
            peak: AtomicUsize::new(0),
            peak_bytes: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock can only come from VecDeque
        // itself; the queue is still consistent, so poisoning is ignored.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `entry` may be queued now (see the module docs).
    pub fn room(&self, entry: Entry) -> Room {
        if self.closed.load(Ordering::Acquire) {
            return Room::Now;
        }
        let (len, acked, bytes) = {
            let q = self.lock();
            (q.items.len() - q.logs, q.acked, q.bytes)
        };
        if len < self.limit && bytes < self.max_bytes {
            return Room::Now;
        }
        if self.blocked.load(Ordering::Acquire) == 0 {
            return Room::Wait;
        }
        // The bound is lifted while a callback blocks (see the module docs).
        let allowance_used = len >= 2 * self.limit || bytes >= 2 * self.max_bytes;
        // Beyond twice our Receive Maximum only the bytes count: with a
        // small `limit` the count would stop the reader at once, and the
        // callback would wait out its timeout for an acknowledgement
        // behind the messages the reader no longer reads.
        let bytes_used = bytes >= 2 * self.max_bytes;
        match entry {
            Entry::Qos0 if allowance_used => Room::Drop,
            Entry::Qos12 if acked >= self.acked_limit && self.strict => Room::Exceeded,
            Entry::Qos12 if acked >= self.acked_limit && bytes_used => Room::Wait,
            _ => Room::Now,
        }
    }

    /// Waits until `entry` may be queued; returns [`Room::Now`],
    /// [`Room::Drop`] or [`Room::Exceeded`] (the strict option only).
    pub async fn wait_for_room(&self, entry: Entry) -> Room {
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.room(entry) {
                Room::Wait => notified.await,
                r => return r,
            }
        }
    }

    /// Waits until the queue is below its bound, or below twice it while
    /// a callback blocks (the QoS 0 allowance). The reconnection waits
    /// here before each attempt: every connection may end in a server
    /// DISCONNECT of up to our Maximum Packet Size, which is queued for
    /// the callback (never dropped), so a broker that takes the client
    /// back and sends it away again would otherwise queue them without
    /// bound behind a slow callback. Without deadlock: a callback waiting
    /// for the reconnection in a blocking call waits at most for that
    /// call's timeout; then the queue drains.
    pub async fn wait_below_bound(&self) {
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.room(Entry::Qos0) == Room::Now {
                return;
            }
            notified.await;
        }
    }

    /// Waits until an event that is never dropped may be queued.
    pub async fn wait_for_space(&self) {
        self.wait_for_room(Entry::Other).await;
    }

    /// Queues an event and starts a drain job when none runs.
    pub fn push(&self, inner: &Arc<Inner>, event: Event) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let mut q = self.lock();
        match event {
            Event::Message(_, Some(_)) => q.acked += 1,
            Event::Log(..) => q.logs += 1,
            _ => {}
        }
        q.bytes += cost(&event);
        q.items.push_back(event);
        self.peak.fetch_max(q.items.len(), Ordering::Relaxed);
        self.peak_bytes.fetch_max(q.bytes, Ordering::Relaxed);
        // A client already scheduled or running takes it without a wake-up.
        if !q.draining {
            q.draining = true;
            drop(q);
            pool::schedule(inner.clone());
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
        self.lock().clear();
    }

    /// Events waiting for the handler now, log lines left out.
    pub fn queued_len(&self) -> usize {
        let q = self.lock();
        q.items.len() - q.logs
    }

    /// The most events that were ever waiting for the handler at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// The most bytes (see [`cost`]) that were ever waiting at once.
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes.load(Ordering::Relaxed)
    }

    /// Whether the queue holds `limit` events or `max_bytes` bytes: the
    /// reader may be waiting for room.
    fn full(&self, q: &Queue) -> bool {
        q.items.len() - q.logs >= self.limit || q.bytes >= self.max_bytes
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

impl Queue {
    fn pop(&mut self) -> Option<Event> {
        let e = self.items.pop_front()?;
        match e {
            Event::Message(_, Some(_)) => self.acked -= 1,
            Event::Log(..) => self.logs -= 1,
            _ => {}
        }
        self.bytes -= cost(&e);
        Some(e)
    }

    fn clear(&mut self) {
        self.items.clear();
        self.logs = 0;
        self.acked = 0;
        self.bytes = 0;
    }
}

/// Runs up to `budget` of `inner`'s queued events on this pool thread (see
/// `pool`); returns whether more are queued (the client stays scheduled,
/// the caller runs or requeues it). Otherwise `draining` is cleared: the
/// next push schedules the client again.
pub(super) fn run(inner: &Arc<Inner>, budget: usize) -> bool {
    let d = &inner.delivery;
    CURRENT.with(|c| *c.borrow_mut() = Some(d.clone()));
    // Handlers run inside the client's runtime context, as they did on its
    // blocking pool (`Handle::current` works there).
    let _rt = inner.runtime.enter();
    let more = run_events(inner, d, budget);
    CURRENT.with(|c| *c.borrow_mut() = None);
    more
}

fn run_events(inner: &Arc<Inner>, d: &Delivery, budget: usize) -> bool {
    for _ in 0..budget {
        let Some(event) = next_event(d) else {
            return false;
        };
        // Every call of the handler passes the gate, so that `close` and
        // the callback setters can wait for it (see `gate`).
        let Some(_inside) = inner.gate.enter(Kind::Delivery) else {
            // What was not delivered is dropped unacknowledged.
            let mut q = d.lock();
            q.clear();
            q.draining = false;
            return false;
        };
        match event {
            Event::Message(p, ack) => {
                // With manual acknowledgement, the application acknowledges
                // what it saw (`MqttClient::ack`). A callback that panicked
                // is acknowledged as one that returned: its message holds
                // no slot of our Receive Maximum for ever.
                let ack_id = ack.as_ref().map_or(0, |a| a.ack_id());
                let seen = guarded(inner, true, || match inner.options.manual_ack {
                    true => inner.handler.on_message_with_ack(p, ack_id),
                    false => {
                        inner.handler.on_message(p);
                        false
                    }
                })
                .unwrap_or(false);
                if let Some(a) = ack.filter(|_| !seen) {
                    // Not in the call: the queue's lock would be held
                    // through it.
                    let idle = d.lock().items.is_empty();
                    // Never waits for the writer (see `acks`).
                    inner.acks.push(inner, a, idle);
                }
            }
            Event::Connection(e) => {
                guarded(inner, true, || inner.handler.on_connection(&e));
            }
            Event::Completion(f, r) => {
                guarded(inner, true, || f(r));
            }
            Event::Log(level, line) => {
                inner.logger.taken();
                // Not logged: a handler whose `on_log` panics would be
                // handed that line in turn, for ever.
                guarded(inner, false, || inner.handler.on_log(level, &line));
            }
        }
        pool::returned();
    }
    true
}

/// Runs one call of the application's code. A panic in it (a Rust
/// handler's; a C callback cannot unwind) ends that call only: caught
/// here, it takes neither the pool thread (which the pool would still
/// count, every client of the process then waiting for its starvation
/// check) nor the client's later events with it (its `draining` flag
/// would stay set: never scheduled again). The panic hook has reported
/// it; `log` also tells the client's own log.
fn guarded<R>(inner: &Inner, log: bool, call: impl FnOnce() -> R) -> Option<R> {
    let r = catch_panic(call);
    if r.is_none() && log {
        inner.log(
            super::Level::Error,
            format_args!("a callback panicked; the panic was caught and delivery goes on"),
        );
    }
    r
}

/// Runs the application's `call`; `None` when it panicked, the panic
/// caught and its payload dropped safely (see [`drop_payload`]).
pub(super) fn catch_panic<R>(call: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(r) => Some(r),
        Err(payload) => {
            drop_payload(payload);
            None
        }
    }
}

/// Drops what a blocking job that panicked left (see [`drop_payload`]).
pub(super) fn drop_join_error(e: tokio::task::JoinError) {
    if let Ok(payload) = e.try_into_panic() {
        drop_payload(payload);
    }
}

/// Drops a caught panic's payload, which is the application's value
/// (`panic_any`): its own `drop` may panic too, and that panic would
/// unwind from where the first was caught after all (`guarded`, a
/// blocking job's error, the TLS signer). Caught as well; its payload is
/// forgotten (leaked), as std's docs advise, so nothing can unwind.
fn drop_payload(payload: Box<dyn std::any::Any + Send>) {
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(payload)));
    if let Err(again) = dropped {
        std::mem::forget(again);
    }
}

/// The next event to run; `None` (with `draining` cleared) when none is
/// queued or the client closed.
fn next_event(d: &Delivery) -> Option<Event> {
    let mut q = d.lock();
    let was_full = d.full(&q);
    let Some(e) = q.pop() else {
        q.draining = false;
        return None;
    };
    drop(q);
    // The reader waits for space only when the queue was full.
    if was_full {
        d.space.notify_waiters();
    }
    Some(e)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue of `n` events of which `acked` are counted as QoS 1/2
    /// messages, while a callback blocks.
    fn blocked_queue(o: &ClientOptions, n: usize, acked: usize) -> Delivery {
        let d = Delivery::new(o);
        {
            let mut q = d.lock();
            for _ in 0..n {
                let e = Event::Connection(ConnectionEvent::Connected {
                    session_present: false,
                    version: crate::packet::ProtocolVersion::V5,
                });
                q.bytes += cost(&e);
                q.items.push_back(e);
            }
            q.acked = acked;
        }
        d.blocked.store(1, Ordering::Release);
        d
    }

    /// Beyond twice our Receive Maximum while a callback blocks, a QoS 1/2
    /// message is still queued within twice the byte bound, whatever the
    /// count: a small `delivery_queue_limit` must not stop the reader, as
    /// the callback may wait for an acknowledgement behind the message
    /// (test_callback_echo over TLS stalled 60 s so, 1 run in 10).
    #[test]
    fn beyond_receive_maximum_only_bytes_stop_the_reader() {
        let mut o = ClientOptions {
            delivery_queue_limit: 4,
            receive_maximum: 10,
            ..ClientOptions::default()
        };
        let d = blocked_queue(&o, 20, 20);
        assert_eq!(d.room(Entry::Qos12), Room::Now);
        assert_eq!(d.room(Entry::Qos0), Room::Drop);
        o.delivery_queue_bytes = 1;
        let d = blocked_queue(&o, 20, 20);
        assert_eq!(d.room(Entry::Qos12), Room::Wait);
        o.strict_receive_maximum = true;
        let d = blocked_queue(&o, 20, 20);
        assert_eq!(d.room(Entry::Qos12), Room::Exceeded);
    }

    /// The C docs say "about 150 bytes" of overhead per message.
    #[test]
    fn a_queue_entry_costs_little() {
        let e = std::mem::size_of::<Event>();
        assert!(e <= 200, "{e}");
    }
}
