//! MQTT 3.1.1 (issue 12).
//!
//! Edge cases real brokers do not produce, against a scripted 3.1.1 broker: CONNACK return codes 1-5, malformed 3.1.1
//! packets, v5 forms (a property, a reason code) sent to a 3.1.1 client.
//! A 3.1.1 client closes the connection on a broken packet without
//! DISCONNECT (3.1.1 has no reason code to send), and the broker sees no
//! v5 form from it. (A v5 property block inside a PUBLISH cannot be told
//! from payload in 3.1.1: it is delivered as payload, as by any 3.1.1
//! client.)
//!
//! Reliability against mosquitto: what a client persisted (v5 packets on
//! disk, see `client::v311`) goes out on a 3.1.1 connection of the next
//! process, and the offline queue filled while the broker was down is sent
//! after a restart. The proxy-based in-flight resend and re-subscription
//! are in tests/c/test_v311_reconnect.c.

mod common;
mod scripted;

use common::events::{client_on, Events};
use common::{Broker, TempDir};
use mqtt5c::client::{
    ClientOptions, ConnectionEvent, DisconnectCause, Error, Handler, MqttClient, Reconnect,
};
use mqtt5c::packet::{
    MqttStr, Packet, Properties, ProtocolVersion, Publish, QoS, ReasonCode, SubscribeFilter,
    SubscriptionOptions,
};
use scripted::{accept, accept_connected, Peer, Script};
use std::net::TcpListener;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn client(rt: &tokio::runtime::Runtime) -> (MqttClient, Arc<Events>) {
    let opts = ClientOptions {
        client_id: MqttStr::new("v311-scripted").unwrap(),
        protocol_version: Some(ProtocolVersion::V311),
        ..Default::default()
    };
    client_on(opts, rt.handle())
}

/// Accepts, reads a 3.1.1 CONNECT (the peer's decoder checks Protocol
/// Level 4 and that it carries no property) and answers `connack` raw.
fn connect_311(l: &TcpListener, connack: &[u8]) -> Peer {
    let mut p = accept(l);
    p.speak(ProtocolVersion::V311);
    let c = p.expect_connect();
    assert!(c.properties.is_empty(), "a 3.1.1 CONNECT has no properties");
    p.send_raw(connack);
    p
}

/// Accepts, reads a v5 CONNECT and refuses it the way a 3.1.1-only broker
/// does: a 3.1.1 CONNACK with return code 1 (unacceptable protocol version).
fn refuse_v5_connect(l: &TcpListener) -> Peer {
    let mut p = accept(l);
    p.expect_connect();
    p.send_raw(&[0x20, 2, 0, 1]);
    p
}

/// Accepts, reads a CONNECT in `version` and closes the connection without
/// an answer (a server going down, a load balancer without a backend).
fn close_after_connect(l: &TcpListener, version: ProtocolVersion) {
    let mut p = accept(l);
    p.speak(version);
    p.expect_connect();
}

#[test]
fn connack_return_codes_1_to_5_are_the_v5_reason_codes() {
    let codes = [
        (1u8, ReasonCode::UnsupportedProtocolVersion),
        (2, ReasonCode::ClientIdentifierNotValid),
        (3, ReasonCode::ServerUnavailable),
        (4, ReasonCode::BadUserNameOrPassword),
        (5, ReasonCode::NotAuthorized),
    ];
    let script = Script::start(move |l| {
        for (rc, _) in codes {
            let mut p = connect_311(&l, &[0x20, 2, 0, rc]);
            p.expect_silent_close();
        }
    });
    let rt = runtime();
    let (c, _ev) = client(&rt);
    for (rc, want) in codes {
        match rt.block_on(c.connect(&script.url())) {
            Err(Error::Refused { reason, .. }) => assert_eq!(reason, want, "return code {rc}"),
            other => panic!("return code {rc}: {other:?}"),
        }
        assert!(!c.is_connected());
    }
    script.finish(WAIT).unwrap();
}

/// Connects, then the broker sends `broken`; the client must end the
/// connection as a protocol failure, without DISCONNECT.
fn broken_after_connack(broken: &'static [u8], want: ReasonCode) {
    let script = Script::start(move |l| {
        let mut p = connect_311(&l, &[0x20, 2, 0, 0]);
        p.send_raw(broken);
        p.expect_silent_close();
    });
    let rt = runtime();
    let (c, ev) = client(&rt);
    rt.block_on(c.connect(&script.url())).expect("connect");
    let cause = match ev.wait_conn(|e| matches!(e, ConnectionEvent::Disconnected(_))) {
        ConnectionEvent::Disconnected(cause) => cause,
        _ => unreachable!(),
    };
    match cause {
        DisconnectCause::Protocol(reason, _) => assert_eq!(reason, want, "{broken:02x?}"),
        other => panic!("{broken:02x?}: {other:?}"),
    }
    script.finish(WAIT).unwrap();
}

#[test]
fn malformed_puback_with_a_reason_code_closes_without_disconnect() {
    // The v5 form (a reason code) is a trailing byte in 3.1.1.
    broken_after_connack(&[0x40, 3, 0, 1, 0x10], ReasonCode::MalformedPacket);
}

#[test]
fn auth_packet_is_malformed_on_3_1_1() {
    broken_after_connack(&[0xF0, 0], ReasonCode::MalformedPacket);
}

