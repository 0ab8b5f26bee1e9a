//! Writes: whole packets on the wire, in order, and one system call for
//! several packets that are ready together (flat combining).
//!
//! **The outbox.** The connection's transport writer sits in its
//! [`Outbox`], behind a lock. A caller with a packet takes the writer if
//! it is free and writes at once: a lone packet never waits for company.
//! A caller that finds the writer taken appends its packet to the
//! outbox's queue and waits. The holder, once its own bytes are written,
//! takes the whole queue and writes it in one go (one `send` for any
//! number of small packets), wakes the callers whose bytes were in it,
//! and goes on until the queue is empty; after a few rounds a task takes
//! over, so that no caller is kept writing for others for long. No
//! channel, no loop task: the writing is done by whoever is writing.
//!
//! Some callers take the writer before they know their bytes: to assign
//! a topic alias in wire order, or to wait for the disk before an
//! acknowledgement ([`Inner::lock_writer`]). Bytes queued meanwhile go
//! out after theirs. A caller whose bookkeeping must be in wire order
//! (a packet id registered in the session) does it under the outbox's
//! lock, right as it hands its bytes over ([`Inner::send_with`]).
//!
//! **Committed.** Bytes handed over reach the wire whole, whatever
//! happens to their caller: a queued caller whose future is dropped
//! leaves its bytes to the holder; a holder dropped before its bytes
//! (or a batch of others') are fully written (a timeout around `request`
//! or `connect`, an aborted task) hands the rest, and the queue, to a
//! task spawned from `Drop`, which keeps the writer, so no other packet
//! can get in between. Otherwise the stream would carry part of a packet
//! whose declared length swallows the packets after it. The common path
//! spawns nothing.
//!
//! **Failure.** A write that fails ends the connection
//! (`connection_lost`), wherever it runs, so a broken stream is never
//! written to again; every caller whose bytes were in that write or
//! queued behind it gets `ConnectionLost`.

use super::{lock, Connection, DisconnectCause, Error, Inner};
use crate::transport::PacketWriter;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A packet up to this size is copied into the queue's shared buffer, so
/// that a batch of small packets is one write; a larger one is queued as
/// it is (its own write, no copy).
const COPY_MAX: usize = 4096;

/// Rounds of queued batches a caller writes for others after its own
/// bytes before a task takes over (see the module docs).
const ROUNDS: u32 = 4;

/// The connection's writer and the packets waiting for it.
pub(super) struct Outbox {
    state: Mutex<State>,
    /// Woken when a batch is written or fails, and when the writer is
    /// released.
    progress: Notify,
}

struct State {
    /// The transport's writer while nobody holds it.
    io: Option<PacketWriter>,
    /// Packets handed over while the writer was held, in order. Never
    /// left non-empty without a holder, who writes it before releasing.
    queue: Queue,
    /// Bytes queued since the connection began, and of those, written.
    queued: u64,
    written: u64,
    /// Nothing more is written: a write failed, the connection ended, or
    /// its last packet (DISCONNECT) went out.
    closed: bool,
    /// The queue holds the keep-alive's PINGREQ (see `send_pingreq`).
    ping_queued: bool,
}

#[derive(Default)]
struct Queue {
    chunks: VecDeque<Bytes>,
    /// Small packets after the last chunk, copied back to back.
    tail: BytesMut,
}

impl Queue {
    fn push(&mut self, b: &Bytes) {
        if b.len() <= COPY_MAX {
            self.tail.extend_from_slice(b);
            return;
        }
        self.seal();
        self.chunks.push_back(b.clone());
    }

    fn seal(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
    }

    fn take(&mut self) -> VecDeque<Bytes> {
        self.seal();
        std::mem::take(&mut self.chunks)
    }

    fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.tail.is_empty()
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.tail.clear();
    }
}

impl Outbox {
    pub(super) fn new(io: PacketWriter) -> Self {
        Outbox {
            state: Mutex::new(State {
                io: Some(io),
                queue: Queue::default(),
                queued: 0,
                written: 0,
                closed: false,
                ping_queued: false,
            }),
            progress: Notify::new(),
        }
    }

