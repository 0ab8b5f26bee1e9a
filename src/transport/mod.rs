//! Transports: a connected byte stream split into a [`PacketReader`] and a
//! [`PacketWriter`], so that reading never blocks writers.
//!
//! Every transport (TCP, TLS, WebSocket over either, Unix sockets) ends up
//! as a boxed `AsyncRead` half and a boxed `AsyncWrite` half; the packet
//! framing above them is shared. The URL's scheme picks the transport.

mod activity;
mod nosigpipe;
mod shared;
pub use activity::PeerActivity;
#[cfg(any(feature = "tls", feature = "websocket"))]
use nosigpipe::NoSigPipe;
pub use shared::Control;
mod absent;
mod proxy;
mod signer;
mod tcp;
#[cfg(feature = "tls")]
mod tls;
mod unix;
mod url;
#[cfg(feature = "websocket")]
mod ws;
#[cfg(not(feature = "tls"))]
use absent::tls;
#[cfg(not(feature = "websocket"))]
use absent::ws;

pub use proxy::{Proxy, ProxySettings};
pub use signer::{ExternalSigner, KeyType};
pub use tcp::TcpTuning;
pub use tls::{describe_io as describe_tls_error, TlsOptions};
pub use url::{BrokerUrl, Scheme, SCHEMES};
pub use ws::WsHeader;

use crate::packet::{self, DecodeError, Packet, ProtocolVersion};
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
///
/// A decoded packet is a view of the buffer it was read into and keeps
/// all of that allocation alive for as long as it lives (a message
/// waiting in the delivery queue). So a packet keeps its view only when
/// it is at least a quarter of that allocation; a smaller one is copied
/// into an allocation of its own. Otherwise a tiny message read into a
/// buffer whose other bytes belonged to packets the client dropped (an
/// acknowledgement for an unknown packet id with 60 KiB of properties,
/// say) would pin the whole buffer, hundreds of times its own size. The
/// reader allocates its buffers itself (see `make_room`) so that it knows
/// their size.
pub struct PacketReader {
    io: BoxRead,
    buf: BytesMut,
    /// The size of the allocation `buf` is a view of.
    alloc: usize,
    max_packet_size: usize,
    /// Set when TCP quick ACKs are wanted: Linux clears TCP_QUICKACK after
    /// it is used, so it is re-armed before every read. The fd stays valid
    /// while `io` (which owns the socket) lives.
    quickack_fd: Option<RawFd>,
    /// Touched by every read that brought bytes, so that a large packet
    /// arriving slowly shows the peer alive before it is complete.
    activity: PeerActivity,
    /// Which protocol's forms are read (v5 until told otherwise).
    version: ProtocolVersion,
}

/// A buffer larger than this (grown for a large packet) is left to the
/// packet taken as a view of it: the reader moves on to a new one.
const SMALL_BUFFER: usize = 64 * 1024;

/// The size of a fresh read buffer, and the least room a read is given.
const READ_BUFFER: usize = 8 * 1024;
const MIN_READ: usize = 4 * 1024;

impl PacketReader {
    pub fn new(
        io: BoxRead,
        max_packet_size: usize,
        quickack_fd: Option<RawFd>,
        activity: PeerActivity,
    ) -> Self {
        PacketReader {
            io,
            buf: BytesMut::with_capacity(READ_BUFFER),
            alloc: READ_BUFFER,
            max_packet_size,
            quickack_fd,
            activity,
            version: ProtocolVersion::V5,
        }
    }

