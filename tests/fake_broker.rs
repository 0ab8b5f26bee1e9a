//! Client behaviour a real broker will not show: silence, protocol
//! violations, malformed packets, a tiny Receive Maximum. Each test scripts
//! a broker on a loopback port with the crate's own codec.

use bytes::BytesMut;
use mqtt5c::client::{ClientOptions, ConnectionEvent, DisconnectCause, Error, Handler, MqttClient};
use mqtt5c::packet::{
    self, ConnAck, Disconnect, MqttStr, Packet, Properties, Property, PubResp, Publish, QoS,
    ReasonCode,
};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

/// Forwards every event to a channel the test reads.
struct Events(Mutex<mpsc::Sender<String>>);

impl Handler for Events {
    fn on_message(&self, m: Publish) {
        let _ = self
            .0
            .lock()
            .unwrap()
            .send(format!("msg {}", m.topic.as_str()));
    }
    fn on_connection(&self, e: &ConnectionEvent) {
        let s = match e {
            ConnectionEvent::Connected { .. } => "connected".to_string(),
            ConnectionEvent::Disconnected(DisconnectCause::Server(d)) => {
                format!("disconnected server 0x{:02X}", d.reason as u8)
            }
            ConnectionEvent::Disconnected(DisconnectCause::Protocol(r, _)) => {
                format!("disconnected protocol 0x{:02X}", *r as u8)
            }
            ConnectionEvent::Disconnected(DisconnectCause::KeepAliveTimeout) => {
                "disconnected keepalive".to_string()
            }
            ConnectionEvent::Disconnected(c) => format!("disconnected {c:?}"),
            other => format!("{other:?}"),
        };
        let _ = self.0.lock().unwrap().send(s);
    }
}

/// The broker side of one connection.
struct Peer {
    stream: TcpStream,
    buf: BytesMut,
}

impl Peer {
    async fn read(&mut self) -> Option<Packet> {
        loop {
            if let Some(p) = packet::decode(&mut self.buf, 1 << 20).expect("client sent garbage") {
                return Some(p);
            }
            if self.stream.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
        }
    }
    async fn send(&mut self, p: Packet) {
        let mut b = BytesMut::new();
        packet::encode(&p, &mut b).unwrap();
        self.stream.write_all(&b).await.unwrap();
    }
    async fn send_raw(&mut self, b: &[u8]) {
        self.stream.write_all(b).await.unwrap();
    }
    /// Reads CONNECT and answers CONNACK with `props`.
    async fn accept_connect(&mut self, props: Properties) {
        match self.read().await {
            Some(Packet::Connect(_)) => {}
            other => panic!("expected CONNECT, got {other:?}"),
        }
        self.send(Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: props,
        }))
        .await;
    }
}

async fn listen() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("mqtt://{}", l.local_addr().unwrap());
    (l, url)
}

async fn accept(l: &TcpListener) -> Peer {
    let (stream, _) = l.accept().await.unwrap();
    Peer {
        stream,
        buf: BytesMut::new(),
    }
}

fn client(opts: ClientOptions) -> (MqttClient, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let c = MqttClient::new(
        opts,
        std::sync::Arc::new(Events(Mutex::new(tx))),
        tokio::runtime::Handle::current(),
    );
    (c, rx)
}

