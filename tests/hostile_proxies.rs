//! Hostile proxies (issue 13, audit): a proxy is a peer too, and what it
//! sends is bounded and answered with an error, never a hang. Scripted
//! proxies of this file: an HTTP proxy answering `200` then garbage, an
//! answer header that never ends, interim 1xx answers for ever, a proxy
//! trickling its answer a byte at a time (the connect timeout holds), a
//! SOCKS5 reply with an unknown address type and one with a 255-byte
//! domain (read whole, the tunnel then works); a proxy on an IPv6
//! literal with percent-encoded credentials; and the C API's codes and
//! texts for a proxy's failures.

mod common;

use common::events::client;
use common::tunnel::base64;
use common::Broker;
use mqtt5c::client::{ClientOptions, Error};
use mqtt5c::packet::{MqttStr, Properties, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// A proxy whose every connection is handled by `serve` on a thread of
/// its own; what `serve` returns (a note) is kept for the test.
struct Scripted {
    port: u16,
    notes: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn start<F>(addr: SocketAddr, serve: F) -> Scripted
    where
        F: Fn(TcpStream) -> io::Result<String> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind(addr).expect("bind the scripted proxy");
        let port = listener.local_addr().unwrap().port();
        let notes = Arc::new(Mutex::new(Vec::new()));
        let n = notes.clone();
        let serve = Arc::new(serve);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (serve, n) = (serve.clone(), n.clone());
                std::thread::spawn(move || {
                    let note = serve(conn).unwrap_or_else(|e| format!("error: {e}"));
                    n.lock().unwrap().push(note);
                });
            }
        });
        Scripted { port, notes }
    }

    fn v4<F>(serve: F) -> Scripted
    where
        F: Fn(TcpStream) -> io::Result<String> + Send + Sync + 'static,
    {
        Scripted::start((Ipv4Addr::LOCALHOST, 0).into(), serve)
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

/// The HTTP request's header, read up to its empty line.
fn read_http_request(c: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut b)?;
        head.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The SOCKS5 greeting (no authentication chosen) and CONNECT request;
/// returns the request's bytes.
fn read_socks5_request(c: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = [0u8; 2];
    c.read_exact(&mut head)?;
    let mut methods = vec![0u8; usize::from(head[1])];
    c.read_exact(&mut methods)?;
    c.write_all(&[5, 0])?;
    let mut req = [0u8; 4];
    c.read_exact(&mut req)?;
    let addr_len = match req[3] {
        1 => 4,
        4 => 16,
        _ => {
            let mut n = [0u8; 1];
            c.read_exact(&mut n)?;
            usize::from(n[0])
        }
    };
    let mut rest = vec![0u8; addr_len + 2];
    c.read_exact(&mut rest)?;
    Ok([&req[..], &rest[..]].concat())
}

/// Copies both ways between the client and the broker until either ends.
fn pipe(client: TcpStream, broker_port: u16) -> io::Result<()> {
    let upstream = TcpStream::connect((Ipv4Addr::LOCALHOST, broker_port))?;
    let (c2, u2) = (client.try_clone()?, upstream.try_clone()?);
    let up = std::thread::spawn(move || copy(c2, u2));
    copy(upstream, client);
    let _ = up.join();
    Ok(())
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

/// Writes `chunk` until the client goes (or `limit` bytes went); returns
/// how many bytes were written.
fn flood(c: &mut TcpStream, chunk: &[u8], limit: usize) -> usize {
    let mut sent = 0;
    while sent < limit && c.write_all(chunk).is_ok() {
        sent += chunk.len();
    }
    sent
}

fn opts(id: &str, proxy: &str, timeout: Duration) -> ClientOptions {
    let mut o = ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        connect_timeout: timeout,
        ..Default::default()
    };
    o.set_proxy(Some(proxy)).unwrap();
    o
}

/// Connects with `o` to `url`; the result and how long it took.
async fn try_connect(
    o: ClientOptions,
    url: &str,
) -> (Result<mqtt5c::client::ConnectInfo, Error>, Duration) {
    let (c, _rx) = client(o);
    let start = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(60), c.connect(url))
        .await
        .expect("connect returned within 60 s");
    (r, start.elapsed())
}

