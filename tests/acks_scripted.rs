//! Acknowledgements of received QoS 1/2 messages follow their callbacks,
//! against a scripted broker that drops the connection at chosen points
//! (mosquitto cannot be stopped between a PUBLISH and its PUBREC): QoS 2
//! is delivered exactly once across a reconnect that resumes the session,
//! and a message of a session that was not resumed is never acknowledged
//! into the new one, whose broker reuses its packet id.

mod scripted;

use bytes::Bytes;
use mqtt5c::client::{ClientOptions, ConnectionEvent, Handler, MqttClient};
use mqtt5c::packet::{ConnAck, MqttStr, Packet, Properties, Publish, QoS, ReasonCode};
use scripted::{accept, publish, resp, Peer, Script};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// What the handler saw, and a gate that holds one payload's callback.
#[derive(Default)]
struct Seen {
    /// Payloads whose callbacks started, in order.
    started: Vec<String>,
    /// Payloads whose callbacks returned (recorded just before returning).
    returned: Vec<String>,
    /// The callback of this payload waits until `held` is cleared.
    held: Option<String>,
}

#[derive(Default)]
struct Recorder {
    seen: Mutex<Seen>,
    changed: Condvar,
}

impl Recorder {
    fn hold(&self, payload: &str) {
        self.seen.lock().unwrap().held = Some(payload.to_string());
    }

    fn release(&self) {
        self.seen.lock().unwrap().held = None;
        self.changed.notify_all();
    }

    /// Waits until `f` holds for what was seen.
    fn wait_until(&self, what: &str, f: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + WAIT;
        let mut g = self.seen.lock().unwrap();
        while !f(&g) {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("timed out waiting for {what}"));
            g = self.changed.wait_timeout(g, left).unwrap().0;
        }
    }

    fn returned(&self, payload: &str) -> bool {
        let g = self.seen.lock().unwrap();
        g.returned.iter().any(|p| p == payload)
    }
}

impl Handler for Recorder {
    fn on_message(&self, m: Publish) {
        let payload = String::from_utf8_lossy(&m.payload).into_owned();
        let mut g = self.seen.lock().unwrap();
        g.started.push(payload.clone());
        self.changed.notify_all();
        while g.held.as_deref() == Some(payload.as_str()) {
            g = self.changed.wait(g).unwrap();
        }
        g.returned.push(payload);
        self.changed.notify_all();
    }

    fn on_connection(&self, _: &ConnectionEvent) {}
}

fn client(id: &str, rec: &Arc<Recorder>) -> MqttClient {
    let opts = ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        clean_start: false,
        session_expiry: 60,
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    MqttClient::new(opts, rec.clone(), tokio::runtime::Handle::current())
}

/// A resend (DUP) of a QoS 2 message.
fn resend(id: u16, payload: &str) -> Packet {
    Packet::Publish(Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: MqttStr::new("acks/t").unwrap(),
        packet_id: Some(id),
        properties: Properties::new(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    })
}

fn connack(p: &mut Peer, session_present: bool) {
    p.send(Packet::ConnAck(ConnAck {
        session_present,
        reason: ReasonCode::Success,
        properties: Properties::new(),
    }));
}

/// Expects PUBREC (QoS 2) or PUBACK (QoS 1) for `id`, sent after the
/// callback of `payload` returned.
fn expect_ack(p: &mut Peer, rec: &Recorder, id: u16, payload: &str) {
    match p.expect("an acknowledgement") {
        Packet::PubRec(r) | Packet::PubAck(r) => assert_eq!(r.packet_id, id),
        other => panic!("expected the acknowledgement of {id}, got {other:?}"),
    }
    assert!(
        rec.returned(payload),
        "{id} ('{payload}') acknowledged before its callback returned"
    );
}

fn expect_pubcomp(p: &mut Peer, id: u16) {
    match p.expect("PUBCOMP") {
        Packet::PubComp(r) => assert_eq!(r.packet_id, id),
        other => panic!("expected PUBCOMP {id}, got {other:?}"),
    }
}

