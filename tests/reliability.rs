//! Calls that ride out a reconnect, the offline queue, and a lost session
//! restored (issue 9), with real faults: a private mosquitto stopped and
//! started again (persistent: SIGTERM makes it save its database first; or
//! not: the sessions are lost), a TCP proxy that swallows what the client
//! sends, and a scripted broker for what must be seen on the wire (order,
//! DUP, the re-SUBSCRIBE).
//!
//! `MQTT5C_SOAK=1` makes the stream test long (10,000 messages per QoS and
//! more restarts; `make soak`).

mod common;
mod scripted;

use common::events::{client, Event, Events};
use common::proxy::Proxy;
use common::Broker;
use mqtt5c::client::{
    ClientOptions, ConnectionEvent, Error, Handler, MqttClient, QueuePolicy, Reconnect,
    ResubscribeFailure,
};
use mqtt5c::packet::{
    MqttStr, Packet, Properties, Property, PropertyId, Publish, QoS, ReasonCode, SubscribeFilter,
    SubscriptionOptions,
};
use scripted::{accept, accept_connected, resp, Peer, Script};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// Options with automatic reconnection; `session` keeps the session (Clean
/// Start 0, a Session Expiry) so that a persistent broker resumes it.
fn opts(id: &str, session: bool) -> ClientOptions {
    ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        connect_timeout: Duration::from_secs(5),
        clean_start: !session,
        session_expiry: if session { 600 } else { 0 },
        reconnect: Some(Reconnect {
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
        }),
        ..Default::default()
    }
}

fn connected(e: &ConnectionEvent) -> bool {
    matches!(e, ConnectionEvent::Connected { .. })
}

fn disconnected(e: &ConnectionEvent) -> bool {
    matches!(e, ConnectionEvent::Disconnected(_))
}

fn sub(filter: &str, qos: QoS) -> Vec<SubscribeFilter> {
    vec![SubscribeFilter {
        filter: MqttStr::new(filter).unwrap(),
        options: SubscriptionOptions {
            qos,
            ..Default::default()
        },
    }]
}

