//! QoS 0 publishes written on the caller's thread (`publish_now`, see
//! src/client/writer.rs `send_now`) under a full socket: several threads
//! outside the runtime publish large and small messages at once while the
//! client's reader acknowledges the broker's QoS 1 messages through the
//! same writer, and the broker reads slowly (a full send buffer, partial
//! writes). Every packet must arrive whole, none lost, each thread's in
//! its order.

use bytes::BytesMut;
use common::events::client_on;
use mqtt5c::client::{ClientOptions, MqttClient};
use mqtt5c::packet::{self, ConnAck, MqttStr, Packet, Properties, Publish, QoS, ReasonCode};
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod common;

const WAIT: Duration = Duration::from_secs(60);
const THREADS: usize = 4;
const PER_THREAD: usize = 24;
const INBOUND: u16 = 10;

fn size(seq: usize) -> usize {
    match seq % 4 {
        0 => 150_000,
        1 => 10,
        2 => 300_000,
        _ => 1000,
    }
}

fn byte(thread: usize, seq: usize) -> u8 {
    (thread * 31 + seq * 7) as u8
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh Unix socket path for a test's broker (none there yet).
fn socket_path() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "mqtt5c-publish-now-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// The encoded CONNACK Success of a new session, no properties.
fn connack_success() -> BytesMut {
    let mut b = BytesMut::new();
    packet::encode(
        &Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties::new(),
        }),
        &mut b,
    )
    .unwrap();
    b
}

/// Runs `f(t, client, handle)` on THREADS threads outside the runtime,
/// t = 0..THREADS, each with its own clone of `c`; returns when all did.
fn on_threads(
    c: &MqttClient,
    rt: &tokio::runtime::Runtime,
    f: impl Fn(usize, MqttClient, tokio::runtime::Handle) + Copy + Send + 'static,
) {
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let c = c.clone();
            let h = rt.handle().clone();
            std::thread::spawn(move || f(t, c, h))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn caller_thread_publishes_under_a_full_socket_arrive_whole_and_in_order() {
    let path = socket_path();
    let l = UnixListener::bind(&path).unwrap();
    let broker = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = BytesMut::new();
        let mut chunk = vec![0u8; 4096];
        let mut next = |s: &mut std::os::unix::net::UnixStream| loop {
            if let Some(p) = packet::decode(&mut buf, usize::MAX).expect("garbage from the client")
            {
                return Some(p);
            }
            match s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("reading: {e}"),
            }
        };
        assert!(matches!(next(&mut s), Some(Packet::Connect(_))));
        s.write_all(&connack_success()).unwrap();
        let mut w = s.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            for id in 1..=INBOUND {
                let mut b = BytesMut::new();
                let p = Publish {
                    dup: false,
                    qos: QoS::AtLeastOnce,
                    retain: false,
                    topic: MqttStr::from_static("in"),
                    packet_id: Some(id),
                    properties: Properties::new(),
                    payload: vec![1u8; 100].into(),
                };
                packet::encode(&Packet::Publish(p), &mut b).unwrap();
                w.write_all(&b).unwrap();
            }
        });
        let mut last = [None::<usize>; THREADS];
        let (mut got, mut acks) = (0, 0);
        while got < THREADS * PER_THREAD || acks < INBOUND as usize {
            match next(&mut s) {
                Some(Packet::Publish(p)) => {
                    let topic = p.topic.as_str().to_string();
                    let (t, seq) = topic.split_once('/').unwrap();
                    let (t, seq): (usize, usize) = (t.parse().unwrap(), seq.parse().unwrap());
                    assert_eq!(p.payload.len(), size(seq), "{topic}");
                    assert!(
                        p.payload.iter().all(|&x| x == byte(t, seq)),
                        "{topic} corrupted"
                    );
                    assert_eq!(last[t].map_or(0, |l| l + 1), seq, "thread {t} out of order");
                    last[t] = Some(seq);
                    got += 1;
                }
                Some(Packet::PubAck(_)) => acks += 1,
                Some(Packet::PingReq) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        sender.join().unwrap();
        (got, acks)
    });
    let rt = runtime();
    let (c, _events) = client_on(ClientOptions::default(), rt.handle());
    rt.block_on(c.connect(&format!("unix://{}", path.display())))
        .unwrap();
    on_threads(&c, &rt, |t, c, h| {
        for seq in 0..PER_THREAD {
            let payload = vec![byte(t, seq); size(seq)];
            let topic = format!("{t}/{seq}");
            h.block_on(c.publish(&topic, &payload, QoS::AtMostOnce, false, Properties::new()))
                .unwrap_or_else(|e| panic!("{topic}: {e:?}"));
        }
    });
    let (got, acks) = broker.join().unwrap();
    assert_eq!((got, acks), (THREADS * PER_THREAD, INBOUND as usize));
    // Counted like the async way's.
    let stats = c.stats();
    assert_eq!(
        stats.messages_sent(QoS::AtMostOnce),
        (THREADS * PER_THREAD) as u64
    );
    let bytes: usize = (0..PER_THREAD).map(size).sum::<usize>() * THREADS;
    assert_eq!(stats.payload_bytes_sent(QoS::AtMostOnce), bytes as u64);
    let _ = std::fs::remove_file(&path);
}