fn io_text(r: &Result<mqtt5c::client::ConnectInfo, Error>) -> String {
    match r {
        Err(Error::Io(e)) => e.to_string(),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// Subscribes and publishes to itself over `url`: the message comes back.
async fn echo(url: &str, o: ClientOptions) {
    let (c, rx) = client(o);
    c.connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let filter = SubscribeFilter {
        filter: MqttStr::new("hpx/#").unwrap(),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
    };
    c.subscribe(vec![filter], Properties::new()).await.unwrap();
    c.publish(
        "hpx/1",
        b"tunnelled",
        QoS::AtLeastOnce,
        false,
        Properties::new(),
    )
    .await
    .unwrap();
    let m = rx.msg_within(WAIT).expect("the message came back");
    assert_eq!(&m.payload[..], b"tunnelled");
    c.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
}

/// `HTTP/1.1 200` and then garbage where the broker's bytes should be:
/// the tunnel is open, so the garbage is the broker's; a CONNACK that is
/// not one (here a remaining length of five continuation bytes) is a
/// protocol error, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_200_then_garbage_is_the_brokers_protocol_error() {
    let proxy = Scripted::v4(|mut c| {
        read_http_request(&mut c)?;
        c.write_all(b"HTTP/1.1 200 OK\r\n\r\n\x20\xff\xff\xff\xff\xff garbage")?;
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink);
        Ok("200 then garbage".into())
    });
    let (r, took) = try_connect(
        opts("hpx-garbage", &proxy.url("http"), Duration::from_secs(30)),
        "mqtt://127.0.0.1:1",
    )
    .await;
    match r {
        Err(Error::Protocol(text)) => eprintln!("as expected: {text}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// An answer header that never ends is cut at 16 KiB, and so are interim
/// 1xx answers sent for ever: the proxy cannot make us buffer more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_answer_headers_and_interim_answers_are_bounded() {
    for (what, first, chunk) in [
        (
            "endless header",
            &b"HTTP/1.1 200 OK\r\n"[..],
            &b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"[..],
        ),
        (
            "interim answers",
            &b""[..],
            &b"HTTP/1.1 100 Continue\r\nX-A: b\r\n\r\n"[..],
        ),
    ] {
        let proxy = Scripted::v4(move |mut c| {
            read_http_request(&mut c)?;
            c.write_all(first)?;
            let sent = flood(&mut c, chunk, 64 << 20);
            Ok(format!("sent {sent}"))
        });
        let (r, _) = try_connect(
            opts("hpx-endless", &proxy.url("http"), Duration::from_secs(30)),
            "mqtt://127.0.0.1:1",
        )
        .await;
        let text = io_text(&r);
        eprintln!("{what}: {text}");
        assert!(text.contains("longer than 16384 bytes"), "{what}: {text}");
        // The proxy saw the client go long before its 64 MiB.
        let deadline = Instant::now() + WAIT;
        while proxy.notes.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "{what}: the proxy still writes");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let note = proxy.notes.lock().unwrap()[0].clone();
        assert!(note.starts_with("sent "), "{what}: {note}");
    }
}

/// A proxy that trickles its answer (HTTP and SOCKS5), a byte every
/// 300 ms and never finishing: the connect timeout covers the proxy's
/// handshake and ends the attempt on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_proxy_is_cut_by_the_connect_timeout() {
    // The answer's first bytes, then a filler byte for ever (a header
    // line, a SOCKS5 reply's 255-byte domain: valid all along).
    let trickle = |mut c: TcpStream, prefix: &'static [u8]| -> io::Result<String> {
        for b in prefix.iter().chain(std::iter::repeat(&b'x')) {
            std::thread::sleep(Duration::from_millis(300));
            c.write_all(&[*b])?;
        }
        unreachable!()
    };
    let http = Scripted::v4(move |mut c| {
        read_http_request(&mut c)?;
        trickle(c, b"HTTP/1.1 200 OK\r\nX-Slow: ")
    });
    let socks = Scripted::v4(move |mut c| {
        let mut greeting = [0u8; 3];
        c.read_exact(&mut greeting)?;
        trickle(c, b"\x05\x00\x05\x00\x00\x03\xff")
    });
    for (proxy, scheme) in [(&http, "http"), (&socks, "socks5")] {
        let (r, took) = try_connect(
            opts("hpx-slow", &proxy.url(scheme), Duration::from_millis(1500)),
            "mqtt://127.0.0.1:1",
        )
        .await;
        assert!(
            matches!(r, Err(Error::Timeout(_))),
            "{scheme}: expected the connect timeout, got {r:?}"
        );
        assert!(
            took >= Duration::from_millis(1400) && took < Duration::from_secs(10),
            "{scheme}: the 1.5 s connect timeout took {took:?}"
        );
    }
}