/// A client keeping its session on `broker`, subscribed to `filter`.
async fn subscriber(
    broker: &Broker,
    id: &str,
    filter: &str,
    qos: QoS,
) -> (MqttClient, Arc<Events>) {
    let (s, srx) = client(opts(id, true));
    s.connect(&broker.url()).await.unwrap();
    s.subscribe(sub(filter, qos), Properties::new())
        .await
        .unwrap();
    (s, srx)
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Waits until `cond` holds, checking every few milliseconds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn soak() -> bool {
    std::env::var("MQTT5C_SOAK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A persistent broker restarted (saving its database first) twice in the
/// middle of a stream of QoS 1 and QoS 2 messages from a publisher to a
/// subscriber, both keeping their sessions: every publish succeeds, every
/// message arrives, no QoS 2 message twice (QoS 1 duplicates are counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_survives_broker_restarts() {
    let n: usize = if soak() { 10_000 } else { 300 };
    let restarts: usize = if soak() { 5 } else { 2 };
    let mut broker = Broker::start_persistent("max_queued_messages 0\n");
    let (s, srx) = subscriber(&broker, "rel-stream-sub", "stream/#", QoS::ExactlyOnce).await;
    let (p, _prx) = client(opts("rel-stream-pub", true));
    p.connect(&broker.url()).await.unwrap();

    let published = Arc::new(AtomicUsize::new(0));
    let streams: Vec<_> = [
        (QoS::AtLeastOnce, "stream/q1"),
        (QoS::ExactlyOnce, "stream/q2"),
    ]
    .into_iter()
    .map(|(qos, topic)| {
        let (p, published) = (p.clone(), published.clone());
        tokio::spawn(async move {
            for i in 0..n {
                let payload = (i as u32).to_be_bytes();
                let ack = p
                    .publish(topic, &payload, qos, false, Properties::new())
                    .await
                    .unwrap_or_else(|e| panic!("{topic} #{i}: {e}"));
                assert!(!ack.reason.is_error(), "{topic} #{i}: {:?}", ack.reason);
                published.fetch_add(1, Ordering::SeqCst);
            }
        })
    })
    .collect();
    for k in 1..=restarts {
        let at = 2 * n * k / (restarts + 1);
        until("the stream to progress", || {
            published.load(Ordering::SeqCst) >= at
        })
        .await;
        blocking(|| broker.restart());
    }
    for t in streams {
        t.await.unwrap();
    }

    let mut seen: HashMap<&str, HashMap<u32, usize>> = HashMap::new();
    let complete = |seen: &HashMap<&str, HashMap<u32, usize>>| {
        ["stream/q1", "stream/q2"]
            .iter()
            .all(|t| seen.get(t).is_some_and(|m| m.len() == n))
    };
    let deadline = Instant::now() + WAIT * 3;
    while !complete(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(ev) = srx.next(left) else {
            let counts: Vec<_> = seen.iter().map(|(t, m)| (*t, m.len())).collect();
            panic!("the subscriber got {counts:?} of {n} each");
        };
        if let Event::Msg(m) = ev {
            let topic = if m.topic.as_str() == "stream/q1" {
                "stream/q1"
            } else {
                "stream/q2"
            };
            let i = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
            *seen.entry(topic).or_default().entry(i).or_default() += 1;
        }
    }
    let twice = |t| seen[t].values().filter(|c| **c > 1).count();
    assert_eq!(twice("stream/q2"), 0, "QoS 2 messages delivered twice");
    println!(
        "{n} QoS 1 and {n} QoS 2 messages through {restarts} restarts; QoS 1 duplicates: {}",
        twice("stream/q1")
    );
    p.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
    s.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
    p.close();
    s.close();
}

/// A QoS 1 publish blocked waiting for its PUBACK (its PUBLISH went
/// nowhere) when the broker restarts: it rides out the reconnect (resent on
/// the resumed session) and returns the PUBACK; the message arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_publish_rides_out_a_broker_restart() {
    let mut broker = Broker::start_persistent("");
    let proxy = Proxy::start(broker.port());
    let (s, srx) = subscriber(&broker, "rel-blocked-sub", "blocked/t", QoS::AtLeastOnce).await;
    let (p, prx) = client(opts("rel-blocked-pub", true));
    p.connect(&proxy.url()).await.unwrap();

    proxy.swallow_upstream();
    let p2 = p.clone();
    let publish = tokio::spawn(async move {
        p2.publish(
            "blocked/t",
            b"rides out",
            QoS::AtLeastOnce,
            false,
            Properties::new(),
        )
        .await
    });
    until("the PUBLISH to be written", || proxy.swallowed() > 0).await;
    assert!(!publish.is_finished(), "it waits for its PUBACK");
    blocking(|| broker.restart());
    prx.wait_conn(disconnected);
    prx.wait_conn(connected);
    let ack = publish
        .await
        .unwrap()
        .expect("the publish rode out the restart");
    assert!(!ack.reason.is_error(), "{:?}", ack.reason);
    let m = srx.msg();
    assert_eq!(&m.payload[..], b"rides out");
    p.close();
    s.close();
}

/// A responder that answers each request on "svc/echo" with its payload.
struct Responder {
    client: OnceLock<MqttClient>,
    handle: tokio::runtime::Handle,
}

impl Handler for Responder {
    fn on_message(&self, m: Publish) {
        let (Some(c), Some(topic)) = (
            self.client.get(),
            m.properties.get_str(PropertyId::ResponseTopic),
        ) else {
            return;
        };
        let mut props = Properties::new();
        if let Some(cd) = m.properties.get_binary(PropertyId::CorrelationData) {
            props.set(Property::CorrelationData(cd.clone()));
        }
        // Called on the blocking pool, like a C callback: it may block.
        let _ = self.handle.block_on(c.publish(
            topic.as_str(),
            &m.payload,
            QoS::AtMostOnce,
            false,
            props,
        ));
    }
    fn on_connection(&self, _: &ConnectionEvent) {}
}

/// Calls made while the client reconnects (the broker is down) wait for
/// the reconnect and succeed: subscribe, unsubscribe, publish at each QoS,
/// publish_then (completed after delivery) and a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_made_while_reconnecting_succeed_after_it() {
    let mut broker = Broker::start_persistent("");
    let responder = Arc::new(Responder {
        client: OnceLock::new(),
        handle: tokio::runtime::Handle::current(),
    });
    let r = MqttClient::new(
        opts("rel-calls-responder", true),
        responder.clone(),
        tokio::runtime::Handle::current(),
    );
    let _ = responder.client.set(r.clone());
    r.connect(&broker.url()).await.unwrap();
    r.subscribe(sub("svc/echo", QoS::AtLeastOnce), Properties::new())
        .await
        .unwrap();
    let (c, rx) = client(opts("rel-calls", true));
    c.connect(&broker.url()).await.unwrap();
    c.subscribe(sub("calls/old", QoS::AtLeastOnce), Properties::new())
        .await
        .unwrap();

    blocking(|| broker.stop());
    rx.wait_conn(disconnected);
    assert!(c.is_reconnecting());
    let (done_tx, done_rx) = mpsc::channel();
    let then: mqtt5c::client::Completion = Box::new(move |r| {
        let _ = done_tx.send(r.map(|a| a.reason));
    });
    c.publish_then(
        "calls/t",
        b"then",
        QoS::AtLeastOnce,
        false,
        Properties::new(),
        Some(then),
    )
    .await
    .expect("queued");
    let mut calls = Vec::new();
    for (qos, payload) in [
        (QoS::AtLeastOnce, &b"q1"[..]),
        (QoS::ExactlyOnce, b"q2"),
        (QoS::AtMostOnce, b"q0"),
    ] {
        let c = c.clone();
        calls.push(tokio::spawn(async move {
            c.publish("calls/t", payload, qos, false, Properties::new())
                .await
                .map(|a| assert!(!a.reason.is_error()))
        }));
    }
    let c2 = c.clone();
    let subscribed = tokio::spawn(async move {
        c2.subscribe(sub("calls/t", QoS::AtLeastOnce), Properties::new())
            .await
    });
    let c3 = c.clone();
    let unsubscribed = tokio::spawn(async move {
        c3.unsubscribe(vec![MqttStr::new("calls/old").unwrap()], Properties::new())
            .await
    });
    let c4 = c.clone();
    let requested = tokio::spawn(async move {
        c4.request(
            "svc/echo",
            b"ping",
            QoS::AtLeastOnce,
            Properties::new(),
            Some(WAIT),
        )
        .await
    });
    blocking(|| broker.start_again());
    for t in calls {
        t.await.unwrap().expect("a publish made while reconnecting");
    }
    let granted = subscribed.await.unwrap().expect("the subscribe");
    assert_eq!(granted.reasons, vec![ReasonCode::GrantedQoS1]);
    unsubscribed.await.unwrap().expect("the unsubscribe");
    let response = requested.await.unwrap().expect("the request");
    assert_eq!(&response.payload[..], b"ping");
    let r1 = blocking(|| done_rx.recv_timeout(WAIT)).expect("the completion");
    assert!(r1.as_ref().is_ok_and(|reason| !reason.is_error()), "{r1:?}");
    assert_eq!(
        c.stats().queued(),
        4,
        "the three publishes and publish_then"
    );
    c.close();
    r.close();
}

