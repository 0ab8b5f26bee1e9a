//! A malicious broker, flow control (issue 14): a flood of QoS 2 PUBLISH
//! beyond the Receive Maximum we sent in CONNECT ends the connection with
//! DISCONNECT 0x93 when the client is strict (MQTT-3.3.4-9 lets a client
//! be lenient; by default it is: mosquitto 2.0 exceeds it in bursts, see
//! src/client/flow.rs). Checked for the five properties of
//! tests/hostile/mod.rs. 3.1.1 has no Receive Maximum to exceed.
//!
//! The lenient default stays bounded in memory under such a flood:
//! tests/inbound_delivery.rs
//! (`memory_stays_bounded_when_the_broker_ignores_our_receive_maximum_while_a_callback_blocks`)
//! and tests/memory.rs (`a_flood_while_a_callback_blocks_stays_within_the_lifted_byte_bound`).

mod common;
mod hostile;
mod scripted;

use bytes::BytesMut;
use hostile::{runtime, within, Attack, Events, Want, WAIT};
use mqtt5c::client::{ClientOptions, MqttClient};
use mqtt5c::packet::{self, Packet, Properties, Property, QoS, ReasonCode};
use scripted::{accept_connected, publish, resp, Script};
use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

/// Two QoS 2 messages, in flight until their PUBREL (sent only after
/// their PUBREC, which comes after their callbacks: the outcome does not
/// depend on how fast those run), then a flood of 48 more.
#[test]
fn a_flood_beyond_our_receive_maximum_is_refused_when_strict() {
    let r = Attack::new(
        |p, _| {
            for id in 1..=2u16 {
                p.send(publish(
                    "flood/q2",
                    QoS::ExactlyOnce,
                    Some(id),
                    vec![],
                    b"q",
                ));
            }
            for id in 1..=2u16 {
                p.expect_pubrec(id);
            }
            let mut flood = BytesMut::new();
            for id in 3..=50u16 {
                let pk = publish("flood/q2", QoS::ExactlyOnce, Some(id), vec![], b"q");
                packet::encode(&pk, &mut flood).unwrap();
            }
            // The client may close before it has read all of it.
            let _ = p.writer().write_all(&flood);
        },
        Want::Disconnect(ReasonCode::ReceiveMaximumExceeded),
    )
    .tune(|o| {
        o.receive_maximum = 2;
        o.strict_receive_maximum = true;
    })
    .run();
    assert_eq!(r.messages, ["flood/q2", "flood/q2"], "only those in bounds");
}

/// The other direction, for contrast: the client keeps to the broker's
/// Receive Maximum (2) — a third publish waits for a slot, and one more
/// goes per slot freed. (Moved from tests/fake_broker.rs.)
#[test]
fn our_publishes_keep_to_the_brokers_receive_maximum() {
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![Property::ReceiveMaximum(2)]);
        let mut unacked = VecDeque::new();
        let read_publish = |p: &mut scripted::Peer, unacked: &mut VecDeque<u16>| {
            unacked.push_back(p.expect_publish().packet_id.unwrap())
        };
        read_publish(&mut p, &mut unacked);
        read_publish(&mut p, &mut unacked);
        // Seeing nothing for a while is the only way to see an absence.
        assert!(
            p.quiet_for(Duration::from_millis(300)),
            "a third publish exceeded Receive Maximum 2"
        );
        for _ in 3..=5 {
            p.send(Packet::PubAck(resp(unacked.pop_front().unwrap())));
            read_publish(&mut p, &mut unacked);
            assert!(
                p.quiet_for(Duration::from_millis(100)),
                "only one more per freed slot"
            );
        }
        for id in unacked {
            p.send(Packet::PubAck(resp(id)));
        }
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
        p.expect_close();
    });
    let rt = runtime();
    let ev = Events::new();
    let c = MqttClient::new(ClientOptions::default(), ev.clone(), rt.handle().clone());
    rt.block_on(c.connect(&script.url())).unwrap();
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let c = c.clone();
            rt.spawn(async move {
                c.publish(
                    &format!("t/{i}"),
                    b"x",
                    QoS::AtLeastOnce,
                    false,
                    Properties::new(),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        let ack = within(&rt, t).expect("publish completes").unwrap().unwrap();
        assert_eq!(ack.reason, ReasonCode::Success);
    }
    rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()))
        .unwrap();
    script.finish(WAIT).unwrap();
}
