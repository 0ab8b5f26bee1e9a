//! Socket writes that never raise SIGPIPE in the host process.
//!
//! A write to a socket the peer has closed raises SIGPIPE, whose default
//! action kills the process. Rust programs ignore SIGPIPE at start-up, but
//! a C program that links us does not, and changing its signal handling
//! behind its back is not ours to do. So every socket write goes through
//! `send(..., MSG_NOSIGNAL)`, which reports EPIPE instead. Vectored writes
//! (`writev`, which has no such flag and which TLS uses) are turned off.

use super::shared::{Half, Readiness};
use super::PeerActivity;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// The readiness operations of tokio's socket types that the wrapper needs.
pub(super) trait Socket {
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    fn try_io<R>(&self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
    fn fd(&self) -> RawFd;
}

impl<S: Readiness> Socket for Half<S> {
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.sock().poll_write_ready(cx)
    }
    fn try_io<R>(&self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        self.sock().try_io(Interest::WRITABLE, f)
    }
    fn fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

/// Wraps a socket (or its write half) so that writes use MSG_NOSIGNAL.
/// Every transport writes through one, so it is also where a write that
/// waited for room in the send buffer and then went through is recorded,
/// and every byte the socket takes is counted (see `PeerActivity`).
pub(super) struct NoSigPipe<S> {
    io: S,
    activity: PeerActivity,
    /// The last write attempt found the send buffer full.
    waited: bool,
}

impl<S> NoSigPipe<S> {
    pub(super) fn new(io: S, activity: PeerActivity) -> Self {
        NoSigPipe {
            io,
            activity,
            waited: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for NoSigPipe<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: Socket + AsyncWrite + Unpin> AsyncWrite for NoSigPipe<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let sock = &this.io;
        loop {
            if sock.poll_write_ready(cx)?.is_pending() {
                this.waited = true;
                return Poll::Pending;
            }
            let fd = sock.fd();
            let sent = sock.try_io(|| {
                // SAFETY: fd is the live socket `sock` owns; buf is a valid
                // slice of buf.len() bytes.
                let n =
                    unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            if let Ok(n) = sent {
                this.activity.record_sent(n);
            }
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => this.waited = true,
                Ok(n) if n > 0 && this.waited => {
                    this.waited = false;
                    this.activity.drained();
                    return Poll::Ready(Ok(n));
                }
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