/// `disconnect` while the client reconnects stops it: the calls waiting
/// for it return `ConnectionLost` (a completion gets it too), and their
/// messages stay queued for the next `connect`, which sends them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_while_reconnecting_fails_the_waiting_calls_and_keeps_the_messages() {
    let mut broker = Broker::start_persistent("");
    let (s, srx) = subscriber(&broker, "rel-stop-sub", "stop/t", QoS::AtLeastOnce).await;
    let (c, rx) = client(opts("rel-stop", false));
    c.connect(&broker.url()).await.unwrap();
    blocking(|| broker.stop());
    rx.wait_conn(disconnected);
    let (c1, c2) = (c.clone(), c.clone());
    let subscribed = tokio::spawn(async move {
        c1.subscribe(sub("stop/x", QoS::AtLeastOnce), Properties::new())
            .await
    });
    let published = tokio::spawn(async move {
        c2.publish(
            "stop/t",
            b"kept",
            QoS::AtLeastOnce,
            false,
            Properties::new(),
        )
        .await
    });
    until("the publish to be queued", || c.offline_queue_len() == 1).await;
    let (done_tx, done_rx) = mpsc::channel();
    let then: mqtt5c::client::Completion = Box::new(move |r| {
        let _ = done_tx.send(r.map(|a| a.reason).map_err(|e| e.to_string()));
    });
    c.publish_then(
        "stop/t",
        b"kept too",
        QoS::AtLeastOnce,
        false,
        Properties::new(),
        Some(then),
    )
    .await
    .unwrap();
    assert_eq!(c.offline_queue_len(), 2);
    c.disconnect(ReasonCode::Success, Properties::new())
        .await
        .expect("stops the reconnection");
    let r = subscribed.await.unwrap();
    assert!(matches!(r, Err(Error::ConnectionLost)), "{r:?}");
    let r = published.await.unwrap();
    assert!(matches!(r, Err(Error::ConnectionLost)), "{r:?}");
    let r = blocking(|| done_rx.recv_timeout(WAIT)).expect("the completion");
    assert!(r.is_err(), "{r:?}");
    assert_eq!(c.offline_queue_len(), 2, "the messages stay queued");
    let r = c
        .publish(
            "stop/t",
            b"refused",
            QoS::AtLeastOnce,
            false,
            Properties::new(),
        )
        .await;
    assert!(matches!(r, Err(Error::NotConnected)), "{r:?}");

    blocking(|| broker.start_again());
    c.connect(&broker.url()).await.unwrap();
    for want in [&b"kept"[..], b"kept too"] {
        assert_eq!(&srx.msg().payload[..], want, "sent by the next connect");
    }
    c.close();
    s.close();
}

