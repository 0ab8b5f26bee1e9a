//! The keep-alive task: sends PINGREQ when the connection has been quiet
//! for the keep-alive interval, and declares the connection lost when the
//! broker stays silent for half an interval more.
//!
//! Definitions (K is the keep-alive interval):
//! - The broker shows it is alive when bytes arrive from it, or, during
//!   an exchange, when the peer acknowledges more of the bytes before our
//!   PINGREQ (`Connection::heard_at`; where the socket cannot say what it
//!   still holds, when a write that had to wait for room goes through). A
//!   large write that keeps draining on a slow link, the PINGREQ behind
//!   it, is a live broker; a write the socket accepts at once proves
//!   nothing (the bytes may go nowhere), and neither do TCP
//!   acknowledgements of anything else: the TCP peer may be a middlebox
//!   whose far side died, which takes whatever we send.
//! - Time in which the reader does not read because the delivery queue is
//!   full does not count as silence: the broker's packets (the PINGRESP
//!   too) then wait in the socket by our choice, and back-pressure is not
//!   a dead peer. Silence is counted from the end of such a pause.
//! - A PINGREQ is due when we have sent no whole packet for K (the spec's
//!   duty), or the broker has been silent for K.
//! - From the moment it is due, the wait for the writer lock, the PINGREQ
//!   write and the PINGRESP are all under one watch: the connection is
//!   lost (`DisconnectCause::KeepAliveTimeout`) when the broker is silent
//!   for K/2 counted from that moment, or from a later sign of life or
//!   end of a pause. Acknowledgements of the bytes before the PINGREQ are
//!   such a sign up to the check that finds them all taken; the writer
//!   records the PINGREQ's write (`Connection::pingreq_written`), and
//!   until then the task checks every K/16 rather than K/2, so that
//!   acknowledgements are dated when they happen, not up to K/2 later
//!   (a draining link then looked dead; a blackhole's at-once
//!   acknowledgements looked fresh). While the answer is awaited, PINGREQs
//!   go on whenever nothing was sent for K, so that during a long pause
//!   the broker's own keep-alive still sees us.
//!
//! So a broker that goes silent is declared lost within 1.5 × K of its
//! last sign of life (due at most K after it, then K/2), however long a
//! write of ours is blocked. `connection_lost` then shuts the socket down,
//! which fails a publisher blocked in a write.

use super::{Connection, DisconnectCause, Error, Inner};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

const PINGREQ: &[u8] = &[0xC0, 0x00];

pub(super) async fn run(inner: Arc<Inner>, conn: Arc<Connection>) {
    let interval = conn.keep_alive;
    let start = Instant::now();
    loop {
        let silent = conn.silent_since(start).unwrap_or_default();
        let quiet = conn.idle_for().max(silent);
        if quiet < interval {
            tokio::time::sleep(interval - quiet).await;
            continue;
        }
        if !ping(&inner, &conn).await {
            return;
        }
    }
}

/// Sends PINGREQ and waits for PINGRESP while the broker is not silent for
/// half the interval. False when the connection ended (here or elsewhere).
async fn ping(inner: &Arc<Inner>, conn: &Arc<Connection>) -> bool {
    let window = conn.keep_alive / 2;
    let due = Instant::now();
    conn.ping_started();
    let _ended = PingEnded(conn);
    let exchange = exchange(inner, conn);
    tokio::pin!(exchange);
    loop {
        let wait = match conn.silent_since(due) {
            Some(silent) if silent >= window => {
                // The exchange is dropped after this: a PINGREQ already
                // handed to the writer is finished by its own task, on a
                // socket that is shut down by now, so it fails at once.
                inner.connection_lost(conn, DisconnectCause::KeepAliveTimeout);
                return false;
            }
            // Woken at the earliest moment the broker could count as
            // silent; a sign of life in between moves that moment on.
            // Until the PINGREQ is written and the bytes before it were
            // seen taken, sooner: their being taken counts as life when a
            // look sees it (`Connection::heard_at`), so a look long after
            // a peer took them at once would grant it up to K/2 too much.
            Some(silent) if conn.draining_before_ping() => (window - silent).min(window / 8),
            Some(silent) => window - silent,
            // Reading is paused by back-pressure: look again later.
            None => window,
        };
        if let Ok(r) = tokio::time::timeout(wait, &mut exchange).await {
            return r.is_ok();
        }
    }
}

/// Ends the exchange's count of acknowledgements as signs of life
/// (`Connection::ping_ended`), however `ping` returns or is dropped.
struct PingEnded<'a>(&'a Connection);

impl Drop for PingEnded<'_> {
    fn drop(&mut self) {
        self.0.ping_ended();
    }
}

/// PINGREQ, then PINGRESP; another PINGREQ whenever nothing was sent for
/// the interval meanwhile. Ends when answered, or with the connection.
async fn exchange(inner: &Arc<Inner>, conn: &Arc<Connection>) -> Result<(), Error> {
    let interval = conn.keep_alive;
    let answered = conn.pingresps.load(Ordering::Acquire);
    // Tells `conn` when it is written (`Connection::pingreq_written`).
    inner
        .send_pingreq(conn, Bytes::from_static(PINGREQ))
        .await?;
    loop {
        let idle = conn.idle_for();
        if idle >= interval {
            inner.send(conn, Bytes::from_static(PINGREQ)).await?;
            continue;
        }
        let pong = pingresp_after(conn, answered);
        if tokio::time::timeout(interval - idle, pong).await.is_ok() {
            return Ok(());
        }
    }
}

/// Waits for a PINGRESP beyond the first `answered`.
async fn pingresp_after(conn: &Connection, answered: u64) {
    loop {
        let notified = conn.pingresp_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if conn.pingresps.load(Ordering::Acquire) > answered {
            return;
        }
        notified.await;
    }
}
