//! MQTT 3.1.1 against NATS's MQTT gateway (issue 12), a nats-server of
//! our own per test (tests/common/nats.rs): it speaks 3.1.1 only and
//! refuses v5, supports QoS 0 and 1 (not 2), retained messages, the will
//! and sessions (in JetStream).

mod common;

use common::events::client;
use common::nats::Nats;
use mqtt5c::client::{ClientOptions, Error};
use mqtt5c::packet::{
    LastWill, MqttStr, Properties, ProtocolVersion, QoS, ReasonCode, SubscribeFilter,
    SubscriptionOptions,
};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn opts(id: &str, version: Option<ProtocolVersion>) -> ClientOptions {
    ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        protocol_version: version,
        connect_timeout: WAIT,
        ..Default::default()
    }
}

const V311: Option<ProtocolVersion> = Some(ProtocolVersion::V311);

fn sub(filter: &str, qos: QoS) -> Vec<SubscribeFilter> {
    vec![SubscribeFilter {
        filter: MqttStr::new(filter).unwrap(),
        options: SubscriptionOptions {
            qos,
            ..Default::default()
        },
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_pubsub_qos0_qos1() {
    let nats = Nats::start();
    let (c, rx) = client(opts("nats-pubsub", V311));
    c.connect(&nats.url()).await.expect("connect");
    assert_eq!(c.protocol_version(), Some(ProtocolVersion::V311));
    let ack = c.subscribe(sub("n/t/#", QoS::AtLeastOnce), Properties::new());
    assert_eq!(ack.await.unwrap().reasons, [ReasonCode::GrantedQoS1]);
    for (qos, payload) in [(QoS::AtMostOnce, "zero"), (QoS::AtLeastOnce, "one")] {
        c.publish("n/t/x", payload.as_bytes(), qos, false, Properties::new())
            .await
            .expect("publish");
        let m = rx.msg();
        assert_eq!(
            (&*m.topic, &m.payload[..], m.qos),
            ("n/t/x", payload.as_bytes(), qos)
        );
    }
    let un = c.unsubscribe(vec![MqttStr::new("n/t/#").unwrap()], Properties::new());
    assert_eq!(un.await.unwrap().reasons, [ReasonCode::Success]);
    c.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_v5_is_refused_and_auto_falls_back() {
    let nats = Nats::start();
    let (v5, _rx5) = client(opts("nats-v5", Some(ProtocolVersion::V5)));
    // NATS answers a v5 CONNECT with a 3.1.1 CONNACK, return code 1.
    match v5.connect(&nats.url()).await {
        Err(Error::Refused { reason, .. }) => {
            assert_eq!(reason, ReasonCode::UnsupportedProtocolVersion)
        }
        other => panic!("v5 against NATS: {other:?}"),
    }
    let (auto, rx) = client(opts("nats-auto", None));
    auto.connect(&nats.url()).await.expect("AUTO connect");
    assert_eq!(auto.protocol_version(), Some(ProtocolVersion::V311));
    auto.subscribe(sub("n/auto", QoS::AtLeastOnce), Properties::new())
        .await
        .unwrap();
    auto.publish(
        "n/auto",
        b"fell back",
        QoS::AtLeastOnce,
        false,
        Properties::new(),
    )
    .await
    .unwrap();
    assert_eq!(&rx.msg().payload[..], b"fell back");
    // Remembered: the next connect speaks 3.1.1 at once.
    auto.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
    auto.connect(&nats.url()).await.expect("AUTO again");
    assert_eq!(auto.protocol_version(), Some(ProtocolVersion::V311));
    auto.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_retained_and_will() {
    let nats = Nats::start();
    let (p, _prx) = client(opts("nats-retain-pub", V311));
    p.connect(&nats.url()).await.unwrap();
    p.publish("n/r", b"kept", QoS::AtLeastOnce, true, Properties::new())
        .await
        .unwrap();
    let (s, rx) = client(opts("nats-retain-sub", V311));
    s.connect(&nats.url()).await.unwrap();
    s.subscribe(sub("n/r", QoS::AtLeastOnce), Properties::new())
        .await
        .unwrap();
    let m = rx.msg();
    assert!(m.retain, "a retained message arrives with RETAIN");
    assert_eq!(&m.payload[..], b"kept");

    s.subscribe(sub("n/will", QoS::AtLeastOnce), Properties::new())
        .await
        .unwrap();
    let mut o = opts("nats-will", V311);
    o.will = Some(LastWill {
        topic: MqttStr::new("n/will").unwrap(),
        payload: bytes::Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        ..Default::default()
    });
    let (w, _wrx) = client(o);
    w.connect(&nats.url()).await.unwrap();
    // Gone without DISCONNECT: the gateway publishes the will.
    w.close();
    let m = rx.msg();
    assert_eq!((&*m.topic, &m.payload[..]), ("n/will", &b"gone"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_session_resume() {
    let nats = Nats::start();
    let mut o = opts("nats-session", V311);
    o.clean_start = false;
    let (s, rx) = client(o);
    let first = s.connect(&nats.url()).await.unwrap();
    assert!(!first.session_present);
    s.subscribe(sub("n/s", QoS::AtLeastOnce), Properties::new())
        .await
        .unwrap();
    s.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
    let (p, _prx) = client(opts("nats-session-pub", V311));
    p.connect(&nats.url()).await.unwrap();
    p.publish(
        "n/s",
        b"meanwhile",
        QoS::AtLeastOnce,
        false,
        Properties::new(),
    )
    .await
    .unwrap();
    let again = s.connect(&nats.url()).await.unwrap();
    assert!(again.session_present, "the session was not resumed");
    assert_eq!(&rx.msg().payload[..], b"meanwhile");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_request_with_reply_suffix() {
    let nats = Nats::start();
    let with_suffix = |id: &str| ClientOptions {
        reply_suffix: Some("/reply".into()),
        ..opts(id, V311)
    };
    let (server, requests) = client(with_suffix("nats-rpc-server"));
    let (requester, _) = client(with_suffix("nats-rpc-client"));
    server.connect(&nats.url()).await.expect("connect");
    requester.connect(&nats.url()).await.expect("connect");
    let ack = server.subscribe(sub("n/rpc/+", QoS::AtLeastOnce), Properties::new());
    assert_eq!(ack.await.unwrap().reasons, [ReasonCode::GrantedQoS1]);
    // The responder answers as it would a v5 request: to its Response Topic.
    let responder = tokio::spawn(async move {
        for _ in 0..3 {
            let m = requests.msg_within(WAIT).expect("request");
            let rt = m
                .properties
                .get_str(mqtt5c::packet::PropertyId::ResponseTopic)
                .expect("response topic")
                .as_str()
                .to_string();
            assert_eq!(rt, "n/rpc/echo/reply");
            let reply = [b"re:", &m.payload[..]].concat();
            server
                .publish(&rt, &reply, QoS::AtLeastOnce, false, Properties::new())
                .await
                .expect("reply");
        }
    });
    for i in 0..3 {
        let payload = format!("q{i}");
        let r = requester
            .request(
                "n/rpc/echo",
                payload.as_bytes(),
                QoS::AtLeastOnce,
                Properties::new(),
                Some(WAIT),
            )
            .await
            .expect("request");
        assert_eq!(&*r.topic, "n/rpc/echo/reply");
        assert_eq!(&r.payload[..], format!("re:{payload}").as_bytes());
    }
    responder.await.expect("responder");
}

/// A flaky network on 3.1.1: NATS restarted in the middle of a QoS 1
/// stream; every publish succeeds and every message arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restarted_mid_stream_loses_no_qos1_message() {
    use common::restart::{qos1_stream_through_a_restart, Power, Window};
    let mut nats = Nats::start();
    let url = nats.url();
    qos1_stream_through_a_restart(&url, "nats", Window::BrokerMayDrop, |p| match p {
        Power::Off => nats.stop(),
        Power::On => nats.start_again(),
    })
    .await;
}

/// The C examples' `-V 311|5|auto` against a broker that speaks 3.1.1
/// only: sub and pub with `-V 311` and `-V auto` exchange a message, pub
/// with `-V 5` is refused; request_response and rpc_server with `-V 311`
/// (and the default reply suffix) answer a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_examples_take_the_protocol_version() {
    use common::cprog::compile;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let nats = Nats::start();
    let url = nats.url();
    let (sub, publ) = (
        compile("examples-c/sub.c", "sub"),
        compile("examples-c/pub.c", "pub"),
    );
    for (v, n) in [("311", "a"), ("auto", "b")] {
        let topic = format!("n/ex/{n}");
        let mut s = Command::new(&sub)
            .args(["-L", &url, "-t", &topic, "-q", "1", "-C", "1", "-V", v])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // "subscribed" on stderr once the subscription is acknowledged.
        let mut err = BufReader::new(s.stderr.take().unwrap());
        let mut line = String::new();
        tokio::task::block_in_place(|| err.read_line(&mut line)).unwrap();
        assert_eq!(line.trim(), "subscribed", "sub -V {v}");
        let msg = format!("via -V {v}");
        let p = Command::new(&publ)
            .args(["-L", &url, "-t", &topic, "-q", "1", "-m", &msg, "-V", v])
            .output()
            .unwrap();
        assert!(p.status.success(), "pub -V {v}: {p:?}");
        let out = tokio::task::block_in_place(|| s.wait_with_output()).unwrap();
        assert!(out.status.success(), "sub -V {v}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{topic} {msg}\n")
        );
    }
    let p = Command::new(&publ)
        .args(["-L", &url, "-t", "n/ex/v5", "-m", "x", "-V", "5"])
        .output()
        .unwrap();
    assert_eq!(p.status.code(), Some(1), "pub -V 5 against NATS: {p:?}");
    assert!(
        String::from_utf8_lossy(&p.stderr).contains("3.1.1"),
        "pub -V 5 says why: {p:?}"
    );

    let (req, srv) = (
        compile("examples-c/request_response.c", "request_response"),
        compile("examples-c/rpc_server.c", "rpc_server"),
    );
    let mut server = Command::new(&srv)
        .args(["-V", "311", &url, "n/ex/rpc", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    tokio::task::block_in_place(|| err.read_line(&mut line)).unwrap();
    assert!(line.contains("serving"), "rpc_server: {line}");
    let answered = Command::new(&req)
        .args(["-V", "311", &url, "n/ex/rpc", "ping", "1"])
        .output()
        .unwrap();
    assert!(
        answered.status.success(),
        "request_response -V 311: {answered:?}"
    );
    assert!(
        String::from_utf8_lossy(&answered.stdout).contains("re:ping"),
        "{answered:?}"
    );
    let out = tokio::task::block_in_place(|| server.wait_with_output()).unwrap();
    assert!(out.status.success(), "rpc_server: {out:?}");
}