    /// Waits until the queued bytes up to `end` are written (Ok) or will
    /// never be (the connection ended).
    async fn written(&self, end: u64) -> Result<(), Error> {
        loop {
            let notified = self.progress.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let s = lock(&self.state);
                if s.written >= end {
                    return Ok(());
                }
                if s.closed {
                    return Err(Error::ConnectionLost);
                }
            }
            notified.await;
        }
    }
}

/// What `send_now` did with the bytes.
pub(super) enum Now {
    /// Written whole (or failed: the connection ended).
    Written(Result<(), Error>),
    /// Partly written; the rest is to be written by [`Rest::finish`].
    Rest(Rest),
}

/// The rest of a write `send_now` began, with the writer: committed.
pub(crate) struct Rest(Committed);

impl Rest {
    /// Writes the rest, then the packets queued meanwhile, like
    /// `Writer::write`; dropped midway, a task finishes.
    pub(crate) async fn finish(mut self) -> Result<(), Error> {
        self.0.run().await.map_err(|_| Error::ConnectionLost)
    }
}

/// The connection's writer, held by this holder; released (with the
/// queue written first) when dropped.
pub(super) struct Writer {
    /// Some until released.
    io: Option<PacketWriter>,
    inner: Arc<Inner>,
    conn: Arc<Connection>,
}

impl Inner {
    /// Waits for the writer of `conn` (fails if the connection ended).
    pub(super) async fn lock_writer(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
    ) -> Result<Writer, Error> {
        loop {
            let notified = conn.outbox.progress.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(w) = self.take_writer(conn)? {
                return Ok(w);
            }
            notified.await;
        }
    }

    /// The writer of `conn` if it is free now (never waits).
    pub(super) fn try_lock_writer(self: &Arc<Self>, conn: &Arc<Connection>) -> Option<Writer> {
        self.take_writer(conn).ok().flatten()
    }

    fn take_writer(self: &Arc<Self>, conn: &Arc<Connection>) -> Result<Option<Writer>, Error> {
        if !conn.is_alive() {
            return Err(Error::ConnectionLost);
        }
        let mut s = lock(&conn.outbox.state);
        if s.closed {
            return Err(Error::ConnectionLost);
        }
        Ok(s.io.take().map(|io| Writer {
            io: Some(io),
            inner: self.clone(),
            conn: conn.clone(),
        }))
    }

    /// Writes one or more whole encoded packets: at once if the writer is
    /// free, else with the holder's next batch. A failed write ends the
    /// connection.
    pub(super) async fn send(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        bytes: Bytes,
    ) -> Result<(), Error> {
        let ((), written) = self.send_with(conn, || Ok((bytes, ()))).await?;
        written
    }

    /// Sends the first PINGREQ of a keep-alive exchange like `send`; the
    /// write that carries it then tells the connection, right after it
    /// went into the socket, how many bytes were in the socket before it
    /// (`Connection::pingreq_written`): the moment the broker's time to
    /// answer starts is known there, not when this caller wakes.
    pub(super) async fn send_pingreq(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        bytes: Bytes,
    ) -> Result<(), Error> {
        let ((), written) = self.hand(conn, || Ok((bytes, ())), true).await?;
        written
    }

    /// Like `send`, with the bytes made by `prepare` under the outbox's
    /// lock, right before they are handed over: what it records (a packet
    /// id in the session, say) is in wire order. Err: nothing was handed
    /// over (`prepare` failed, or the connection ended); otherwise what
    /// `prepare` returned with the outcome of the write.
    pub(super) async fn send_with<R>(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        prepare: impl FnOnce() -> Result<(Bytes, R), Error>,
    ) -> Result<(R, Result<(), Error>), Error> {
        self.hand(conn, prepare, false).await
    }