/// SOCKS5 replies: an unknown address type is the proxy's garbage; a
/// domain of 255 bytes (the most the length byte says) is read whole and
/// the tunnel works, none of it taken for the broker's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_replies_with_odd_addresses() {
    let proxy = Scripted::v4(|mut c| {
        read_socks5_request(&mut c)?;
        c.write_all(&[5, 0, 0, 7, 1, 2, 3, 4, 0, 80])?;
        Ok("unknown address type".into())
    });
    let (r, _) = try_connect(
        opts("hpx-atyp", &proxy.url("socks5"), Duration::from_secs(30)),
        "mqtt://127.0.0.1:1",
    )
    .await;
    let text = io_text(&r);
    assert!(
        text.contains("the proxy's reply has an unknown address type (7)"),
        "{text}"
    );

    let broker = Broker::start();
    let port = broker.port();
    let proxy = Scripted::v4(move |mut c| {
        read_socks5_request(&mut c)?;
        let mut reply = vec![5, 0, 0, 3, 255];
        reply.extend_from_slice(&[b'x'; 255]);
        reply.extend_from_slice(&1883u16.to_be_bytes());
        c.write_all(&reply)?;
        pipe(c, port)?;
        Ok("tunnel".into())
    });
    echo(
        &broker.url(),
        opts("hpx-255", &proxy.url("socks5"), Duration::from_secs(30)),
    )
    .await;
}

/// A proxy on an IPv6 literal, with percent-encoded credentials: the
/// Basic credentials the proxy gets are the decoded ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proxy_on_an_ipv6_literal_with_percent_encoded_credentials() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    }
    let broker = Broker::start();
    let port = broker.port();
    let want = format!("Proxy-Authorization: Basic {}", base64("g@w:p:ss w%rd"));
    let proxy = Scripted::start("[::1]:0".parse().unwrap(), move |mut c| {
        let head = read_http_request(&mut c)?;
        if !head.lines().any(|l| l == want) {
            c.write_all(b"HTTP/1.1 407 Who\r\n\r\n")?;
            return Ok(format!("refused: {head}"));
        }
        c.write_all(b"HTTP/1.0 200 Connection established\r\n\r\n")?;
        pipe(c, port)?;
        Ok("tunnel".into())
    });
    let url = format!("http://g%40w:p%3Ass%20w%25rd@[::1]:{}", proxy.port);
    echo(&broker.url(), opts("hpx-v6", &url, Duration::from_secs(30))).await;
    let notes = proxy.notes.lock().unwrap().clone();
    assert!(notes.iter().all(|n| n == "tunnel"), "{notes:?}");
}

