//! Plain TCP with Nagle off and quick ACKs on by default.
//!
//! Without both, a QoS 1 round trip on loopback takes ~40-90 ms: our small
//! packets wait for the peer's delayed ACK (Nagle) and the broker's wait for
//! ours (delayed ACK). TCP_NODELAY fixes the first, TCP_QUICKACK the second.

use super::nosigpipe::NoSigPipe;
use super::shared::Half;
use super::{Control, PacketReader, PacketWriter, PeerActivity, Transport};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use tokio::net::TcpStream;

#[derive(Clone, Copy, Debug)]
pub struct TcpTuning {
    pub nodelay: bool,
    pub quickack: bool,
}

impl Default for TcpTuning {
    fn default() -> Self {
        TcpTuning {
            nodelay: true,
            quickack: true,
        }
    }
}

/// A TCP stream whose descriptor its control handle shares.
pub(super) type TcpSocket = Half<TcpStream>;

/// A connected, tuned TCP stream before it is split or wrapped.
pub(super) struct OpenTcp {
    pub stream: TcpSocket,
    /// Shares the stream's descriptor (see `shared`).
    pub control: Control,
    /// The socket, when quick ACKs must be re-armed after each read.
    pub quickack_fd: Option<RawFd>,
}

/// Connects and applies TCP_NODELAY / TCP_QUICKACK (for every transport
/// that runs over TCP: plain, TLS and WebSocket).
pub(super) async fn open_tcp(host: &str, port: u16, tuning: &TcpTuning) -> io::Result<OpenTcp> {
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(tuning.nodelay)?;
    let fd = stream.as_raw_fd();
    if tuning.quickack {
        set_quickack(fd);
    }
    let (stream, control) = Half::new(stream);
    Ok(OpenTcp {
        stream,
        control,
        quickack_fd: tuning.quickack.then_some(fd),
    })
}

/// MQTT straight over an open TCP stream (to the broker or a tunnel).
pub(super) fn plain_tcp(t: OpenTcp, max_packet_size: usize) -> Transport {
    let (r, w) = t.stream.split();
    let activity = PeerActivity::new();
    Transport {
        reader: PacketReader::new(
            Box::new(r),
            max_packet_size,
            t.quickack_fd,
            activity.clone(),
        ),
        writer: PacketWriter::new_direct(Box::new(NoSigPipe::new(w, activity.clone()))),
        control: Some(t.control),
        activity,
    }
}

/// Best effort: a failure only costs latency.
#[cfg(target_os = "linux")]
pub(super) fn set_quickack(fd: std::os::fd::RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: fd is a live socket owned by the caller's stream; the option
    // value is a c_int of the size passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn set_quickack(_fd: std::os::fd::RawFd) {}
