//! Writes that reach the wire whole, whatever happens to the caller.
//!
//! A packet is handed over while the connection's writer lock is held, and
//! from then on it is committed: if the caller's future is dropped before
//! the packet is fully written (a timeout around `request` or `connect`,
//! an aborted task), the rest is written by a task spawned from `Drop`
//! that keeps the same lock guard, so no other packet can get in between.
//! Otherwise the stream would carry part of a packet whose declared length
//! swallows the packets after it. The common path spawns nothing.
//!
//! A write that fails ends the connection (`connection_lost`), wherever it
//! runs, so a broken stream is never written to again.

use super::{Connection, DisconnectCause, Error, Inner};
use crate::transport::PacketWriter;
use bytes::{Buf, Bytes};
use std::io;
use std::sync::Arc;
use tokio::sync::OwnedMutexGuard;

/// The connection's writer, locked by this holder.
pub(super) struct Writer {
    guard: OwnedMutexGuard<PacketWriter>,
    inner: Arc<Inner>,
    conn: Arc<Connection>,
}

impl Inner {
    /// Waits for the writer lock of `conn` (fails if the connection ended).
    pub(super) async fn lock_writer(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
    ) -> Result<Writer, Error> {
        if !conn.is_alive() {
            return Err(Error::ConnectionLost);
        }
        let guard = conn.writer.clone().lock_owned().await;
        // It may have ended while we waited.
        if !conn.is_alive() {
            return Err(Error::ConnectionLost);
        }
        Ok(Writer {
            guard,
            inner: self.clone(),
            conn: conn.clone(),
        })
    }

    /// The writer of `conn` if it is free now (never waits).
    pub(super) fn try_lock_writer(self: &Arc<Self>, conn: &Arc<Connection>) -> Option<Writer> {
        let guard = conn.writer.clone().try_lock_owned().ok()?;
        conn.is_alive().then(|| Writer {
            guard,
            inner: self.clone(),
            conn: conn.clone(),
        })
    }

    /// Writes one or more whole encoded packets under the writer lock; a
    /// failed write ends the connection.
    pub(super) async fn send(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        bytes: Bytes,
    ) -> Result<(), Error> {
        self.lock_writer(conn).await?.write(bytes).await
    }
}

impl Writer {
    /// Writes `bytes` (whole packets) and flushes, then releases the lock.
    /// Cancel-safe in the sense above: dropped midway, the write goes on.
    /// An I/O error ends the connection and returns `ConnectionLost`.
    pub(super) async fn write(self, bytes: Bytes) -> Result<(), Error> {
        self.write_then(bytes, false).await
    }

    /// Writes the last packet of the connection (DISCONNECT), then sends
    /// FIN so that it reaches the server before the socket closes; nothing
    /// else can be written in between.
    pub(super) async fn write_last(self, bytes: Bytes) -> Result<(), Error> {
        self.write_then(bytes, true).await
    }

    async fn write_then(self, bytes: Bytes, shutdown: bool) -> Result<(), Error> {
        // The client's packets are v5; a 3.1.1 connection's wire is not.
        let bytes = super::v311::to_wire(self.conn.version, bytes)?;
        let mut w = Committed {
            writer: Some(self),
            rest: bytes,
            shutdown,
            finish_on_drop: true,
        };
        let r = w.run().await;
        // Settled either way: nothing left for `Drop` to finish.
        let writer = w.writer.take();
        match (r, writer) {
            (Ok(()), _) => Ok(()),
            (Err(e), Some(writer)) => Err(writer.failed(e)),
            (Err(_), None) => Err(Error::Internal("writer taken during a write")),
        }
    }

    fn failed(self, e: io::Error) -> Error {
        self.inner
            .connection_lost(&self.conn, DisconnectCause::Io(e.to_string()));
        Error::ConnectionLost
    }
}

/// A packet being written. `writer` is Some until the write settles; a
/// drop before that hands the rest to a task.
struct Committed {
    writer: Option<Writer>,
    rest: Bytes,
    /// Send FIN once written.
    shutdown: bool,
    /// False in that task: if it is dropped in turn (its runtime shutting
    /// down), the connection goes with the runtime, and spawning again
    /// could only recurse.
    finish_on_drop: bool,
}

impl Committed {
    async fn run(&mut self) -> io::Result<()> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        while !self.rest.is_empty() {
            // `write_some` is cancel-safe: `rest` is exactly what is left.
            let n = w.guard.write_some(&self.rest).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.rest.advance(n);
        }
        w.guard.flush().await?;
        w.conn.sent_now();
        if self.shutdown {
            // Best effort: the connection is being closed anyway.
            let _ = w.guard.shutdown().await;
        }
        Ok(())
    }
}

impl Drop for Committed {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take().filter(|_| self.finish_on_drop) else {
            return;
        };
        let runtime = writer.inner.runtime.clone();
        let mut rest = Committed {
            writer: Some(writer),
            rest: std::mem::take(&mut self.rest),
            shutdown: self.shutdown,
            finish_on_drop: false,
        };
        // Ends when written, or when the socket fails (the connection
        // ending shuts it down, so this never outlives a dead connection).
        runtime.spawn(async move {
            let r = rest.run().await;
            if let (Err(e), Some(writer)) = (r, rest.writer.take()) {
                writer.failed(e);
            }
        });
    }
}
