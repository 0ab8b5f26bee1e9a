//! Proxies (issue 13): HTTP CONNECT and SOCKS5 proxies of our own
//! (tests/common/tunnel.rs), with and without authentication, in front of
//! a mosquitto per test, over TCP, TLS (end to end, verifying the broker),
//! WebSocket and wss; wrong and missing credentials, a proxy that
//! refuses, one that answers garbage and one that closes at once; the
//! environment variables, read only when asked. The TCP tests run in the
//! build without TLS and WebSocket too (`make minimal`).

mod common;

use common::events::client;
use common::tunnel::{Behaviour, Flavor, TunnelProxy};
use common::Broker;
use mqtt5c::client::{ClientOptions, Error};
use mqtt5c::packet::{MqttStr, Properties, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn opts(id: &str, proxy: &str) -> ClientOptions {
    let mut o = ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        connect_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    o.set_proxy(Some(proxy)).unwrap();
    o
}

/// Subscribes and publishes to itself over `url` with `o`: the message
/// comes back through the tunnel.
async fn echo(url: &str, o: ClientOptions) {
    let (c, rx) = client(o);
    c.connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    c.subscribe(
        vec![SubscribeFilter {
            filter: MqttStr::new("px/#").unwrap(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        }],
        Properties::new(),
    )
    .await
    .unwrap();
    c.publish(
        "px/1",
        b"through the proxy",
        QoS::AtLeastOnce,
        false,
        Properties::new(),
    )
    .await
    .unwrap();
    let m = rx
        .msg_within(WAIT)
        .unwrap_or_else(|| panic!("the message did not come back over {url}"));
    assert_eq!(&m.payload[..], b"through the proxy");
    c.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
}

/// The proxy URL for `p`, with the credentials given.
fn proxy_url(
    flavor: Flavor,
    remote_dns: bool,
    creds: Option<(&str, &str)>,
    p: &TunnelProxy,
) -> String {
    let scheme = match (flavor, remote_dns) {
        (Flavor::Http, _) => "http",
        (Flavor::Socks5, false) => "socks5",
        (Flavor::Socks5, true) => "socks5h",
    };
    let auth = creds.map_or(String::new(), |(u, p)| format!("{u}:{p}@"));
    format!("{scheme}://{auth}127.0.0.1:{}", p.port())
}

/// Expects an I/O error whose text names the proxy and contains `needle`.
fn expect_proxy_error(
    r: Result<mqtt5c::client::ConnectInfo, Error>,
    proxy: &TunnelProxy,
    needle: &str,
) {
    match r {
        Err(Error::Io(e)) => {
            let text = e.to_string();
            eprintln!("proxy error as expected: {text}");
            assert!(
                text.starts_with(&format!("proxy 127.0.0.1:{}", proxy.port())),
                "{text}"
            );
            assert!(text.contains(needle), "should mention '{needle}': {text}");
            assert!(!text.contains("s3cret"), "{text}");
        }
        other => panic!("expected an I/O error mentioning '{needle}', got {other:?}"),
    }
}

const USER: &str = "gw";
const PASS: &str = "s3cret:p@ss";
/// PASS percent-encoded, as it goes in the URL.
const PASS_ENCODED: &str = "s3cret%3Ap%40ss";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_through_http_and_socks5_proxies_with_and_without_auth() {
    let broker = Broker::start();
    let url = format!("mqtt://localhost:{}", broker.port());
    for flavor in [Flavor::Http, Flavor::Socks5] {
        for auth in [false, true] {
            let creds = auth.then_some((USER, PASS));
            let proxy = TunnelProxy::start(flavor, creds, Behaviour::Tunnel);
            let remote_dns = flavor == Flavor::Socks5 && auth;
            let purl = proxy_url(
                flavor,
                remote_dns,
                auth.then_some((USER, PASS_ENCODED)),
                &proxy,
            );
            echo(&url, opts(&format!("px-{flavor:?}-{auth}"), &purl)).await;
            // HTTP and socks5h hand the name to the proxy; socks5 resolves it.
            let want = if flavor == Flavor::Http || remote_dns {
                format!("localhost:{}", broker.port())
            } else {
                format!("127.0.0.1:{}", broker.port())
            };
            assert_eq!(proxy.targets(), vec![want], "{flavor:?} auth {auth}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_credentials_refusal_garbage_and_closing_proxies() {
    let broker = Broker::start();
    let url = format!("mqtt://127.0.0.1:{}", broker.port());
    for flavor in [Flavor::Http, Flavor::Socks5] {
        let proxy = TunnelProxy::start(flavor, Some((USER, PASS)), Behaviour::Tunnel);
        let (c, _rx) = client(opts("px-none", &proxy_url(flavor, false, None, &proxy)));
        expect_proxy_error(
            c.connect(&url).await,
            &proxy,
            "no user name and password were given",
        );
        let wrong = proxy_url(flavor, false, Some((USER, "s3cret-wrong")), &proxy);
        let (c, _rx) = client(opts("px-wrong", &wrong));
        expect_proxy_error(
            c.connect(&url).await,
            &proxy,
            "refused our user name and password",
        );
        assert!(proxy.targets().is_empty());

        let proxy = TunnelProxy::start(flavor, None, Behaviour::Refuse);
        let (c, _rx) = client(opts("px-refused", &proxy_url(flavor, false, None, &proxy)));
        let why = match flavor {
            Flavor::Http => {
                "the proxy refused the tunnel (HTTP status line 'HTTP/1.1 403 Forbidden')"
            }
            Flavor::Socks5 => "the proxy refused the tunnel (SOCKS5 reply 2",
        };
        expect_proxy_error(c.connect(&url).await, &proxy, why);

        let proxy = TunnelProxy::start(flavor, None, Behaviour::Garbage);
        let (c, _rx) = client(opts("px-garbage", &proxy_url(flavor, false, None, &proxy)));
        let why = match flavor {
            Flavor::Http => "is not HTTP",
            Flavor::Socks5 => "is not SOCKS5",
        };
        expect_proxy_error(c.connect(&url).await, &proxy, why);

        let proxy = TunnelProxy::start(flavor, None, Behaviour::Close);
        let (c, _rx) = client(opts("px-closed", &proxy_url(flavor, false, None, &proxy)));
        expect_proxy_error(
            c.connect(&url).await,
            &proxy,
            "closed the connection without answering",
        );
        // The client is intact: it connects once the proxy is fixed.
        let good = TunnelProxy::start(flavor, None, Behaviour::Tunnel);
        drop(c);
        echo(
            &url,
            opts("px-after", &proxy_url(flavor, false, None, &good)),
        )
        .await;
    }
}

/// An HTTP proxy's interim 1xx answers before its 200 are skipped, not
/// taken for a refusal (review of issue 13).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_http_answers_before_the_200_are_skipped() {
    let broker = Broker::start();
    let url = format!("mqtt://127.0.0.1:{}", broker.port());
    let proxy = TunnelProxy::start(Flavor::Http, None, Behaviour::Interim);
    echo(
        &url,
        opts("px-interim", &proxy_url(Flavor::Http, false, None, &proxy)),
    )
    .await;
    assert_eq!(proxy.targets().len(), 1);
}

/// The environment is read only when the application opts in; NO_PROXY
/// is honoured. (The only test of this binary that sets variables.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_only_when_asked() {
    let broker = Broker::start();
    let url = format!("mqtt://127.0.0.1:{}", broker.port());
    let proxy = TunnelProxy::start(Flavor::Socks5, None, Behaviour::Tunnel);
    std::env::set_var("ALL_PROXY", format!("socks5h://127.0.0.1:{}", proxy.port()));
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    let plain = ClientOptions {
        client_id: MqttStr::new("env-off").unwrap(),
        ..Default::default()
    };
    echo(&url, plain.clone()).await;
    assert!(proxy.targets().is_empty(), "read the environment unasked");
    let mut asked = plain.clone();
    asked.proxy.from_env = true;
    echo(&url, asked.clone()).await;
    assert_eq!(proxy.targets().len(), 1);
    std::env::set_var("NO_PROXY", "localhost,127.0.0.1");
    echo(&url, asked).await;
    assert_eq!(proxy.targets().len(), 1, "NO_PROXY ignored");
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("ALL_PROXY");
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use common::certs::{tls_listener_conf, Ca, Validity};
    use common::{free_port, TempDir};

    /// TLS runs end to end through the tunnel: the broker's certificate
    /// (for localhost) is verified, the proxy (which has none) only
    /// carries bytes. With another CA the handshake fails as without a
    /// proxy.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_through_http_and_socks5_proxies() {
        let dir = TempDir::new("mqtt5c-px-tls").unwrap();
        let ca = Ca::new(dir.path(), "px");
        let server = ca.server("server", &["localhost"], Validity::Current);
        let port = free_port();
        let _broker = Broker::start_with(&tls_listener_conf(port, &ca.file, &server, false));
        let url = format!("mqtts://localhost:{port}");
        for flavor in [Flavor::Http, Flavor::Socks5] {
            for auth in [false, true] {
                let creds = auth.then_some((USER, PASS));
                let proxy = TunnelProxy::start(flavor, creds, Behaviour::Tunnel);
                let purl = proxy_url(flavor, true, auth.then_some((USER, PASS_ENCODED)), &proxy);
                let mut o = opts(&format!("pxtls-{flavor:?}-{auth}"), &purl);
                o.tls.set_ca_file(Some(ca.file.to_str().unwrap())).unwrap();
                echo(&url, o).await;
                assert_eq!(proxy.targets(), vec![format!("localhost:{port}")]);
            }
        }
        let proxy = TunnelProxy::start(Flavor::Http, None, Behaviour::Tunnel);
        let other = Ca::new(dir.path(), "other");
        let mut o = opts("pxtls-bad", &proxy_url(Flavor::Http, false, None, &proxy));
        o.tls
            .set_ca_file(Some(other.file.to_str().unwrap()))
            .unwrap();
        let (c, _rx) = client(o);
        match c.connect(&url).await {
            Err(Error::Tls(t)) => assert!(t.contains("unknown issuer"), "{t}"),
            other => panic!("expected unknown issuer, got {other:?}"),
        }
    }

    #[cfg(feature = "websocket")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ws_and_wss_through_proxies() {
        use common::ws_bridge;
        let dir = TempDir::new("mqtt5c-px-wss").unwrap();
        let ca = Ca::new(dir.path(), "pxw");
        let server = ca.server("wss-server", &["localhost"], Validity::Current);
        let broker = Broker::start();
        let ws = ws_bridge::start(broker.port(), None).await;
        let wss = ws_bridge::start(
            broker.port(),
            Some(ws_bridge::tls_acceptor(&server.cert, &server.key)),
        )
        .await;
        for flavor in [Flavor::Http, Flavor::Socks5] {
            let creds = Some((USER, PASS));
            let proxy = TunnelProxy::start(flavor, creds, Behaviour::Tunnel);
            let purl = proxy_url(flavor, true, Some((USER, PASS_ENCODED)), &proxy);
            echo(
                &format!("ws://localhost:{}/mqtt", ws.port),
                opts("pxws", &purl),
            )
            .await;
            let mut o = opts("pxwss", &purl);
            o.tls.set_ca_file(Some(ca.file.to_str().unwrap())).unwrap();
            echo(&format!("wss://localhost:{}/mqtt", wss.port), o).await;
            assert_eq!(
                proxy.targets(),
                vec![
                    format!("localhost:{}", ws.port),
                    format!("localhost:{}", wss.port)
                ]
            );
        }
    }
}
