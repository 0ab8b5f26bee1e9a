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

/// Room in the subscriber's Receive Maximum for every message of the
/// ordered streams below, so that mosquitto never holds one back in its
/// queue for the subscriber. Its queue can reorder: mosquitto 2.0.11
/// (Debian 12's; fixed in 2.0.13, upstream commit 330bf6ef, issues 2301
/// and 2306) sends a message that arrives while older ones wait in that
/// queue straight away, ahead of them, when the acknowledgement before
/// it was for a message with a Receive Maximum's worth of others still
/// unacknowledged ahead of it in flight: its db__message_delete_outgoing
/// refills the flight by list position, not by quota, and so leaves a
/// slot of quota free with the queue not empty. A subscriber that keeps
/// QoS 2 messages waiting for PUBREL/PUBCOMP while it acknowledges the
/// QoS 1 ones after them (as any does when the PUBRELs queue behind
/// PUBLISHes in its socket) gets there. The order it then sees is the
/// broker's, whatever the client does; see
/// `the_ordered_streams_subscriber_never_meets_the_brokers_queue_reorder`.
const STREAM_ROOM: u16 = 10_000;

/// The subscriber of the ordered streams (see [`STREAM_ROOM`]). Its
/// Receive Maximum must be sent: one of 65535 is not, and mosquitto then
/// takes its `max_inflight_messages` (20).
fn stream_subscriber(client_id: &str) -> ClientOptions {
    ClientOptions {
        client_id: MqttStr::new(client_id).unwrap(),
        receive_maximum: STREAM_ROOM,
        ..ClientOptions::default()
    }
}

/// The broker of the ordered streams: room in its queue should anything
/// be queued after all, and its debug log, whose "Sending PUBLISH" lines
/// tell the order in which it sent each message (see [`OrderReport`]).
fn stream_broker() -> common::Broker {
    // mosquitto holds at most max_queued_messages (default 1000) QoS 1/2
    // messages per client beyond those in flight and drops the rest.
    common::Broker::start_with("max_queued_messages 10000\nlog_type debug\n")
}

/// Subscribes `sub` to `filter` at QoS 2, then connects a publisher
/// (`client`) to `broker` and returns it.
fn subscribe_and_connect_publisher(
    rt: &tokio::runtime::Runtime,
    sub: &MqttClient,
    filter: &str,
    broker: &common::Broker,
) -> MqttClient {
    let filter = SubscribeFilter {
        filter: MqttStr::new(filter).unwrap(),
        options: SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            ..Default::default()
        },
    };
    rt.block_on(sub.subscribe(vec![filter], Properties::new()))
        .unwrap();
    let publisher = client(rt);
    rt.block_on(publisher.connect(&broker.url())).unwrap();
    publisher
}

/// Many tasks publishing at once on one client, QoS 0, 1 and 2 mixed:
/// each task's messages arrive in its order, none lost (QoS 1/2), through
/// a real broker. Each task publishes its next message once the last one
/// is acknowledged, so the broker has each message routed to the
/// subscriber before the next one reaches it (QoS 1: before its PUBACK;
/// QoS 2: at PUBREL, before PUBCOMP), and must send them in that order
/// (MQTT-4.6.0-6). A failure says which message came instead, where the
/// missing one came (or that it never did), and in which order the
/// broker sent them (its log), so that it tells a reorder by the broker
/// from one in the client.
#[test]
fn concurrent_publishers_keep_their_order() {
    const TASKS: usize = 8;
    const EACH: usize = 300;
    let mosquitto = stream_broker();
    let rt = runtime();
    let (sub, ev) = client_on(stream_subscriber("order-sub"), rt.handle());
    rt.block_on(sub.connect(&mosquitto.url())).unwrap();
    let publisher = subscribe_and_connect_publisher(&rt, &sub, "order/#", &mosquitto);
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
    // Every message as it arrived, per task, before any verdict: a
    // failure then tells whether the one missing came later.
    let mut got = vec![Vec::new(); TASKS];
    for _ in 0..TASKS * EACH {
        let Some(m) = ev.msg_within(WAIT) else {
            break;
        };
        let t: usize = m.topic.as_str()["order/".len()..].parse().unwrap();
        let i: usize = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
        got[t].push((i, m.packet_id));
    }
    for (t, arrived) in got.iter().enumerate() {
        if let Some(report) = OrderReport::check(&format!("order/{t}"), arrived, EACH) {
            panic!(
                "task {t}: {}",
                report.explain(&mosquitto.log(), "order-sub")
            );
        }
    }
}