#[test]
fn malformed_suback_return_code() {
    broken_after_connack(&[0x90, 3, 0, 1, 0x87], ReasonCode::MalformedPacket);
}

#[test]
fn publish_with_a_wildcard_topic() {
    broken_after_connack(&[0x30, 4, 0, 2, b'a', b'#'], ReasonCode::MalformedPacket);
}

#[test]
fn v5_property_in_unsuback_is_malformed() {
    // A v5 UNSUBACK: property length 0 and a reason code.
    broken_after_connack(&[0xB0, 4, 0, 1, 0, 0], ReasonCode::MalformedPacket);
}

#[test]
fn v5_connack_with_a_property_fails_the_connect() {
    // CONNACK in the v5 form, with Receive Maximum 10.
    let script = Script::start(|l| {
        let mut p = connect_311(&l, &[0x20, 6, 0, 0, 3, 0x21, 0, 10]);
        p.expect_silent_close();
    });
    let rt = runtime();
    let (c, _ev) = client(&rt);
    match rt.block_on(c.connect(&script.url())) {
        Err(Error::Protocol(text)) => assert!(text.contains("trailing"), "{text}"),
        other => panic!("{other:?}"),
    }
    assert!(!c.is_connected());
    script.finish(WAIT).unwrap();
}

#[test]
fn what_the_client_sends_is_3_1_1() {
    // QoS 2 both ways and an unsubscribe, read by a 3.1.1 decoder: a v5
    // form (a property length, a reason code) would fail its checks.
    let script = Script::start(|l| {
        let mut p = connect_311(&l, &[0x20, 2, 0, 0]);
        let id = p.expect_subscribe().packet_id;
        p.send_raw(&[0x90, 3, (id >> 8) as u8, id as u8, 0x80]);
        let pb = p.expect_publish();
        assert_eq!((pb.qos, &pb.payload[..]), (QoS::ExactlyOnce, &b"x"[..]));
        let id = pb.packet_id.unwrap();
        let [hi, lo] = id.to_be_bytes();
        p.send_raw(&[0x50, 2, hi, lo]);
        p.expect_pubrel(id);
        p.send_raw(&[0x70, 2, hi, lo]);
        // An inbound QoS 2 message: PUBREC, then PUBCOMP after PUBREL;
        // then a QoS 0 message telling the client to go on.
        p.send_raw(&[0x34, 6, 0, 1, b't', 0, 9, b'y']);
        p.expect_pubrec(9);
        p.send_raw(&[0x62, 2, 0, 9]);
        p.expect_pubcomp(9);
        p.send_raw(&[0x30, 7, 0, 4, b'd', b'o', b'n', b'e', b'!']);
        let id = p.expect_unsubscribe().packet_id;
        p.send_raw(&[0xB0, 2, (id >> 8) as u8, id as u8]);
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let rt = runtime();
    let (c, ev) = client(&rt);
    rt.block_on(async {
        c.connect(&script.url()).await.expect("connect");
        let filters = vec![mqtt5c::packet::SubscribeFilter {
            filter: MqttStr::new("t").unwrap(),
            options: Default::default(),
        }];
        let ack = c.subscribe(filters, Properties::new()).await.unwrap();
        assert_eq!(ack.reasons, [ReasonCode::UnspecifiedError]);
        let ack = c
            .publish("t", b"x", QoS::ExactlyOnce, false, Properties::new())
            .await
            .unwrap();
        assert_eq!(ack.reason, ReasonCode::Success);
        let topics: Vec<String> = (0..2).map(|_| ev.msg().topic.to_string()).collect();
        assert_eq!(topics, ["t", "done"]);
        let un = c
            .unsubscribe(vec![MqttStr::new("t").unwrap()], Properties::new())
            .await
            .unwrap();
        assert_eq!(un.reasons, [ReasonCode::Success]);
        c.disconnect(ReasonCode::Success, Properties::new())
            .await
            .unwrap();
    });
    script.finish(WAIT).unwrap();
}

#[test]
fn auto_falls_back_when_the_server_closes_after_a_v5_connect() {
    let script = Script::start(|l| {
        // A broker that drops v5 CONNECTs without a word.
        let mut p = accept(&l);
        let c = p.expect_connect();
        assert!(
            !c.properties.is_empty(),
            "the first CONNECT is v5 (Receive Maximum)"
        );
        drop(p);
        // The same client again, in 3.1.1.
        let mut p = connect_311(&l, &[0x20, 2, 0, 0]);
        assert!(matches!(p.expect("DISCONNECT"), Packet::Disconnect(_)));
        // Remembered: the next connect is 3.1.1 at once.
        let mut p = connect_311(&l, &[0x20, 2, 0, 0]);
        assert!(matches!(p.expect("DISCONNECT"), Packet::Disconnect(_)));
    });
    let rt = runtime();
    let opts = ClientOptions {
        client_id: MqttStr::new("v311-auto").unwrap(),
        protocol_version: None,
        ..Default::default()
    };
    let (c, _ev) = client_on(opts, rt.handle());
    rt.block_on(async {
        c.connect(&script.url()).await.expect("AUTO connect");
        assert_eq!(c.protocol_version(), Some(ProtocolVersion::V311));
        c.disconnect(ReasonCode::Success, Properties::new())
            .await
            .unwrap();
        c.connect(&script.url()).await.expect("second connect");
        assert_eq!(c.protocol_version(), Some(ProtocolVersion::V311));
        c.disconnect(ReasonCode::Success, Properties::new())
            .await
            .unwrap();
    });
    script.finish(WAIT).unwrap();
}

#[test]
fn v5_only_client_reports_a_3_1_1_refusal_as_0x84() {
    let script = Script::start(|l| {
        let mut p = refuse_v5_connect(&l);
        p.expect_silent_close();
    });
    let rt = runtime();
    let opts = ClientOptions {
        client_id: MqttStr::new("v5-only").unwrap(),
        ..Default::default()
    };
    let (c, _ev) = client_on(opts, rt.handle());
    match rt.block_on(c.connect(&script.url())) {
        Err(Error::Refused {
            reason,
            reason_string,
        }) => {
            assert_eq!(reason, ReasonCode::UnsupportedProtocolVersion);
            assert!(reason_string.unwrap().contains("3.1.1"));
        }
        other => panic!("{other:?}"),
    }
    script.finish(WAIT).unwrap();
}

struct ManualAck(Mutex<mpsc::Sender<u64>>);
impl Handler for ManualAck {
    fn on_message(&self, _: Publish) {}
    fn on_message_with_ack(&self, _: Publish, ack_id: u64) -> bool {
        let _ = self.0.lock().unwrap().send(ack_id);
        true
    }
    fn on_connection(&self, _: &ConnectionEvent) {}
}

#[test]
fn manual_ack_with_a_failure_reason_is_refused_and_sends_nothing() {
    // A 3.1.1 PUBACK cannot refuse: sent, it would tell the broker the
    // message was taken, the opposite of what the application asked.
    let script = Script::start(|l| {
        let mut p = connect_311(&l, &[0x20, 2, 0, 0]);
        p.send_raw(&[0x32, 6, 0, 1, b't', 0, 7, b'm']);
        p.expect_puback(7);
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let rt = runtime();
    let (tx, ids) = mpsc::channel();
    let opts = ClientOptions {
        client_id: MqttStr::new("v311-manual-ack").unwrap(),
        protocol_version: Some(ProtocolVersion::V311),
        manual_ack: true,
        ..Default::default()
    };
    let c = MqttClient::new(
        opts,
        Arc::new(ManualAck(Mutex::new(tx))),
        rt.handle().clone(),
    );
    rt.block_on(c.connect(&script.url())).expect("connect");
    let id = ids.recv_timeout(WAIT).expect("no message");
    match c.ack(id, ReasonCode::UnspecifiedError) {
        Err(Error::InvalidArgument(text)) => assert!(text.contains("v5 only"), "{text}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Still unacknowledged: the success ack is the first thing sent.
    c.ack(id, ReasonCode::Success).expect("ack");
    rt.block_on(script.end(&c, WAIT));
}

#[test]
fn auto_fallback_on_a_later_connect_resubscribes_v5_subscriptions_as_3_1_1() {
    // Subscribed over v5 with No Local; the broker then speaks only
    // 3.1.1: the re-subscription must go out in the 3.1.1 form (QoS only)
    // instead of failing to encode.
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![]);
        p.answer_subscribe(vec![ReasonCode::GrantedQoS1]);
        // The broker restarts as 3.1.1 only (the client reconnects by
        // itself); it refuses the v5 CONNECT.
        drop(p);
        drop(refuse_v5_connect(&l));
        let mut p = connect_311(&l, &[0x20, 2, 0, 0]);
        let sub = p.expect_subscribe();
        assert_eq!(sub.filters.len(), 1);
        assert_eq!(sub.filters[0].filter.as_str(), "a");
        assert_eq!(sub.filters[0].options.qos, QoS::AtLeastOnce);
    });
    let rt = runtime();
    let opts = ClientOptions {
        client_id: MqttStr::new("v311-auto-resub").unwrap(),
        protocol_version: None,
        resubscribe: true,
        reconnect: Some(mqtt5c::client::Reconnect {
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        }),
        ..Default::default()
    };
    let (c, _ev) = client_on(opts, rt.handle());
    rt.block_on(async {
        c.connect(&script.url()).await.expect("v5 connect");
        let filters = vec![mqtt5c::packet::SubscribeFilter {
            filter: MqttStr::new("a").unwrap(),
            options: mqtt5c::packet::SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                ..Default::default()
            },
        }];
        c.subscribe(filters, Properties::new()).await.unwrap();
    });
    // Reconnection and re-subscription run in the background.
    script.finish(WAIT).unwrap();
    drop(c);
}

static ROUTED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static ROUTED_CV: std::sync::Condvar = std::sync::Condvar::new();

/// Records "<user data as a letter> <topic>".
unsafe extern "C" fn on_routed(ud: *mut std::ffi::c_void, m: *const mqtt5c::ffi::mqtt_message) {
    let who = ud as usize as u8 as char;
    let t = std::ffi::CStr::from_ptr(mqtt5c::ffi::mqtt_message_topic(m)).to_string_lossy();
    ROUTED.lock().unwrap().push(format!("{who} {t}"));
    ROUTED_CV.notify_all();
}

#[test]
fn auto_fallback_on_a_reconnect_routes_v5_subscription_callbacks_by_topic() {
    // mqtt_subscribe_cb over v5 routes by an allocated Subscription
    // Identifier; after AUTO fell back to 3.1.1 on a reconnect, messages
    // carry none: the route must match by topic, not go to the default
    // callback.
    use mqtt5c::ffi::*;
    use std::ffi::{c_void, CString};
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![]);
        let sub = p.answer_subscribe(vec![ReasonCode::Success]);
        assert!(
            sub.properties
                .get(mqtt5c::packet::PropertyId::SubscriptionIdentifier)
                .is_some(),
            "the v5 route is made with an identifier"
        );
        // The broker restarts as 3.1.1 only; it refuses the v5 CONNECT.
        drop(p);
        drop(refuse_v5_connect(&l));
        let mut p = connect_311(&l, &[0x20, 2, 0, 0]);
        let id = p.expect_subscribe().packet_id;
        p.send_raw(&[0x90, 3, (id >> 8) as u8, id as u8, 0]);
        p.send(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: MqttStr::new("a/x").unwrap(),
            packet_id: None,
            properties: Properties::new(),
            payload: bytes::Bytes::from_static(b"1"),
        }));
        p.send(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: MqttStr::new("b/y").unwrap(),
            packet_id: None,
            properties: Properties::new(),
            payload: bytes::Bytes::from_static(b"2"),
        }));
        // Keep the connection until the client leaves.
        let _ = p.read();
    });
    let o = mqtt_options_new();
    let cid = CString::new("v311-auto-route").unwrap();
    assert_eq!(mqtt_options_set_client_id(o, cid.as_ptr()), MQTT5C_OK);
    assert_eq!(
        mqtt_options_set_protocol_version(o, MQTT_PROTOCOL_AUTO),
        MQTT5C_OK
    );
    assert_eq!(mqtt_options_set_auto_reconnect(o, 10, 100), MQTT5C_OK);
    assert_eq!(mqtt_options_set_operation_timeout(o, 10_000), MQTT5C_OK);
    let c = mqtt_client_new(o);
    mqtt_options_free(o);
    assert!(!c.is_null());
    assert_eq!(
        mqtt_set_message_callback(c, Some(on_routed), b'D' as usize as *mut c_void),
        MQTT5C_OK
    );
    let url = CString::new(script.url()).unwrap();
    assert_eq!(mqtt_connect(c, url.as_ptr()), MQTT5C_OK);
    let f = CString::new("a/+").unwrap();
    let rc = mqtt_subscribe_cb(
        c,
        f.as_ptr(),
        0,
        std::ptr::null(),
        Some(on_routed),
        b'A' as usize as *mut c_void,
    );
    assert_eq!(rc, 0);
    let got = {
        let g = ROUTED.lock().unwrap();
        let (g, _) = ROUTED_CV
            .wait_timeout_while(g, WAIT, |v| v.len() < 2)
            .unwrap();
        g.clone()
    };
    assert_eq!(mqtt_client_protocol_version(c), MQTT_PROTOCOL_V311);
    mqtt_client_free(c);
    script.finish(WAIT).unwrap();
    assert_eq!(got, vec!["A a/x".to_string(), "D b/y".into()]);
}

