//! MQTT over WebSocket (`ws://`, `wss://`), with tokio-tungstenite doing
//! the RFC 6455 work: the HTTP upgrade with `Sec-WebSocket-Protocol: mqtt`,
//! client masking, and answering pings and closes.
//!
//! The message stream is turned back into a byte stream so the shared
//! packet framing reads it: a packet split across WebSocket messages and
//! several packets in one message both decode. Each `write_packet` call
//! becomes one binary message.

use super::{BoxRead, BoxWrite, BrokerUrl, ConnectError};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, Stream, StreamExt};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

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
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("'{name}' is not a valid HTTP header name"))?;
    HeaderValue::from_str(value).map_err(|_| {
        format!("the value of header '{name}' contains characters not allowed in HTTP (such as CR or LF)")
    })?;
    Ok(())
}

/// Runs the upgrade on a connected stream (TCP or TLS) and splits the
/// WebSocket into a reading and a writing byte stream.
pub(super) async fn handshake<S>(
    stream: S,
    url: &BrokerUrl,
    headers: &[(String, String)],
    max_packet_size: usize,
) -> Result<(BoxRead, BoxWrite), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let scheme = if url.scheme.is_tls() { "wss" } else { "ws" };
    let uri = format!("{scheme}://{}{}", url.authority(), url.path);
    let mut request = uri
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::InvalidArgument(format!("WebSocket URL '{uri}': {e}")))?;
    let h = request.headers_mut();
    h.insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    for (name, value) in headers {
        // Checked when they were added (check_header).
        let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return Err(ConnectError::InvalidArgument(format!(
                "invalid WebSocket header '{name}'"
            )));
        };
        h.append(n, v);
    }
    // The MQTT layer enforces its own maximum packet size; a packet may
    // span messages, so one message need not be larger than that.
    let limit = max_packet_size.saturating_add(16).max(64 * 1024);
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(|e| match e {
                tungstenite::Error::Io(e) => ConnectError::Io(e),
                tungstenite::Error::Http(resp) => ConnectError::WebSocket(format!(
                    "the server refused the WebSocket upgrade at '{uri}': HTTP {}",
                    resp.status()
                )),
                e => {
                    ConnectError::WebSocket(format!("WebSocket handshake with '{uri}' failed: {e}"))
                }
            })?;
    let (sink, stream) = ws.split();
    Ok((
        Box::new(WsRead {
            stream,
            buf: Bytes::new(),
            closed: false,
        }),
        Box::new(WsWrite { sink }),
    ))
}

fn to_io(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::ErrorKind::BrokenPipe.into()
        }
        e => io::Error::other(e),
    }
}

/// The reading half: the payloads of binary messages as one byte stream.
struct WsRead<S> {
    stream: SplitStream<WebSocketStream<S>>,
    /// What is left of the current message.
    buf: Bytes,
    closed: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsRead<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.buf.is_empty() {
                let n = self.buf.len().min(out.remaining());
                out.put_slice(&self.buf.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if self.closed {
                return Poll::Ready(Ok(()));
            }
            // Pings are answered by tungstenite while it reads.
            match ready!(Pin::new(&mut self.stream).poll_next(cx)) {
                Some(Ok(Message::Binary(b))) => self.buf = b,
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the server sent a WebSocket text message; MQTT uses binary messages",
                    )))
                }
                Some(Ok(Message::Close(_))) | None => {
                    // End of stream: a read of 0 bytes.
                    self.closed = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
            }
        }
    }
}

/// The writing half: each write is sent as one binary message.
struct WsWrite<S> {
    sink: SplitSink<WebSocketStream<S>, Message>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsWrite<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.sink).poll_ready(cx)).map_err(to_io)?;
        Pin::new(&mut self.sink)
            .start_send(Message::Binary(Bytes::copy_from_slice(data)))
            .map_err(to_io)?;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.sink).poll_flush(cx).map_err(to_io)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.sink).poll_close(cx).map_err(to_io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Packet;
    use crate::transport::{PacketReader, PacketWriter, ReadError, Scheme};
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

    const CONNACK: &[u8] = &[0x20, 0x03, 0x00, 0x00, 0x00];
    const SUBACK: &[u8] = &[0x90, 0x04, 0x00, 0x01, 0x00, 0x00];
    const PINGREQ: &[u8] = &[0xC0, 0x00];

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

        let url = BrokerUrl {
            scheme: Scheme::Ws,
            host: "example.test".into(),
            port: 80,
            path: "/mqtt".into(),
        };
        let (r, w) = handshake(client_io, &url, &[], 1 << 20)
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
}