/// Through the C API: a proxy's refusal, garbage and immediate close are
/// MQTT5C_ERR_IO with "proxy HOST:PORT: ..." in mqtt_last_error() (the
/// password never in it), a trickling proxy is MQTT5C_ERR_TIMEOUT.
#[test]
fn c_api_codes_and_texts_for_failing_proxies() {
    use mqtt5c::ffi::*;
    use std::ffi::{CStr, CString};
    let last = || {
        // SAFETY: never NULL, NUL-terminated.
        unsafe { CStr::from_ptr(mqtt_last_error()) }
            .to_string_lossy()
            .into_owned()
    };
    let refuse = Scripted::v4(|mut c| {
        read_http_request(&mut c)?;
        c.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n")?;
        Ok(String::new())
    });
    let auth = Scripted::v4(|mut c| {
        read_http_request(&mut c)?;
        c.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")?;
        Ok(String::new())
    });
    let garbage = Scripted::v4(|mut c| {
        let mut greeting = [0u8; 3];
        c.read_exact(&mut greeting)?;
        c.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")?;
        Ok(String::new())
    });
    let close = Scripted::v4(|c| c.shutdown(Shutdown::Both).map(|_| String::new()));
    let slow = Scripted::v4(|mut c| {
        read_http_request(&mut c)?;
        for b in b"HTTP/1.1 200 OK\r\nX: "
            .iter()
            .chain(std::iter::repeat(&b'a'))
        {
            std::thread::sleep(Duration::from_millis(300));
            c.write_all(&[*b])?;
        }
        unreachable!()
    });
    let cases = [
        (
            format!("http://user:pw-SECRET@127.0.0.1:{}", refuse.port),
            MQTT5C_ERR_IO,
            "the proxy refused the tunnel (HTTP status line 'HTTP/1.1 403 Forbidden')",
        ),
        (
            format!("http://user:pw-SECRET@127.0.0.1:{}", auth.port),
            MQTT5C_ERR_IO,
            "the proxy refused our user name and password",
        ),
        (
            format!("http://127.0.0.1:{}", auth.port),
            MQTT5C_ERR_IO,
            "no user name and password were given",
        ),
        (
            format!("socks5h://127.0.0.1:{}", garbage.port),
            MQTT5C_ERR_IO,
            "the proxy's answer is not SOCKS5 (version byte 0x48)",
        ),
        (
            format!("socks5h://user:pw-SECRET@127.0.0.1:{}", close.port),
            MQTT5C_ERR_IO,
            "closed the connection without answering",
        ),
        (
            // Not "waiting for CONNACK": the proxy's answer never ended.
            format!("http://127.0.0.1:{}", slow.port),
            MQTT5C_ERR_TIMEOUT,
            "timed out waiting for the connection: TCP, a proxy's tunnel",
        ),
    ];
    for (proxy, code, needle) in cases {
        let o = mqtt_options_new();
        let p = CString::new(proxy.as_str()).unwrap();
        assert_eq!(
            mqtt_options_set_proxy(o, p.as_ptr()),
            MQTT5C_OK,
            "{}",
            last()
        );
        assert_eq!(mqtt_options_set_connect_timeout(o, 1500), MQTT5C_OK);
        let c = mqtt_client_new(o);
        assert!(!c.is_null());
        let url = CString::new("mqtt://broker.invalid:1883").unwrap();
        let rc = mqtt_connect(c, url.as_ptr());
        let text = last();
        mqtt_client_free(c);
        mqtt_options_free(o);
        eprintln!("{proxy}: {rc} {text}");
        assert_eq!(rc, code, "{proxy}: {text}");
        assert!(
            text.to_lowercase().contains(&needle.to_lowercase()),
            "{proxy}: {text}"
        );
        if code == MQTT5C_ERR_IO {
            let port = proxy.rsplit(':').next().unwrap();
            assert!(
                text.contains(&format!(
                    "proxy 127.0.0.1:{port}: tunnel to broker.invalid:1883"
                )),
                "{text}"
            );
        }
        assert!(!text.contains("SECRET"), "{text}");
    }
}