/// With `connect_retry`, a connect that fails keeps trying in the
/// background: publishes queue meanwhile, and go out once it succeeds.
/// Without it, today's behaviour: nothing retries, publishes fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_connect_retries_in_the_background_when_asked() {
    let mut broker = Broker::start();
    let url = broker.url();
    blocking(|| broker.stop());

    let (plain, _prx) = client(opts("rel-retry-off", false));
    let r = plain.connect(&url).await;
    assert!(matches!(r, Err(Error::Io(_))), "{r:?}");
    assert!(!plain.is_reconnecting());
    let r = plain
        .publish("retry/t", b"x", QoS::AtLeastOnce, false, Properties::new())
        .await;
    assert!(matches!(r, Err(Error::NotConnected)), "{r:?}");

    let mut o = opts("rel-retry-on", false);
    o.connect_retry = true;
    let (c, rx) = client(o);
    let r = c.connect(&url).await;
    assert!(
        matches!(r, Err(Error::Io(_))),
        "the first attempt's error: {r:?}"
    );
    assert!(c.is_reconnecting());
    let c2 = c.clone();
    let publish = tokio::spawn(async move {
        c2.publish(
            "retry/t",
            b"queued",
            QoS::AtLeastOnce,
            false,
            Properties::new(),
        )
        .await
    });
    match rx.wait_conn(|e| matches!(e, ConnectionEvent::Reconnecting { .. })) {
        ConnectionEvent::Reconnecting { attempt } => assert_eq!(attempt, 1),
        _ => unreachable!(),
    }
    blocking(|| broker.start_again());
    rx.wait_conn(connected);
    let ack = publish.await.unwrap().expect("the queued publish");
    assert!(!ack.reason.is_error());
    c.close();
    plain.close();
}

/// A broker restarted without persistence loses the session: after the
/// reconnect (Session Present 0) the client subscribes again (with the
/// same Subscription Identifier) before it publishes afresh what was
/// unacknowledged, so it receives its own messages; the blocked publish
/// returns its PUBACK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_is_restored() {
    let mut broker = Broker::start();
    let proxy = Proxy::start(broker.port());
    let (c, rx) = client(opts("rel-lost", true));
    c.connect(&proxy.url()).await.unwrap();
    let mut props = Properties::new();
    props.set(Property::SubscriptionIdentifier(7));
    c.subscribe(sub("lost/t", QoS::AtLeastOnce), props)
        .await
        .unwrap();
    c.subscribe(sub("lost/other", QoS::ExactlyOnce), Properties::new())
        .await
        .unwrap();

    proxy.swallow_upstream();
    c.publish_then(
        "lost/t",
        b"m1",
        QoS::AtLeastOnce,
        false,
        Properties::new(),
        None,
    )
    .await
    .unwrap();
    until("m1 to be written", || proxy.swallowed() > 0).await;
    let before = proxy.swallowed();
    let c2 = c.clone();
    let blocked = tokio::spawn(async move {
        c2.publish("lost/t", b"m2", QoS::ExactlyOnce, false, Properties::new())
            .await
    });
    until("m2 to be written", || proxy.swallowed() > before).await;
    blocking(|| broker.restart());
    let present = match rx.wait_conn(connected) {
        ConnectionEvent::Connected {
            session_present, ..
        } => session_present,
        _ => unreachable!(),
    };
    assert!(!present, "a broker without persistence lost the session");
    let ack = blocked
        .await
        .unwrap()
        .expect("m2 rode out the lost session");
    assert!(!ack.reason.is_error(), "{:?}", ack.reason);
    for want in [&b"m1"[..], b"m2"] {
        let m = rx.msg();
        assert_eq!(&m.payload[..], want, "republished in order");
        assert_eq!(
            m.properties.get_int(PropertyId::SubscriptionIdentifier),
            Some(7),
            "the same subscription identifier"
        );
    }
    assert_eq!(c.stats().resubscribe_failed(), 0);
    c.close();
}

