//! Transports: a connected byte stream split into a [`PacketReader`] and a
//! [`PacketWriter`], so that reading never blocks writers.
//!
//! Every transport (TCP, TLS, WebSocket over either, Unix sockets) ends up
//! as a boxed `AsyncRead` half and a boxed `AsyncWrite` half; the packet
//! framing above them is shared. The URL's scheme picks the transport.

mod activity;
mod nosigpipe;
pub use activity::PeerActivity;
use nosigpipe::NoSigPipe;
mod tcp;
mod tls;
mod unix;
mod url;
mod ws;

pub use tcp::{connect_tcp, TcpTuning};
pub use tls::{describe_io as describe_tls_error, TlsOptions};
pub use url::{BrokerUrl, Scheme, SCHEMES};
pub use ws::WsHeader;

use crate::packet::{self, DecodeError, Packet};
use bytes::BytesMut;
use std::io;
use std::os::fd::RawFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Why reading a packet failed.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection cleanly (EOF between packets).
    Closed,
    Io(io::Error),
    Decode(DecodeError),
}

/// The read half: buffers bytes and decodes whole packets.
pub struct PacketReader {
    io: BoxRead,
    buf: BytesMut,
    max_packet_size: usize,
    /// Set when TCP quick ACKs are wanted: Linux clears TCP_QUICKACK after
    /// it is used, so it is re-armed after every read. The fd stays valid
    /// while `io` (which owns the socket) lives.
    quickack_fd: Option<RawFd>,
    /// Touched by every read that brought bytes, so that a large packet
    /// arriving slowly shows the peer alive before it is complete.
    activity: PeerActivity,
    /// `buf` grew past [`SMALL_BUFFER`] (for a large packet): the bytes
    /// after the next packet move to a fresh buffer (see `read_packet`).
    grown: bool,
}

/// The size of read buffer that packets may share. A decoded packet is a
/// view of the buffer it was read into and keeps all of it alive: a small
/// message read into the tail of a buffer grown for a large packet (one
/// the client dropped at once, such as an acknowledgement for an unknown
/// packet id) would keep that whole buffer alive while it waits in the
/// delivery queue, hundreds of times its own size.
const SMALL_BUFFER: usize = 64 * 1024;

impl PacketReader {
    pub fn new(
        io: BoxRead,
        max_packet_size: usize,
        quickack_fd: Option<RawFd>,
        activity: PeerActivity,
    ) -> Self {
        PacketReader {
            io,
            buf: BytesMut::with_capacity(8 * 1024),
            max_packet_size,
            quickack_fd,
            activity,
            grown: false,
        }
    }

    /// Reads the next packet. Cancel-safe: bytes already read stay buffered.
    pub async fn read_packet(&mut self) -> Result<Packet, ReadError> {
        loop {
            if let Some(p) =
                packet::decode(&mut self.buf, self.max_packet_size).map_err(ReadError::Decode)?
            {
                if self.grown {
                    // The packet keeps the large buffer; what follows it
                    // (at most one read) is copied, so the next packets
                    // do not share it.
                    let rest = self.buf.split();
                    self.buf = BytesMut::with_capacity(rest.len().max(8 * 1024));
                    self.buf.extend_from_slice(&rest);
                    self.grown = self.buf.capacity() > SMALL_BUFFER;
                }
                return Ok(p);
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(8 * 1024);
                self.grown |= self.buf.capacity() > SMALL_BUFFER;
            }
            let n = self
                .io
                .read_buf(&mut self.buf)
                .await
                .map_err(ReadError::Io)?;
            if let Some(fd) = self.quickack_fd {
                tcp::set_quickack(fd);
            }
            if n > 0 {
                self.activity.touch();
            }
            if n == 0 {
                return Err(if self.buf.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Io(io::ErrorKind::UnexpectedEof.into())
                });
            }
        }
    }
}

/// The write half. Callers encode a whole packet into one buffer and hand
/// it over in one call, so packets are never interleaved.
pub struct PacketWriter {
    io: BoxWrite,
}

impl PacketWriter {
    pub fn new(io: BoxWrite) -> Self {
        PacketWriter { io }
    }

    /// Writes one encoded packet (or several, back to back). Not
    /// cancel-safe: dropped midway, it leaves part of a packet written.
    /// For a transport that is dropped too then (the connect handshake);
    /// a connection's writes go through `write_some` (see client::writer).
    pub async fn write_packet(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// Writes some of `bytes` (at least one byte, unless `bytes` is
    /// empty) and returns how many. Cancel-safe: when the future is
    /// dropped before it completes, nothing of `bytes` was written.
    pub async fn write_some(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.io.write(bytes).await
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        self.io.flush().await
    }

    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.io.shutdown().await
    }
}

