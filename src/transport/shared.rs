//! One socket, one file descriptor, shared by a connection's read half,
//! write half and [`Control`] handle.
//!
//! Tokio's `into_split` keeps its socket to itself, so the control handle
//! (shutdown from any thread, the send queue for the keep-alive) used to be
//! a `try_clone`: two descriptors per connection, which halved how many
//! clients fit under the process's descriptor limit. Here the halves and
//! the handle hold the same `Arc` of the tokio socket and do their I/O
//! through its readiness (`poll_*_ready` + `try_io`), as tokio's own halves
//! do. The descriptor closes when the last of them is dropped, exactly when
//! the duplicate used to close, so a shutdown never reaches a reused
//! descriptor number.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// What the halves need of a tokio socket; all through `&self`.
pub(super) trait Readiness: AsRawFd + Send + Sync + 'static {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
}

macro_rules! readiness_impl {
    ($t:ty) => {
        impl Readiness for $t {
            fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$t>::poll_read_ready(self, cx)
            }
            fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$t>::poll_write_ready(self, cx)
            }
            fn try_io<R>(
                &self,
                interest: Interest,
                f: impl FnOnce() -> io::Result<R>,
            ) -> io::Result<R> {
                <$t>::try_io(self, interest, f)
            }
        }
    };
}

readiness_impl!(tokio::net::TcpStream);
readiness_impl!(tokio::net::UnixStream);

/// A view of the shared socket: a read half, a write half, or both (the
/// stream under TLS or WebSocket).
pub(super) struct Half<S: Readiness> {
    sock: Arc<S>,
    /// Sends FIN when dropped, as tokio's write half does.
    fin_on_drop: bool,
}

impl<S: Readiness> Half<S> {
    /// The whole stream and the control handle on it.
    pub(super) fn new(sock: S) -> (Half<S>, Control) {
        let sock = Arc::new(sock);
        let control = Control(sock.clone());
        (
            Half {
                sock,
                fin_on_drop: false,
            },
            control,
        )
    }

    /// Splits the stream into a read half and a write half.
    pub(super) fn split(self) -> (Half<S>, Half<S>) {
        let w = Half {
            sock: self.sock.clone(),
            fin_on_drop: true,
        };
        (self, w)
    }

    pub(super) fn sock(&self) -> &S {
        &self.sock
    }
}

impl<S: Readiness> Drop for Half<S> {
    fn drop(&mut self) {
        if self.fin_on_drop {
            // SAFETY: the descriptor is open while `sock` lives.
            unsafe { libc::shutdown(self.sock.as_raw_fd(), libc::SHUT_WR) };
        }
    }
}

/// `Ok(n)` from a libc call's return, or the error it set.
fn check(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl<S: Readiness> AsyncRead for Half<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let sock = &*self.sock;
        let fd = sock.as_raw_fd();
        loop {
            ready!(sock.poll_read_ready(cx))?;
            // SAFETY: recv writes at most the unfilled length into it; only
            // what it wrote is marked initialized below.
            let unfilled = unsafe { buf.unfilled_mut() };
            let r = sock.try_io(Interest::READABLE, || {
                check(unsafe { libc::recv(fd, unfilled.as_mut_ptr().cast(), unfilled.len(), 0) })
            });
            match r {
                Ok(n) => {
                    // SAFETY: recv initialized the first n bytes.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl<S: Readiness> AsyncWrite for Half<S> {
    /// Writes with MSG_NOSIGNAL; `NoSigPipe` over it adds the activity
    /// accounting.
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        let sock = &*self.sock;
        let fd = sock.as_raw_fd();
        loop {
            ready!(sock.poll_write_ready(cx))?;
            let r = sock.try_io(Interest::WRITABLE, || {
                // SAFETY: b is a valid slice of b.len() bytes.
                check(unsafe { libc::send(fd, b.as_ptr().cast(), b.len(), libc::MSG_NOSIGNAL) })
            });
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // SAFETY: the descriptor is open while `sock` lives.
        let r = unsafe { libc::shutdown(self.sock.as_raw_fd(), libc::SHUT_WR) };
        Poll::Ready(check(r as isize).map(drop))
    }
}

impl<S: Readiness> AsRawFd for Half<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

/// A handle on the socket under any transport, used to shut it down from
/// any thread (which wakes a reader or writer blocked on a dead peer) and
/// to ask how much of what we sent the peer has not taken. It shares the
/// connection's descriptor (see the module docs).
pub struct Control(Arc<dyn AsRawFd + Send + Sync>);

impl Control {
    pub fn shutdown(&self) {
        // SAFETY: the descriptor is open while the Arc lives.
        unsafe { libc::shutdown(self.0.as_raw_fd(), libc::SHUT_RDWR) };
    }

    /// Bytes handed to the socket that the peer has not taken yet (TCP:
    /// not acknowledged; Unix: not read), where the system tells (Linux,
    /// SIOCOUTQ). When it shrinks, the peer is alive, even though our
    /// writes went through at once (see `PeerActivity`).
    pub fn unacknowledged(&self) -> Option<u64> {
        #[cfg(target_os = "linux")]
        {
            let mut n: libc::c_int = 0;
            // SAFETY: the descriptor is open while the Arc lives; TIOCOUTQ
            // writes one c_int to `n`.
            let r = unsafe { libc::ioctl(self.0.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
            (r == 0 && n >= 0).then_some(n as u64)
        }
        #[cfg(not(target_os = "linux"))]
        None
    }
}
