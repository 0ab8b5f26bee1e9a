//! Unix domain sockets (`unix:///path/to/socket`), for a broker on the
//! same device (mosquitto 2.0: `listener 0 /path/to/socket`).

use super::nosigpipe::NoSigPipe;
use super::shared::Half;
use super::{PacketReader, PacketWriter, PeerActivity, Transport};
use std::io;
use tokio::net::UnixStream;

pub(super) async fn connect_unix(path: &str, max_packet_size: usize) -> io::Result<Transport> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("Unix socket '{path}': {e}")))?;
    let (stream, control) = Half::new(stream);
    let (r, w) = stream.split();
    let activity = PeerActivity::new();
    Ok(Transport {
        reader: PacketReader::new(Box::new(r), max_packet_size, None, activity.clone()),
        writer: PacketWriter::new_direct(Box::new(NoSigPipe::new(w, activity.clone()))),
        control: Some(control),
        activity,
    })
}