    /// Reads the forms of `version` from now on: set before CONNECT is
    /// sent, so that CONNACK is read in the form of the CONNECT.
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.version = version;
    }

    /// Reads the next packet. Cancel-safe: bytes already read stay buffered.
    pub async fn read_packet(&mut self) -> Result<Packet, ReadError> {
        loop {
            if let Some(p) = self.next_buffered()? {
                return Ok(p);
            }
            // Re-armed before each read rather than after it: the same
            // ACKs, and the system call stays off the way from a packet's
            // arrival to its handling (a PUBACK to its waiting publish).
            if let Some(fd) = self.quickack_fd {
                tcp::set_quickack(fd);
            }
            self.make_room();
            let n = self
                .io
                .read_buf(&mut self.buf)
                .await
                .map_err(ReadError::Io)?;
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

    /// Decodes the packet at the front of the buffer once it is all
    /// there: a view of the buffer when the packet is at least a quarter
    /// of its allocation, else a copy (see [`PacketReader`]).
    fn next_buffered(&mut self) -> Result<Option<Packet>, ReadError> {
        let max = self.max_packet_size;
        let Some(len) = packet::complete_len(&self.buf, max).map_err(ReadError::Decode)? else {
            return Ok(None);
        };
        let decoded = if len.saturating_mul(4) >= self.alloc {
            let p = packet::decode_with(&mut self.buf, max, self.version);
            if self.alloc > SMALL_BUFFER {
                // Not kept for the next reads: the packet alone keeps its
                // large buffer alive, as long as it lives and no longer.
                self.renew(self.buf.len() + READ_BUFFER);
            }
            p
        } else {
            let mut own = BytesMut::from(&self.buf[..len]);
            bytes::Buf::advance(&mut self.buf, len);
            packet::decode_with(&mut own, max, self.version)
        };
        decoded.map_err(ReadError::Decode)
    }

    /// Makes room for a read of at least [`MIN_READ`] bytes. A new
    /// allocation takes the start of the packet being read; it doubles
    /// with that packet (never reserving what a peer merely declares), so
    /// a large packet costs linear time and at most about twice its size.
    /// Never `BytesMut::reserve`, which could grow the allocation in
    /// place without telling us its size.
    fn make_room(&mut self) {
        if self.buf.capacity() - self.buf.len() >= MIN_READ {
            return;
        }
        self.renew((2 * self.buf.len()).max(READ_BUFFER));
    }

    /// Moves the buffered bytes to a new allocation of `cap` bytes.
    fn renew(&mut self, cap: usize) {
        let mut fresh = BytesMut::with_capacity(cap);
        fresh.extend_from_slice(&self.buf);
        self.alloc = fresh.capacity();
        self.buf = fresh;
    }
}

/// The write half. Callers encode a whole packet into one buffer and hand
/// it over in one call, so packets are never interleaved.
pub struct PacketWriter {
    io: BoxWrite,
    /// Bytes the socket takes are on their way, with nothing to flush
    /// (TCP and Unix sockets, not TLS or WebSocket): see `try_write_now`.
    direct: bool,
}

impl PacketWriter {
    pub fn new(io: BoxWrite) -> Self {
        PacketWriter { io, direct: false }
    }

    /// A writer straight onto a socket, whose flush does nothing.
    pub(crate) fn new_direct(io: BoxWrite) -> Self {
        PacketWriter { io, direct: true }
    }

    /// Whether `try_write_now` may write (see there).
    pub fn writes_through(&self) -> bool {
        self.direct
    }

    /// Writes some of `bytes` at once on the calling thread, without a
    /// task or a runtime: how many the socket took (possibly 0, when its
    /// buffer is full; then the writer's next poll registers the task's
    /// waker), or the error. Only for a writer that `writes_through`
    /// (nothing to flush afterwards); others return `Ok(0)`.
    pub fn try_write_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if !self.direct || bytes.is_empty() {
            return Ok(0);
        }
        let waker = noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        match std::pin::Pin::new(&mut self.io).poll_write(&mut cx, bytes) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => Ok(0),
        }
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

/// A waker that does nothing (`Waker::noop` is newer than our MSRV).
fn noop_waker() -> std::task::Waker {
    use std::task::{RawWaker, RawWakerVTable, Waker};
    const VTABLE: RawWakerVTable = RawWakerVTable::new(
        |_| RawWaker::new(std::ptr::null(), &VTABLE),
        |_| {},
        |_| {},
        |_| {},
    );
    // SAFETY: every function of the vtable ignores the (null) data
    // pointer, and clone returns another such waker.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
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
/// The WebSocket subprotocol of MQTT 5.0 and 3.1.1 (section 6 of both).
pub const WS_MQTT: &[&str] = &["mqtt"];

/// What a 3.1.1 connection offers: `mqtt`, and `mqttv3.1`, the name
/// brokers older than 3.1.1's WebSocket section still require (the
/// subprotocol only names the framing; the CONNECT says 3.1.1).
pub const WS_MQTT_311: &[&str] = &["mqtt", "mqttv3.1"];

pub struct ConnectConfig<'a> {
    pub tcp: &'a TcpTuning,
    pub tls: &'a TlsOptions,
    /// Extra headers on the WebSocket upgrade request.
    pub ws_headers: &'a [WsHeader],
    /// The WebSocket subprotocols offered, preferred first: the server
    /// picks one of them ([`WS_MQTT`], or [`WS_MQTT_311`] when the client
    /// may speak 3.1.1).
    pub ws_subprotocols: &'a [&'a str],
    /// A proxy set, or whether to take one from the environment.
    pub proxy: &'a ProxySettings,
    pub max_packet_size: usize,
}