/// Waits (off the runtime's threads) for an event starting with `prefix`.
async fn expect_event(rx: &mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ev = tokio::task::block_in_place(|| rx.recv_timeout(left))
            .unwrap_or_else(|_| panic!("no event '{prefix}' within {WAIT:?}"));
        if ev.starts_with(prefix) {
            return ev;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_without_pingresp_ends_the_connection() {
    let (l, url) = listen().await;
    let (c, rx) = client(ClientOptions {
        keep_alive: 1,
        ..Default::default()
    });
    let broker = tokio::spawn(async move {
        let mut p = accept(&l).await;
        p.accept_connect(Properties::new()).await;
        // Swallow PINGREQs without answering; keep the socket open.
        let mut pings = 0;
        while let Some(pk) = p.read().await {
            if pk == Packet::PingReq {
                pings += 1;
            }
        }
        pings
    });
    c.connect(&url).await.unwrap();
    expect_event(&rx, "connected").await;
    let ev = expect_event(&rx, "disconnected").await;
    assert_eq!(ev, "disconnected keepalive");
    assert!(!c.is_connected());
    let pings = tokio::time::timeout(WAIT, broker).await.unwrap().unwrap();
    assert_eq!(pings, 1, "exactly one PINGREQ before giving up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pingresp_keeps_the_connection() {
    let (l, url) = listen().await;
    let (c, rx) = client(ClientOptions {
        keep_alive: 1,
        ..Default::default()
    });
    let (ping_tx, ping_rx) = mpsc::channel();
    tokio::spawn(async move {
        let mut p = accept(&l).await;
        p.accept_connect(Properties::new()).await;
        while let Some(pk) = p.read().await {
            if pk == Packet::PingReq {
                p.send(Packet::PingResp).await;
                let _ = ping_tx.send(());
            }
        }
    });
    c.connect(&url).await.unwrap();
    expect_event(&rx, "connected").await;
    for _ in 0..3 {
        tokio::task::block_in_place(|| ping_rx.recv_timeout(WAIT)).expect("PINGREQ");
    }
    assert!(c.is_connected());
    assert!(rx.try_recv().is_err(), "no disconnect event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_disconnect_fails_waiting_publish_promptly() {
    let (l, url) = listen().await;
    let (c, rx) = client(ClientOptions::default());
    tokio::spawn(async move {
        let mut p = accept(&l).await;
        p.accept_connect(Properties::new()).await;
        // Never acknowledge the publish; disconnect instead.
        if let Some(Packet::Publish(_)) = p.read().await {
            p.send(Packet::Disconnect(Disconnect {
                reason: ReasonCode::ServerShuttingDown,
                properties: Properties::new(),
            }))
            .await;
        }
        // Keep the socket open: the client must act on DISCONNECT alone.
        while p.read().await.is_some() {}
    });
    c.connect(&url).await.unwrap();
    let r = tokio::time::timeout(
        WAIT,
        c.publish("a/b", b"x", QoS::AtLeastOnce, false, Properties::new()),
    )
    .await
    .expect("publish must not hang");
    assert!(matches!(r, Err(Error::ConnectionLost)), "{r:?}");
    assert_eq!(
        expect_event(&rx, "disconnected").await,
        "disconnected server 0x8B"
    );
    let r = c
        .publish("a/b", b"x", QoS::AtMostOnce, false, Properties::new())
        .await;
    assert!(matches!(r, Err(Error::NotConnected)), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packet_gets_disconnect_0x81() {
    let (l, url) = listen().await;
    let (c, rx) = client(ClientOptions::default());
    let broker = tokio::spawn(async move {
        let mut p = accept(&l).await;
        p.accept_connect(Properties::new()).await;
        // PUBLISH QoS 3 is malformed.
        p.send_raw(&[0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x00])
            .await;
        p.read().await
    });
    c.connect(&url).await.unwrap();
    assert_eq!(
        expect_event(&rx, "disconnected").await,
        "disconnected protocol 0x81"
    );
    match tokio::time::timeout(WAIT, broker).await.unwrap().unwrap() {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::MalformedPacket),
        other => panic!("expected DISCONNECT 0x81, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_incoming_packet_gets_disconnect_0x95() {
    let (l, url) = listen().await;
    let (c, rx) = client(ClientOptions {
        max_packet_size: 100,
        ..Default::default()
    });
    let broker = tokio::spawn(async move {
        let mut p = accept(&l).await;
        p.accept_connect(Properties::new()).await;
        // Only the fixed header of a 1000-byte packet: the client must
        // reject it without waiting for the body.
        p.send_raw(&[0x30, 0xE8, 0x07]).await;
        p.read().await
    });
    c.connect(&url).await.unwrap();
    assert_eq!(
        expect_event(&rx, "disconnected").await,
        "disconnected protocol 0x95"
    );
    match tokio::time::timeout(WAIT, broker).await.unwrap().unwrap() {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::PacketTooLarge),
        other => panic!("expected DISCONNECT 0x95, got {other:?}"),
    }
}

/// A PUBLISH with one property more than we accept, though small (60 KB),
/// ends the connection with DISCONNECT 0x95; one at the limit is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_properties_get_disconnect_0x95() {
    let (l, url) = listen().await;
    let (c, rx) = client(ClientOptions::default());
    let broker = tokio::spawn(async move {
        let mut p = accept(&l).await;
        p.accept_connect(Properties::new()).await;
        let with = |n: usize, topic: &str| {
            let user = Property::UserProperty(MqttStr::from_static(""), MqttStr::from_static(""));
            Packet::Publish(Publish {
                topic: MqttStr::new(topic).unwrap(),
                properties: std::iter::repeat_n(user, n).collect(),
                ..Default::default()
            })
        };
        p.send(with(packet::MAX_RECEIVED_PROPERTIES, "at/limit"))
            .await;
        p.send(with(packet::MAX_RECEIVED_PROPERTIES + 1, "over/limit"))
            .await;
        p.read().await
    });
    c.connect(&url).await.unwrap();
    assert_eq!(expect_event(&rx, "msg").await, "msg at/limit");
    assert_eq!(
        expect_event(&rx, "disconnected").await,
        "disconnected protocol 0x95"
    );
    match tokio::time::timeout(WAIT, broker).await.unwrap().unwrap() {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::PacketTooLarge),
        other => panic!("expected DISCONNECT 0x95, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_maximum_bounds_inflight_publishes() {
    let (l, url) = listen().await;
    let (c, _rx) = client(ClientOptions::default());
    let (seen_tx, seen_rx) = mpsc::channel::<u16>();
    let (release_tx, release_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut release_rx = release_rx;
    tokio::spawn(async move {
        let mut p = accept(&l).await;
        let mut props = Properties::new();
        props.push(Property::ReceiveMaximum(2));
        p.accept_connect(props).await;
        let mut unacked = Vec::new();
        loop {
            // Read what the client sends; acknowledge only on request.
            let read = tokio::time::timeout(Duration::from_millis(50), p.read()).await;
            if let Ok(pk) = read {
                match pk {
                    Some(Packet::Publish(pb)) => {
                        let id = pb.packet_id.unwrap();
                        seen_tx.send(id).unwrap();
                        unacked.push(id);
                    }
                    Some(_) => {}
                    None => return,
                }
            }
            while release_rx.try_recv().is_ok() {
                if !unacked.is_empty() {
                    let id = unacked.remove(0);
                    p.send(Packet::PubAck(PubResp {
                        packet_id: id,
                        reason: ReasonCode::Success,
                        properties: Properties::new(),
                    }))
                    .await;
                }
            }
        }
    });
    c.connect(&url).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..5 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.publish(
                &format!("t/{i}"),
                b"x",
                QoS::AtLeastOnce,
                false,
                Properties::new(),
            )
            .await
        }));
    }
    let recv = |d: Duration| tokio::task::block_in_place(|| seen_rx.recv_timeout(d));
    recv(WAIT).expect("first publish");
    recv(WAIT).expect("second publish");
    // With two unacknowledged, a third must not be sent. Waiting a while
    // and seeing nothing is the only way to observe an absence.
    assert!(
        recv(Duration::from_millis(300)).is_err(),
        "third publish exceeded Receive Maximum 2"
    );
    for sent in 3..=5 {
        release_tx.send(()).unwrap();
        recv(WAIT).unwrap_or_else(|_| panic!("publish {sent} after a slot freed"));
        assert!(
            recv(Duration::from_millis(100)).is_err(),
            "only one more per freed slot"
        );
    }
    release_tx.send(()).unwrap();
    release_tx.send(()).unwrap();
    for t in tasks {
        let ack = tokio::time::timeout(WAIT, t)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ack.reason, ReasonCode::Success);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_outgoing_flow_and_failing_pubrec() {
    let (l, url) = listen().await;
    let (c, _rx) = client(ClientOptions::default());
    let broker = tokio::spawn(async move {
        let mut p = accept(&l).await;
        p.accept_connect(Properties::new()).await;
        let mut log = Vec::new();
        // First publish: PUBREC ok, expect PUBREL, send PUBCOMP.
        let Some(Packet::Publish(pb)) = p.read().await else {
            panic!()
        };
        let id = pb.packet_id.unwrap();
        p.send(Packet::PubRec(PubResp {
            packet_id: id,
            reason: ReasonCode::Success,
            properties: Properties::new(),
        }))
        .await;
        match p.read().await {
            Some(Packet::PubRel(r)) if r.packet_id == id => log.push("pubrel"),
            other => panic!("expected PUBREL, got {other:?}"),
        }
        p.send(Packet::PubComp(PubResp {
            packet_id: id,
            reason: ReasonCode::Success,
            properties: Properties::new(),
        }))
        .await;
        // Second publish: PUBREC with a failure ends the flow.
        let Some(Packet::Publish(pb)) = p.read().await else {
            panic!()
        };
        let mut props = Properties::new();
        props.push(Property::ReasonString(
            packet::MqttStr::new("quota").unwrap(),
        ));
        p.send(Packet::PubRec(PubResp {
            packet_id: pb.packet_id.unwrap(),
            reason: ReasonCode::QuotaExceeded,
            properties: props,
        }))
        .await;
        log
    });
    c.connect(&url).await.unwrap();
    let ack = c
        .publish("q/2", b"x", QoS::ExactlyOnce, false, Properties::new())
        .await
        .unwrap();
    assert_eq!(ack.reason, ReasonCode::Success);
    let ack = c
        .publish("q/2", b"y", QoS::ExactlyOnce, false, Properties::new())
        .await
        .unwrap();
    assert_eq!(ack.reason, ReasonCode::QuotaExceeded);
    assert_eq!(
        mqtt5c::client::reason_string(&ack.properties).as_deref(),
        Some("quota")
    );
    assert_eq!(broker.await.unwrap(), vec!["pubrel"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_qos2_duplicate_is_delivered_once() {
    let (l, url) = listen().await;
    let (c, rx) = client(ClientOptions::default());
    let broker = tokio::spawn(async move {
        let mut p = accept(&l).await;
        p.accept_connect(Properties::new()).await;
        let publish = |dup| {
            Packet::Publish(Publish {
                dup,
                qos: QoS::ExactlyOnce,
                retain: false,
                topic: packet::MqttStr::new("in/q2").unwrap(),
                packet_id: Some(7),
                properties: Properties::new(),
                payload: bytes::Bytes::from_static(b"once"),
            })
        };
        p.send(publish(false)).await;
        let first = p.read().await;
        p.send(publish(true)).await;
        let second = p.read().await;
        p.send(Packet::PubRel(PubResp {
            packet_id: 7,
            reason: ReasonCode::Success,
            properties: Properties::new(),
        }))
        .await;
        let third = p.read().await;
        // A QoS 0 marker: events are delivered in order, so once it
        // arrives any duplicate would have arrived before it.
        p.send(Packet::Publish(Publish {
            topic: packet::MqttStr::new("in/marker").unwrap(),
            ..Default::default()
        }))
        .await;
        (first, second, third)
    });
    c.connect(&url).await.unwrap();
    let (first, second, third) = tokio::time::timeout(WAIT, broker).await.unwrap().unwrap();
    assert!(
        matches!(first, Some(Packet::PubRec(ref r)) if r.packet_id == 7),
        "{first:?}"
    );
    assert!(
        matches!(second, Some(Packet::PubRec(ref r)) if r.packet_id == 7),
        "{second:?}"
    );
    assert!(
        matches!(third, Some(Packet::PubComp(ref r)) if r.packet_id == 7 && r.reason == ReasonCode::Success),
        "{third:?}"
    );
    let mut got = Vec::new();
    loop {
        let ev = expect_event(&rx, "msg").await;
        if ev == "msg in/marker" {
            break;
        }
        got.push(ev);
    }
    assert_eq!(got, vec!["msg in/q2"], "delivered exactly once");
}
