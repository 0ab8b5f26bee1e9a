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
