//! In-flight messages across a resumed session, against a scripted broker
//! that sees every packet the client sends: resends in the original order
//! when packet ids wrap, within the new connection's Receive Maximum and
//! Maximum Packet Size, a connect that is not failed by slow resends, and
//! cancelled publishes that leave no entry behind in the session.

mod common;
mod scripted;

use common::events::{self, Events};
use mqtt5c::client::{ClientOptions, Error, MqttClient};
use mqtt5c::packet::{MqttStr, Packet, Properties, Property, QoS, ReasonCode};
use scripted::{accept_connected, accept_resumed, resp, Peer, Script};
use std::collections::VecDeque;
use std::sync::{mpsc, Arc};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// A client keeping its session (Clean Start false, a Session Expiry).
fn client(id: &str, tune: impl FnOnce(&mut ClientOptions)) -> (MqttClient, Arc<Events>) {
    let mut o = ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        clean_start: false,
        session_expiry: 600,
        ..Default::default()
    };
    tune(&mut o);
    events::client(o)
}

/// Publishes without waiting for the acknowledgement.
async fn send(c: &MqttClient, topic: &str, payload: &[u8]) {
    c.publish_then(
        topic,
        payload,
        QoS::AtLeastOnce,
        false,
        Properties::new(),
        None,
    )
    .await
    .unwrap();
}

/// Waits for a test step (a std channel, read off the script's thread).
fn step(rx: &mpsc::Receiver<()>) {
    tokio::task::block_in_place(|| rx.recv_timeout(WAIT)).expect("the script's signal");
}

/// The next PUBLISH: (packet id, dup, payload).
fn publish(p: &mut Peer) -> (u16, bool, Vec<u8>) {
    let pb = p.expect_publish();
    (pb.packet_id.unwrap(), pb.dup, pb.payload.to_vec())
}

/// Defect 10: sent 65534, 65535, 1, 2 must be resent in that order, not
/// sorted by packet id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_keep_the_send_order_when_packet_ids_wrap() {
    const ACKED: usize = 65533;
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![]);
        for _ in 0..ACKED {
            let (id, _, _) = publish(&mut p);
            p.send(Packet::PubAck(resp(id)));
        }
        let sent: Vec<u16> = (0..4).map(|_| publish(&mut p).0).collect();
        assert_eq!(sent, vec![65534, 65535, 1, 2]);
        drop(p);
        let mut p = accept_resumed(&l, vec![]);
        let resent: Vec<(u16, bool, Vec<u8>)> = (0..4).map(|_| publish(&mut p)).collect();
        let want: Vec<(u16, bool, Vec<u8>)> = [65534, 65535, 1, 2]
            .iter()
            .zip(0u8..)
            .map(|(id, n)| (*id, true, vec![n]))
            .collect();
        assert_eq!(resent, want, "resent in the order first sent");
        for (id, _, _) in resent {
            p.send(Packet::PubAck(resp(id)));
        }
        let (id, _, payload) = publish(&mut p);
        assert_eq!(payload, b"after");
        p.send(Packet::PubAck(resp(id)));
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let (c, conns) = client("wrap", |_| {});
    c.connect(&script.url()).await.unwrap();
    conns.connected();
    for _ in 0..ACKED - 1 {
        send(&c, "w", b"acked").await;
    }
    // Acknowledgements come in order: after this one, all are in, and
    // ids 1 and 2 are free again.
    c.publish("w", b"acked", QoS::AtLeastOnce, false, Properties::new())
        .await
        .unwrap();
    for n in 0..4u8 {
        send(&c, "w", &[n]).await;
    }
    conns.disconnected();
    assert!(c.connect(&script.url()).await.unwrap().session_present);
    // Goes out after the resends (and so waits for them).
    c.publish("w", b"after", QoS::AtLeastOnce, false, Properties::new())
        .await
        .unwrap();
    script.end(&c, WAIT).await;
}

