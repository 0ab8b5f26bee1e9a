//! A WebSocket front for a mosquitto TCP port: Debian's mosquitto is built
//! without WebSocket support, so the ws:// and wss:// tests connect to this
//! bridge (tokio-tungstenite's server side, optionally behind rustls),
//! which forwards the MQTT bytes to the test's own mosquitto.
//!
//! Towards the client it splits every chunk read from mosquitto into two
//! WebSocket messages, so that packets arrive split across messages (and,
//! when mosquitto wrote several at once, several in one message).

use futures_util::{SinkExt, StreamExt};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// What the bridge saw of one upgrade request.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub path: String,
    /// (lower-case name, value)
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }
}

pub struct WsBridge {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<SeenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WsBridge {
    fn drop(&mut self) {
        // Dropping the accept task's JoinSet aborts the connections too.
        self.task.abort();
    }
}

/// A rustls server configuration from PEM files, for wss://.
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// Starts a bridge on a free loopback port forwarding to `backend_port`.
pub async fn start(backend_port: u16, tls: Option<TlsAcceptor>) -> WsBridge {
    start_with_subprotocol(backend_port, tls, "mqtt").await
}

/// `start` with a bridge that accepts only `subprotocol` (a broker older
/// than 3.1.1's WebSocket section wants "mqttv3.1"): an upgrade request
/// not offering it gets no Sec-WebSocket-Protocol in the answer.
pub async fn start_with_subprotocol(
    backend_port: u16,
    tls: Option<TlsAcceptor>,
    subprotocol: &'static str,
) -> WsBridge {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = seen2.clone();
            let tls = tls.clone();
            conns.spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(tcp).await {
                            serve(s, backend_port, seen, subprotocol).await;
                        }
                    }
                    None => serve(tcp, backend_port, seen, subprotocol).await,
                }
            });
        }
    });
    WsBridge { port, seen, task }
}

// The handshake callback's error type is tungstenite's.
#[allow(clippy::result_large_err)]
async fn serve<S>(
    stream: S,
    backend_port: u16,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    subprotocol: &'static str,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let callback = |req: &Request, mut resp: Response| {
        let headers = req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        seen.lock().unwrap().push(SeenRequest {
            path: req.uri().to_string(),
            headers,
        });
        let wants_mqtt = req
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .any(|v| {
                v.to_str()
                    .unwrap_or("")
                    .split(',')
                    .any(|p| p.trim() == subprotocol)
            });
        if wants_mqtt {
            resp.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static(subprotocol),
            );
        }
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let Ok(tcp) = TcpStream::connect((Ipv4Addr::LOCALHOST, backend_port)).await else {
        return;
    };
    let (mut from_broker, mut to_broker) = tcp.into_split();
    let (mut to_client, mut from_client) = ws.split();
    let up = async move {
        while let Some(Ok(m)) = from_client.next().await {
            match m {
                Message::Binary(b) if to_broker.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = to_broker.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from_broker.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let (a, b) = buf[..n].split_at(n / 2);
            for part in [a, b] {
                if !part.is_empty()
                    && to_client
                        .send(Message::Binary(part.to_vec().into()))
                        .await
                        .is_err()
                {
                    return;
                }
            }
        }
        let _ = to_client.send(Message::Close(None)).await;
    };
    tokio::join!(up, down);
}