/// Waits until the client has noticed the loss of its connection. Polled:
/// the DISCONNECTED event waits behind a held callback.
async fn wait_disconnected(c: &MqttClient) {
    let deadline = Instant::now() + WAIT;
    while c.is_connected() {
        assert!(Instant::now() < deadline, "the loss was not noticed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_is_delivered_once_across_a_reconnect_and_pubreced_after_its_callback() {
    let rec = Arc::new(Recorder::default());
    rec.hold("b");
    let r = rec.clone();
    let script = Script::start(move |l| {
        let mut p = accept(&l);
        p.expect_connect();
        connack(&mut p, false);
        p.send(publish("acks/t", QoS::ExactlyOnce, Some(1), vec![], b"a"));
        expect_ack(&mut p, &r, 1, "a");
        p.send(publish("acks/t", QoS::ExactlyOnce, Some(2), vec![], b"b"));
        p.send(publish("acks/t", QoS::ExactlyOnce, Some(3), vec![], b"c"));
        // Lost with 1 delivered (awaiting PUBREL), 2 in its callback, 3
        // queued: neither 2 nor 3 acknowledged.
        r.wait_until("b's callback", |s| s.started.contains(&"b".to_string()));
        drop(p);

        let mut p = accept(&l);
        assert!(!p.expect_connect().clean_start);
        connack(&mut p, true);
        // 1 was delivered: PUBREC at once, no second delivery.
        p.send(resend(1, "a"));
        expect_ack(&mut p, &r, 1, "a");
        // 2 and 3 are still queued: not queued again. PUBREL 1 comes
        // after them, so its PUBCOMP shows they were read.
        p.send(resend(2, "b"));
        p.send(resend(3, "c"));
        p.send(Packet::PubRel(resp(1)));
        expect_pubcomp(&mut p, 1);
        r.release();
        // Acknowledged on the new connection, after their callbacks.
        expect_ack(&mut p, &r, 2, "b");
        expect_ack(&mut p, &r, 3, "c");
        p.send(Packet::PubRel(resp(2)));
        p.send(Packet::PubRel(resp(3)));
        expect_pubcomp(&mut p, 2);
        expect_pubcomp(&mut p, 3);
        p.send(publish("acks/t", QoS::AtMostOnce, None, vec![], b"end"));
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let c = client("acks-q2", &rec);
    c.connect(&script.url()).await.unwrap();
    wait_disconnected(&c).await;
    let info = c.connect(&script.url()).await.unwrap();
    assert!(info.session_present);
    // The script tells when it is through with the PUBRELs.
    tokio::task::block_in_place(|| {
        rec.wait_until("the end marker", |s| s.returned.iter().any(|p| p == "end"))
    });
    c.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
    script.finish(WAIT).unwrap();
    let started = rec.seen.lock().unwrap().started.clone();
    assert_eq!(
        started,
        ["a", "b", "c", "end"],
        "each delivered exactly once"
    );
    c.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_a_session_not_resumed_is_never_acknowledged_into_the_new_one() {
    let rec = Arc::new(Recorder::default());
    rec.hold("old");
    let r = rec.clone();
    let script = Script::start(move |l| {
        let mut p = accept(&l);
        p.expect_connect();
        connack(&mut p, false);
        p.send(publish("acks/t", QoS::AtLeastOnce, Some(7), vec![], b"old"));
        r.wait_until("old's callback", |s| s.started.contains(&"old".to_string()));
        drop(p);

        // The session is gone; the new one reuses id 7 for another message.
        let mut p = accept(&l);
        p.expect_connect();
        connack(&mut p, false);
        p.send(publish("acks/t", QoS::AtLeastOnce, Some(7), vec![], b"new"));
        r.release();
        // The only PUBACK 7 is the new message's, after its callback.
        expect_ack(&mut p, &r, 7, "new");
        p.send(publish("acks/t", QoS::AtLeastOnce, Some(8), vec![], b"end"));
        expect_ack(&mut p, &r, 8, "end");
        p.send(publish("acks/t", QoS::AtMostOnce, None, vec![], b"done"));
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let c = client("acks-new-session", &rec);
    c.connect(&script.url()).await.unwrap();
    wait_disconnected(&c).await;
    let info = c.connect(&script.url()).await.unwrap();
    assert!(!info.session_present);
    // The script tells when it has the last acknowledgement.
    tokio::task::block_in_place(|| {
        rec.wait_until("the done marker", |s| {
            s.returned.iter().any(|p| p == "done")
        })
    });
    c.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
    script.finish(WAIT).unwrap();
    let started = rec.seen.lock().unwrap().started.clone();
    assert_eq!(started, ["old", "new", "end", "done"]);
    c.close();
}

/// A resend (DUP) of a QoS 1 message.
fn resend_qos1(id: u16, payload: &str) -> Packet {
    match resend(id, payload) {
        Packet::Publish(mut p) => {
            p.qos = QoS::AtLeastOnce;
            Packet::Publish(p)
        }
        _ => unreachable!(),
    }
}

/// After a resume, our PUBACK of a message received on the earlier
/// connection crosses the broker's resend of it (sent at the resume,
/// before the broker read our PUBACK): the resend is not delivered again,
/// and the next message on the same packet id, which the broker sends
/// once it has our PUBACK, is not taken for that resend: it is delivered
/// and acknowledged after its callback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_crossing_the_resend_neither_duplicates_nor_swallows_the_next_message() {
    let rec = Arc::new(Recorder::default());
    rec.hold("x");
    let r = rec.clone();
    let script = Script::start(move |l| {
        let mut p = accept(&l);
        p.expect_connect();
        connack(&mut p, false);
        p.send(publish("acks/t", QoS::AtLeastOnce, Some(5), vec![], b"x"));
        r.wait_until("x's callback", |s| s.started.contains(&"x".to_string()));
        drop(p);

        let mut p = accept(&l);
        assert!(!p.expect_connect().clean_start);
        connack(&mut p, true);
        // x's callback returns once the client is connected (the test
        // releases it): its PUBACK goes out on this connection, while the
        // broker's resend of x is under way.
        expect_ack(&mut p, &r, 5, "x");
        p.send(resend_qos1(5, "x"));
        // Having read our PUBACK, the broker reuses id 5.
        p.send(publish("acks/t", QoS::AtLeastOnce, Some(5), vec![], b"y"));
        expect_ack(&mut p, &r, 5, "y");
        p.send(publish("acks/t", QoS::AtMostOnce, None, vec![], b"end"));
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let c = client("acks-cross", &rec);
    c.connect(&script.url()).await.unwrap();
    wait_disconnected(&c).await;
    let info = c.connect(&script.url()).await.unwrap();
    assert!(info.session_present);
    rec.release();
    tokio::task::block_in_place(|| {
        rec.wait_until("the end marker", |s| s.returned.iter().any(|p| p == "end"))
    });
    c.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
    script.finish(WAIT).unwrap();
    let started = rec.seen.lock().unwrap().started.clone();
    assert_eq!(started, ["x", "y", "end"], "x once, y not swallowed");
    c.close();
}