/// Defect 11: the resumed connection's Receive Maximum (2) bounds the
/// resends too; all ten go out in their original order, and a publish
/// made right after the connect goes out after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_wait_for_the_new_receive_maximum() {
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![]);
        let first: Vec<u16> = (0..10).map(|_| publish(&mut p).0).collect();
        drop(p);
        let mut p = accept_resumed(&l, vec![Property::ReceiveMaximum(2)]);
        let mut outstanding = VecDeque::new();
        let mut resent = Vec::new();
        while resent.len() < 10 {
            if outstanding.len() == 2 {
                assert!(
                    p.quiet_for(Duration::from_millis(300)),
                    "a third PUBLISH in flight against Receive Maximum 2"
                );
                p.send(Packet::PubAck(resp(outstanding.pop_front().unwrap())));
                continue;
            }
            let (id, dup, _) = publish(&mut p);
            assert!(dup);
            outstanding.push_back(id);
            resent.push(id);
        }
        assert_eq!(resent, first, "resent in the original order");
        for id in outstanding {
            p.send(Packet::PubAck(resp(id)));
        }
        let (id, dup, payload) = publish(&mut p);
        assert_eq!(
            (dup, &payload[..]),
            (false, &b"new"[..]),
            "new after resends"
        );
        p.send(Packet::PubAck(resp(id)));
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let (c, conns) = client("recvmax", |_| {});
    c.connect(&script.url()).await.unwrap();
    conns.connected();
    for n in 0..10u8 {
        send(&c, "rm", &[n]).await;
    }
    conns.disconnected();
    assert!(c.connect(&script.url()).await.unwrap().session_present);
    c.publish("rm", b"new", QoS::AtLeastOnce, false, Properties::new())
        .await
        .unwrap();
    script.end(&c, WAIT).await;
}

/// Defect 11: a message in flight that the resumed connection's Maximum
/// Packet Size does not allow is discarded (MQTT-3.1.2-25), not sent, and
/// gone from the session; the others are resent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_above_the_new_maximum_packet_size_is_discarded() {
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![]);
        let first: Vec<Vec<u8>> = (0..3).map(|_| publish(&mut p).2).collect();
        assert_eq!(first[1].len(), 500);
        drop(p);
        // Maximum Packet Size 200: "b" (500 bytes) must not come.
        let mut p = accept_resumed(&l, vec![Property::MaximumPacketSize(200)]);
        for want in [&b"a"[..], b"c"] {
            let payload = publish(&mut p).2;
            assert!(payload == want, "got {} bytes", payload.len());
        }
        assert!(p.quiet_for(Duration::from_millis(300)), "nothing more");
        drop(p);
        // No limit: still only "a" and "c", the session no longer has "b".
        let mut p = accept_resumed(&l, vec![]);
        for want in [&b"a"[..], b"c", b"end"] {
            let (id, _, payload) = publish(&mut p);
            assert!(payload == want, "got {} bytes", payload.len());
            p.send(Packet::PubAck(resp(id)));
        }
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let (c, conns) = client("maxsize", |_| {});
    c.connect(&script.url()).await.unwrap();
    conns.connected();
    send(&c, "ms", b"a").await;
    send(&c, "ms", &[b'b'; 500]).await;
    send(&c, "ms", b"c").await;
    conns.disconnected();
    assert!(c.connect(&script.url()).await.unwrap().session_present);
    conns.connected();
    conns.disconnected();
    assert!(c.connect(&script.url()).await.unwrap().session_present);
    c.publish("ms", b"end", QoS::AtLeastOnce, false, Properties::new())
        .await
        .unwrap();
    script.end(&c, WAIT).await;
}