    /// `send_with` done on the calling thread, with no task, waker or
    /// runtime involved: when the writer is free and writes through (TCP,
    /// Unix socket), the bytes made by `prepare` under the outbox's lock
    /// go into the socket at once, and the packets others queued meanwhile
    /// are left to a task (as when a holder is dropped). When the socket
    /// takes only part of them (its buffer full), the caller still holds
    /// the writer: [`Rest::finish`] writes the rest like `send_with`
    /// would, and the bytes are committed (dropped, a task finishes).
    ///
    /// `None`: nothing was done (`prepare` was not called): the writer is
    /// taken, the connection ended, or the transport needs its writes
    /// flushed (TLS, WebSocket); the caller takes the async way, which
    /// sorts all of these out. Otherwise as `send_with`.
    pub(super) fn send_now<R>(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        prepare: impl FnOnce() -> Result<(Bytes, R), Error>,
    ) -> Option<Result<(R, Now), Error>> {
        if !conn.is_alive() {
            return None;
        }
        let (r, io, bytes) = {
            let mut s = lock(&conn.outbox.state);
            if s.closed || !s.io.as_ref().is_some_and(PacketWriter::writes_through) {
                return None;
            }
            let (bytes, r) = match prepare() {
                Ok(p) => p,
                Err(e) => return Some(Err(e)),
            };
            (r, s.io.take().expect("checked above"), bytes)
        };
        let mut h = Holder {
            io,
            inner: self.clone(),
            conn: conn.clone(),
        };
        // The client's packets are v5; a 3.1.1 connection's wire is not.
        let mut bytes = match super::v311::to_wire(conn.version, bytes) {
            Ok(b) => b,
            Err(e) => {
                if let Some(h) = h.release() {
                    h.hand_over(VecDeque::new(), None, None);
                }
                return Some(Ok((r, Now::Written(Err(e)))));
            }
        };
        let now = match h.io.try_write_now(&bytes) {
            Ok(n) if n == bytes.len() => {
                self.stats.count_write();
                conn.sent_now();
                if let Some(h) = h.release() {
                    h.hand_over(VecDeque::new(), None, None);
                }
                Now::Written(Ok(()))
            }
            Ok(n) => {
                if n > 0 {
                    self.stats.count_write();
                }
                bytes.advance(n);
                Now::Rest(Rest(Committed {
                    writer: Some(h),
                    rest: VecDeque::from([bytes]),
                    batch_end: None,
                    ping: None,
                    last: false,
                    rounds: 0,
                    task: false,
                }))
            }
            Err(e) => {
                // As `Committed::write_rest`: the connection dead first,
                // then the outbox closed.
                self.connection_lost(conn, DisconnectCause::Io(e.to_string()));
                h.close_outbox();
                Now::Written(Err(Error::ConnectionLost))
            }
        };
        Some(Ok((r, now)))
    }

    /// `send_with`; `ping`: the bytes are the keep-alive's PINGREQ.
    async fn hand<R>(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        prepare: impl FnOnce() -> Result<(Bytes, R), Error>,
        ping: bool,
    ) -> Result<(R, Result<(), Error>), Error> {
        if !conn.is_alive() {
            return Err(Error::ConnectionLost);
        }
        let (r, handed) = {
            let mut s = lock(&conn.outbox.state);
            if s.closed {
                return Err(Error::ConnectionLost);
            }
            let (bytes, r) = prepare()?;
            match s.io.take() {
                // Converted by `write`.
                Some(io) => (r, Ok((io, bytes))),
                None => {
                    // The client's packets are v5; a 3.1.1 connection's
                    // wire is not.
                    let bytes = super::v311::to_wire(conn.version, bytes)?;
                    s.queue.push(&bytes);
                    s.queued += bytes.len() as u64;
                    s.ping_queued |= ping;
                    (r, Err(s.queued))
                }
            }
        };
        let written = match handed {
            Ok((io, bytes)) => {
                let w = Writer {
                    io: Some(io),
                    inner: self.clone(),
                    conn: conn.clone(),
                };
                w.write_then(bytes, false, ping).await
            }
            Err(end) => conn.outbox.written(end).await,
        };
        Ok((r, written))
    }
}

impl Writer {
    /// Writes `bytes` (whole packets) and flushes, then the packets queued
    /// meanwhile, then releases the writer. Cancel-safe in the sense
    /// above: dropped midway, the writing goes on. An I/O error ends the
    /// connection and returns `ConnectionLost`.
    pub(super) async fn write(self, bytes: Bytes) -> Result<(), Error> {
        self.write_then(bytes, false, false).await
    }

    /// Writes the last packet of the connection (DISCONNECT), after the
    /// packets queued so far, then sends FIN so that it reaches the
    /// server before the socket closes; nothing is written after it.
    pub(super) async fn write_last(self, bytes: Bytes) -> Result<(), Error> {
        self.write_then(bytes, true, false).await
    }

