//! A malicious broker, acknowledgements (issue 14): a second CONNACK, a
//! SUBACK with the wrong number of reason codes (Protocol Errors, 0x82;
//! on 3.1.1 a close), PUBACK/PUBREC/PUBCOMP for packet ids not in use,
//! a DISCONNECT instead of an acknowledgement, a failing PUBREC, a QoS 2
//! message sent twice. The attacks on the connection come while a
//! SUBSCRIBE and a QoS 1 PUBLISH wait for the broker, and are checked for
//! the five properties of tests/hostile/mod.rs. Acknowledgements of the
//! wrong kind: tests/c/test_wrong_acks.c (script `wrong_acks`).

mod common;
mod hostile;
mod scripted;

use hostile::{
    leak_checked, next_disconnect, read_waiting, runtime, serve_until_disconnect, within,
};
use hostile::{Attack, Events, Want, WAIT};
use mqtt5c::client::{reason_string, ClientOptions, DisconnectCause, Error, MqttClient};
use mqtt5c::packet::{
    Disconnect, MqttStr, Packet, Properties, Property, ProtocolVersion, PubResp, Publish, QoS,
    ReasonCode, SubAck, SubscribeFilter, SubscriptionOptions, UnsubAck,
};
use scripted::{accept, accept_connected, resp, s, Script};

/// The Server MUST NOT send more than one CONNACK (MQTT-3.2.0-2).
fn second_connack() -> Attack {
    Attack::new(
        |p, _| p.connack(ReasonCode::Success, Properties::new()),
        Want::Disconnect(ReasonCode::ProtocolError),
    )
}

#[test]
fn a_second_connack_is_a_protocol_error() {
    second_connack().run();
}

#[test]
fn a_second_connack_is_a_protocol_error_on_3_1_1() {
    second_connack().v311().run();
}

/// Two reason codes for the subscribe's one filter (MQTT-3.8.4-6): the
/// client cannot tell which is the filter's; the subscribe fails with a
/// protocol error (not sent again after a reconnect), and the connection
/// ends. Before the fix the subscribe failed and the connection went on.
fn suback_count() -> Attack {
    Attack::new(
        |p, w| {
            p.send(Packet::SubAck(SubAck {
                packet_id: w.subscribe,
                properties: Properties::new(),
                reasons: vec![ReasonCode::GrantedQoS1; 2],
            }))
        },
        Want::Disconnect(ReasonCode::ProtocolError),
    )
    .blaming_subscribe()
}

#[test]
fn a_suback_with_the_wrong_number_of_reason_codes_is_a_protocol_error() {
    suback_count().run();
}

/// (Replaces tests/v311.rs's
/// `suback_with_fewer_return_codes_than_filters_is_a_protocol_error`.)
#[test]
fn a_suback_with_the_wrong_number_of_return_codes_is_a_protocol_error_on_3_1_1() {
    suback_count().v311().run();
}