/// Defect 4 (its connect part): the connect timeout covers CONNACK, not
/// the resends. Here they take longer than the timeout (36 MB the broker
/// does not read for 2.5 s): connect still succeeds, and they all arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_resends_do_not_fail_the_connect() {
    const N: usize = 40;
    const SIZE: usize = 900 * 1024;
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![]);
        let first: Vec<u16> = (0..N).map(|_| publish(&mut p).0).collect();
        drop(p);
        let mut p = accept_resumed(&l, vec![]);
        std::thread::sleep(Duration::from_millis(2500)); // a slow broker
        for want in first {
            let (id, dup, payload) = publish(&mut p);
            assert_eq!((id, dup, payload.len()), (want, true, SIZE));
            p.send(Packet::PubAck(resp(id)));
        }
        let (id, _, payload) = publish(&mut p);
        assert_eq!(payload, b"after");
        p.send(Packet::PubAck(resp(id)));
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let (c, conns) = client("slow", |o| o.connect_timeout = Duration::from_secs(1));
    c.connect(&script.url()).await.unwrap();
    conns.connected();
    let big = vec![7u8; SIZE];
    for _ in 0..N {
        send(&c, "slow", &big).await;
    }
    conns.disconnected();
    let info = c.connect(&script.url()).await;
    assert!(info.is_ok_and(|i| i.session_present), "connect failed");
    assert!(conns.connected());
    assert!(c.is_connected());
    c.publish("slow", b"after", QoS::AtLeastOnce, false, Properties::new())
        .await
        .unwrap();
    script.end(&c, WAIT).await;
}

/// Defect 9: publishes cancelled while they wait (here: behind a 32 MiB
/// write the broker does not read) hold no Receive Maximum slot for ever.
/// Before the fix each left an entry without its packet, holding one of
/// the two slots for ever, on this connection and on every resumed one: no
/// QoS 1 publish could complete again. Those cancelled while they wait
/// for a slot leave nothing in the session; the two that had slots handed
/// their packets over to the writer (queued behind the big write, see
/// src/client/writer.rs), so they are in flight: resent with DUP on the
/// resumed session, and their slots come back with their PUBACKs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_publishes_leave_no_entry_holding_a_slot() {
    let (started_tx, started) = mpsc::channel();
    let (cancelled, cancelled_rx) = mpsc::channel();
    let script = Script::start(move |l| {
        let limits = vec![Property::ReceiveMaximum(2), Property::TopicAliasMaximum(5)];
        let mut p = accept_connected(&l, limits.clone());
        p.read_raw(64 * 1024); // the big PUBLISH is being written
        started_tx.send(()).unwrap();
        cancelled_rx.recv_timeout(WAIT).unwrap();
        drop(p);
        let mut p = accept_resumed(&l, limits);
        let mut resent = 0;
        loop {
            let (id, dup, payload) = publish(&mut p);
            p.send(Packet::PubAck(resp(id)));
            if payload == b"after" {
                assert!(!dup);
                break;
            }
            assert_eq!((dup, &payload[..]), (true, &b"x"[..]), "a resend");
            resent += 1;
        }
        assert!(resent <= 2, "{resent} resent: more than had slots");
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let (c, conns) = client("zombie", |_| {});
    c.connect(&script.url()).await.unwrap();
    conns.connected();
    let c2 = c.clone();
    let big = tokio::spawn(async move {
        let payload = vec![0u8; 32 << 20];
        c2.publish("big", &payload, QoS::AtMostOnce, false, Properties::new())
            .await
    });
    step(&started);
    for _ in 0..20 {
        let publish = c.publish("t", b"x", QoS::AtLeastOnce, false, Properties::new());
        let r = tokio::time::timeout(Duration::from_millis(50), publish).await;
        assert!(r.is_err(), "cancelled while it waits: {r:?}");
    }
    cancelled.send(()).unwrap();
    let r = big.await.unwrap();
    assert!(matches!(r, Err(Error::ConnectionLost)), "{r:?}");
    conns.disconnected();
    assert!(c.connect(&script.url()).await.unwrap().session_present);
    let after = c.publish("t", b"after", QoS::AtLeastOnce, false, Properties::new());
    let r = tokio::time::timeout(WAIT, after).await;
    assert!(matches!(r, Ok(Ok(_))), "a slot is free again: {r:?}");
    script.end(&c, WAIT).await;
}
