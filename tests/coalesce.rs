//! Write coalescing (flat combining, see src/client/writer.rs): packets
//! handed over while a write is in progress go out together after it, in
//! the order they were handed over, whole even when their callers give
//! up, and a failed write fails every caller whose bytes it carried.
//!
//! The broker here is a script on a Unix socket that stops reading after
//! CONNACK until the test says so. A large first publish then fills the
//! socket and keeps the writer busy, deterministically, while the other
//! publishes are handed over; a Unix socket's send buffer is fixed in
//! size (no TCP autotuning), so the rest of that large write takes a few
//! system calls, however the reader reads.

use bytes::BytesMut;
use common::events::client_on;
use mqtt5c::client::{ClientOptions, Error, MqttClient};
use mqtt5c::packet::{
    self, ConnAck, MqttStr, Packet, Properties, QoS, ReasonCode, SubscribeFilter,
    SubscriptionOptions,
};
use std::future::Future;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);
/// Larger than a Unix socket's send buffer (about 208 KiB by default), so
/// its write cannot complete while the broker does not read.
const BIG: usize = 4 << 20;
const SMALL: usize = 1000;

/// What the test tells the broker once the publishes are handed over.
enum Then {
    /// Read everything and report the packets.
    Read,
    /// Close the socket unread.
    Close,
}

/// A broker on a Unix socket: CONNACK, then nothing read until `go`.
struct Broker {
    path: PathBuf,
    go: mpsc::Sender<Then>,
    /// The packets read (topic, payload length) in order, for `Then::Read`.
    got: mpsc::Receiver<Vec<(String, usize)>>,
}

impl Broker {
    fn start(expected: usize) -> Broker {
        let path = std::env::temp_dir().join(format!(
            "mqtt5c-coalesce-{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        let (go, go_rx) = mpsc::channel();
        let (got_tx, got) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut buf = BytesMut::new();
            match next(&mut s, &mut buf) {
                Some(Packet::Connect(_)) => {}
                other => panic!("expected CONNECT, got {other:?}"),
            }
            let mut b = BytesMut::new();
            let ack = Packet::ConnAck(ConnAck {
                session_present: false,
                reason: ReasonCode::Success,
                properties: Properties::new(),
            });
            packet::encode(&ack, &mut b).unwrap();
            s.write_all(&b).unwrap();
            match go_rx.recv_timeout(WAIT) {
                Ok(Then::Read) => {}
                // Unread bytes make the close a reset: the client's
                // write in progress fails.
                _ => return,
            }
            let mut seen = Vec::new();
            while seen.len() < expected {
                match next(&mut s, &mut buf) {
                    Some(Packet::Publish(p)) => {
                        seen.push((p.topic.as_str().to_string(), p.payload.len()))
                    }
                    // The keep-alive, should the machine be that slow.
                    Some(Packet::PingReq) => {}
                    Some(other) => panic!("expected PUBLISH, got {other:?}"),
                    None => break,
                }
            }
            let _ = got_tx.send(seen);
        });
        Broker { path, go, got }
    }

