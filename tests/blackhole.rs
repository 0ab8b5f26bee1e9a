//! A network path that dies without a word (issue 9): a TCP proxy between
//! the publisher and a private mosquitto stops forwarding in both
//! directions and closes nothing (`Proxy::blackhole`), in the middle of a
//! stream of QoS 1 and QoS 2 messages to a subscriber that keeps its
//! session. Only the keep-alive can find such a path: it must within
//! 1.5 × keep-alive, the client must come back once new connections get
//! through, and every publish that succeeded must arrive (QoS 2 once).
//!
//! Two kinds of blackhole: `Hold` (nothing is read any more: the bytes wait
//! in the sockets) and `Drop` (bytes are read and dropped: TCP acknowledges
//! them, as a middlebox whose far side died would).

mod common;

use common::events::{client, Event};
use common::proxy::{Hole, Proxy};
use common::Broker;
use mqtt5c::client::{ClientOptions, ConnectionEvent, DisconnectCause, Reconnect};
use mqtt5c::packet::SubscriptionOptions;
use mqtt5c::packet::{MqttStr, Properties, QoS, ReasonCode, SubscribeFilter};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
/// The publisher's keep-alive, K.
const KEEP_ALIVE: u16 = 2;
/// Allowed on top of 1.5 × K for the detection: the event goes through
/// the delivery queue to this thread, and the machine is shared and slow.
const MARGIN: Duration = Duration::from_millis(1000);
/// Blackholes per test, one after the other: each detection is timed (a
/// wrong sign of life is a matter of timing, so one round may miss it).
const ROUNDS: usize = 3;

/// A client that keeps its session and reconnects quickly.
fn opts(id: &str) -> ClientOptions {
    ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        keep_alive: KEEP_ALIVE,
        // An attempt that goes into the blackhole gives up soon.
        connect_timeout: Duration::from_secs(1),
        operation_timeout: Some(Duration::from_secs(120)),
        clean_start: false,
        session_expiry: 600,
        reconnect: Some(Reconnect {
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
        }),
        ..Default::default()
    }
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The QoS of a publishing lane (see the test).
fn lane_qos(lane: u32) -> QoS {
    if lane < 2 {
        QoS::AtLeastOnce
    } else {
        QoS::ExactlyOnce
    }
}

/// What the publishing task saw: the numbers whose publish succeeded, and
/// the failures.
#[derive(Default)]
struct Outcome {
    acked: Vec<u32>,
    failed: Vec<(u32, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_that_holds_is_detected_and_nothing_is_lost() {
    blackhole(Hole::Hold, "hold").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_that_drops_is_detected_and_nothing_is_lost() {
    blackhole(Hole::Drop, "drop").await;
}

async fn blackhole(hole: Hole, name: &str) {
    let broker = Broker::start();
    let proxy = Proxy::start(broker.port());
    let (s, srx) = client(opts(&format!("bh-{name}-sub")));
    s.connect(&broker.url()).await.unwrap();
    let filter = vec![SubscribeFilter {
        filter: MqttStr::new("bh/#").unwrap(),
        options: SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            ..Default::default()
        },
    }];
    s.subscribe(filter, Properties::new()).await.unwrap();
    let (p, prx) = client(opts(&format!("bh-{name}-pub")));
    p.connect(&proxy.url()).await.unwrap();

    // Four publishers, each one message at a time: a stream with several
    // messages in flight when the path dies. Lanes 0 and 1 publish at QoS 1,
    // 2 and 3 at QoS 2 (a number's lane is its remainder by 4).
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..4u32)
        .map(|lane| {
            let (p, outcome, stop) = (p.clone(), outcome.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = lane;
                let qos = lane_qos(lane);
                while !stop.load(Ordering::SeqCst) {
                    let r = p
                        .publish("bh/t", &i.to_be_bytes(), qos, false, Properties::new())
                        .await;
                    let mut o = outcome.lock().unwrap();
                    match r {
                        Ok(ack) if !ack.reason.is_error() => o.acked.push(i),
                        Ok(ack) => o.failed.push((i, format!("{:?}", ack.reason))),
                        Err(e) => o.failed.push((i, e.to_string())),
                    }
                    i += 4;
                }
            })
        })
        .collect();
    // QoS 0 chatter all along (it is not what the test counts): the client
    // keeps sending, so only the broker's silence can make a PINGREQ due,
    // and the peer acknowledges it (`Drop`) or keeps it (`Hold`). Into a
    // `Hold` it stays well below the sockets' buffers: once they are full,
    // room the receiving kernel makes by compacting its queue looks like a
    // slow link draining our bytes, which is a live broker by definition.
    let (size, pace) = match hole {
        Hole::Drop => (512, Duration::from_millis(5)),
        Hole::Hold => (64, Duration::from_millis(20)),
    };
    let chatter = {
        let (p, stop) = (p.clone(), stop.clone());
        tokio::spawn(async move {
            let mut pace = tokio::time::interval(pace);
            let chat = vec![0u8; size];
            while !stop.load(Ordering::SeqCst) {
                pace.tick().await;
                let _ = p
                    .publish("chatter", &chat, QoS::AtMostOnce, false, Properties::new())
                    .await;
            }
        })
    };
    let acked = || outcome.lock().unwrap().acked.len();
    until("the stream to start", || acked() >= 200).await;