/// A handle on the socket under any transport, used only to shut it down
/// from any thread, which wakes a reader or writer blocked on a dead peer.
pub enum Control {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Control {
    pub fn shutdown(&self) {
        let _ = match self {
            Control::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Control::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }

    /// Bytes handed to the socket that the peer has not taken yet (TCP:
    /// not acknowledged; Unix: not read), where the system tells (Linux,
    /// SIOCOUTQ). When it shrinks, the peer is alive, even though our
    /// writes went through at once (see `PeerActivity`).
    pub fn unacknowledged(&self) -> Option<u64> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let fd = match self {
                Control::Tcp(s) => s.as_raw_fd(),
                Control::Unix(s) => s.as_raw_fd(),
            };
            let mut n: libc::c_int = 0;
            // SAFETY: fd is the socket this Control owns (a duplicate that
            // lives as long as it); TIOCOUTQ writes one c_int to `n`.
            let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
            (r == 0 && n >= 0).then_some(n as u64)
        }
        #[cfg(not(target_os = "linux"))]
        None
    }
}

/// A connected transport before it is split.
pub struct Transport {
    pub reader: PacketReader,
    pub writer: PacketWriter,
    pub control: Option<Control>,
    /// Signs of life of the peer, seen by both halves.
    pub activity: PeerActivity,
}

/// Why a transport could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    Io(io::Error),
    /// TLS configuration or handshake failure, in words.
    Tls(String),
    /// The WebSocket upgrade failed (HTTP status, bad answer).
    WebSocket(String),
    InvalidArgument(String),
}

impl From<io::Error> for ConnectError {
    fn from(e: io::Error) -> Self {
        ConnectError::Io(e)
    }
}

/// What a connection needs besides the URL.
pub struct ConnectConfig<'a> {
    pub tcp: &'a TcpTuning,
    pub tls: &'a TlsOptions,
    /// Extra headers on the WebSocket upgrade request.
    pub ws_headers: &'a [WsHeader],
    pub max_packet_size: usize,
}

/// Opens the transport the URL names.
pub async fn connect(url: &BrokerUrl, cfg: &ConnectConfig<'_>) -> Result<Transport, ConnectError> {
    let max = cfg.max_packet_size;
    match url.scheme {
        Scheme::Tcp => Ok(connect_tcp(&url.host, url.port, cfg.tcp, max).await?),
        Scheme::Unix => Ok(unix::connect_unix(&url.path, max).await?),
        Scheme::Tls => {
            let t = tcp::open_tcp(&url.host, url.port, cfg.tcp).await?;
            let activity = PeerActivity::new();
            let stream = NoSigPipe::new(t.stream, activity.clone());
            let tls = tls::handshake(stream, &url.host, cfg.tls).await?;
            let (r, w) = tokio::io::split(tls);
            Ok(Transport {
                reader: PacketReader::new(Box::new(r), max, t.quickack_fd, activity.clone()),
                writer: PacketWriter::new(Box::new(w)),
                control: Some(t.control),
                activity,
            })
        }
        Scheme::Ws => {
            let t = tcp::open_tcp(&url.host, url.port, cfg.tcp).await?;
            let activity = PeerActivity::new();
            let stream = NoSigPipe::new(t.stream, activity.clone());
            let (r, w) = ws::handshake(stream, url, cfg.ws_headers).await?;
            Ok(Transport {
                reader: PacketReader::new(r, max, t.quickack_fd, activity.clone()),
                writer: PacketWriter::new(w),
                control: Some(t.control),
                activity,
            })
        }
        Scheme::Wss => {
            let t = tcp::open_tcp(&url.host, url.port, cfg.tcp).await?;
            let activity = PeerActivity::new();
            let stream = NoSigPipe::new(t.stream, activity.clone());
            let tls = tls::handshake(stream, &url.host, cfg.tls).await?;
            let (r, w) = ws::handshake(tls, url, cfg.ws_headers).await?;
            Ok(Transport {
                reader: PacketReader::new(r, max, t.quickack_fd, activity.clone()),
                writer: PacketWriter::new(w),
                control: Some(t.control),
                activity,
            })
        }
    }
}
