//! Flow control. Outgoing, on the wire, against a scripted broker that
//! inspects what the client sends: topic aliases (first use topic + alias,
//! later an empty topic, least-recently-used rebinding, off switch, full
//! topic on a resend after reconnecting), and the server's Maximum Packet
//! Size applied to SUBSCRIBE / UNSUBSCRIBE.
//!
//! Inbound, our Receive Maximum against a real mosquitto 2.0 with a stream
//! of QoS 2 messages to a client that allows one in flight: the accounting
//! (QoS 2 in flight from PUBLISH to PUBREL) must not break the flow; every
//! message arrives once and the connection stays up. mosquitto 2.0 is said
//! to exceed a client's Receive Maximum once a queue builds up (it counts
//! a QoS 2 message done at PUBREC); in this setup it sends PUBREL before
//! the next PUBLISH, so whether it exceeds is printed, not asserted. The
//! counting and the strict reaction are shown with a scripted broker
//! (tests/c/test_inbound_limits.c).

mod common;
mod scripted;

use common::events::{self, Events};
use common::Broker;
use mqtt5c::client::{ClientOptions, Error, MqttClient};
use mqtt5c::packet::{
    MqttStr, Packet, Properties, Property, PropertyId, QoS, ReasonCode, SubscribeFilter,
    SubscriptionOptions,
};
use scripted::{accept_connected, accept_resumed, resp, Script};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn client(opts: ClientOptions) -> MqttClient {
    events::client(opts).0
}