    fn url(&self) -> String {
        format!("unix://{}", self.path.display())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The next packet; None at EOF. Panics on bytes that do not decode: a
/// packet cut short or interleaved with another.
fn next(s: &mut UnixStream, buf: &mut BytesMut) -> Option<Packet> {
    loop {
        if let Some(p) = packet::decode(buf, usize::MAX).expect("the client sent garbage") {
            return Some(p);
        }
        let mut chunk = vec![0u8; 1 << 20];
        match s.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("reading from the client: {e}"),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn client(rt: &tokio::runtime::Runtime) -> MqttClient {
    client_on(ClientOptions::default(), rt.handle()).0
}

/// Runs `f` and counts it in `polled` once its first poll returned: a
/// QoS 0 publish hands its bytes over in its first poll.
async fn count_first_poll<F: Future>(f: F, polled: Arc<AtomicUsize>) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut counted = false;
    std::future::poll_fn(|cx| {
        let r = f.as_mut().poll(cx);
        if !counted {
            counted = true;
            polled.fetch_add(1, Ordering::AcqRel);
        }
        r
    })
    .await
}

/// Waits (up to `WAIT`) until `cond` holds.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "{what} within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

type Publishing = tokio::task::JoinHandle<Result<mqtt5c::client::Ack, Error>>;

/// Connects, starts the large publish and waits until it holds the
/// writer (it has written, and cannot finish while the broker does not
/// read), then hands `SMALL` small publishes over behind it. Returns the
/// tasks (the large one first) and the write count once all are queued.
fn fill(rt: &tokio::runtime::Runtime, c: &MqttClient, broker: &Broker) -> (Vec<Publishing>, u64) {
    rt.block_on(c.connect(&broker.url())).unwrap();
    let before = c.stats().writes();
    let big = {
        let c = c.clone();
        rt.spawn(async move {
            let payload = vec![7u8; BIG];
            c.publish("big", &payload, QoS::AtMostOnce, false, Properties::new())
                .await
        })
    };
    wait_until("the large publish writing", || c.stats().writes() > before);
    let polled = Arc::new(AtomicUsize::new(0));
    let mut tasks = vec![big];
    for i in 0..SMALL {
        let c = c.clone();
        let polled = polled.clone();
        tasks.push(rt.spawn(async move {
            let topic = format!("small/{i}");
            let publish = c.publish(&topic, b"x", QoS::AtMostOnce, false, Properties::new());
            count_first_poll(publish, polled).await
        }));
    }
    wait_until("the small publishes handed over", || {
        polled.load(Ordering::Acquire) == SMALL
    });
    (tasks, c.stats().writes())
}

/// The small publishes handed over while the writer was busy go out in a
/// handful of system calls (without coalescing: one each), all whole,
/// after the large one.
#[test]
fn packets_handed_over_during_a_write_share_system_calls() {
    let rt = runtime();
    let broker = Broker::start(SMALL + 1);
    let c = client(&rt);
    let (tasks, queued) = fill(&rt, &c, &broker);
    broker.go.send(Then::Read).unwrap();
    for t in tasks {
        let r = rt.block_on(t).unwrap();
        assert!(r.is_ok(), "publish failed: {r:?}");
    }
    let got = broker.got.recv_timeout(WAIT).unwrap();
    assert_eq!(got.len(), SMALL + 1);
    assert_eq!(got[0], ("big".to_string(), BIG));
    let mut small: Vec<usize> = got[1..]
        .iter()
        .map(|(t, len)| {
            assert_eq!(*len, 1);
            t.strip_prefix("small/").unwrap().parse().unwrap()
        })
        .collect();
    small.sort_unstable();
    assert_eq!(small, (0..SMALL).collect::<Vec<_>>());
    // The rest of the large packet (a few MiB through a socket buffer of
    // about 208 KiB) and the batch of small ones.
    let writes = c.stats().writes() - queued;
    assert!(
        writes <= 100,
        "{writes} system calls for the rest of one large and {SMALL} small packets"
    );
    rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()))
        .ok();
}

/// Callers that give up (their tasks aborted) after handing their bytes
/// over, the one writing among them, leave no packet cut short and lose
/// nobody else's: the broker reads every packet whole.
#[test]
fn aborted_callers_leave_whole_packets() {
    let rt = runtime();
    let broker = Broker::start(SMALL + 1);
    let c = client(&rt);
    let (tasks, _) = fill(&rt, &c, &broker);
    // The large publish (writing) and every other small one give up.
    let mut kept = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if i % 2 == 0 {
            t.abort();
        } else {
            kept.push(t);
        }
    }
    broker.go.send(Then::Read).unwrap();
    for t in kept {
        let r = rt.block_on(t).unwrap();
        assert!(r.is_ok(), "publish failed: {r:?}");
    }
    let got = broker.got.recv_timeout(WAIT).unwrap();
    assert_eq!(got.len(), SMALL + 1, "packets lost");
    assert_eq!(got[0], ("big".to_string(), BIG));
    rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()))
        .ok();
}

/// When the write in progress fails, every caller whose bytes waited
/// behind it fails too (none hangs, none is told it was written).
#[test]
fn a_failed_write_fails_every_combined_caller() {
    let rt = runtime();
    let broker = Broker::start(SMALL + 1);
    let c = client(&rt);
    let (tasks, _) = fill(&rt, &c, &broker);
    broker.go.send(Then::Close).unwrap();
    for t in tasks {
        let r = rt.block_on(async { tokio::time::timeout(WAIT, t).await });
        let r = r.expect("a caller still waits").unwrap();
        assert!(matches!(r, Err(Error::ConnectionLost)), "{r:?}");
    }
}

/// Many tasks publishing at once on one client, QoS 0, 1 and 2 mixed:
/// each task's messages arrive in its order, none lost (QoS 1/2), through
/// a real broker.
#[test]
fn concurrent_publishers_keep_their_order() {
    use common::Broker as Mosquitto;
    const TASKS: usize = 8;
    const EACH: usize = 300;
    // mosquitto holds at most max_queued_messages (default 1000) QoS 1/2
    // messages per client beyond those in flight (our Receive Maximum,
    // 100) and drops the rest ("Outgoing messages are being dropped" in
    // its log). The publishers do not wait for the subscriber, so a
    // subscriber left behind by more than 1100 of the 2400 messages (its
    // threads starved on a loaded machine) lost some: a gap that read as
    // "message N out of order". Room for all of them rules that out.
    let mosquitto = Mosquitto::start_with("max_queued_messages 10000\n");
    let rt = runtime();
    let (sub, ev) = client_on(ClientOptions::default(), rt.handle());
    rt.block_on(sub.connect(&mosquitto.url())).unwrap();
    let filter = SubscribeFilter {
        filter: MqttStr::new("order/#").unwrap(),
        options: SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            ..Default::default()
        },
    };
    rt.block_on(sub.subscribe(vec![filter], Properties::new()))
        .unwrap();
    let publisher = client(&rt);
    rt.block_on(publisher.connect(&mosquitto.url())).unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let c = publisher.clone();
            rt.spawn(async move {
                let qos = [QoS::AtLeastOnce, QoS::ExactlyOnce][t % 2];
                for i in 0..EACH {
                    let payload = format!("{i}");
                    c.publish(
                        &format!("order/{t}"),
                        payload.as_bytes(),
                        qos,
                        false,
                        Properties::new(),
                    )
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    let mut next = [0usize; TASKS];
    for _ in 0..TASKS * EACH {
        let m = ev.msg_within(WAIT).expect("a message lost");
        let t: usize = m.topic.as_str()["order/".len()..].parse().unwrap();
        let i: usize = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
        assert_eq!(
            i, next[t],
            "task {t}: message {i} out of order (expected {})",
            next[t]
        );
        next[t] += 1;
    }
    assert!(next.iter().all(|&n| n == EACH));
}

mod common;
