//! Transports: a connected byte stream split into a [`PacketReader`] and a
//! [`PacketWriter`], so that reading never blocks writers.
//!
//! Every transport (TCP now; TLS, WebSocket and Unix sockets later) ends up
//! as a boxed `AsyncRead` half and a boxed `AsyncWrite` half; the packet
//! framing above them is shared.

mod tcp;
mod url;

pub use tcp::{connect_tcp, TcpTuning};
pub use url::{BrokerUrl, Scheme};

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
}

impl PacketReader {
    pub fn new(io: BoxRead, max_packet_size: usize, quickack_fd: Option<RawFd>) -> Self {
        PacketReader {
            io,
            buf: BytesMut::with_capacity(8 * 1024),
            max_packet_size,
            quickack_fd,
        }
    }

    /// Reads the next packet. Cancel-safe: bytes already read stay buffered.
    pub async fn read_packet(&mut self) -> Result<Packet, ReadError> {
        loop {
            if let Some(p) =
                packet::decode(&mut self.buf, self.max_packet_size).map_err(ReadError::Decode)?
            {
                return Ok(p);
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(8 * 1024);
            }
            let n = self
                .io
                .read_buf(&mut self.buf)
                .await
                .map_err(ReadError::Io)?;
            if let Some(fd) = self.quickack_fd {
                tcp::set_quickack(fd);
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

    /// Writes one encoded packet (or several, back to back).
    pub async fn write_packet(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.io.shutdown().await
    }
}

/// A connected transport before it is split.
pub struct Transport {
    pub reader: PacketReader,
    pub writer: PacketWriter,
    /// An independent handle on the socket used only to shut it down, which
    /// wakes a reader or writer blocked on a dead peer.
    pub control: Option<std::net::TcpStream>,
}

/// Opens the transport the URL names.
pub async fn connect(
    url: &BrokerUrl,
    tuning: &TcpTuning,
    max_packet_size: usize,
) -> io::Result<Transport> {
    match url.scheme {
        Scheme::Tcp => connect_tcp(&url.host, url.port, tuning, max_packet_size).await,
    }
}