/// (topic, alias) of a PUBLISH the client sent; acknowledges QoS 1.
fn read_publish(p: &mut scripted::Peer) -> (String, Option<u32>) {
    let pb = p.expect_publish();
    if let Some(id) = pb.packet_id {
        p.send(Packet::PubAck(resp(id)));
    }
    (
        pb.topic.as_str().to_string(),
        pb.properties.get_int(PropertyId::TopicAlias),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_aliases_first_use_then_empty_topic_then_lru() {
    let topics = ["a", "b", "a", "c", "a", "b", "c", "c"];
    let script = Script::start(move |l| {
        let mut p = accept_connected(&l, vec![Property::TopicAliasMaximum(2)]);
        let seen: Vec<_> = (0..topics.len()).map(|_| read_publish(&mut p)).collect();
        let want: Vec<(String, Option<u32>)> = [
            ("a", 1), // new
            ("b", 2), // new
            ("", 1),  // a known
            ("c", 2), // b least recently used: rebound to c
            ("", 1),  // a known
            ("b", 2), // c least recently used: rebound to b
            ("c", 1), // a least recently used: rebound to c
            ("", 1),  // c known
        ]
        .iter()
        .map(|(t, a)| (t.to_string(), Some(*a)))
        .collect();
        assert_eq!(seen, want);
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let c = client(ClientOptions::default());
    c.connect(&script.url()).await.unwrap();
    for (i, t) in topics.iter().enumerate() {
        let qos = if i % 2 == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        c.publish(t, b"x", qos, false, Properties::new())
            .await
            .unwrap();
    }
    script.end(&c, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_aliases_can_be_turned_off_and_are_never_above_the_servers_maximum() {
    let script = Script::start(|l| {
        // Off: topics only.
        let mut p = accept_connected(&l, vec![Property::TopicAliasMaximum(5)]);
        for _ in 0..3 {
            assert_eq!(read_publish(&mut p), ("t/1".to_string(), None));
        }
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
        // A server without Topic Alias Maximum: none either.
        let mut p = accept_connected(&l, vec![]);
        for _ in 0..2 {
            assert_eq!(read_publish(&mut p), ("t/1".to_string(), None));
        }
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let off = client(ClientOptions {
        outgoing_topic_aliases: 0,
        ..Default::default()
    });
    off.connect(&script.url()).await.unwrap();
    for _ in 0..3 {
        off.publish("t/1", b"x", QoS::AtLeastOnce, false, Properties::new())
            .await
            .unwrap();
    }
    off.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
    let on = client(ClientOptions::default());
    on.connect(&script.url()).await.unwrap();
    for _ in 0..2 {
        on.publish("t/1", b"x", QoS::AtLeastOnce, false, Properties::new())
            .await
            .unwrap();
    }
    script.end(&on, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_after_reconnect_carries_the_topic_not_the_alias() {
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![Property::TopicAliasMaximum(3)]);
        assert_eq!(read_publish(&mut p), ("r/1".to_string(), Some(1)));
        // The second is not acknowledged: the connection drops.
        let pb = p.expect_publish();
        assert_eq!(pb.topic.as_str(), "");
        assert_eq!(pb.properties.get_int(PropertyId::TopicAlias), Some(1));
        let id = pb.packet_id.unwrap();
        drop(p);
        let mut p = accept_resumed(&l, vec![Property::TopicAliasMaximum(3)]);
        let pb = p.expect_publish();
        assert_eq!(pb.packet_id, Some(id));
        assert!(pb.dup, "DUP set on the resend");
        assert_eq!(pb.topic.as_str(), "r/1");
        assert_eq!(pb.properties.get_int(PropertyId::TopicAlias), None);
        assert_eq!(&pb.payload[..], b"second");
        p.send(Packet::PubAck(resp(id)));
        // Aliases start afresh on the new connection.
        assert_eq!(read_publish(&mut p), ("r/1".to_string(), Some(1)));
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let c = client(ClientOptions {
        clean_start: false,
        session_expiry: 60,
        client_id: MqttStr::new("resender").unwrap(),
        ..Default::default()
    });
    c.connect(&script.url()).await.unwrap();
    c.publish("r/1", b"first", QoS::AtLeastOnce, false, Properties::new())
        .await
        .unwrap();
    let r = c
        .publish("r/1", b"second", QoS::AtLeastOnce, false, Properties::new())
        .await;
    assert!(matches!(r, Err(Error::ConnectionLost)), "{r:?}");
    // The reconnect resends the unacknowledged message itself.
    c.connect(&script.url()).await.unwrap();
    c.publish("r/1", b"third", QoS::AtLeastOnce, false, Properties::new())
        .await
        .unwrap();
    script.end(&c, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connack_limits_and_packet_size_refuse_before_sending() {
    let script = Script::start(|l| {
        let mut p = accept_connected(
            &l,
            vec![
                Property::MaximumQoS(0),
                Property::RetainAvailable(0),
                Property::MaximumPacketSize(64),
            ],
        );
        // Only what was allowed arrives, then DISCONNECT.
        assert_eq!(read_publish(&mut p), ("ok".to_string(), None));
        let sub = p.answer_subscribe(vec![ReasonCode::Success]);
        assert_eq!(sub.filters[0].filter.as_str(), "small");
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let c = client(ClientOptions::default());
    c.connect(&script.url()).await.unwrap();
    let r = c
        .publish("q", b"x", QoS::AtLeastOnce, false, Properties::new())
        .await;
    assert!(
        matches!(&r, Err(Error::InvalidArgument(s)) if s.contains("Maximum QoS 0")),
        "{r:?}"
    );
    let r = c
        .publish("q", b"x", QoS::AtMostOnce, true, Properties::new())
        .await;
    assert!(
        matches!(&r, Err(Error::InvalidArgument(s)) if s.contains("retain")),
        "{r:?}"
    );
    let mut alias = Properties::new();
    alias.push(Property::TopicAlias(1));
    let r = c.publish("q", b"x", QoS::AtMostOnce, false, alias).await;
    assert!(
        matches!(&r, Err(Error::InvalidArgument(s)) if s.contains("Topic Alias")),
        "{r:?}"
    );
    let long = "f".repeat(100);
    let filter = |f: &str| SubscribeFilter {
        filter: MqttStr::new(f).unwrap(),
        options: SubscriptionOptions::default(),
    };
    let r = c.subscribe(vec![filter(&long)], Properties::new()).await;
    assert!(matches!(r, Err(Error::PacketTooLarge { .. })), "{r:?}");
    let r = c
        .unsubscribe(vec![MqttStr::new(&long).unwrap()], Properties::new())
        .await;
    assert!(matches!(r, Err(Error::PacketTooLarge { .. })), "{r:?}");
    let r = c
        .publish("q", &[0u8; 100], QoS::AtMostOnce, false, Properties::new())
        .await;
    assert!(matches!(r, Err(Error::PacketTooLarge { .. })), "{r:?}");
    let mut big = Properties::new();
    big.push(Property::ReasonString(MqttStr::new(&long).unwrap()));
    let r = c.disconnect(ReasonCode::Success, big).await;
    assert!(matches!(r, Err(Error::PacketTooLarge { .. })), "{r:?}");
    assert!(c.is_connected(), "refusals leave the connection up");
    c.publish("ok", b"x", QoS::AtMostOnce, false, Properties::new())
        .await
        .unwrap();
    c.subscribe(vec![filter("small")], Properties::new())
        .await
        .unwrap();
    script.end(&c, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_stream_against_receive_maximum_1_flows_in_lenient_mode() {
    const N: usize = 300;
    let broker = Broker::start();
    // Both clients record into one handler: neither may lose its connection.
    let events = Events::new();
    let mut props = Properties::new();
    props.push(Property::ReceiveMaximum(1));
    let sub = MqttClient::new(
        ClientOptions {
            client_id: MqttStr::new("rm-sub").unwrap(),
            connect_properties: props,
            ..Default::default()
        },
        events.clone(),
        tokio::runtime::Handle::current(),
    );
    sub.connect(&broker.url()).await.unwrap();
    sub.subscribe(
        vec![SubscribeFilter {
            filter: MqttStr::new("rm/#").unwrap(),
            options: SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                ..Default::default()
            },
        }],
        Properties::new(),
    )
    .await
    .unwrap();
    let publisher = MqttClient::new(
        ClientOptions {
            client_id: MqttStr::new("rm-pub").unwrap(),
            ..Default::default()
        },
        events.clone(),
        tokio::runtime::Handle::current(),
    );
    publisher.connect(&broker.url()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..N {
        let p = publisher.clone();
        tasks.push(tokio::spawn(async move {
            p.publish(
                &format!("rm/{i}"),
                b"x",
                QoS::ExactlyOnce,
                false,
                Properties::new(),
            )
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    events.wait_returned(N);
    let exceeded = sub.stats().receive_maximum_exceeded();
    let peak = sub.stats().inbound_inflight_peak();
    println!("receive maximum 1: exceeded {exceeded} times, peak {peak} in flight");
    assert!(peak >= 1, "QoS 2 messages were counted in flight");
    // Consistent counters: an excess means more than one was in flight.
    assert_eq!(exceeded > 0, peak > 1, "exceeded {exceeded}, peak {peak}");
    assert!(sub.is_connected(), "lenient mode keeps the connection");
    assert_eq!(events.tally().disconnected, 0);
    assert_eq!(events.tally().returned, N, "every message once");
}