/// PUBACK, PUBCOMP and PUBREC for packet ids not in use: the spec names
/// no DISCONNECT for them, and one may be a late answer to a message the
/// client gave up on, so the client ignores PUBACK and PUBCOMP and
/// answers PUBREC with PUBREL 0x92 (Packet Identifier not found,
/// MQTT 5 section 4.3.3). The connection goes on: the waiting calls
/// complete with their own acknowledgements.
fn unknown_ids(version: ProtocolVersion) {
    leak_checked(|| {
        let script = Script::start(move |l| {
            let mut p = accept(&l);
            p.speak(version);
            p.handshake(vec![]);
            let w = read_waiting(&mut p);
            assert!(w.subscribe < 1000 && w.publish < 1000);
            p.send(Packet::PubAck(resp(1000)));
            p.send(Packet::PubComp(resp(1001)));
            p.send(Packet::PubRec(resp(1002)));
            let r = p.expect_pubrel(1002);
            if version == ProtocolVersion::V5 {
                assert_eq!(r.reason, ReasonCode::PacketIdentifierNotFound);
            }
            p.suback(w.subscribe, vec![ReasonCode::GrantedQoS1]);
            p.send(Packet::PubAck(resp(w.publish)));
            serve_until_disconnect(&mut p);
        });
        let rt = runtime();
        let ev = Events::new();
        let opts = ClientOptions {
            protocol_version: Some(version),
            keep_alive: 0,
            operation_timeout: None,
            ..Default::default()
        };
        let c = MqttClient::new(opts, ev.clone(), rt.handle().clone());
        rt.block_on(async {
            c.connect(&script.url()).await.expect("connect");
            let filter = SubscribeFilter {
                filter: s("hostile/sub"),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    ..Default::default()
                },
            };
            let (sub, publ) = tokio::time::timeout(WAIT, async {
                tokio::join!(
                    c.subscribe(vec![filter], Properties::new()),
                    c.publish(
                        "hostile/pub",
                        b"x",
                        QoS::AtLeastOnce,
                        false,
                        Properties::new()
                    ),
                )
            })
            .await
            .expect("the waiting calls complete");
            assert_eq!(sub.expect("subscribe").reasons, [ReasonCode::GrantedQoS1]);
            assert_eq!(publ.expect("publish").reason, ReasonCode::Success);
            c.disconnect(ReasonCode::Success, Properties::new())
                .await
                .expect("disconnect");
        });
        // The first end of the connection is ours.
        match next_disconnect(&ev) {
            DisconnectCause::Client(ReasonCode::Success) => {}
            other => panic!("the connection ended with {other:?}"),
        }
        script.finish(WAIT).unwrap();
        c.close();
    });
}

#[test]
fn acknowledgements_of_unknown_packet_ids_are_ignored() {
    unknown_ids(ProtocolVersion::V5);
}

#[test]
fn acknowledgements_of_unknown_packet_ids_are_ignored_on_3_1_1() {
    unknown_ids(ProtocolVersion::V311);
}

/// A DISCONNECT instead of the PUBACK, the socket left open: the client
/// acts on the DISCONNECT alone, failing the publish at once. (Moved
/// from tests/fake_broker.rs.)
#[test]
fn a_disconnect_instead_of_the_ack_fails_the_waiting_publish_promptly() {
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![]);
        p.expect_publish();
        p.send(Packet::Disconnect(Disconnect {
            reason: ReasonCode::ServerShuttingDown,
            properties: Properties::new(),
        }));
        // The client closes without a word.
        p.expect_silent_close();
    });
    let rt = runtime();
    let ev = Events::new();
    let opts = ClientOptions {
        operation_timeout: None,
        ..Default::default()
    };
    let c = MqttClient::new(opts, ev.clone(), rt.handle().clone());
    rt.block_on(async {
        c.connect(&script.url()).await.unwrap();
        let r = tokio::time::timeout(
            WAIT,
            c.publish("a/b", b"x", QoS::AtLeastOnce, false, Properties::new()),
        )
        .await
        .expect("publish must not hang");
        assert!(matches!(r, Err(Error::ConnectionLost)), "{r:?}");
    });
    match next_disconnect(&ev) {
        DisconnectCause::Server(d) => assert_eq!(d.reason, ReasonCode::ServerShuttingDown),
        other => panic!("{other:?}"),
    }
    let r = rt.block_on(c.publish("a/b", b"x", QoS::AtMostOnce, false, Properties::new()));
    assert!(matches!(r, Err(Error::NotConnected)), "{r:?}");
    script.finish(WAIT).unwrap();
}

