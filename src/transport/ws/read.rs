//! The reading half: the payloads of the server's binary frames as one
//! byte stream, read straight into the caller's buffer.
//!
//! Nothing the server declares is reserved: a frame header is only a
//! claim, and its payload goes into the packet reader's buffer as it
//! arrives, where the MQTT Maximum Packet Size bounds it (checked on the
//! packet's own fixed header before its body is buffered). So a frame or
//! message needs no limit of its own and may be as long as the server
//! likes, and a packet costs the same memory over ws:// as over TCP,
//! plus the fixed [`STAGE`] buffer that holds frame headers, control
//! frames and the payload bytes read along with them.

use super::frame::{self, Header, BINARY, CLOSE, CONTINUATION, PING, TEXT};
use super::write::{lock, Outbound};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read ahead of the frame being read: the HTTP response of the
/// upgrade (whose headers must fit), then frame headers.
pub(super) const STAGE: usize = 16 * 1024;

/// Bytes read from the stream but not used yet (`buf[start..end]`).
pub(super) struct Stage {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Stage {
    pub fn new() -> Stage {
        Stage {
            buf: vec![0u8; STAGE].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Reads more from `io`; the number of bytes read (0 at end of
    /// stream). An error when the stage is full.
    pub fn poll_fill<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("WebSocket: more than {STAGE} bytes without the end of what they start"),
            )));
        }
        let mut rb = ReadBuf::new(&mut self.buf[self.end..]);
        ready!(Pin::new(io).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        self.end += n;
        Poll::Ready(Ok(n))
    }
}

pub(super) struct WsRead<R, W> {
    io: R,
    stage: Stage,
    /// Payload bytes of the current data frame not read yet.
    payload_left: u64,
    /// Inside a fragmented message (a data frame without FIN came).
    in_message: bool,
    /// The server closed (close frame or end of stream).
    eof: bool,
    out: Outbound<W>,
    /// We queued a pong or close that is not written yet.
    owe_control: bool,
}

impl<R, W> WsRead<R, W> {
    pub(super) fn new(io: R, stage: Stage, out: Outbound<W>) -> Self {
        WsRead {
            io,
            stage,
            payload_left: 0,
            in_message: false,
            eof: false,
            out,
            owe_control: false,
        }
    }
}

fn protocol(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("WebSocket protocol error: {what}"),
    )
}

/// Reads at most `limit` bytes from `io` straight into `out`.
fn poll_read_limited<R: AsyncRead + Unpin>(
    io: &mut R,
    cx: &mut Context<'_>,
    out: &mut ReadBuf<'_>,
    limit: usize,
) -> Poll<io::Result<usize>> {
    let mut sub = out.take(limit);
    ready!(Pin::new(io).poll_read(cx, &mut sub))?;
    let n = sub.filled().len();
    // SAFETY: `sub` is a view of the start of `out`'s unfilled part; the
    // read filled (so initialized) its first `n` bytes.
    unsafe { out.assume_init(n) };
    out.advance(n);
    Poll::Ready(Ok(n))
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> WsRead<R, W> {
    /// A data frame's header: checks it continues (or starts) a binary
    /// message; its payload is read next.
    fn data_frame(&mut self, h: Header) -> io::Result<()> {
        match h.opcode {
            BINARY if self.in_message => {
                return Err(protocol("a new message began inside a fragmented one"))
            }
            CONTINUATION if !self.in_message => {
                return Err(protocol("a continuation frame outside a message"))
            }
            TEXT => {
                return Err(protocol(
                    "the server sent a text message; MQTT uses binary messages",
                ))
            }
            _ => {}
        }
        self.in_message = !h.fin;
        self.payload_left = h.len;
        Ok(())
    }

    /// Answers a ping or close (a pong needs nothing).
    fn control_frame(&mut self, cx: &mut Context<'_>, h: Header, payload: &[u8]) {
        let mut o = lock(&self.out);
        match h.opcode {
            PING => o.queue_pong(payload),
            CLOSE => {
                // Echo the status code (RFC 6455 5.5.1), then end the stream.
                o.queue_close(payload.get(..2).map(|c| [c[0], c[1]]));
                self.eof = true;
            }
            _ => return,
        }
        self.owe_control = !o.poll_control(cx);
    }

    /// Processes frames in the stage until payload bytes are due; Ready
    /// also when the server closed.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.payload_left == 0 && !self.eof {
            if let Some((h, header_len)) = frame::parse_header(self.stage.bytes())? {
                if !h.is_control() {
                    self.stage.consume(header_len);
                    self.data_frame(h)?;
                    continue;
                }
                let total = header_len + h.len as usize;
                if self.stage.bytes().len() >= total {
                    let mut payload = [0u8; frame::MAX_CONTROL];
                    let p = &mut payload[..h.len as usize];
                    p.copy_from_slice(&self.stage.bytes()[header_len..total]);
                    self.stage.consume(total);
                    self.control_frame(cx, h, p);
                    continue;
                }
            }
            if ready!(self.stage.poll_fill(&mut self.io, cx))? == 0 {
                if !self.stage.bytes().is_empty() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection inside a WebSocket frame header",
                    )));
                }
                // Between frames: an end of stream like TCP's (the packet
                // reader knows whether a packet was cut short).
                self.eof = true;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> AsyncRead for WsRead<R, W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.owe_control {
            this.owe_control = !lock(&this.out).poll_control(cx);
        }
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_frame(cx))?;
        if this.eof {
            return Poll::Ready(Ok(()));
        }
        let want = this.payload_left.min(out.remaining() as u64) as usize;
        let staged = this.stage.bytes();
        let n = if staged.is_empty() {
            let n = ready!(poll_read_limited(&mut this.io, cx, out, want))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection inside a WebSocket frame",
                )));
            }
            n
        } else {
            let n = staged.len().min(want);
            out.put_slice(&staged[..n]);
            this.stage.consume(n);
            n
        };
        this.payload_left -= n as u64;
        Poll::Ready(Ok(()))
    }
}
