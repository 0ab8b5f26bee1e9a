//! A write on a socket that is already shut down must return EPIPE, not
//! raise SIGPIPE: the C programs that link us keep SIGPIPE's default action
//! (terminate), unlike Rust programs, so this test binary restores it first.
//! Every transport that writes to a socket is tried: TCP, TLS, WebSocket.

mod common;

use common::certs::{tls_listener_conf, Ca, Validity};
use common::{free_port, Broker, TempDir};
use mqtt5c::client::ClientOptions;
use mqtt5c::transport::{self, BrokerUrl, ConnectConfig};

fn default_sigpipe() {
    // SAFETY: setting a standard signal's disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

async fn write_after_shutdown(url: &str, o: &ClientOptions) {
    let url = BrokerUrl::parse(url).unwrap();
    let cfg = ConnectConfig {
        tcp: &o.tcp,
        tls: &o.tls,
        ws_headers: &o.ws_headers,
        ws_subprotocols: transport::WS_MQTT,
        proxy: &o.proxy,
        max_packet_size: 1 << 20,
    };
    let mut t = transport::connect(&url, &cfg).await.expect("connect");
    t.control.as_ref().expect("a socket").shutdown();
    // With SIGPIPE at its default, a write that raised it would end the
    // process here instead of returning an error.
    let r = t.writer.write_packet(&[0xC0, 0x00]).await;
    assert!(r.is_err(), "write on a shut-down socket succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_after_shutdown_return_errors_on_every_transport() {
    default_sigpipe();
    let dir = TempDir::new("mqtt5c-sigpipe").unwrap();
    let ca = Ca::new(dir.path(), "main");
    let server = ca.server("server", &["127.0.0.1"], Validity::Current);
    let tls_port = free_port();
    let broker = Broker::start_with(&tls_listener_conf(tls_port, &ca.file, &server, false));

    let plain = ClientOptions::default();
    write_after_shutdown(&broker.url(), &plain).await;

    let mut tls = ClientOptions::default();
    tls.tls
        .set_ca_file(Some(ca.file.to_str().unwrap()))
        .unwrap();
    write_after_shutdown(&format!("mqtts://127.0.0.1:{tls_port}"), &tls).await;

    let bridge = common::ws_bridge::start(broker.port(), None).await;
    write_after_shutdown(&format!("ws://127.0.0.1:{}/mqtt", bridge.port), &plain).await;
}