/// The TCP stream MQTT, TLS or WebSocket runs over: to the broker, or a
/// tunnel to it through the proxy (see `proxy`).
async fn open_path(url: &BrokerUrl, cfg: &ConnectConfig<'_>) -> Result<tcp::OpenTcp, ConnectError> {
    let proxy = cfg
        .proxy
        .for_target(url.scheme, &url.host)
        .map_err(ConnectError::InvalidArgument)?;
    Ok(match proxy {
        Some(p) => p.open(&url.host, url.port, cfg.tcp).await?,
        None => tcp::open_tcp(&url.host, url.port, cfg.tcp).await?,
    })
}

/// Opens the transport the URL names.
pub async fn connect(url: &BrokerUrl, cfg: &ConnectConfig<'_>) -> Result<Transport, ConnectError> {
    let max = cfg.max_packet_size;
    match url.scheme {
        Scheme::Tcp => Ok(tcp::plain_tcp(open_path(url, cfg).await?, max)),
        Scheme::Unix => Ok(unix::connect_unix(&url.path, max).await?),
        // BrokerUrl::parse refuses the schemes of a transport left out.
        #[cfg(feature = "tls")]
        Scheme::Tls => {
            let t = open_path(url, cfg).await?;
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
        #[cfg(feature = "websocket")]
        Scheme::Ws => {
            let t = open_path(url, cfg).await?;
            let activity = PeerActivity::new();
            let stream = NoSigPipe::new(t.stream, activity.clone());
            let (r, w) = ws::handshake(stream, url, cfg.ws_headers, cfg.ws_subprotocols).await?;
            Ok(Transport {
                reader: PacketReader::new(r, max, t.quickack_fd, activity.clone()),
                writer: PacketWriter::new(w),
                control: Some(t.control),
                activity,
            })
        }
        #[cfg(all(feature = "tls", feature = "websocket"))]
        Scheme::Wss => {
            let t = open_path(url, cfg).await?;
            let activity = PeerActivity::new();
            let stream = NoSigPipe::new(t.stream, activity.clone());
            let tls = tls::handshake(stream, &url.host, cfg.tls).await?;
            let (r, w) = ws::handshake(tls, url, cfg.ws_headers, cfg.ws_subprotocols).await?;
            Ok(Transport {
                reader: PacketReader::new(r, max, t.quickack_fd, activity.clone()),
                writer: PacketWriter::new(w),
                control: Some(t.control),
                activity,
            })
        }
        #[allow(unreachable_patterns)]
        _ => Err(ConnectError::InvalidArgument(
            url.scheme.left_out().unwrap_or_default().into(),
        )),
    }
}