/// Topic aliases (mosquitto's default max_topic_alias 10) assigned by
/// QoS 0 publishes on the callers' threads and by QoS 1 ones the async
/// way, over more topics than aliases (rebinding), with large payloads
/// now and then (partial writes): mosquitto disconnects (0x94) at an
/// alias used before its defining PUBLISH.
#[test]
fn aliases_from_both_paths_reach_mosquitto_in_order() {
    let broker = common::Broker::start();
    let rt = runtime();
    let (c, events) = client_on(ClientOptions::default(), rt.handle());
    rt.block_on(c.connect(&broker.url())).unwrap();
    events.connected();
    on_threads(&c, &rt, |t, c, h| {
        for seq in 0..400usize {
            let len = if seq % 50 == 7 { 400_000 } else { 20 };
            let payload = vec![byte(t, seq); len];
            let topic = format!("alias/{}", (seq * 7 + t) % 23);
            let qos = if seq % 3 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            };
            h.block_on(c.publish(&topic, &payload, qos, false, Properties::new()))
                .unwrap_or_else(|e| panic!("thread {t} #{seq} {topic}: {e:?}"));
        }
    });
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

/// A broker that resets the connection (closes it with the client's
/// bytes unread) while threads outside the runtime publish QoS 0 on
/// their own threads: every publish returns (none hangs), those after
/// the loss fail, and the loss is reported once.
#[test]
fn a_reset_under_caller_thread_writes_is_one_loss() {
    for round in 0..20 {
        let path = socket_path();
        let l = UnixListener::bind(&path).unwrap();
        let broker = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = BytesMut::new();
            let mut chunk = vec![0u8; 4096];
            loop {
                let n = s.read(&mut chunk).unwrap();
                b.extend_from_slice(&chunk[..n]);
                if let Some(Packet::Connect(_)) = packet::decode(&mut b, usize::MAX).unwrap() {
                    break;
                }
            }
            s.write_all(&connack_success()).unwrap();
            // Some of the publishes, then gone with the rest unread.
            let _ = s.read(&mut chunk);
            drop(s);
        });
        let rt = runtime();
        let (c, events) = client_on(ClientOptions::default(), rt.handle());
        rt.block_on(c.connect(&format!("unix://{}", path.display())))
            .unwrap();
        events.connected();
        on_threads(&c, &rt, |t, c, h| {
            for seq in 0.. {
                let payload = vec![byte(t, seq); 1 + (seq % 3) * 30_000];
                let r = h.block_on(c.publish(
                    "reset",
                    &payload,
                    QoS::AtMostOnce,
                    false,
                    Properties::new(),
                ));
                if r.is_err() {
                    return;
                }
            }
        });
        broker.join().unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            matches!(
                events.conn(),
                mqtt5c::client::ConnectionEvent::Disconnected(_)
            ),
            "round {round}"
        );
        let again = events.next(Duration::from_millis(200));
        assert!(
            !format!("{again:?}").contains("Disconnected"),
            "round {round}: lost twice: {again:?}"
        );
    }
}
