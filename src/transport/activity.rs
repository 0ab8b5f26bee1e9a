//! When the peer last showed that it is alive, as seen by the transport:
//! bytes arrived from it; and, apart, when it last took bytes we had been
//! waiting to send, and how many bytes we handed to the socket.
//!
//! The latter two matter for a large write on a slow link: nothing may
//! arrive for a long time, yet the peer is draining our data. A write that
//! the socket accepts at once says nothing (the bytes may be going
//! nowhere, e.g. behind a NAT that dropped the mapping); a write that had
//! to wait for room in the socket's send buffer and then went through
//! says that the TCP peer acknowledged earlier bytes (see `NoSigPipe`).
//! Whether that counts as the broker being alive is the client's call (the
//! TCP peer may be a proxy whose far side is dead): see the keep-alive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shared by the read and write halves of one transport; cheap to clone.
#[derive(Clone, Debug)]
pub struct PeerActivity(Arc<Clock>);

#[derive(Debug)]
struct Clock {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last sign of life.
    last_ms: AtomicU64,
    /// Bytes handed to the socket so far.
    sent: AtomicU64,
    /// Milliseconds after `epoch` when a write that had waited for room
    /// in the socket last went through (0: never).
    drained_ms: AtomicU64,
}

impl PeerActivity {
    /// A clock whose last sign of life is now (the connection was just made).
    pub fn new() -> Self {
        PeerActivity(Arc::new(Clock {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            drained_ms: AtomicU64::new(0),
        }))
    }

    /// Records a sign of life now.
    pub fn touch(&self) {
        let ms = self.0.epoch.elapsed().as_millis() as u64;
        // fetch_max: the halves touch from different threads.
        self.0.last_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// Records that the socket took `n` more bytes of ours.
    pub fn record_sent(&self, n: usize) {
        self.0.sent.fetch_add(n as u64, Ordering::AcqRel);
    }

    /// Records that a write which had waited for room went through.
    pub fn drained(&self) {
        let ms = self.0.epoch.elapsed().as_millis() as u64;
        self.0.drained_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// When a write that had waited for room last went through.
    pub fn last_drained(&self) -> Option<Instant> {
        let ms = self.0.drained_ms.load(Ordering::Acquire);
        (ms > 0).then(|| self.0.epoch + Duration::from_millis(ms))
    }

    /// Bytes handed to the socket so far.
    pub fn sent(&self) -> u64 {
        self.0.sent.load(Ordering::Acquire)
    }

    /// The time of the last sign of life.
    pub fn last(&self) -> Instant {
        self.0.epoch + Duration::from_millis(self.0.last_ms.load(Ordering::Acquire))
    }
}

impl Default for PeerActivity {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_moves_the_last_sign_of_life_forward() {
        let a = PeerActivity::new();
        let first = a.last();
        std::thread::sleep(Duration::from_millis(5));
        a.clone().touch();
        assert!(a.last() >= first + Duration::from_millis(5));
    }
}