    /// `ping`: `bytes` are the keep-alive's PINGREQ (see `send_pingreq`).
    async fn write_then(mut self, bytes: Bytes, last: bool, ping: bool) -> Result<(), Error> {
        // The client's packets are v5; a 3.1.1 connection's wire is not.
        let bytes = super::v311::to_wire(self.conn.version, bytes)?;
        let mut rest = VecDeque::from([bytes]);
        let mut batch_end = None;
        if last {
            // The queue first: those callers handed their bytes over
            // before this one wrote, and nothing goes after DISCONNECT.
            let (mut queued, end) = {
                let mut s = lock(&self.conn.outbox.state);
                (s.queue.take(), s.queued)
            };
            queued.append(&mut rest);
            rest = queued;
            batch_end = Some(end);
        }
        // The holder is the only writer: nothing goes in before `bytes`.
        let ping = ping.then(|| self.conn.bytes_sent());
        let mut w = Committed {
            writer: self.io.take().map(|io| Holder {
                io,
                inner: self.inner.clone(),
                conn: self.conn.clone(),
            }),
            rest,
            batch_end,
            ping,
            last,
            rounds: 0,
            task: false,
        };
        // A failure has ended the connection already (see `write_rest`).
        w.run().await.map_err(|_| Error::ConnectionLost)
    }
}

impl Drop for Writer {
    /// Released unused (the holder gave up before writing): the packets
    /// queued meanwhile still go, by a task.
    fn drop(&mut self) {
        let Some(io) = self.io.take() else {
            return;
        };
        let holder = Holder {
            io,
            inner: self.inner.clone(),
            conn: self.conn.clone(),
        };
        if let Some(holder) = holder.release() {
            holder.hand_over(VecDeque::new(), None, None);
        }
    }
}

/// The writer while it writes.
struct Holder {
    io: PacketWriter,
    inner: Arc<Inner>,
    conn: Arc<Connection>,
}

impl Holder {
    /// Releases the writer unless packets are queued: then keeps it and
    /// returns itself, to write them.
    fn release(self) -> Option<Holder> {
        {
            let mut s = lock(&self.conn.outbox.state);
            if !s.queue.is_empty() && !s.closed {
                drop(s);
                return Some(self);
            }
            s.io = Some(self.io);
        }
        self.conn.outbox.progress.notify_waiters();
        None
    }

    /// Leaves `rest` (the rest of the batch ending at `batch_end`, if a
    /// queued one; `ping` as in `Committed`) and the queue to a task.
    fn hand_over(self, rest: VecDeque<Bytes>, batch_end: Option<u64>, ping: Option<u64>) {
        let runtime = self.inner.runtime.clone();
        let mut w = Committed {
            writer: Some(self),
            rest,
            batch_end,
            ping,
            last: false,
            rounds: 0,
            task: true,
        };
        // Ends when all is written, or when the socket fails (the
        // connection ending shuts it down, so this never outlives a dead
        // connection).
        runtime.spawn(async move {
            let _ = w.run().await;
        });
    }

    /// Closes the outbox after a failure or the last packet: the queued
    /// packets (and later ones) fail.
    fn close_outbox(&self) {
        {
            let mut s = lock(&self.conn.outbox.state);
            s.closed = true;
            s.queue.clear();
            s.ping_queued = false;
        }
        self.conn.outbox.progress.notify_waiters();
    }
}

/// Bytes being written. `writer` is Some until the writing settles; a
/// drop before that hands the rest to a task.
struct Committed {
    writer: Option<Holder>,
    /// What is left of the current write.
    rest: VecDeque<Bytes>,
    /// The current write is the queue up to this position (None: the
    /// holder's own bytes).
    batch_end: Option<u64>,
    /// Some when the current write carries the keep-alive's PINGREQ: our
    /// bytes in the socket before this write.
    ping: Option<u64>,
    /// The current write ends the connection (DISCONNECT, then FIN).
    last: bool,
    rounds: u32,
    /// Run by a task: writes until the queue is empty, and if it is
    /// dropped in turn (its runtime shutting down), the connection goes
    /// with the runtime, and spawning again could only recurse.
    task: bool,
}

