//! Inbound flow control: the server's use of our Receive Maximum, and the
//! counters the application can read.
//!
//! A QoS 1 message is in flight from its receipt until our PUBACK, which
//! the delivery job sends after the message's callback returned; a QoS 2
//! message from its PUBLISH until PUBREL (we send PUBREC after the
//! callback and PUBCOMP on PUBREL). So when a QoS 1/2 PUBLISH is read, the
//! messages in flight are this one and those the session holds: received
//! and not yet acknowledged (queued, or in their callback), and QoS 2 ones
//! waiting for PUBREL. Received means on any connection of the session:
//! the server resends them after a resume, and counts them.
//!
//! Servers do exceed it: mosquitto 2.0 counts a QoS 2 message as done at
//! PUBREC, so once its queue for us builds up it has more in flight than
//! we allowed. By default that is counted (and logged, see `logging`) and
//! the connection carries on; the strict option gives the spec's reaction,
//! DISCONNECT 0x93.
//!
//! The counters are relaxed atomics, each its own: a reader sees each
//! one exact, not all of them at one instant. The QoS 0 publish path adds
//! two relaxed `fetch_add`s per message (count and payload bytes); the
//! receive path the same.

use crate::packet::QoS;
use std::sync::atomic::{AtomicU64, Ordering};

/// Messages and payload bytes of one direction, by QoS.
#[derive(Debug, Default)]
struct Traffic {
    messages: [AtomicU64; 3],
    bytes: [AtomicU64; 3],
}

impl Traffic {
    fn count(&self, qos: QoS, payload: usize) {
        let q = qos as usize;
        self.messages[q].fetch_add(1, Ordering::Relaxed);
        self.bytes[q].fetch_add(payload as u64, Ordering::Relaxed);
    }
}

/// Counters of one client, cumulative over its connections.
#[derive(Debug, Default)]
pub struct Stats {
    sent: Traffic,
    received: Traffic,
    reconnects: AtomicU64,
    reconnect_attempts: AtomicU64,
    log_dropped: AtomicU64,
    receive_maximum_exceeded: AtomicU64,
    inbound_inflight_peak: AtomicU64,
    qos0_dropped: AtomicU64,
    queued: AtomicU64,
    queue_dropped: AtomicU64,
    queue_expired: AtomicU64,
    resubscribe_failed: AtomicU64,
    writes: AtomicU64,
}

impl Stats {
    /// PUBLISH packets of this QoS handed to the transport as new
    /// messages: the first transmission of each (resends after a
    /// reconnect, with DUP or published afresh on a new session, are not
    /// counted again), the offline queue's when they go out.
    pub fn messages_sent(&self, qos: QoS) -> u64 {
        self.sent.messages[qos as usize].load(Ordering::Relaxed)
    }

    /// The payload bytes of `messages_sent`.
    pub fn payload_bytes_sent(&self, qos: QoS) -> u64 {
        self.sent.bytes[qos as usize].load(Ordering::Relaxed)
    }

    /// PUBLISH packets of this QoS received as new messages: every QoS 0
    /// one (also those dropped later, `qos0_dropped`), each QoS 1/2 one
    /// once (a resend of one we have is not counted again); responses to
    /// requests included.
    pub fn messages_received(&self, qos: QoS) -> u64 {
        self.received.messages[qos as usize].load(Ordering::Relaxed)
    }

    /// The payload bytes of `messages_received`.
    pub fn payload_bytes_received(&self, qos: QoS) -> u64 {
        self.received.bytes[qos as usize].load(Ordering::Relaxed)
    }

    pub(super) fn count_sent(&self, qos: QoS, payload: usize) {
        self.sent.count(qos, payload);
    }

    pub(super) fn count_received(&self, qos: QoS, payload: usize) {
        self.received.count(qos, payload);
    }

    /// Connections made by the automatic reconnection (after a lost
    /// connection, or a failed `connect` with `connect_retry`).
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Attempts the automatic reconnection made, successful or not.
    pub fn reconnect_attempts(&self) -> u64 {
        self.reconnect_attempts.load(Ordering::Relaxed)
    }

    pub(super) fn count_reconnect_attempt(&self, succeeded: bool) {
        self.reconnect_attempts.fetch_add(1, Ordering::Relaxed);
        if succeeded {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Log lines for the handler dropped because too many were waiting
    /// (see `logging`).
    pub fn log_dropped(&self) -> u64 {
        self.log_dropped.load(Ordering::Relaxed)
    }

    pub(super) fn count_log_dropped(&self) {
        self.log_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// How many QoS 1/2 messages arrived beyond our Receive Maximum.
    pub fn receive_maximum_exceeded(&self) -> u64 {
        self.receive_maximum_exceeded.load(Ordering::Relaxed)
    }

    /// The most inbound QoS 1/2 messages in flight at once.
    pub fn inbound_inflight_peak(&self) -> u64 {
        self.inbound_inflight_peak.load(Ordering::Relaxed)
    }

    /// How many QoS 0 messages were dropped because the delivery queue was
    /// beyond its allowance while a callback waited in a blocking call.
    pub fn qos0_dropped(&self) -> u64 {
        self.qos0_dropped.load(Ordering::Relaxed)
    }

    pub(super) fn count_qos0_dropped(&self) {
        self.qos0_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// How many publishes entered the offline queue.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// How many queued publishes a full queue dropped (`DropOldest`).
    pub fn queue_dropped(&self) -> u64 {
        self.queue_dropped.load(Ordering::Relaxed)
    }

    /// How many queued publishes expired before they could be sent.
    pub fn queue_expired(&self) -> u64 {
        self.queue_expired.load(Ordering::Relaxed)
    }

    /// How many filters a re-subscription after a lost session failed for.
    pub fn resubscribe_failed(&self) -> u64 {
        self.resubscribe_failed.load(Ordering::Relaxed)
    }

    /// How many system calls wrote our bytes to the transport (a `send`
    /// on TCP): fewer than the packets written when packets that were
    /// ready together shared one (see `writer`).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    pub(super) fn count_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_queued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_queue_dropped(&self) {
        self.queue_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_queue_expired(&self) {
        self.queue_expired.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_resubscribe_failed(&self) {
        self.resubscribe_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Records `inflight` messages in flight; returns whether that exceeds
    /// `receive_maximum` (and counts it when it does).
    pub(super) fn inbound(&self, inflight: usize, receive_maximum: u16) -> bool {
        self.inbound_inflight_peak
            .fetch_max(inflight as u64, Ordering::Relaxed);
        if inflight > receive_maximum as usize {
            self.receive_maximum_exceeded
                .fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }
}