/// What went wrong with one stream: the first message out of place.
struct OrderReport<'a> {
    topic: &'a str,
    /// The stream's messages (number, packet id) as they arrived.
    arrived: &'a [(usize, Option<u16>)],
    /// Where the first one out of place arrived (`arrived.len()` when the
    /// stream is only short): message `at` was due there.
    at: usize,
    /// How many messages the stream has.
    count: usize,
}

impl<'a> OrderReport<'a> {
    /// None when `arrived` is 0, 1, ... `count` - 1, in that order.
    fn check(
        topic: &'a str,
        arrived: &'a [(usize, Option<u16>)],
        count: usize,
    ) -> Option<OrderReport<'a>> {
        let at = arrived
            .iter()
            .enumerate()
            .position(|(k, &(i, _))| i != k)
            .or_else(|| (arrived.len() != count).then_some(arrived.len()))?;
        Some(OrderReport {
            topic,
            arrived,
            at,
            count,
        })
    }

    /// The verdict with the evidence: what came instead and around it,
    /// whether and where the missing message came, and the broker's send
    /// order from its debug log (`log`, "Sending PUBLISH to `client`").
    fn explain(&self, log: &str, client: &str) -> String {
        let show = |r: &[(usize, Option<u16>)]| {
            r.iter()
                .map(|(i, id)| format!("{i} (m{})", id.unwrap_or(0)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let due = self.at;
        let mut out = match self.arrived.get(self.at) {
            Some((i, _)) => format!(
                "message {i} out of order (expected {due}) on {}",
                self.topic
            ),
            None => format!(
                "{} of the messages on {} arrived, no more within {WAIT:?}",
                self.arrived.len(),
                self.topic,
            ),
        };
        let later = self.arrived.iter().position(|&(i, _)| i == due);
        match later {
            _ if due >= self.count => out += "\nall of them came, and then more: a duplicate",
            Some(p) => {
                out += &format!(
                    "\nmessage {due} came later: a reorder; it arrived at position {p}, not {}",
                    self.at
                )
            }
            None => out += &format!("\nmessage {due} never came: a loss"),
        }
        let from = self.at.saturating_sub(3);
        let to = (later.unwrap_or(self.at) + 3).min(self.arrived.len());
        out += &format!(
            "\narrived (number (packet id)), from position {from}: {}",
            show(&self.arrived[from..to])
        );
        // The broker's view: the packet ids in the order it sent them on
        // this topic, first sends only (DUP 0).
        let needle = format!("Sending PUBLISH to {client} (d0, ");
        let quoted = format!("'{}'", self.topic);
        let sent: Vec<u16> = log
            .lines()
            .filter_map(|l| {
                let rest = &l[l.find(&needle)? + needle.len()..];
                // "q1, r0, m123, 'order/6', ... (3 bytes))"
                let mut fields = rest.splitn(4, ", ");
                let (_q, _r, m, topic) = (
                    fields.next()?,
                    fields.next()?,
                    fields.next()?,
                    fields.next()?,
                );
                topic.starts_with(&quoted).then_some(())?;
                m.strip_prefix('m')?.parse().ok()
            })
            .collect();
        let ours: Vec<u16> = self.arrived.iter().filter_map(|&(_, id)| id).collect();
        if sent.is_empty() {
            out += "\nthe broker's log has no \"Sending PUBLISH\" lines for it (log_type debug?)";
        } else if sent.starts_with(&ours) {
            out += &format!(
                "\nthe broker sent them in the order they arrived (its log, {} sends): \
                 the reorder is the broker's",
                sent.len()
            );
        } else {
            let k = sent
                .iter()
                .zip(&ours)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            out += &format!(
                "\nthe broker sent them in another order (its log): from send {k} on it sent \
                 m{:?}, we delivered m{:?}: the reorder is ours",
                &sent[k..(k + 6).min(sent.len())],
                &ours[k..(k + 6).min(ours.len())]
            );
        }
        out
    }
}

/// A message as the manual-acknowledgement handler saw it.
struct Seen {
    topic: String,
    /// Its payload, a number.
    n: usize,
    packet_id: Option<u16>,
    ack_id: u64,
}

/// Hands the messages over with their ack ids (manual acknowledgement),
/// for the test to acknowledge when it chooses.
struct ManualAck(std::sync::Mutex<mpsc::Sender<Seen>>);

impl mqtt5c::client::Handler for ManualAck {
    fn on_message(&self, _: mqtt5c::packet::Publish) {}
    fn on_message_with_ack(&self, m: mqtt5c::packet::Publish, ack_id: u64) -> bool {
        let seen = Seen {
            topic: m.topic.as_str().to_string(),
            n: std::str::from_utf8(&m.payload).unwrap().parse().unwrap(),
            packet_id: m.packet_id,
            ack_id,
        };
        let _ = self.0.lock().unwrap().send(seen);
        true
    }
    fn on_connection(&self, _: &mqtt5c::client::ConnectionEvent) {}
}

/// The subscriber of the ordered streams is clear of mosquitto's queue
/// reorder (see [`STREAM_ROOM`]), which this sets up deterministically
/// for a subscriber with the default Receive Maximum (100): 101 QoS 2
/// messages, then a stream of 101 QoS 1 ones, are published; the first
/// QoS 2 message is acknowledged (mosquitto then refills its flight with
/// 100 from its queue, the QoS 1 stream's first 99 among them), then the
/// stream's first message, with 100 QoS 2 ones still unacknowledged ahead
/// of it; a new message on the stream then overtakes the two still
/// queued. Acknowledging the QoS 1 message while earlier QoS 2 ones wait
/// is what a subscriber does whose PUBRELs wait behind PUBLISHes; the
/// orders the spec prescribes (PUBACKs among themselves, PUBRECs among
/// themselves) are kept.
#[test]
fn the_ordered_streams_subscriber_never_meets_the_brokers_queue_reorder() {
    const HELD: usize = 101;
    const STREAM: usize = 101;
    let mosquitto = stream_broker();
    let rt = runtime();
    let (tx, acks) = mpsc::channel();
    let opts = ClientOptions {
        manual_ack: true,
        ..stream_subscriber("order-acks")
    };
    let handler = Arc::new(ManualAck(std::sync::Mutex::new(tx)));
    let sub = MqttClient::new(opts, handler, rt.handle().clone());
    rt.block_on(sub.connect(&mosquitto.url())).unwrap();
    let publisher = subscribe_and_connect_publisher(&rt, &sub, "o/#", &mosquitto);
    let publish = |topic: &str, n: usize, qos: QoS| {
        let payload = n.to_string();
        let p = publisher.publish(topic, payload.as_bytes(), qos, false, Properties::new());
        rt.block_on(p).unwrap();
    };
    for n in 0..HELD {
        publish("o/held", n, QoS::ExactlyOnce);
    }
    for n in 0..STREAM {
        publish("o/stream", n, QoS::AtLeastOnce);
    }
    let next = || acks.recv_timeout(WAIT).expect("a message lost");
    let ack = |m: &Seen| sub.ack(m.ack_id, ReasonCode::Success).unwrap();
    let first = next();
    assert_eq!((first.topic.as_str(), first.n), ("o/held", 0));
    ack(&first);
    // The other held messages stay unacknowledged until the stream's
    // first is.
    let mut unacked = Vec::new();
    let mut stream = Vec::new();
    let first_on_stream = loop {
        let m = next();
        if m.topic == "o/stream" {
            break m;
        }
        unacked.push(m);
    };
    stream.push((first_on_stream.n, first_on_stream.packet_id));
    ack(&first_on_stream);
    // The broker has taken that acknowledgement before the next message
    // on the stream reaches it.
    let puback = format!(
        "Received PUBACK from order-acks (Mid: {},",
        first_on_stream.packet_id.unwrap()
    );
    wait_until("the broker taking the PUBACK", || {
        mosquitto.log().contains(&puback)
    });
    publish("o/stream", STREAM, QoS::AtLeastOnce);
    for m in &unacked {
        ack(m);
    }
    while stream.len() < STREAM + 1 {
        let m = next();
        if m.topic == "o/stream" {
            stream.push((m.n, m.packet_id));
        }
        ack(&m);
    }
    if let Some(report) = OrderReport::check("o/stream", &stream, STREAM + 1) {
        panic!("{}", report.explain(&mosquitto.log(), "order-acks"));
    }
}

mod common;
