//! MQTT over WebSocket (`ws://`, `wss://`): the RFC 6455 client side of
//! what MQTT needs, over our own TCP or TLS stream.
//!
//! - `upgrade`: the HTTP upgrade with `Sec-WebSocket-Protocol: mqtt`
//!   (on 3.1.1 `mqtt, mqttv3.1`, the server choosing).
//! - `read`: the server's binary frames as one byte stream, for the shared
//!   packet framing (a packet split across frames and several packets in
//!   one frame both decode); pings and closes are answered.
//! - `write`: each write becomes one masked binary frame.
//!
//! Our own code rather than tungstenite's `WebSocket`: tungstenite
//! reserves a frame's declared length as soon as it reads the header (a
//! 10-byte header could make the host process abort on a failed
//! allocation) and buffers whole messages (twice the memory of a packet),
//! and it copies every outgoing message, passwords included. Here nothing
//! a server declares is reserved, payload goes straight into the packet
//! buffer, and outgoing bytes are masked in bounded pieces that are wiped.
//! - `key`: the handshake key, its accept value and the header-name rule,
//!   our own few lines too (the tests' server is tokio-tungstenite's).

mod frame;
mod key;
mod read;
mod upgrade;
mod write;

use super::{BoxRead, BoxWrite, BrokerUrl, ConnectError};
use tokio::io::{AsyncRead, AsyncWrite};

/// A custom header of the upgrade request. Its value is wiped when dropped
/// and never printed: an `Authorization` header carries a token.
#[derive(Clone)]
pub struct WsHeader {
    pub name: String,
    value: zeroize::Zeroizing<String>,
}

impl WsHeader {
    /// A header, checked (see [`check_header`]).
    pub fn new(name: &str, value: &str) -> Result<WsHeader, String> {
        check_header(name, value)?;
        Ok(WsHeader {
            name: name.to_string(),
            value: zeroize::Zeroizing::new(value.to_string()),
        })
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

impl std::fmt::Debug for WsHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsHeader")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// Headers the WebSocket handshake sets itself; callers may not set them.
pub const RESERVED_HEADERS: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// Checks a custom upgrade-request header; the error says why it is refused.
pub fn check_header(name: &str, value: &str) -> Result<(), String> {
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "header '{name}' is set by the WebSocket handshake itself"
        ));
    }
    if !key::is_header_name(name) {
        return Err(format!(
            "'{}' is not a valid HTTP header name",
            crate::redact::peer(name)
        ));
    }
    // HTTP's rule for a field value (as the http crate's HeaderValue, which
    // we do not use here: it would keep an unwiped copy of a token).
    if !value.bytes().all(|b| b >= 32 && b != 127 || b == b'\t') {
        return Err(format!(
            "the value of header '{name}' contains characters not allowed in HTTP (such as CR or LF)"
        ));
    }
    Ok(())
}

