//! The keep-alive task: sends PINGREQ when nothing was sent for the
//! keep-alive interval, and ends the connection when no PINGRESP comes
//! back within a further interval of reading. Time in which the reader
//! did not read because the delivery queue was full does not count: the
//! PINGRESP then waits in the socket by our choice, and back-pressure is
//! not a dead peer.

use super::{Connection, DisconnectCause, Inner};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

const PINGREQ: &[u8] = &[0xC0, 0x00];

pub(super) async fn run(inner: Arc<Inner>, conn: Arc<Connection>) {
    let interval = conn.keep_alive;
    // The oldest unanswered PINGREQ: when it was sent, and how many
    // PINGRESPs had come before it.
    let mut unanswered: Option<(Instant, u64)> = None;
    loop {
        let mut wake = interval;
        if let Some((sent, answered)) = unanswered {
            if conn.pingresps.load(Ordering::Acquire) > answered {
                unanswered = None;
            } else if let Some(silent) = conn.silent_since(sent) {
                if silent >= interval {
                    inner.connection_lost(&conn, DisconnectCause::KeepAliveTimeout);
                    return;
                }
                wake = interval - silent;
            }
        }
        // PINGREQs go on while one is unanswered (reading paused), so
        // that the broker's own keep-alive sees us.
        let idle = conn.idle_for();
        if idle >= interval {
            let answered = conn.pingresps.load(Ordering::Acquire);
            if inner
                .send(&conn, bytes::Bytes::from_static(PINGREQ))
                .await
                .is_err()
            {
                return;
            }
            unanswered.get_or_insert((Instant::now(), answered));
            continue;
        }
        tokio::time::sleep(wake.min(interval - idle)).await;
    }
}
