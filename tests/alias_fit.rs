//! Outgoing topic aliases against the server's Maximum Packet Size: the
//! Topic Alias property is 3 bytes, but adding it can also lengthen the
//! property length's and the remaining length's variable byte integers.
//! A PUBLISH that fits without an alias must never be sent with one that
//! makes it exceed the server's maximum (MQTT-3.1.2-24: the server
//! disconnects with 0x95 and the message is lost).

mod common;
mod scripted;

use bytes::BytesMut;
use mqtt5c::packet::{self, Packet, Properties, Property, Publish, QoS, ReasonCode};
use scripted::{accept_connected, s, Script};
use std::time::Duration;

const TOPIC: &str = "t";

/// The encoded size of a PUBLISH to TOPIC with `payload` bytes,
/// with or without Topic Alias 1 (and the topic).
fn size(payload: usize, alias: bool, qos: QoS) -> usize {
    let mut props = Properties::new();
    if alias {
        props.push(Property::TopicAlias(1));
    }
    let p = Publish {
        dup: false,
        qos,
        retain: false,
        topic: s(TOPIC),
        packet_id: (qos != QoS::AtMostOnce).then_some(1),
        properties: props,
        payload: vec![7u8; payload].into(),
    };
    let mut b = BytesMut::new();
    packet::encode(&Packet::Publish(p), &mut b).unwrap();
    b.len()
}