/// Runs the upgrade on a connected stream (TCP or TLS) and splits the
/// WebSocket into a reading and a writing byte stream.
pub(super) async fn handshake<S>(
    mut stream: S,
    url: &BrokerUrl,
    headers: &[WsHeader],
    subprotocols: &[&str],
) -> Result<(BoxRead, BoxWrite), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut stage = read::Stage::new();
    upgrade::run(&mut stream, &mut stage, url, headers, subprotocols).await?;
    let (r, w) = tokio::io::split(stream);
    let out = write::outbound(w);
    Ok((
        Box::new(read::WsRead::new(r, stage, out.clone())),
        Box::new(write::WsWrite { out }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Packet;
    use crate::transport::{PacketReader, PacketWriter, ReadError, Scheme};
    use bytes::Bytes;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::Message;

    const CONNACK: &[u8] = &[0x20, 0x03, 0x00, 0x00, 0x00];
    const SUBACK: &[u8] = &[0x90, 0x04, 0x00, 0x01, 0x00, 0x00];
    const PINGREQ: &[u8] = &[0xC0, 0x00];

    fn url() -> BrokerUrl {
        BrokerUrl {
            scheme: Scheme::Ws,
            host: "example.test".into(),
            port: 80,
            path: "/mqtt".into(),
        }
    }

    fn publish() -> Vec<u8> {
        // QoS 0, topic "t", no properties, 200-byte payload.
        let mut body = vec![0x00, 0x01, b't', 0x00];
        body.extend((0..200u32).map(|i| i as u8));
        let mut p = vec![
            0x30,
            0x80 | (body.len() % 128) as u8,
            (body.len() / 128) as u8,
        ];
        p.extend(body);
        p
    }

    /// Several packets in one message, one packet split over three, a ping
    /// answered while reading, our packet arriving as one binary message,
    /// and a close read as the end of the stream.
    // The handshake callback's error type is tungstenite's.
    #[allow(clippy::result_large_err)]
    #[tokio::test]
    async fn frames_split_and_coalesced_ping_and_close() {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let mut protocol = None;
            let cb = |req: &Request, mut resp: Response| {
                protocol = req
                    .headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap_or("").to_string());
                resp.headers_mut()
                    .insert("sec-websocket-protocol", HeaderValue::from_static("mqtt"));
                Ok(resp)
            };
            let mut ws = tokio_tungstenite::accept_hdr_async(server_io, cb)
                .await
                .expect("server handshake");
            let mut both = CONNACK.to_vec();
            both.extend_from_slice(SUBACK);
            ws.send(Message::Binary(both.into())).await.unwrap();
            let p = publish();
            for part in [&p[..2], &p[2..50], &p[50..]] {
                ws.send(Message::Binary(Bytes::copy_from_slice(part)))
                    .await
                    .unwrap();
            }
            ws.send(Message::Ping(Bytes::from_static(b"hi")))
                .await
                .unwrap();
            // Until both our packet and the pong came (or 5 s passed, which
            // fails the test below).
            let mut got = Vec::new();
            let collect = async {
                while let Some(Ok(m)) = ws.next().await {
                    got.push(m);
                    let binary = got.iter().any(|m| matches!(m, Message::Binary(_)));
                    let pong = got.iter().any(|m| matches!(m, Message::Pong(_)));
                    if binary && pong {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), collect).await;
            ws.send(Message::Close(None)).await.unwrap();
            (protocol, got)
        });

        let (r, w) = handshake(client_io, &url(), &[], crate::transport::WS_MQTT)
            .await
            .expect("client handshake");
        let mut reader = PacketReader::new(r, 1 << 20, None, Default::default());
        let mut writer = PacketWriter::new(w);
        assert!(matches!(reader.read_packet().await, Ok(Packet::ConnAck(_))));
        assert!(matches!(reader.read_packet().await, Ok(Packet::SubAck(_))));
        match reader.read_packet().await {
            Ok(Packet::Publish(p)) => {
                assert_eq!(p.topic.as_str(), "t");
                assert_eq!(p.payload.len(), 200);
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
        writer.write_packet(PINGREQ).await.unwrap();
        assert!(matches!(reader.read_packet().await, Err(ReadError::Closed)));

        let (protocol, got) = server.await.unwrap();
        assert_eq!(protocol.as_deref(), Some("mqtt"));
        assert!(
            got.iter()
                .any(|m| matches!(m, Message::Pong(b) if &b[..] == b"hi")),
            "no pong: {got:?}"
        );
        assert!(
            got.iter()
                .any(|m| matches!(m, Message::Binary(b) if &b[..] == PINGREQ)),
            "{got:?}"
        );
    }

    /// A raw server: answers the upgrade, then writes `after` in the same
    /// write as the response (so the client reads both at once) and
    /// returns the stream.
    async fn raw_server(
        mut io: tokio::io::DuplexStream,
        after: Vec<u8>,
    ) -> tokio::io::DuplexStream {
        let mut req = Vec::new();
        while !req.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            io.read_exact(&mut b).await.unwrap();
            req.push(b[0]);
        }
        let req = String::from_utf8(req).unwrap();
        let key = req
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        let mut resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
            derive_accept_key(key.as_bytes())
        )
        .into_bytes();
        resp.extend(after);
        io.write_all(&resp).await.unwrap();
        io
    }

    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![u8::from(fin) << 7 | opcode];
        match payload.len() {
            n @ 0..=125 => f.push(n as u8),
            n @ 126..=0xFFFF => {
                f.push(126);
                f.extend((n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend((n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// Reads one masked client frame: (fin, opcode, unmasked payload).
    async fn client_frame(io: &mut tokio::io::DuplexStream) -> (bool, u8, Vec<u8>) {
        let mut h = [0u8; 2];
        io.read_exact(&mut h).await.unwrap();
        assert!(h[1] & 0x80 != 0, "client frames are masked");
        let len = match h[1] & 0x7F {
            126 => io.read_u16().await.unwrap() as usize,
            127 => io.read_u64().await.unwrap() as usize,
            n => n as usize,
        };
        let mut mask = [0u8; 4];
        io.read_exact(&mut mask).await.unwrap();
        let mut p = vec![0u8; len];
        io.read_exact(&mut p).await.unwrap();
        for (i, b) in p.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        (h[0] & 0x80 != 0, h[0] & 0x0F, p)
    }

    /// Frames sent right after the 101 response are not lost; a message
    /// fragmented into continuation frames with a ping between them
    /// decodes; a close is answered with the same code and ends the stream.
    #[tokio::test]
    async fn fragments_early_frames_and_close_echo() {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let p = publish();
        let mut early = frame(true, 0x2, CONNACK);
        early.extend(frame(false, 0x2, &p[..7]));
        early.extend(frame(true, 0x9, b"p1"));
        early.extend(frame(false, 0x0, &[]));
        early.extend(frame(true, 0x0, &p[7..]));
        early.extend(frame(true, 0x8, &1001u16.to_be_bytes()));
        let server = tokio::spawn(async move {
            let mut io = raw_server(server_io, early).await;
            let pong = client_frame(&mut io).await;
            let close = client_frame(&mut io).await;
            (pong, close)
        });
        let (r, _w) = handshake(client_io, &url(), &[], crate::transport::WS_MQTT)
            .await
            .unwrap();
        let mut reader = PacketReader::new(r, 1 << 20, None, Default::default());
        assert!(matches!(reader.read_packet().await, Ok(Packet::ConnAck(_))));
        assert!(matches!(reader.read_packet().await, Ok(Packet::Publish(_))));
        assert!(matches!(reader.read_packet().await, Err(ReadError::Closed)));
        let (pong, close) = server.await.unwrap();
        assert_eq!(pong, (true, 0xA, b"p1".to_vec()));
        assert_eq!(close, (true, 0x8, 1001u16.to_be_bytes().to_vec()));
    }

    /// A frame header declaring 260,000,000 bytes costs nothing up front:
    /// the payload that does arrive is read as it comes, and the stream
    /// ending inside the frame is an error, not a wait for the rest.
    #[tokio::test]
    async fn a_declared_length_is_not_reserved() {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let mut hostile = vec![0x82, 127];
        hostile.extend(260_000_000u64.to_be_bytes());
        hostile.extend(CONNACK);
        let server = tokio::spawn(async move {
            let io = raw_server(server_io, hostile).await;
            drop(io);
        });
        let (mut r, _w) = handshake(client_io, &url(), &[], crate::transport::WS_MQTT)
            .await
            .unwrap();
        let mut buf = Vec::with_capacity(4096);
        let n = r.read_buf(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], CONNACK);
        assert!(buf.capacity() < 1 << 20);
        server.await.unwrap();
        let e = r.read_buf(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    /// A write larger than the masking piece is one frame of its full
    /// length; the frame's bytes arrive intact.
    #[tokio::test]
    async fn a_large_write_is_one_frame() {
        let (client_io, server_io) = tokio::io::duplex(256 * 1024);
        let server = tokio::spawn(async move {
            let mut io = raw_server(server_io, Vec::new()).await;
            client_frame(&mut io).await
        });
        let (_r, w) = handshake(client_io, &url(), &[], crate::transport::WS_MQTT)
            .await
            .unwrap();
        let mut writer = PacketWriter::new(w);
        let big: Vec<u8> = (0..3 * write::CHUNK + 17)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        writer.write_packet(&big).await.unwrap();
        let (fin, opcode, payload) = server.await.unwrap();
        assert!(fin);
        assert_eq!(opcode, 0x2);
        assert!(payload == big, "payload differs");
    }

    #[tokio::test]
    async fn protocol_violations_end_the_stream() {
        for bad in [
            frame(true, 0x1, b"text"),
            frame(true, 0x0, b"no message"),
            [frame(false, 0x2, b"a"), frame(true, 0x2, b"b")].concat(),
            vec![0x82, 0x81, 0, 0, 0, 0, 0],
        ] {
            let (client_io, server_io) = tokio::io::duplex(64 * 1024);
            let server = tokio::spawn(raw_server(server_io, bad.clone()));
            let (mut r, _w) = handshake(client_io, &url(), &[], crate::transport::WS_MQTT)
                .await
                .unwrap();
            let mut buf = Vec::with_capacity(4096);
            let mut result = Ok(0);
            for _ in 0..3 {
                result = r.read_buf(&mut buf).await;
                if result.is_err() {
                    break;
                }
            }
            let e = result.expect_err(&format!("{bad:?} was accepted"));
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{bad:?}: {e}");
            drop(server);
        }
    }
}