    let mut found = Vec::new();
    for round in 1..=ROUNDS {
        let (before, into_hole) = (proxy.accepted(), proxy.held_or_dropped());
        proxy.blackhole(hole);
        let start = Instant::now();
        let (lost, at) = prx.wait_conn_at(|e| matches!(e, ConnectionEvent::Disconnected(_)));
        let detected = at.duration_since(start);
        found.push(detected);
        assert!(
            matches!(
                lost,
                ConnectionEvent::Disconnected(DisconnectCause::KeepAliveTimeout)
            ),
            "found by the keep-alive: {lost:?}"
        );
        let bound = Duration::from_secs(KEEP_ALIVE as u64).mul_f64(1.5) + MARGIN;
        assert!(
            detected <= bound,
            "round {round}: the blackhole was found after {detected:?}, over 1.5 x {KEEP_ALIVE} s + {MARGIN:?}"
        );
        assert!(
            proxy.held_or_dropped() > into_hole,
            "the stream went into the blackhole"
        );
        let in_hole = acked();

        // An attempt made while the blackhole lasts goes into it too.
        prx.wait_conn_at(
            |e| matches!(e, ConnectionEvent::Reconnecting { attempt } if *attempt >= 2),
        );
        assert!(
            proxy.accepted() > before,
            "a reconnect went into the blackhole"
        );
        assert_eq!(
            acked(),
            in_hole,
            "nothing is acknowledged through a blackhole"
        );
        proxy.forward_again();
        let (back, _) = prx.wait_conn_at(|e| matches!(e, ConnectionEvent::Connected { .. }));
        assert!(
            matches!(
                back,
                ConnectionEvent::Connected {
                    session_present: true,
                    ..
                }
            ),
            "{back:?}"
        );
        until("the stream to go on", || acked() >= in_hole + 200).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in publishers {
        t.await.unwrap();
    }
    chatter.await.unwrap();

    let Outcome { acked, failed } = std::mem::take(&mut *outcome.lock().unwrap());
    assert!(failed.is_empty(), "publishes failed: {failed:?}");
    let mut seen: HashMap<u32, usize> = HashMap::new();
    let deadline = Instant::now() + WAIT;
    while !acked.iter().all(|i| seen.contains_key(i)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match srx.next(left) {
            Some(Event::Msg(m)) => {
                let i = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
                *seen.entry(i).or_default() += 1;
            }
            Some(Event::Conn(_)) => {}
            None => {
                let missing: Vec<_> = acked.iter().filter(|i| !seen.contains_key(i)).collect();
                panic!(
                    "{} of {} acknowledged messages never arrived: {missing:?}",
                    missing.len(),
                    acked.len()
                );
            }
        }
    }
    let twice = |qos| {
        seen.iter()
            .filter(|(i, c)| lane_qos(**i % 4) == qos && **c > 1)
            .count()
    };
    assert_eq!(twice(QoS::ExactlyOnce), 0, "QoS 2 messages delivered twice");
    println!(
        "{hole:?}: found after {found:?}; {} messages acknowledged, all arrived; \
         QoS 1 duplicates: {}",
        acked.len(),
        twice(QoS::AtLeastOnce)
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