impl Committed {
    /// Writes `rest`, then the queue, batch by batch. The result is that
    /// of the first write (the caller's own bytes); failures of later
    /// batches go to their callers.
    async fn run(&mut self) -> io::Result<()> {
        let own = self.write_rest().await;
        if own.is_ok() {
            self.drain().await;
        }
        own
    }

    /// Writes what is left of the current write and settles it; a failure
    /// ends the connection and closes the outbox.
    async fn write_rest(&mut self) -> io::Result<()> {
        let r = self.write_chunks().await;
        let Some(h) = self.writer.as_ref() else {
            return r;
        };
        match &r {
            Ok(()) => {
                if let Some(before) = self.ping.take() {
                    h.conn.pingreq_written(before);
                }
                if let Some(end) = self.batch_end.take() {
                    lock(&h.conn.outbox.state).written = end;
                    h.conn.outbox.progress.notify_waiters();
                }
                if self.last {
                    // Closed first, so that nothing waits for the writer
                    // should this be dropped during the shutdown.
                    let mut h = self.writer.take().expect("checked above");
                    h.close_outbox();
                    // Best effort: the connection is being closed anyway.
                    let _ = h.io.shutdown().await;
                }
            }
            Err(e) => {
                let h = self.writer.take().expect("checked above");
                // The connection dead first, then the outbox closed: a
                // caller that finds the outbox closed (its bytes never
                // handed over, or failed with the queue) must find the
                // connection dead too, or it takes the loss for a
                // connection still up and fails its publish instead of
                // riding out the reconnect (`MqttClient::route`,
                // `written_outcome`).
                h.inner
                    .connection_lost(&h.conn, DisconnectCause::Io(e.to_string()));
                h.close_outbox();
            }
        }
        r
    }

    async fn write_chunks(&mut self) -> io::Result<()> {
        // Nothing at all can be left (a DISCONNECT 3.1.1 does without).
        self.rest.retain(|b| !b.is_empty());
        let Some(h) = self.writer.as_mut().filter(|_| !self.rest.is_empty()) else {
            return Ok(());
        };
        while let Some(front) = self.rest.front_mut() {
            // `write_some` is cancel-safe: `rest` is exactly what is left.
            let n = h.io.write_some(front).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            h.inner.stats.count_write();
            front.advance(n);
            if front.is_empty() {
                self.rest.pop_front();
            }
        }
        h.io.flush().await?;
        h.conn.sent_now();
        Ok(())
    }

    /// Writes the queued batches until the queue is empty, then releases
    /// the writer; a caller hands over to a task after `ROUNDS`.
    async fn drain(&mut self) {
        while let Some(h) = self.writer.take() {
            let Some(h) = h.release() else {
                return;
            };
            if !h.conn.is_alive() {
                h.close_outbox();
                return;
            }
            let (batch, end, ping) = {
                let mut s = lock(&h.conn.outbox.state);
                let ping = std::mem::take(&mut s.ping_queued).then(|| h.conn.bytes_sent());
                (s.queue.take(), s.queued, ping)
            };
            if !self.task && self.rounds >= ROUNDS {
                h.hand_over(batch, Some(end), ping);
                return;
            }
            self.rounds += 1;
            self.writer = Some(h);
            self.rest = batch;
            self.batch_end = Some(end);
            self.ping = ping;
            if self.write_rest().await.is_err() {
                return;
            }
        }
    }
}

impl Drop for Committed {
    fn drop(&mut self) {
        if self.task {
            return;
        }
        let Some(h) = self.writer.take() else {
            return;
        };
        let rest = std::mem::take(&mut self.rest);
        if self.last {
            // Rare (a disconnect dropped midway): finish it in a task.
            let runtime = h.inner.runtime.clone();
            let mut w = Committed {
                writer: Some(h),
                rest,
                batch_end: self.batch_end.take(),
                ping: self.ping.take(),
                last: true,
                rounds: 0,
                task: true,
            };
            runtime.spawn(async move {
                let _ = w.run().await;
            });
            return;
        }
        h.hand_over(rest, self.batch_end.take(), self.ping.take());
    }
}
