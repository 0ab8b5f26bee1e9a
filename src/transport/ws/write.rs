//! The writing half: each `write` call's bytes become one binary frame,
//! masked on the way out in pieces of at most [`CHUNK`] bytes, so an
//! outgoing packet is never copied whole, and the masked pieces are wiped
//! once written (a CONNECT carries the password, an AUTH authentication
//! data; masking hides nothing, the key is in the frame header).
//!
//! A frame announces the length of the whole buffer passed to the first
//! `poll_write`; the following calls must pass the rest of that buffer
//! until it is consumed, as `write_all` and the client's writer do (a
//! write that has started completes, or the connection is closed).
//!
//! The reading half answers pings and closes through [`Outbound`] too:
//! control frames wait until no data frame is half written, then go out
//! with whichever half writes next.

use super::frame::{self, BINARY, CLOSE, PONG};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Waker};
use tokio::io::AsyncWrite;
use zeroize::Zeroize;

/// The most payload bytes masked per `poll_write`.
pub(super) const CHUNK: usize = 64 * 1024;

/// Unpredictable masking keys (RFC 6455 10.3), drawn in batches from the
/// system's secure random source.
struct Masks {
    pool: [u8; 256],
    used: usize,
}

impl Masks {
    fn new() -> Masks {
        Masks {
            pool: [0; 256],
            used: 256,
        }
    }

    fn next(&mut self) -> io::Result<[u8; 4]> {
        if self.used + 4 > self.pool.len() {
            super::super::tls::secure_random(&mut self.pool)?;
            self.used = 0;
        }
        let mut m = [0u8; 4];
        m.copy_from_slice(&self.pool[self.used..self.used + 4]);
        self.used += 4;
        Ok(m)
    }
}

/// What is waiting to be written, and the stream it goes to.
pub(super) struct Out<W> {
    io: W,
    /// Masked bytes not yet written (`buf[pos..]`).
    buf: Vec<u8>,
    pos: usize,
    /// Payload bytes of the current data frame still to come from the caller.
    frame_left: usize,
    mask: [u8; 4],
    /// Payload bytes of the current data frame masked so far.
    masked: usize,
    /// The payload of the latest unanswered ping (RFC 6455 5.5.3 allows
    /// answering only the most recent one).
    pong: Option<Vec<u8>>,
    /// A close frame to send (the status code to echo, if any).
    close: Option<Option<[u8; 2]>>,
    close_sent: bool,
    masks: Masks,
    /// The writing half's task, when it waits on the stream: a write by
    /// the reading half may have taken its place as the one to wake.
    writer_waker: Option<Waker>,
}

impl<W> Drop for Out<W> {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

/// The outbound side shared by both halves.
pub(super) type Outbound<W> = Arc<Mutex<Out<W>>>;

pub(super) fn outbound<W>(io: W) -> Outbound<W> {
    Arc::new(Mutex::new(Out {
        io,
        buf: Vec::with_capacity(CHUNK + frame::MAX_HEADER),
        pos: 0,
        frame_left: 0,
        mask: [0; 4],
        masked: 0,
        pong: None,
        close: None,
        close_sent: false,
        masks: Masks::new(),
        writer_waker: None,
    }))
}

pub(super) fn lock<W>(o: &Outbound<W>) -> MutexGuard<'_, Out<W>> {
    o.lock().unwrap_or_else(|e| e.into_inner())
}

impl<W: AsyncWrite + Unpin> Out<W> {
    /// Writes `buf` out; ready once all of it is written, then wipes it.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pos < self.buf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buf[self.pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pos += n;
        }
        self.buf.as_mut_slice().zeroize();
        self.buf.clear();
        self.pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Moves queued control frames into `buf`, unless a data frame is
    /// half written (a control frame may not go inside one).
    fn stage_control(&mut self) -> io::Result<()> {
        if self.frame_left > 0 || self.close_sent {
            return Ok(());
        }
        if let Some(p) = self.pong.take() {
            let mask = self.masks.next()?;
            frame::put_header(&mut self.buf, PONG, p.len(), mask);
            frame::put_masked(&mut self.buf, &p, mask, 0);
        }
        if let Some(code) = self.close.take() {
            let code = code.as_ref().map_or(&[][..], |c| &c[..]);
            let mask = self.masks.next()?;
            frame::put_header(&mut self.buf, CLOSE, code.len(), mask);
            frame::put_masked(&mut self.buf, code, mask, 0);
            self.close_sent = true;
        }
        Ok(())
    }

    /// Writes out what is buffered and queued control frames.
    fn poll_all(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        self.stage_control()?;
        self.poll_drain(cx)
    }

    fn write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        if self.frame_left == 0 {
            ready!(self.poll_all(cx))?;
            if self.close_sent {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            if data.is_empty() {
                return Poll::Ready(Ok(0));
            }
            self.mask = self.masks.next()?;
            self.masked = 0;
            self.frame_left = data.len();
            frame::put_header(&mut self.buf, BINARY, data.len(), self.mask);
        }
        let n = data.len().min(self.frame_left).min(CHUNK);
        frame::put_masked(&mut self.buf, &data[..n], self.mask, self.masked);
        self.masked += n;
        self.frame_left -= n;
        // The bytes are ours now; what the stream does not take at once
        // goes out at the next write or flush.
        if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    /// Queues a pong answering a ping with `payload` (at most 125 bytes).
    pub(super) fn queue_pong(&mut self, payload: &[u8]) {
        self.pong = Some(payload.to_vec());
    }

    /// Queues the close frame answering the server's, echoing its code.
    pub(super) fn queue_close(&mut self, code: Option<[u8; 2]>) {
        if !self.close_sent && self.close.is_none() {
            self.close = Some(code);
        }
    }

    /// For the reading half: sends queued control frames if it can now.
    /// True once nothing it queued is left to write (or writing failed,
    /// which the reading half will see too).
    pub(super) fn poll_control(&mut self, cx: &mut Context<'_>) -> bool {
        let done = match self.poll_all(cx) {
            Poll::Ready(r) => r.is_err() || (self.pong.is_none() && self.close.is_none()),
            Poll::Pending => false,
        };
        // The stream now wakes this task, not the writer's: wake the
        // writer so it polls (and registers) again.
        if let Some(w) = self.writer_waker.take() {
            w.wake();
        }
        done
    }
}

/// The writing half handed to the packet writer.
pub(super) struct WsWrite<W> {
    pub(super) out: Outbound<W>,
}

impl<W> WsWrite<W> {
    /// Runs `f` on the outbound state; remembers the task when it waits.
    fn with<T>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Out<W>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let mut o = lock(&self.out);
        let r = f(&mut o, cx);
        o.writer_waker = r.is_pending().then(|| cx.waker().clone());
        r
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for WsWrite<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(cx, |o, cx| o.write(cx, data))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(cx, |o, cx| {
            ready!(o.poll_all(cx))?;
            Pin::new(&mut o.io).poll_flush(cx)
        })
    }

    /// Sends a close frame (status 1000, normal closure) unless a data
    /// frame is half written, then shuts the stream down.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(cx, |o, cx| {
            if o.frame_left == 0 {
                o.queue_close(Some(1000u16.to_be_bytes()));
            }
            ready!(o.poll_all(cx))?;
            Pin::new(&mut o.io).poll_shutdown(cx)
        })
    }
}