/// Publishes `queued` (payload, QoS) on "order/t" with `publish_then`, in
/// order: while the client is reconnecting, they fill its offline queue.
async fn queue_offline(c: &MqttClient, queued: [(&str, QoS); 3]) {
    for (m, qos) in queued {
        c.publish_then("order/t", m.as_bytes(), qos, false, Properties::new(), None)
            .await
            .unwrap();
    }
}

/// Reads PUBLISHes with the payloads `wants`, in that order (`what` says
/// which order), acknowledging each QoS 1 one.
fn ack_in_order(p: &mut Peer, wants: &[&str], what: &str) {
    for &want in wants {
        let pb = p.expect_publish();
        assert_eq!(std::str::from_utf8(&pb.payload).unwrap(), want, "{what}");
        if let Some(id) = pb.packet_id {
            p.send(Packet::PubAck(resp(id)));
        }
    }
}

/// What the wire shows after a reconnect: the messages in flight first
/// (resent with DUP on a resumed session, afresh without it on a new one),
/// then the offline queue in order, then a publish made after the
/// reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_goes_out_after_the_resends_and_before_newer_publishes() {
    for session_present in [true, false] {
        wire_order(session_present).await;
    }
}

async fn wire_order(session_present: bool) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let script = Script::start(move |l| {
        let mut p = accept_connected(&l, vec![]);
        let mut ids = Vec::new();
        for want in ["m1", "m2"] {
            let pb = p.expect_publish();
            assert_eq!(&pb.payload[..], want.as_bytes());
            ids.push(pb.packet_id.unwrap());
        }
        drop(p);
        // The next attempt waits in the listen backlog (no CONNACK) until
        // the test has queued its publishes.
        go_rx.recv().unwrap();
        let mut p = accept(&l);
        p.expect_connect();
        p.connack_session(session_present, vec![]);
        for want in ["m1", "m2", "q1", "q2", "q3", "n1"] {
            let pb = p.expect_publish();
            assert_eq!(&pb.payload[..], want.as_bytes(), "order");
            let resent = want.starts_with('m');
            assert_eq!(pb.dup, resent && session_present, "DUP of {want}");
            if let Some(id) = pb.packet_id {
                p.send(Packet::PubAck(resp(id)));
            }
        }
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let mut o = opts("rel-order", true);
    o.connect_timeout = WAIT;
    let (c, rx) = client(o);
    c.connect(&script.url()).await.unwrap();
    for m in ["m1", "m2"] {
        c.publish_then(
            "order/t",
            m.as_bytes(),
            QoS::AtLeastOnce,
            false,
            Properties::new(),
            None,
        )
        .await
        .unwrap();
    }
    rx.wait_conn(disconnected);
    queue_offline(
        &c,
        [
            ("q1", QoS::AtLeastOnce),
            ("q2", QoS::AtMostOnce),
            ("q3", QoS::AtLeastOnce),
        ],
    )
    .await;
    assert_eq!(c.offline_queue_len(), 3);
    go_tx.send(()).unwrap();
    rx.wait_conn(connected);
    c.publish("order/t", b"n1", QoS::AtLeastOnce, false, Properties::new())
        .await
        .unwrap();
    script.end(&c, WAIT).await;
    c.close();
}

/// A QoS 0 publish made right after the reconnect follows the offline
/// queue too, while the queue is still going out: through the fast path
/// that writes on the caller's thread (`MqttClient::publish`) and through
/// the async one (`publish_then`). The broker's Receive Maximum 1 and its
/// PUBACK held back keep the drain waiting after the first queued message;
/// the new publish is made in that window. It went out at once, ahead of
/// the rest of the queue, before the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos0_publish_after_the_reconnect_waits_for_the_queue() {
    for then in [false, true] {
        qos0_after_queue(then).await;
    }
}

