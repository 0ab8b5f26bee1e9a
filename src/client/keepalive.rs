//! The keep-alive task: sends PINGREQ when nothing was sent for the
//! keep-alive interval, and ends the connection when no PINGRESP comes back
//! within a further interval.

use super::{Connection, DisconnectCause, Inner};
use std::sync::atomic::Ordering;
use std::sync::Arc;

const PINGREQ: &[u8] = &[0xC0, 0x00];

pub(super) async fn run(inner: Arc<Inner>, conn: Arc<Connection>) {
    let interval = conn.keep_alive;
    loop {
        let idle = conn.idle_for();
        if idle < interval {
            tokio::time::sleep(interval - idle).await;
            continue;
        }
        let answered = conn.pingresps.load(Ordering::Acquire);
        if inner
            .send(&conn, bytes::Bytes::from_static(PINGREQ))
            .await
            .is_err()
        {
            return;
        }
        let pong = async {
            loop {
                let notified = conn.pingresp_notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if conn.pingresps.load(Ordering::Acquire) > answered {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(interval, pong).await.is_err() {
            inner.connection_lost(&conn, DisconnectCause::KeepAliveTimeout);
            return;
        }
    }
}