/// A 3.1.1 client of the mosquitto tests.
fn opts_311(id: &str) -> ClientOptions {
    ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        protocol_version: Some(ProtocolVersion::V311),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// `MqttClient::open`: its persistence store opened, if it has one.
fn open_client(o: ClientOptions) -> (MqttClient, Arc<Events>) {
    let events = Events::new();
    let c = MqttClient::open(
        o,
        events.clone(),
        tokio::runtime::Handle::current(),
        Arc::default(),
    )
    .expect("client");
    (c, events)
}

async fn subscriber(broker: &Broker) -> (MqttClient, Arc<Events>) {
    // Clean Session 0 on a persistent broker: the subscription and the
    // messages for it outlive a broker restart and our reconnection.
    let mut o = opts_311("v311-rel-sub");
    o.clean_start = false;
    o.reconnect = Some(Reconnect {
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(300),
    });
    let (s, ev) = open_client(o);
    s.connect(&broker.url()).await.unwrap();
    let f = SubscribeFilter {
        filter: MqttStr::new("rel/#").unwrap(),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
    };
    s.subscribe(vec![f], Properties::new()).await.unwrap();
    (s, ev)
}

fn payloads(ev: &Events, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| ev.msg().payload.to_vec()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_queue_and_persistence_over_3_1_1() {
    let mut broker = Broker::start_persistent("");
    let dir = TempDir::new("mqtt5c-v311-persist").unwrap();
    let mut o = opts_311("v311-rel-pub");
    o.persistence_dir = Some(dir.path().to_path_buf());
    o.reconnect = Some(Reconnect {
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(300),
    });
    let (p, _prx) = open_client(o.clone());
    p.connect(&broker.url()).await.unwrap();

    // Broker down: queued (and on disk), then the process "crashes".
    broker.stop();
    for i in 0..3u8 {
        p.publish_then(
            "rel/q",
            &[i],
            QoS::AtLeastOnce,
            false,
            Properties::new(),
            None,
        )
        .await
        .expect("queued while the broker is down");
    }
    p.close();
    drop(p);

    // Next process: the same store, a 3.1.1 connection.
    broker.start_again();
    let (s, ev) = subscriber(&broker).await;
    let (p2, _rx2) = open_client(o);
    p2.connect(&broker.url()).await.unwrap();
    assert_eq!(p2.protocol_version(), Some(ProtocolVersion::V311));
    let got = payloads(&ev, 3);
    assert_eq!(got, [vec![0u8], vec![1], vec![2]]);

    // Offline queue of a live client across a restart.
    broker.stop();
    for i in 10..12u8 {
        p2.publish_then(
            "rel/q",
            &[i],
            QoS::AtLeastOnce,
            false,
            Properties::new(),
            None,
        )
        .await
        .expect("queued");
    }
    broker.start_again();
    // Both reconnect by themselves; the broker kept the subscriber's
    // session, so the order they come back in does not matter. QoS 1 is
    // at least once: a message of the first part whose PUBACK the broker
    // had not processed when it stopped comes again first.
    let mut got: Vec<Vec<u8>> = Vec::new();
    while got.len() < 2 {
        let m = payloads(&ev, 1).remove(0);
        if m[0] >= 10 {
            got.push(m);
        }
    }
    assert_eq!(got, [vec![10u8], vec![11]]);
    for c in [&p2, &s] {
        let _ = c.disconnect(ReasonCode::Success, Properties::new()).await;
    }
}

// ------------------------------------------------ a hostile 3.1.1 broker

#[test]
fn inbound_qos2_duplicates_are_delivered_once_and_pubrel_answered_in_3_1_1_form() {
    // The broker resends a QoS 2 message before PUBREL, with DUP and
    // without; then releases it, then releases an id it never used. The
    // peer reads 3.1.1: a PUBREC or PUBCOMP carrying a v5 reason code
    // (0x92 for the unknown id) would fail its decoder.
    let script = Script::start(|l| {
        let mut p = connect_311(&l, &[0x20, 2, 0, 0]);
        let once = [0x34, 7, 0, 1, b'q', 0, 9, b'o', b'k'];
        let mut dup = once;
        dup[0] |= 0x08;
        for packet in [&once, &dup, &once] {
            p.send_raw(packet);
            match p.expect("PUBREC") {
                Packet::PubRec(r) if r.packet_id == 9 => {}
                other => panic!("expected PUBREC 9, got {other:?}"),
            }
        }
        p.send_raw(&[0x62, 2, 0, 9]);
        match p.expect("PUBCOMP") {
            Packet::PubComp(r) if r.packet_id == 9 => {}
            other => panic!("expected PUBCOMP 9, got {other:?}"),
        }
        // Released already: still answered, in the 3.1.1 form.
        p.send_raw(&[0x62, 2, 0, 9]);
        match p.expect("PUBCOMP") {
            Packet::PubComp(r) if r.packet_id == 9 => {}
            other => panic!("expected PUBCOMP 9, got {other:?}"),
        }
        p.send_raw(&[0x62, 2, 0x12, 0x34]);
        match p.expect("PUBCOMP") {
            Packet::PubComp(r) if r.packet_id == 0x1234 => {}
            other => panic!("expected PUBCOMP 0x1234, got {other:?}"),
        }
        p.send_raw(&[0x30, 7, 0, 4, b'd', b'o', b'n', b'e', b'!']);
        match p.expect("DISCONNECT") {
            Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::Success),
            other => panic!("expected DISCONNECT, got {other:?}"),
        }
    });
    let rt = runtime();
    let (c, ev) = client(&rt);
    rt.block_on(c.connect(&script.url())).expect("connect");
    let got: Vec<(String, Vec<u8>)> = (0..2)
        .map(|_| {
            let m = ev.msg();
            (m.topic.to_string(), m.payload.to_vec())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("q".to_string(), b"ok".to_vec()),
            ("done".into(), b"!".to_vec())
        ],
        "the QoS 2 message once, then the QoS 0 one"
    );
    rt.block_on(script.end(&c, WAIT));
}

#[test]
fn session_present_on_a_clean_session_closes_without_disconnect() {
    // Clean Session 1 answered with Session Present 1: the connect fails,
    // the connection closes without a word (3.1.1 has no DISCONNECT
    // reason), and the error says what happened, not that a DISCONNECT
    // was sent.
    let script = Script::start(|l| {
        let mut p = connect_311(&l, &[0x20, 2, 1, 0]);
        p.expect_silent_close();
    });
    let rt = runtime();
    let (c, _ev) = client(&rt);
    match rt.block_on(c.connect(&script.url())) {
        Err(Error::Protocol(text)) => {
            assert!(text.contains("Session Present"), "{text}");
            assert!(
                text.contains("without DISCONNECT") && !text.contains("0x82"),
                "no DISCONNECT is sent on 3.1.1: {text}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!c.is_connected());
    script.finish(WAIT).unwrap();
}

#[test]
fn suback_return_codes_out_of_range_are_malformed() {
    // 0x03 (no QoS 3) and 0x81 (neither a QoS nor 3.1.1's failure).
    broken_after_connack(&[0x90, 3, 0, 1, 0x03], ReasonCode::MalformedPacket);
    broken_after_connack(&[0x90, 3, 0, 1, 0x81], ReasonCode::MalformedPacket);
}

#[test]
fn v5_shaped_pubrec_and_pubcomp_are_malformed() {
    broken_after_connack(&[0x50, 3, 0, 1, 0x80], ReasonCode::MalformedPacket);
    broken_after_connack(&[0x70, 4, 0, 1, 0, 0], ReasonCode::MalformedPacket);
}

#[test]
fn a_disconnect_from_a_3_1_1_broker_ends_the_connection() {
    // 3.1.1 has no server DISCONNECT; one sent anyway ends the
    // connection, and the client answers nothing.
    let script = Script::start(|l| {
        let mut p = connect_311(&l, &[0x20, 2, 0, 0]);
        p.send_raw(&[0xE0, 0]);
        p.expect_silent_close();
    });
    let rt = runtime();
    let (c, ev) = client(&rt);
    rt.block_on(c.connect(&script.url())).expect("connect");
    ev.wait_conn(|e| matches!(e, ConnectionEvent::Disconnected(_)));
    assert!(!c.is_connected());
    script.finish(WAIT).unwrap();
}

/// `mqtt_last_error()` as a String.
fn last_error() -> String {
    let e = mqtt5c::ffi::mqtt_last_error();
    assert!(!e.is_null());
    // SAFETY: a NUL-terminated string of this thread, valid until its next call.
    unsafe { std::ffi::CStr::from_ptr(e) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_v5_only_call_is_refused_with_its_text_and_nothing_is_sent() {
    // Through the C API, as an application meets it: each refusal is
    // MQTT5C_ERR_INVALID_ARGUMENT with a mqtt_last_error() naming what
    // and 3.1.1, the connection carries on, and the broker's first packet
    // after CONNECT is the publish made after them all.
    use mqtt5c::ffi::*;
    use std::ffi::CString;
    use std::ptr::null_mut;
    let script = Script::start(|l| {
        let mut p = connect_311(&l, &[0x20, 2, 0, 0]);
        match p.expect("PUBLISH") {
            Packet::Publish(pb) => {
                assert_eq!(
                    (pb.topic.as_str(), &pb.payload[..]),
                    ("t/after", &b"ok"[..])
                );
                let [hi, lo] = pb.packet_id.unwrap().to_be_bytes();
                p.send_raw(&[0x40, 2, hi, lo]);
            }
            other => panic!("the first packet after CONNECT is {other:?}, not the publish"),
        }
        match p.expect("DISCONNECT") {
            Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::Success),
            other => panic!("expected DISCONNECT, got {other:?}"),
        }
    });
    let o = mqtt_options_new();
    let cid = CString::new("v311-refusals").unwrap();
    assert_eq!(mqtt_options_set_client_id(o, cid.as_ptr()), MQTT5C_OK);
    assert_eq!(
        mqtt_options_set_protocol_version(o, MQTT_PROTOCOL_V311),
        MQTT5C_OK
    );
    let c = mqtt_client_new(o);
    mqtt_options_free(o);
    assert!(!c.is_null());
    let url = CString::new(script.url()).unwrap();
    assert_eq!(mqtt_connect(c, url.as_ptr()), MQTT5C_OK);
    let props = mqtt_properties_new();
    let (k, v) = (CString::new("k").unwrap(), CString::new("v").unwrap());
    assert_eq!(
        mqtt_properties_add_user(props, k.as_ptr(), v.as_ptr()),
        MQTT5C_OK
    );
    let t = CString::new("t/x").unwrap();
    let f2 = [t.as_ptr(), t.as_ptr()];
    let qos1 = [1, 1 | MQTT5C_SUB_NO_LOCAL];
    let mut results = [0i32; 2];
    let mut resp: *mut mqtt_message = null_mut();
    let x = b"x".as_ptr().cast();
    let check = |what: &str, rc: i32, words: &[&str]| {
        let text = last_error();
        assert_eq!(rc, MQTT5C_ERR_INVALID_ARGUMENT, "{what}: {text}");
        for w in words.iter().chain(&["3.1.1"]) {
            assert!(
                text.to_lowercase().contains(&w.to_lowercase()),
                "{what}: '{text}' does not say '{w}'"
            );
        }
        assert!(mqtt_is_connected(c), "{what}: the connection ended");
    };
    check(
        "publish",
        mqtt_publish(c, t.as_ptr(), x, 1, 1, false, props),
        &["PUBLISH properties"],
    );
    check(
        "publish_async",
        mqtt_publish_async(c, t.as_ptr(), x, 1, 1, false, props, None, null_mut()),
        &["PUBLISH properties"],
    );
    check(
        "subscribe with properties",
        mqtt_subscribe(c, t.as_ptr(), 1, props),
        &["SUBSCRIBE properties"],
    );
    for (opt, name) in [
        (MQTT5C_SUB_NO_LOCAL, "No Local"),
        (MQTT5C_SUB_RETAIN_AS_PUBLISHED, "Retain As Published"),
        (MQTT5C_SUB_RETAIN_HANDLING_NEW_ONLY, "Retain Handling"),
        (MQTT5C_SUB_RETAIN_HANDLING_NONE, "Retain Handling"),
    ] {
        check(
            name,
            mqtt_subscribe(c, t.as_ptr(), 1 | opt, std::ptr::null()),
            &[name],
        );
    }
    check(
        "subscribe_many with No Local on one filter",
        mqtt_subscribe_many(
            c,
            f2.as_ptr(),
            qos1.as_ptr(),
            2,
            std::ptr::null(),
            results.as_mut_ptr(),
        ),
        &["No Local"],
    );
    check(
        "subscribe_cb with properties",
        mqtt_subscribe_cb(c, t.as_ptr(), 1, props, Some(on_routed), null_mut()),
        &["SUBSCRIBE properties"],
    );
    check(
        "unsubscribe with properties",
        mqtt_unsubscribe(c, t.as_ptr(), props),
        &["UNSUBSCRIBE properties"],
    );
    check(
        "unsubscribe_many with properties",
        mqtt_unsubscribe_many(c, f2.as_ptr(), 2, props, results.as_mut_ptr()),
        &["UNSUBSCRIBE properties"],
    );
    check(
        "request without a reply suffix",
        mqtt_request(c, t.as_ptr(), x, 1, 1, std::ptr::null(), 1000, &mut resp),
        &["mqtt_request"],
    );
    assert!(resp.is_null(), "no response on a refusal");
    check(
        "reauthenticate",
        mqtt_reauthenticate(c, x, 1, std::ptr::null()),
        &["re-authentication"],
    );
    check(
        "disconnect with a reason",
        mqtt_disconnect(c, 0x04, std::ptr::null()),
        &["DISCONNECT reason code"],
    );
    check(
        "disconnect with properties",
        mqtt_disconnect(c, 0, props),
        &["DISCONNECT properties"],
    );
    let after = CString::new("t/after").unwrap();
    let rc = mqtt_publish(
        c,
        after.as_ptr(),
        b"ok".as_ptr().cast(),
        2,
        1,
        false,
        std::ptr::null(),
    );
    assert!(
        (0..0x80).contains(&rc),
        "publish after the refusals: {rc} {}",
        last_error()
    );
    assert_eq!(mqtt_disconnect(c, 0, std::ptr::null()), MQTT5C_OK);
    mqtt_properties_free(props);
    mqtt_client_free(c);
    script.finish(WAIT).unwrap();
}

#[test]
fn connect_refusals_of_v5_only_settings_send_nothing() {
    // Each mqtt_connect refused before a byte reaches the broker; the
    // script sees at most connections closed without data, then the
    // CONNECT of the client set right.
    use mqtt5c::ffi::*;
    use std::ffi::CString;
    use std::ptr::null;
    let script = Script::start(|l| loop {
        let mut p = accept(&l);
        p.speak(ProtocolVersion::V311);
        match p.read() {
            None => continue,
            Some(Packet::Connect(c)) => {
                assert_eq!(c.client_id.as_str(), "v311-ok");
                p.send_raw(&[0x20, 2, 0, 0]);
                assert!(matches!(p.expect("DISCONNECT"), Packet::Disconnect(_)));
                return;
            }
            Some(other) => panic!("expected CONNECT, got {other:?}"),
        }
    });
    let url = CString::new(script.url()).unwrap();
    let props = mqtt_properties_new();
    let (k, v) = (CString::new("k").unwrap(), CString::new("v").unwrap());
    assert_eq!(
        mqtt_properties_add_user(props, k.as_ptr(), v.as_ptr()),
        MQTT5C_OK
    );
    let (will, user, method) = (
        CString::new("w").unwrap(),
        CString::new("u").unwrap(),
        CString::new("SCRAM-SHA-1").unwrap(),
    );
    type Setup<'a> = Box<dyn Fn(*mut mqtt_options) + 'a>;
    let cases: Vec<(&str, Setup, &[&str])> = vec![
        (
            "session expiry",
            Box::new(|o| assert_eq!(mqtt_options_set_session_expiry(o, 60), MQTT5C_OK)),
            &["Session Expiry"],
        ),
        (
            "CONNECT properties",
            Box::new(|o| assert_eq!(mqtt_options_set_connect_properties(o, props), MQTT5C_OK)),
            &["CONNECT properties"],
        ),
        (
            "will properties",
            Box::new(|o| {
                let rc = mqtt_options_set_will(
                    o,
                    will.as_ptr(),
                    b"x".as_ptr().cast(),
                    1,
                    1,
                    false,
                    props,
                );
                assert_eq!(rc, MQTT5C_OK)
            }),
            &["will properties"],
        ),
        (
            "enhanced authentication",
            Box::new(|o| {
                let rc = mqtt_options_set_auth(o, method.as_ptr(), b"d".as_ptr().cast(), 1);
                assert_eq!(rc, MQTT5C_OK)
            }),
            &["authentication"],
        ),
    ];
    for (what, setup, words) in cases {
        let o = mqtt_options_new();
        let cid = CString::new("v311-refused").unwrap();
        assert_eq!(mqtt_options_set_client_id(o, cid.as_ptr()), MQTT5C_OK);
        assert_eq!(
            mqtt_options_set_protocol_version(o, MQTT_PROTOCOL_V311),
            MQTT5C_OK
        );
        setup(o);
        let c = mqtt_client_new(o);
        mqtt_options_free(o);
        assert!(!c.is_null(), "{what}");
        let rc = mqtt_connect(c, url.as_ptr());
        let text = last_error();
        assert_eq!(rc, MQTT5C_ERR_INVALID_ARGUMENT, "{what}: {text}");
        for w in words.iter().chain(&["3.1.1"]) {
            assert!(
                text.to_lowercase().contains(&w.to_lowercase()),
                "{what}: '{text}' does not say '{w}'"
            );
        }
        assert!(!mqtt_is_connected(c), "{what}");
        mqtt_client_free(c);
    }
    let o = mqtt_options_new();
    let cid = CString::new("v311-ok").unwrap();
    assert_eq!(mqtt_options_set_client_id(o, cid.as_ptr()), MQTT5C_OK);
    assert_eq!(
        mqtt_options_set_protocol_version(o, MQTT_PROTOCOL_V311),
        MQTT5C_OK
    );
    assert_eq!(
        mqtt_options_set_credentials(o, user.as_ptr(), b"pw".as_ptr().cast(), 2),
        MQTT5C_OK
    );
    let c = mqtt_client_new(o);
    mqtt_options_free(o);
    assert_eq!(mqtt_connect(c, url.as_ptr()), MQTT5C_OK, "{}", last_error());
    assert_eq!(mqtt_disconnect(c, 0, null()), MQTT5C_OK);
    mqtt_client_free(c);
    mqtt_properties_free(props);
    script.finish(WAIT).unwrap();
}

/// A flaky network on 3.1.1: mosquitto restarted in the middle of a QoS 1
/// stream; every publish succeeds and every message arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_restarted_mid_stream_loses_no_qos1_message_over_3_1_1() {
    use common::restart::{qos1_stream_through_a_restart, Power, Window};
    let mut broker = Broker::start_persistent("");
    let url = broker.url();
    qos1_stream_through_a_restart(&url, "mosq", Window::Keeps, |p| match p {
        Power::Off => broker.stop(),
        Power::On => broker.start_again(),
    })
    .await;
}

fn auto_client(
    rt: &tokio::runtime::Runtime,
    id: &str,
    reconnect: bool,
) -> (MqttClient, Arc<Events>) {
    let opts = ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        protocol_version: None,
        reconnect: reconnect.then_some(Reconnect {
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        }),
        ..Default::default()
    };
    client_on(opts, rt.handle())
}

#[test]
fn auto_keeps_v5_when_a_server_that_agreed_v5_closes_after_a_connect() {
    // MQTT_PROTOCOL_AUTO agreed v5 with this server; later a reconnection
    // is closed right after its CONNECT (the broker restarting, a load
    // balancer without a backend): a lost connection, not a server that
    // stopped speaking v5. The client must not settle on 3.1.1 for good
    // (its No Local subscriptions would come back without No Local).
    // The peer reads v5 only: a 3.1.1 CONNECT fails its decoder.
    let script = Script::start(|l| {
        drop(accept_connected(&l, vec![]));
        close_after_connect(&l, ProtocolVersion::V5);
        let mut p = accept_connected(&l, vec![]);
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let rt = runtime();
    let (c, ev) = auto_client(&rt, "auto-keeps-v5", true);
    // The first CONNECT was v5 (the script's peer reads only v5).
    rt.block_on(c.connect(&script.url())).expect("connect");
    ev.wait_conn(|e| matches!(e, ConnectionEvent::Disconnected(_)));
    ev.wait_conn(|e| matches!(e, ConnectionEvent::Connected { .. }));
    assert_eq!(c.protocol_version(), Some(ProtocolVersion::V5));
    rt.block_on(script.end(&c, WAIT));
}

#[test]
fn auto_tries_v5_again_when_the_3_1_1_retry_found_no_server_either() {
    // A close after the v5 CONNECT, then a close after the 3.1.1 one:
    // nothing was learned about the version (the server was going down),
    // so the next connect tries v5 first again.
    let script = Script::start(|l| {
        close_after_connect(&l, ProtocolVersion::V5);
        close_after_connect(&l, ProtocolVersion::V311);
        let mut p = accept_connected(&l, vec![]);
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let rt = runtime();
    let (c, _ev) = auto_client(&rt, "auto-v5-again", false);
    let first = rt.block_on(c.connect(&script.url()));
    assert!(first.is_err(), "{first:?}");
    rt.block_on(c.connect(&script.url()))
        .expect("second connect");
    assert_eq!(c.protocol_version(), Some(ProtocolVersion::V5));
    rt.block_on(script.end(&c, WAIT));
}

#[test]
fn a_password_without_a_user_name_is_refused_by_the_rust_api() {
    // The C API cannot express it (a NULL user name clears both).
    let script = Script::start(|l| {
        // Nothing reaches the broker: at most a connection closed unused.
        let mut p = accept(&l);
        p.speak(ProtocolVersion::V311);
        if let Some(packet) = p.read() {
            panic!("sent {packet:?}");
        }
    });
    let rt = runtime();
    let opts = ClientOptions {
        client_id: MqttStr::new("v311-pw").unwrap(),
        protocol_version: Some(ProtocolVersion::V311),
        password: Some(mqtt5c::client::Secret::new(b"pw")),
        ..Default::default()
    };
    let (c, _ev) = client_on(opts, rt.handle());
    match rt.block_on(c.connect(&script.url())) {
        Err(Error::InvalidArgument(text)) => {
            assert!(text.contains("password without a user name"), "{text}")
        }
        other => panic!("{other:?}"),
    }
    script.finish(WAIT).unwrap();
}