/// Both the property length and the remaining length grow by a byte.
fn at_the_varint_edge(qos: QoS) {
    // Remaining length 16383 (two bytes) without the alias, 16386 (three
    // bytes) with it: the aliased PUBLISH is 4 bytes longer, not 3.
    let payload = if qos == QoS::AtMostOnce {
        16_379
    } else {
        16_377
    };
    let plain = size(payload, false, qos);
    assert_eq!(size(payload, true, qos), plain + 4);
    let max = plain + 3;
    let script = Script::start(move |l| {
        let mut p = accept_connected(
            &l,
            vec![
                Property::MaximumPacketSize(max as u32),
                Property::TopicAliasMaximum(10),
            ],
        );
        // Panics ("client sent garbage") on a packet over `max`.
        match p.read_max(max) {
            Some(Packet::Publish(pb)) => {
                assert_eq!(pb.payload.len(), payload);
                if let Some(id) = pb.packet_id {
                    p.send(Packet::PubAck(scripted::resp(id)));
                }
            }
            other => panic!("expected the PUBLISH, got {other:?}"),
        }
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let o = mqtt5c::client::ClientOptions::default();
    let (c, _events) = common::events::client_on(o, rt.handle());
    rt.block_on(async {
        c.connect(&script.url()).await.unwrap();
        c.publish(TOPIC, &vec![7u8; payload], qos, false, Properties::new())
            .await
            .unwrap();
        let _ = c.disconnect(ReasonCode::Success, Properties::new()).await;
    });
    script.finish(Duration::from_secs(30)).unwrap();
}

/// QoS 0: written on the caller's thread (`publish_now`).
#[test]
fn an_alias_never_takes_a_qos0_publish_over_the_maximum_packet_size() {
    at_the_varint_edge(QoS::AtMostOnce);
}

/// QoS 1: the async path.
#[test]
fn an_alias_never_takes_a_qos1_publish_over_the_maximum_packet_size() {
    at_the_varint_edge(QoS::AtLeastOnce);
}

/// A server allowing 65535 aliases does not make the client keep every
/// topic it ever published to: after 200 KB of distinct topics the first
/// one has left the table (it is sent with its topic again), so the table
/// stays within its byte bound instead of growing to 65535 topics.
#[test]
fn a_large_topic_alias_maximum_does_not_keep_every_topic() {
    const TOPICS: usize = 200;
    let topic = |i: usize| format!("{i:0>1000}");
    let script = Script::start(move |l| {
        let mut p = accept_connected(&l, vec![Property::TopicAliasMaximum(u16::MAX)]);
        for i in 0..TOPICS {
            let pb = p.expect_publish();
            assert_eq!(pb.topic.as_str(), topic(i), "a new topic carries its name");
        }
        let again = p.expect_publish();
        assert_eq!(
            again.topic.as_str(),
            topic(0),
            "the first topic is still bound to its alias after {TOPICS} others of 1000 bytes"
        );
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (c, _events) = common::events::client_on(Default::default(), rt.handle());
    rt.block_on(async {
        c.connect(&script.url()).await.unwrap();
        for i in (0..TOPICS).chain([0]) {
            c.publish(&topic(i), b"x", QoS::AtMostOnce, false, Properties::new())
                .await
                .unwrap();
        }
        let _ = c.disconnect(ReasonCode::Success, Properties::new()).await;
    });
    script.finish(Duration::from_secs(30)).unwrap();
}

/// Topic Alias Maximum 1 (mosquitto's `max_topic_alias 1`): the one alias
/// is rebound by almost every publish while 4 threads publish on 5 topics
/// at QoS 0 (on their own threads, `publish_now`) and QoS 1 (the async
/// path), with a large payload now and then (partial writes). mosquitto
/// disconnects at an alias used for the wrong topic's binding order
/// (0x94/0x82), and a subscriber checks every message's topic and order.
#[test]
fn one_alias_rebound_by_concurrent_publishers() {
    const THREADS: usize = 4;
    const EACH: usize = 150;
    let broker = common::Broker::start_with("max_topic_alias 1\n");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (sub, sub_events) = common::events::client_on(Default::default(), rt.handle());
    let (c, events) = common::events::client_on(Default::default(), rt.handle());
    rt.block_on(async {
        sub.connect(&broker.url()).await.unwrap();
        let f = mqtt5c::packet::SubscribeFilter {
            filter: s("alias1/#"),
            options: mqtt5c::packet::SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        };
        sub.subscribe(vec![f], Properties::new()).await.unwrap();
        c.connect(&broker.url()).await.unwrap();
    });
    events.connected();
    sub_events.connected();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let c = c.clone();
            let h = rt.handle().clone();
            std::thread::spawn(move || {
                for seq in 0..EACH {
                    let topic = format!("alias1/{}/{t}", (seq * 3 + t) % 5);
                    let len = if seq % 40 == 9 { 300_000 } else { 8 };
                    let mut payload = vec![0u8; len];
                    payload[..8].copy_from_slice(&(seq as u64).to_be_bytes());
                    let qos = if seq % 4 == 0 {
                        QoS::AtLeastOnce
                    } else {
                        QoS::AtMostOnce
                    };
                    h.block_on(c.publish(&topic, &payload, qos, false, Properties::new()))
                        .unwrap_or_else(|e| panic!("thread {t} #{seq}: {e:?}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut next = [0u64; THREADS];
    for _ in 0..THREADS * EACH {
        let m = sub_events.msg();
        let topic = m.topic.as_str().to_string();
        let t: usize = topic.rsplit('/').next().unwrap().parse().unwrap();
        let seq = u64::from_be_bytes(m.payload[..8].try_into().unwrap());
        assert_eq!(seq, next[t], "thread {t}: {topic} out of order");
        let want = format!("alias1/{}/{t}", (seq as usize * 3 + t) % 5);
        assert_eq!(topic, want, "thread {t} #{seq} arrived on the wrong topic");
        next[t] += 1;
    }
    let pending = events.pending();
    assert!(
        !pending
            .iter()
            .any(|e| format!("{e:?}").contains("Disconnected")),
        "{pending:?}"
    );
    rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()))
        .unwrap();
}

/// The alias of a PUBLISH as sent: (topic, alias).
fn sent_alias(pb: &Publish) -> (String, Option<u16>) {
    let alias = pb
        .properties
        .get_int(mqtt5c::packet::PropertyId::TopicAlias)
        .map(|v| v as u16);
    (pb.topic.as_str().to_string(), alias)
}

/// Aliases belong to a connection: after an automatic reconnect to a
/// broker that now allows one alias (10 before), the first publish to a
/// topic carries its name again, and no alias above the new maximum is
/// used.
#[test]
fn aliases_start_over_after_a_reconnect_with_a_lower_maximum() {
    let script = Script::start(move |l| {
        let mut p = accept_connected(&l, vec![Property::TopicAliasMaximum(10)]);
        for (topic, alias) in [("a", Some(1)), ("b", Some(2)), ("", Some(2))] {
            assert_eq!(sent_alias(&p.expect_publish()), (topic.into(), alias));
        }
        drop(p);
        let mut p = accept_connected(&l, vec![Property::TopicAliasMaximum(1)]);
        for (topic, alias) in [("b", Some(1)), ("a", Some(1)), ("", Some(1))] {
            assert_eq!(sent_alias(&p.expect_publish()), (topic.into(), alias));
        }
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let o = mqtt5c::client::ClientOptions {
        reconnect: Some(mqtt5c::client::Reconnect {
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        }),
        ..Default::default()
    };
    let (c, events) = common::events::client_on(o, rt.handle());
    let publish = |topic: &str| {
        rt.block_on(c.publish(topic, b"x", QoS::AtMostOnce, false, Properties::new()))
            .unwrap()
    };
    rt.block_on(c.connect(&script.url())).unwrap();
    events.expect("connected");
    for t in ["a", "b", "b"] {
        publish(t);
    }
    events.expect("disconnected");
    events.expect("connected");
    for t in ["b", "a", "a"] {
        publish(t);
    }
    rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()))
        .unwrap();
    script.finish(Duration::from_secs(30)).unwrap();
}

/// The table's 64 KiB bound (c210158) with mosquitto allowing every
/// alias (`max_topic_alias 65535`): 4 threads publish, at QoS 0 and 1, on
/// 40 topics each of about 4 KB (160 topics, 10 times the bound, so
/// topics leave the table all the time and come back on rebound
/// aliases) and now and then on one of 65,000 bytes (more than the bound
/// alone: it empties the table). mosquitto disconnects at an alias it
/// does not know, and the subscriber checks each message's topic and
/// each thread's order.
#[test]
fn the_table_bound_evicts_and_rebinds_under_concurrent_publishers() {
    const THREADS: usize = 4;
    const EACH: usize = 200;
    let topic_of = |t: usize, seq: usize| -> String {
        if seq % 50 == 17 {
            format!("bound/{t}/{}", "h".repeat(65_000))
        } else {
            format!("bound/{t}/{}/{}", (seq * 7) % 40, "x".repeat(4_000))
        }
    };
    let broker = common::Broker::start_with("max_topic_alias 65535\n");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (sub, sub_events) = common::events::client_on(Default::default(), rt.handle());
    let (c, events) = common::events::client_on(Default::default(), rt.handle());
    rt.block_on(async {
        sub.connect(&broker.url()).await.unwrap();
        let f = mqtt5c::packet::SubscribeFilter {
            filter: s("bound/#"),
            options: mqtt5c::packet::SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        };
        sub.subscribe(vec![f], Properties::new()).await.unwrap();
        c.connect(&broker.url()).await.unwrap();
    });
    events.connected();
    sub_events.connected();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let c = c.clone();
            let h = rt.handle().clone();
            std::thread::spawn(move || {
                for seq in 0..EACH {
                    let qos = if seq % 3 == 0 {
                        QoS::AtLeastOnce
                    } else {
                        QoS::AtMostOnce
                    };
                    let payload = (seq as u64).to_be_bytes();
                    h.block_on(c.publish(
                        &topic_of(t, seq),
                        &payload,
                        qos,
                        false,
                        Properties::new(),
                    ))
                    .unwrap_or_else(|e| panic!("thread {t} #{seq}: {e:?}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut next = [0usize; THREADS];
    for _ in 0..THREADS * EACH {
        let m = sub_events.msg();
        let topic = m.topic.as_str().to_string();
        let t: usize = topic.split('/').nth(1).unwrap().parse().unwrap();
        let seq = u64::from_be_bytes(m.payload[..8].try_into().unwrap()) as usize;
        assert_eq!(seq, next[t], "thread {t}: out of order");
        assert!(
            topic == topic_of(t, seq),
            "thread {t} #{seq} arrived on the wrong topic"
        );
        next[t] += 1;
    }
    let pending = events.pending();
    assert!(
        !pending
            .iter()
            .any(|e| format!("{e:?}").contains("Disconnected")),
        "{pending:?}"
    );
    rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()))
        .unwrap();
}