/// A QoS 2 flow, then a PUBREC with a failure, which ends the flow (no
/// PUBREL) and is the publish's outcome. (Moved from tests/fake_broker.rs.)
#[test]
fn a_failing_pubrec_ends_the_qos2_flow() {
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![]);
        let id = p.expect_publish().packet_id.unwrap();
        p.send(Packet::PubRec(resp(id)));
        p.expect_pubrel(id);
        p.send(Packet::PubComp(resp(id)));
        let pb = p.expect_publish();
        p.send(Packet::PubRec(PubResp {
            packet_id: pb.packet_id.unwrap(),
            reason: ReasonCode::QuotaExceeded,
            properties: Properties::from(vec![Property::ReasonString(s("quota"))]),
        }));
        // No PUBREL: the next is our DISCONNECT.
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
        p.expect_close();
    });
    let rt = runtime();
    let ev = Events::new();
    let c = MqttClient::new(ClientOptions::default(), ev.clone(), rt.handle().clone());
    rt.block_on(async {
        c.connect(&script.url()).await.unwrap();
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
        assert_eq!(reason_string(&ack.properties).as_deref(), Some("quota"));
        c.disconnect(ReasonCode::Success, Properties::new())
            .await
            .unwrap();
    });
    script.finish(WAIT).unwrap();
}

/// A QoS 2 message sent again (DUP) before its PUBREL is delivered once;
/// both copies get their PUBREC, the PUBREL its PUBCOMP. (Moved from
/// tests/fake_broker.rs.)
#[test]
fn a_qos2_message_sent_twice_is_delivered_once() {
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![]);
        let publish = |dup| {
            Packet::Publish(Publish {
                dup,
                qos: QoS::ExactlyOnce,
                retain: false,
                topic: s("in/q2"),
                packet_id: Some(7),
                properties: Properties::new(),
                payload: bytes::Bytes::from_static(b"once"),
            })
        };
        p.send(publish(false));
        p.expect_pubrec(7);
        p.send(publish(true));
        p.expect_pubrec(7);
        p.send(Packet::PubRel(resp(7)));
        assert_eq!(p.expect_pubcomp(7).reason, ReasonCode::Success);
        // A QoS 0 marker: events are delivered in order, so once it
        // arrives any duplicate would have arrived before it.
        p.send(Packet::Publish(Publish {
            topic: MqttStr::new("in/marker").unwrap(),
            ..Default::default()
        }));
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
        p.expect_close();
    });
    let rt = runtime();
    let ev = Events::new();
    let c = MqttClient::new(ClientOptions::default(), ev.clone(), rt.handle().clone());
    rt.block_on(c.connect(&script.url())).unwrap();
    let mut got = Vec::new();
    loop {
        match ev.msg().topic.as_str() {
            "in/marker" => break,
            t => got.push(t.to_string()),
        }
    }
    assert_eq!(got, ["in/q2"], "delivered exactly once");
    rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()))
        .unwrap();
    script.finish(WAIT).unwrap();
}

/// An UNSUBACK with the wrong number of reason codes (MQTT-3.11.3-2): as
/// for a SUBACK, the unsubscribe fails with a protocol error and the
/// connection ends with DISCONNECT 0x82.
#[test]
fn an_unsuback_with_the_wrong_number_of_reason_codes_is_a_protocol_error() {
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![]);
        let id = p.expect_unsubscribe().packet_id;
        p.send(Packet::UnsubAck(UnsubAck {
            packet_id: id,
            properties: Properties::new(),
            reasons: vec![ReasonCode::Success; 2],
        }));
        assert_eq!(p.expect_disconnect(), ReasonCode::ProtocolError);
        p.expect_close();
    });
    let rt = runtime();
    let ev = Events::new();
    let opts = ClientOptions {
        operation_timeout: None,
        ..Default::default()
    };
    let c = MqttClient::new(opts, ev.clone(), rt.handle().clone());
    rt.block_on(c.connect(&script.url())).unwrap();
    let r = within(&rt, c.unsubscribe(vec![s("t")], Properties::new()));
    match r {
        Ok(Err(Error::Protocol(text))) => {
            assert!(text.contains("2 reason codes for 1 filters"), "{text}")
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    match next_disconnect(&ev) {
        DisconnectCause::Protocol(ReasonCode::ProtocolError, _) => {}
        other => panic!("{other:?}"),
    }
    script.finish(WAIT).unwrap();
}