async fn qos0_after_queue(then: bool) {
    // The script says when the drain waits (the first queued message
    // arrived, unacknowledged); the test when its new publish was made.
    let (waiting_tx, waiting_rx) = mpsc::channel::<()>();
    let (made_tx, made_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let script = Script::start(move |l| {
        let p = accept_connected(&l, vec![]);
        drop(p);
        go_rx.recv().unwrap();
        let mut p = accept(&l);
        p.expect_connect();
        p.connack_session(false, vec![Property::ReceiveMaximum(1)]);
        let q1 = p.expect_publish();
        assert_eq!(&q1.payload[..], b"q1");
        waiting_tx.send(()).unwrap();
        made_rx.recv().unwrap();
        p.send(Packet::PubAck(resp(q1.packet_id.unwrap())));
        ack_in_order(
            &mut p,
            &["q2", "q3", "n1"],
            &format!("order on the wire (then: {then})"),
        );
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let mut o = opts(&format!("rel-q0-order-{then}"), false);
    o.connect_timeout = WAIT;
    let (c, rx) = client(o);
    c.connect(&script.url()).await.unwrap();
    rx.wait_conn(disconnected);
    queue_offline(
        &c,
        [
            ("q1", QoS::AtLeastOnce),
            ("q2", QoS::AtLeastOnce),
            ("q3", QoS::AtMostOnce),
        ],
    )
    .await;
    assert_eq!(c.offline_queue_len(), 3);
    go_tx.send(()).unwrap();
    rx.wait_conn(connected);
    blocking(|| waiting_rx.recv_timeout(WAIT)).expect("the drain sent q1");
    // Polled once here, so that whatever it writes at once is written
    // before the script is told to go on; then awaited.
    let c2 = c.clone();
    let mut new: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send>> =
        if then {
            Box::pin(async move {
                c2.publish_then(
                    "order/t",
                    b"n1",
                    QoS::AtMostOnce,
                    false,
                    Properties::new(),
                    None,
                )
                .await
            })
        } else {
            Box::pin(async move {
                c2.publish("order/t", b"n1", QoS::AtMostOnce, false, Properties::new())
                    .await
                    .map(|_| ())
            })
        };
    let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
    let first = new.as_mut().poll(&mut cx);
    made_tx.send(()).unwrap();
    let published = match first {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => tokio::time::timeout(WAIT, new)
            .await
            .expect("the new publish within the wait"),
    };
    published.unwrap();
    script.end(&c, WAIT).await;
    c.close();
}

/// Publishes a QoS 0 message from its callback of the second CONNECTED
/// (the reconnect), the way a C callback calls `mqtt_publish`.
struct PublishOnReconnect {
    client: OnceLock<MqttClient>,
    handle: tokio::runtime::Handle,
    connected: AtomicUsize,
    /// Told right before the publish, then its outcome.
    publishing: mpsc::SyncSender<()>,
    outcome: mpsc::SyncSender<Result<(), Error>>,
}

impl Handler for PublishOnReconnect {
    fn on_message(&self, _: Publish) {}
    fn on_connection(&self, e: &ConnectionEvent) {
        if !connected(e) || self.connected.fetch_add(1, Ordering::SeqCst) != 1 {
            return;
        }
        let c = self.client.get().unwrap();
        let _g = mqtt5c::client::BlockingGuard::enter();
        self.publishing.send(()).unwrap();
        let r = self.handle.block_on(c.publish(
            "order/t",
            b"n1",
            QoS::AtMostOnce,
            false,
            Properties::new(),
        ));
        self.outcome.send(r.map(|_| ())).unwrap();
    }
}

/// A QoS 0 publish from a callback while the offline queue goes out waits
/// for it without a deadlock: the drain waits for a PUBACK that arrives
/// behind messages for the (small, full) delivery queue, whose thread is
/// the callback's; the reader reads on while the callback blocks in a
/// publish (see `client::delivery`), so the PUBACK comes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos0_publish_from_a_callback_waits_for_the_queue_without_deadlock() {
    let (publishing_tx, publishing_rx) = mpsc::sync_channel(1);
    let (outcome_tx, outcome_rx) = mpsc::sync_channel(1);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let script = Script::start(move |l| {
        let p = accept_connected(&l, vec![]);
        drop(p);
        go_rx.recv().unwrap();
        let mut p = accept(&l);
        p.expect_connect();
        p.connack_session(false, vec![Property::ReceiveMaximum(1)]);
        let q1 = p.expect_publish();
        assert_eq!(&q1.payload[..], b"q1");
        // The callback is about to block in its publish: more for the
        // delivery queue than it holds, then the PUBACK the drain needs.
        publishing_rx.recv_timeout(WAIT).unwrap();
        for i in 0..10 {
            p.send(scripted::publish(
                "in/t",
                QoS::AtMostOnce,
                None,
                vec![],
                format!("in{i}").as_bytes(),
            ));
        }
        p.send(Packet::PubAck(resp(q1.packet_id.unwrap())));
        ack_in_order(&mut p, &["q2", "q3", "n1"], "order");
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let handler = Arc::new(PublishOnReconnect {
        client: OnceLock::new(),
        handle: tokio::runtime::Handle::current(),
        connected: AtomicUsize::new(0),
        publishing: publishing_tx,
        outcome: outcome_tx,
    });
    let mut o = opts("rel-q0-callback", false);
    o.connect_timeout = WAIT;
    o.delivery_queue_limit = 1;
    let c = MqttClient::new(o, handler.clone(), tokio::runtime::Handle::current());
    let _ = handler.client.set(c.clone());
    c.connect(&script.url()).await.unwrap();
    until("the loss", || c.is_reconnecting()).await;
    queue_offline(
        &c,
        [
            ("q1", QoS::AtLeastOnce),
            ("q2", QoS::AtLeastOnce),
            ("q3", QoS::AtMostOnce),
        ],
    )
    .await;
    go_tx.send(()).unwrap();
    blocking(|| outcome_rx.recv_timeout(WAIT))
        .expect("the callback's publish returned")
        .expect("the callback's publish succeeded");
    script.end(&c, WAIT).await;
    c.close();
}

/// A QoS 2 message whose PUBREC came is the broker's: when the session is
/// lost it is not published again (that could deliver it twice), and the
/// blocked call returns success. A refused re-subscription is reported,
/// the other filter restored with its Subscription Identifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_keeps_pubrec_and_reports_a_refused_resubscription() {
    let script = Script::start(|l| {
        let mut p = accept_connected(&l, vec![]);
        for _ in 0..2 {
            p.answer_subscribe(vec![ReasonCode::GrantedQoS1]);
        }
        let id = p.expect_publish().packet_id.unwrap();
        p.send(Packet::PubRec(resp(id)));
        assert!(matches!(p.expect("PUBREL"), Packet::PubRel(_)));
        drop(p);

        let mut p = accept_connected(&l, vec![]);
        let mut granted = Vec::new();
        for _ in 0..2 {
            let s = p.expect_subscribe();
            let filter = s.filters[0].filter.as_str().to_string();
            let reason = if filter == "denied/t" {
                ReasonCode::NotAuthorized
            } else {
                assert_eq!(
                    s.properties.get_int(PropertyId::SubscriptionIdentifier),
                    Some(9)
                );
                ReasonCode::GrantedQoS1
            };
            granted.push(filter);
            p.suback(s.packet_id, vec![reason]);
        }
        granted.sort();
        assert_eq!(granted, vec!["denied/t", "kept/t"]);
        // No PUBLISH, no PUBREL: the QoS 2 message is the broker's.
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let (c, rx) = client(opts("rel-pubrec", false));
    c.connect(&script.url()).await.unwrap();
    let mut props = Properties::new();
    props.set(Property::SubscriptionIdentifier(9));
    c.subscribe(sub("kept/t", QoS::AtLeastOnce), props)
        .await
        .unwrap();
    c.subscribe(sub("denied/t", QoS::AtLeastOnce), Properties::new())
        .await
        .unwrap();
    let ack = c
        .publish("q2/t", b"x", QoS::ExactlyOnce, false, Properties::new())
        .await
        .expect("completed without a PUBCOMP once the session was lost");
    assert!(!ack.reason.is_error());
    match rx.wait_conn(|e| matches!(e, ConnectionEvent::ResubscribeFailed { .. })) {
        ConnectionEvent::ResubscribeFailed { filter, failure } => {
            assert_eq!(filter, "denied/t");
            assert!(matches!(
                failure,
                ResubscribeFailure::Refused {
                    reason: ReasonCode::NotAuthorized,
                    ..
                }
            ));
        }
        _ => unreachable!(),
    }
    assert_eq!(c.stats().resubscribe_failed(), 1);
    script.end(&c, WAIT).await;
    c.close();
}

/// The offline queue's bounds and policies, and its expiry (Rust side;
/// tests/c/test_offline_queue.c has the C view).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_bounds_policies_and_expiry() {
    let mut broker = Broker::start_persistent("queue_qos0_messages true\n");
    let (s, srx) = subscriber(&broker, "rel-queue-sub", "queue/#", QoS::AtLeastOnce).await;
    let mut o = opts("rel-queue", false);
    o.offline_queue.max_messages = 3;
    o.offline_queue.max_bytes = 200;
    let (c, rx) = client(o.clone());
    o.client_id = MqttStr::new("rel-queue-drop").unwrap();
    o.offline_queue.policy = QueuePolicy::DropOldest;
    let (d, drx) = client(o);
    c.connect(&broker.url()).await.unwrap();
    d.connect(&broker.url()).await.unwrap();
    blocking(|| broker.stop());
    rx.wait_conn(disconnected);
    drx.wait_conn(disconnected);

    let publish = |c: &MqttClient, topic: &str, payload: &[u8], qos, props| {
        let (tx, rx) = mpsc::channel();
        let then: mqtt5c::client::Completion = Box::new(move |r| {
            let _ = tx.send(r.map(|a| a.reason).map_err(|e| e.to_string()));
        });
        let c = c.clone();
        let (topic, payload) = (topic.to_string(), payload.to_vec());
        async move {
            c.publish_then(&topic, &payload, qos, false, props, Some(then))
                .await
                .map(|()| rx)
        }
    };
    // Fail new: the fourth message, and a message over the byte bound.
    let mut expiring = Properties::new();
    expiring.set(Property::MessageExpiryInterval(1));
    let mut lasting = Properties::new();
    lasting.set(Property::MessageExpiryInterval(600));
    let e1 = publish(&c, "queue/c/1", b"1", QoS::AtLeastOnce, expiring)
        .await
        .unwrap();
    let c2 = publish(&c, "queue/c/2", b"2", QoS::AtLeastOnce, lasting)
        .await
        .unwrap();
    let c3 = publish(&c, "queue/c/3", b"3", QoS::AtMostOnce, Properties::new())
        .await
        .unwrap();
    let r = publish(&c, "queue/c/4", b"4", QoS::AtLeastOnce, Properties::new()).await;
    assert!(matches!(r, Err(Error::QueueFull(_))), "{:?}", r.err());
    let r = c
        .publish(
            "queue/c/big",
            &[0u8; 300],
            QoS::AtLeastOnce,
            false,
            Properties::new(),
        )
        .await;
    assert!(matches!(r, Err(Error::QueueFull(_))), "{r:?}");
    // Drop oldest: the QoS 0 message first, then the oldest.
    let d1 = publish(&d, "queue/d/1", b"1", QoS::AtLeastOnce, Properties::new())
        .await
        .unwrap();
    let d2 = publish(&d, "queue/d/2", b"2", QoS::AtMostOnce, Properties::new())
        .await
        .unwrap();
    let d3 = publish(&d, "queue/d/3", b"3", QoS::AtLeastOnce, Properties::new())
        .await
        .unwrap();
    let d4 = publish(&d, "queue/d/4", b"4", QoS::AtLeastOnce, Properties::new())
        .await
        .unwrap();
    let got = |rx: &mpsc::Receiver<Result<ReasonCode, String>>| {
        blocking(|| rx.recv_timeout(WAIT)).expect("a completion")
    };
    assert!(
        got(&d2).is_err_and(|e| e.contains("dropped")),
        "QoS 0 first"
    );
    let d5 = publish(&d, "queue/d/5", b"5", QoS::AtLeastOnce, Properties::new())
        .await
        .unwrap();
    assert!(
        got(&d1).is_err_and(|e| e.contains("dropped")),
        "then the oldest"
    );
    assert_eq!(d.stats().queue_dropped(), 2);
    assert_eq!(d.offline_queue_len(), 3);
    // Lets queue/c/1's one-second expiry pass while queued.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(c.offline_queue_len(), 2, "the expired message is gone");
    assert_eq!(c.stats().queue_expired(), 1);
    assert!(got(&e1).is_err_and(|e| e.contains("expired")));

    blocking(|| broker.start_again());
    for done in [&c2, &c3, &d3, &d4, &d5] {
        assert!(got(done).is_ok(), "delivered");
    }
    let mut topics = Vec::new();
    let mut remaining_expiry = None;
    for _ in 0..5 {
        let m = srx.msg();
        if m.topic.as_str() == "queue/c/2" {
            remaining_expiry = m.properties.get_int(PropertyId::MessageExpiryInterval);
        }
        topics.push(m.topic.as_str().to_string());
    }
    let of = |prefix: &str| -> Vec<String> {
        topics
            .iter()
            .filter(|t| t.starts_with(prefix))
            .cloned()
            .collect()
    };
    assert_eq!(of("queue/c/"), ["queue/c/2", "queue/c/3"]);
    assert_eq!(of("queue/d/"), ["queue/d/3", "queue/d/4", "queue/d/5"]);
    // Sent 1.5 s or more after it was queued: what remains (MQTT-3.3.2-6).
    let left = remaining_expiry.expect("the Message Expiry Interval is carried");
    assert!((590..600).contains(&left), "remaining interval {left}");
    assert!(srx
        .next(Duration::from_millis(300))
        .is_none_or(|e| matches!(e, Event::Conn(_))));
    c.close();
    d.close();
    s.close();
}
