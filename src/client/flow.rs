//! Inbound flow control: the server's use of our Receive Maximum, the
//! counters the application can read, and the opt-in diagnostic log.
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
//! we allowed. By default that is counted (and logged when enabled) and
//! the connection carries on; the strict option gives the spec's reaction,
//! DISCONNECT 0x93.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Counters of one client, cumulative over its connections.
#[derive(Debug, Default)]
pub struct Stats {
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

/// Whether diagnostics go to stderr: env `MQTT5C_LOG` set, non-empty and
/// not "0" (read once).
pub(super) fn log_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("MQTT5C_LOG").is_ok_and(|v| !v.is_empty() && v != "0"))
}

/// Writes one diagnostic line to stderr when logging is enabled.
pub(super) fn log(msg: std::fmt::Arguments<'_>) {
    if log_enabled() {
        // One line per message, whatever a server put in it.
        eprintln!("mqtt5c: {}", crate::redact::peer(&msg.to_string()));
    }
}
