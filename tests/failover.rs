//! Several servers and server redirection (issue 9): against mosquitto
//! (a closed port first, a broker stopped under the client), and a
//! scripted broker for the redirections mosquitto never sends (CONNACK
//! and DISCONNECT 0x9C / 0x9D with a Server Reference).

mod common;
mod scripted;

use common::events::{client, Event, Events};
use common::Broker;
use mqtt5c::client::{ClientOptions, DisconnectCause, Error, MqttClient, Reconnect};
use mqtt5c::packet::{
    Disconnect, MqttStr, Packet, Properties, Property, ProtocolVersion, QoS, ReasonCode,
    SubscribeFilter, SubscriptionOptions,
};
use scripted::{accept, accept_connected, props, s, Script};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn opts(id: &str) -> ClientOptions {
    ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

fn reconnecting(mut o: ClientOptions) -> ClientOptions {
    o.reconnect = Some(Reconnect {
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
    });
    o
}

fn url(u: &str) -> mqtt5c::transport::BrokerUrl {
    mqtt5c::transport::BrokerUrl::parse(u).unwrap()
}

/// A URL where nothing listens: a port that was free when we looked.
fn closed_url() -> String {
    format!("mqtt://127.0.0.1:{}", common::free_port())
}

/// Subscribes to `topic`, publishes to it and waits for the message: the
/// client works on the connection it has.
async fn round_trip(c: &MqttClient, ev: &Events, topic: &str) {
    let f = vec![SubscribeFilter {
        filter: MqttStr::new(topic).unwrap(),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
    }];
    c.subscribe(f, Properties::new()).await.unwrap();
    c.publish(topic, b"x", QoS::AtLeastOnce, false, Properties::new())
        .await
        .unwrap();
    ev.msg_to(topic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_goes_to_the_next_server_when_the_first_is_down() {
    let broker = Broker::start();
    let mut o = opts("fo-first-down");
    o.servers = vec![url(&broker.url())];
    let (c, ev) = client(o);
    c.connect(&closed_url()).await.unwrap();
    ev.connected();
    round_trip(&c, &ev, "fo/first-down").await;
    c.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_down_returns_the_last_failure() {
    let mut o = opts("fo-all-down");
    o.servers = vec![url(&closed_url())];
    let (c, _ev) = client(o);
    let r = c.connect(&closed_url()).await;
    assert!(matches!(r, Err(Error::Io(_))), "{r:?}");
    assert!(!c.is_connected());
    c.close();
}

/// Connected to broker 1, which stops: the reconnection goes to broker 2
/// (a new session there: the subscription is made again); then broker 1
/// is back and broker 2 stops: back to broker 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_fails_over_to_the_other_server_and_back() {
    let mut b1 = Broker::start();
    let mut b2 = Broker::start();
    let mut o = reconnecting(opts("fo-failover"));
    o.servers = vec![url(&b2.url())];
    let (c, ev) = client(o);
    c.connect(&b1.url()).await.unwrap();
    ev.connected();
    round_trip(&c, &ev, "fo/on-1").await;

    b1.stop();
    ev.disconnected();
    ev.connected();
    round_trip(&c, &ev, "fo/on-2").await;

    b1.start_again();
    b2.stop();
    ev.disconnected();
    ev.connected();
    round_trip(&c, &ev, "fo/on-1-again").await;
    c.close();
}

/// A scripted server that refuses every CONNECT with `reason` and a
/// Server Reference `reference`, `times` times.
fn redirector(reason: ReasonCode, reference: String, times: usize) -> Script {
    Script::start(move |l| {
        for _ in 0..times {
            let mut p = accept(&l);
            p.expect_connect();
            p.connack(
                reason,
                props(vec![Property::ServerReference(s(&reference))]),
            );
            p.expect_close();
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connack_redirect_is_followed_to_a_real_broker() {
    let broker = Broker::start();
    for (reason, reference) in [
        (
            ReasonCode::UseAnotherServer,
            format!("127.0.0.1:{}", broker.port()),
        ),
        (ReasonCode::ServerMoved, broker.url()),
    ] {
        let script = redirector(reason, reference, 1);
        let mut o = opts("fo-redirect");
        o.follow_redirects = 1;
        let (c, ev) = client(o);
        c.connect(&script.url()).await.unwrap();
        ev.connected();
        round_trip(&c, &ev, "fo/redirected").await;
        script.finish(WAIT).unwrap();
        c.close();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_off_by_default() {
    let broker = Broker::start();
    let script = redirector(
        ReasonCode::UseAnotherServer,
        format!("127.0.0.1:{}", broker.port()),
        1,
    );
    let (c, _ev) = client(opts("fo-redirect-off"));
    match c.connect(&script.url()).await {
        Err(e @ Error::RedirectRefused { reason, .. }) => {
            assert_eq!(reason, ReasonCode::UseAnotherServer);
            assert!(e.to_string().contains("redirects are off"), "{e}");
        }
        other => panic!("expected the redirect refused, got {other:?}"),
    }
    assert!(!c.is_connected());
    script.finish(WAIT).unwrap();
    c.close();
}

/// The server sends the client back to itself: one hop is followed, the
/// second is more than `max_hops` 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_hops_than_allowed_are_refused() {
    let port = common::free_port();
    let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let reference = format!("127.0.0.1:{port}");
    let script = Script::start(move |_| {
        for _ in 0..2 {
            let mut p = accept(&l);
            p.expect_connect();
            p.connack(
                ReasonCode::ServerMoved,
                props(vec![Property::ServerReference(s(&reference))]),
            );
            p.expect_close();
        }
    });
    let mut o = opts("fo-hops");
    o.follow_redirects = 1;
    let (c, _ev) = client(o);
    match c.connect(&format!("mqtt://127.0.0.1:{port}")).await {
        Err(e @ Error::RedirectRefused { reason, .. }) => {
            assert_eq!(reason, ReasonCode::ServerMoved);
            assert!(e.to_string().contains("1 redirection(s) followed"), "{e}");
        }
        other => panic!("expected the second redirect refused, got {other:?}"),
    }
    script.finish(WAIT).unwrap();
    c.close();
}

/// A TLS server (`acceptor`) that answers the first CONNECT with CONNACK
/// 0x9C and a Server Reference to `reference`, then waits until the
/// client closes; returns its port and its task. (The scripted broker
/// speaks plain TCP only.)
async fn tls_redirector(
    acceptor: tokio_rustls::TlsAcceptor,
    reference: String,
) -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let mut buf = [0u8; 512];
        let _ = tls.read(&mut buf).await.unwrap();
        let connack = Packet::ConnAck(mqtt5c::packet::ConnAck {
            session_present: false,
            reason: ReasonCode::UseAnotherServer,
            properties: props(vec![Property::ServerReference(s(&reference))]),
        });
        let mut out = bytes::BytesMut::new();
        mqtt5c::packet::encode(&connack, &mut out).unwrap();
        tls.write_all(&out).await.unwrap();
        tls.flush().await.unwrap();
        // Until the client closes.
        let _ = tls.read(&mut buf).await;
    });
    (port, served)
}

/// A TLS server (rustls, the test CA) that answers the CONNECT with
/// CONNACK 0x9C and a Server Reference to a plain mqtt:// URL: the client
/// does not go there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_from_tls_to_plain_is_refused() {
    use common::certs::{Ca, Validity};
    let dir = common::TempDir::new("mqtt5c-redirect-tls").unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let server = ca.server("server", &["127.0.0.1"], Validity::Current);
    let acceptor = common::ws_bridge::tls_acceptor(&server.cert, &server.key);
    let plain = Broker::start();
    let (port, served) = tls_redirector(acceptor, plain.url()).await;
    let mut o = opts("fo-tls-down");
    o.follow_redirects = 5;
    o.tls
        .set_ca_file(Some(&ca.file.display().to_string()))
        .unwrap();
    let (c, _ev) = client(o);
    match c.connect(&format!("mqtts://127.0.0.1:{port}")).await {
        Err(e @ Error::RedirectRefused { .. }) => {
            assert!(e.to_string().contains("weaker"), "{e}");
        }
        other => panic!("expected the redirect to plain refused, got {other:?}"),
    }
    assert!(!c.is_connected());
    tokio::time::timeout(WAIT, served).await.unwrap().unwrap();
    c.close();
}

/// A TLS server whose certificate names only "redirector.test" (reached
/// with that server name set in the options) sends the client to
/// "127.0.0.1:PORT", a mosquitto TLS listener whose certificate names
/// 127.0.0.1 only: the client follows over TLS (mqtts stays mqtts) and
/// verifies the new server against its own name, not the override.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_redirect_stays_tls_and_verifies_the_new_host() {
    use common::certs::{tls_listener_conf, Ca, Validity};
    let dir = common::TempDir::new("mqtt5c-redirect-tls2").unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let redirector_cert = ca.server("redirector", &["redirector.test"], Validity::Current);
    let broker_cert = ca.server("broker", &["127.0.0.1"], Validity::Current);
    let tls_port = common::free_port();
    let broker = Broker::start_with(&tls_listener_conf(tls_port, &ca.file, &broker_cert, false));
    let acceptor = common::ws_bridge::tls_acceptor(&redirector_cert.cert, &redirector_cert.key);
    let (port, served) = tls_redirector(acceptor, format!("127.0.0.1:{tls_port}")).await;
    let mut o = opts("fo-tls-tls");
    o.follow_redirects = 1;
    o.tls
        .set_ca_file(Some(&ca.file.display().to_string()))
        .unwrap();
    o.tls.set_server_name(Some("redirector.test")).unwrap();
    let (c, ev) = client(o);
    c.connect(&format!("mqtts://127.0.0.1:{port}"))
        .await
        .unwrap();
    ev.connected();
    round_trip(&c, &ev, "fo/tls-redirected").await;
    tokio::time::timeout(WAIT, served).await.unwrap().unwrap();
    c.close();
    drop(broker);
}

/// A connection ended by DISCONNECT 0x9D with a Server Reference: with
/// automatic reconnection and redirects on, the client reconnects there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_redirect_is_followed_by_the_reconnection() {
    let broker = Broker::start();
    let reference = format!("127.0.0.1:{}", broker.port());
    let script = Script::start(move |l| {
        let mut p = accept_connected(&l, vec![]);
        p.send(Packet::Disconnect(Disconnect {
            reason: ReasonCode::ServerMoved,
            properties: props(vec![Property::ServerReference(s(&reference))]),
        }));
        p.expect_close();
    });
    let mut o = reconnecting(opts("fo-disconnect-redirect"));
    o.follow_redirects = 1;
    let (c, ev) = client(o);
    c.connect(&script.url()).await.unwrap();
    ev.connected();
    match ev.disconnected() {
        DisconnectCause::Server(d) => assert_eq!(d.reason, ReasonCode::ServerMoved),
        other => panic!("expected DISCONNECT 0x9D, got {other:?}"),
    }
    ev.connected();
    round_trip(&c, &ev, "fo/moved").await;
    script.finish(WAIT).unwrap();
    c.close();
}

/// Verification turned off for the configured server (a test rig's
/// self-signed broker) says nothing about where that server sends the
/// client: a redirect to a TLS host while verification is off is not
/// followed (it could not verify the new host's name), rather than
/// handing the credentials to a host whose certificate names someone
/// else. Here the new host is a mosquitto TLS listener whose
/// certificate names only "elsewhere.test", reached as 127.0.0.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_while_tls_verification_is_off() {
    use common::certs::{tls_listener_conf, Ca, Validity};
    let dir = common::TempDir::new("mqtt5c-redirect-insecure").unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let redirector_cert = ca.server("redirector", &["127.0.0.1"], Validity::Current);
    let wrong_cert = ca.server("wrong", &["elsewhere.test"], Validity::Current);
    let tls_port = common::free_port();
    let broker = Broker::start_with(&tls_listener_conf(tls_port, &ca.file, &wrong_cert, false));
    let acceptor = common::ws_bridge::tls_acceptor(&redirector_cert.cert, &redirector_cert.key);
    let (port, served) = tls_redirector(acceptor, format!("127.0.0.1:{tls_port}")).await;
    let mut o = opts("fo-tls-insecure");
    o.follow_redirects = 1;
    o.tls.set_insecure_skip_verify(true).unwrap();
    let (c, _ev) = client(o);
    match c.connect(&format!("mqtts://127.0.0.1:{port}")).await {
        Err(e @ Error::RedirectRefused { .. }) => {
            assert!(e.to_string().contains("verification"), "{e}");
        }
        other => panic!("expected the redirect refused (verification off), got {other:?}"),
    }
    assert!(!c.is_connected());
    tokio::time::timeout(WAIT, served).await.unwrap().unwrap();
    c.close();
    drop(broker);
}

/// Sends `signal` to a test broker (SIGSTOP freezes it, SIGCONT thaws
/// it, SIGKILL ends it with its unread input unprocessed).
fn signal(broker: &Broker, signal: libc::c_int) {
    // SAFETY: kill(2) on our own child, not reaped before the Broker drops.
    assert_eq!(
        unsafe { libc::kill(broker.pid() as libc::pid_t, signal) },
        0
    );
}

/// QoS 1 messages published before, during and after a failover from
/// broker 1 to broker 2 (no session there), with freezes that make each
/// phase what it says: "before" ones are written to broker 1 while it is
/// frozen and it is then killed (in flight, never acknowledged: resent);
/// "during" ones are published while broker 2 is frozen too, so no
/// connection can be made (queued); "after" ones on the new connection.
/// A subscriber on broker 2 gets every message, the first copies in
/// publishing order (resent in-flight ones before queued ones); every
/// publish completes successfully; the connection speaks `version`
/// before and after the switch.
async fn failover_keeps_the_queue_and_its_order(version: ProtocolVersion, id: &str) {
    const PHASE: u32 = 10;
    let b1 = Broker::start();
    let b2 = Broker::start();
    let mut so = opts(&format!("{id}-sub"));
    so.protocol_version = Some(version);
    let (sc, sev) = client(so);
    sc.connect(&b2.url()).await.unwrap();
    let f = vec![SubscribeFilter {
        filter: MqttStr::new("fo/order").unwrap(),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
    }];
    sc.subscribe(f, Properties::new()).await.unwrap();
    let mut o = reconnecting(opts(&format!("{id}-pub")));
    o.protocol_version = Some(version);
    o.servers = vec![url(&b2.url())];
    let (c, ev) = client(o);
    c.connect(&b1.url()).await.unwrap();
    ev.connected();
    assert_eq!(c.protocol_version(), Some(version));
    let (done_tx, done_rx) = mpsc::channel::<(u32, bool)>();
    async fn publish(c: &MqttClient, i: u32, tx: &mpsc::Sender<(u32, bool)>) {
        let tx = tx.clone();
        let then: mqtt5c::client::Completion = Box::new(move |r| {
            let _ = tx.send((i, r.is_ok()));
        });
        let payload = i.to_string();
        c.publish_then(
            "fo/order",
            payload.as_bytes(),
            QoS::AtLeastOnce,
            false,
            Properties::new(),
            Some(then),
        )
        .await
        .unwrap();
    }
    // Before: in flight to a frozen broker 1, which then dies.
    signal(&b2, libc::SIGSTOP);
    signal(&b1, libc::SIGSTOP);
    for i in 0..PHASE {
        publish(&c, i, &done_tx).await;
    }
    signal(&b1, libc::SIGKILL);
    ev.disconnected();
    // During: broker 1 is gone and broker 2 cannot answer a CONNECT.
    assert!(!c.is_connected());
    for i in PHASE..2 * PHASE {
        publish(&c, i, &done_tx).await;
    }
    signal(&b2, libc::SIGCONT);
    ev.connected();
    assert_eq!(c.protocol_version(), Some(version));
    // After: on the connection to broker 2.
    for i in 2 * PHASE..3 * PHASE {
        publish(&c, i, &done_tx).await;
    }
    let mut ok = 0;
    while ok < 3 * PHASE {
        let (i, good) = tokio::task::block_in_place(|| done_rx.recv_timeout(WAIT))
            .expect("every publish completes");
        assert!(good, "publish {i} failed");
        ok += 1;
    }
    let mut first_seen: Vec<u32> = Vec::new();
    while !(0..3 * PHASE).all(|i| first_seen.contains(&i)) {
        match sev.next(WAIT) {
            Some(Event::Msg(m)) => {
                let i: u32 = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
                if !first_seen.contains(&i) {
                    first_seen.push(i);
                }
            }
            Some(_) => continue,
            None => panic!("missing on broker 2; got {first_seen:?}"),
        }
    }
    assert!(
        first_seen.windows(2).all(|w| w[0] < w[1]),
        "out of order: {first_seen:?}"
    );
    assert_eq!(c.protocol_version(), Some(version));
    c.close();
    sc.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_keeps_the_queue_and_its_order() {
    failover_keeps_the_queue_and_its_order(ProtocolVersion::V5, "fo-order").await;
}

/// The same over MQTT 3.1.1 (issue 12: failover works on 3.1.1 too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_keeps_the_queue_and_its_order_over_3_1_1() {
    failover_keeps_the_queue_and_its_order(ProtocolVersion::V311, "fo-order-311").await;
}
