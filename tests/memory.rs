//! Memory a broker can make the client use (issue 8), measured for real:
//! the client runs alone in a child process (this test binary run again
//! with `MQTT5C_MEMORY_SCENARIO` set, see [`child`]) and reports its
//! resident set size from /proc/self/status; the scripted broker runs in
//! the parent, so its own buffers are not counted. Bounds have generous
//! margins: they separate "about the bytes queued" from "many times them".

#[path = "scripted/mod.rs"]
mod scripted;

use mqtt5c::client::{ClientOptions, ConnectionEvent, Handler, MqttClient};
use mqtt5c::packet::{
    MqttStr, Packet, Properties, Property, Publish, ReasonCode, MAX_RECEIVED_PROPERTIES,
};
use scripted::{accept, Script};
use std::collections::HashMap;
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const SCENARIO: &str = "MQTT5C_MEMORY_SCENARIO";
const URL: &str = "MQTT5C_MEMORY_URL";
const MIB: u64 = 1024 * 1024;
/// What a child may grow by besides the messages: the drain job's thread,
/// read buffers, allocator slack.
const ALLOWANCE: u64 = 8 * MIB;
/// The longest a child waits for a condition.
const WAIT: Duration = Duration::from_secs(120);

// ------------------------------------------------------------ the parent

/// Runs `scenario` in a child process against the broker at `url` and
/// returns what it measured (name -> bytes).
fn run_child(scenario: &str, url: &str) -> HashMap<String, u64> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(SCENARIO, scenario)
        .env(URL, url)
        .output()
        .expect("running the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child '{scenario}' failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        // libtest may print "test child ... " on the same line first.
        .filter_map(|l| l.split_once("measure ").map(|(_, m)| m))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().parse().expect("a number")))
        .collect()
}

/// The encoded size of a packet, as the broker sends it.
fn wire_size(p: &Packet) -> u64 {
    mqtt5c::packet::encoded_len(p).unwrap() as u64
}

fn publish(topic: &str, properties: Properties, payload: Vec<u8>) -> Packet {
    Packet::Publish(Publish {
        topic: MqttStr::new(topic).unwrap(),
        properties,
        payload: payload.into(),
        ..Default::default()
    })
}

/// Accepts the child's connection and waits for its SUBSCRIBE, sent once
/// it measured its baseline.
fn accept_child(l: &TcpListener) -> scripted::Peer {
    let mut p = accept(l);
    p.expect_connect();
    p.connack(ReasonCode::Success, Properties::new());
    match p.expect("SUBSCRIBE") {
        Packet::Subscribe(s) => p.send(Packet::SubAck(mqtt5c::packet::SubAck {
            packet_id: s.packet_id,
            properties: Properties::new(),
            reasons: vec![ReasonCode::Success],
        })),
        other => panic!("expected SUBSCRIBE, got {other:?}"),
    }
    p
}

fn mib(b: u64) -> f64 {
    b as f64 / MIB as f64
}

/// Issue 8 #1: properties cost about their wire size, not 64 bytes each.
/// PUBLISHes packed with the most Subscription Identifiers we accept (2
/// bytes each on the wire) fill the delivery queue while the callback
/// waits; the client grows by less than 4 times the bytes it holds.
#[test]
fn queued_properties_cost_about_their_wire_size() {
    const QUEUE: u64 = 100;
    let ids: Properties = (0..MAX_RECEIVED_PROPERTIES)
        .map(|_| Property::SubscriptionIdentifier(1))
        .collect();
    let message = publish("ids", ids, Vec::new());
    let size = wire_size(&message);
    let script = Script::start(move |l| {
        let mut p = accept_child(&l);
        for _ in 0..QUEUE + 20 {
            p.send(message.clone());
        }
        p.send(publish("end", Properties::new(), Vec::new()));
        p.expect_disconnect();
    });
    let m = run_child(&format!("hold {QUEUE} {}", QUEUE + 21), &script.url());
    script.finish(WAIT).unwrap();
    let growth = m["full"].saturating_sub(m["baseline"]);
    // The queue, the message in the callback, one in the reader.
    let held = (QUEUE + 2) * size;
    println!(
        "{} messages of {size} bytes held: grew {:.1} MiB for {:.1} MiB",
        QUEUE + 2,
        mib(growth),
        mib(held)
    );
    assert!(
        growth <= 4 * held + ALLOWANCE,
        "grew {:.1} MiB holding {:.1} MiB of messages",
        mib(growth),
        mib(held)
    );
}

/// Six 32 MiB messages, each setting a topic alias when `alias`, then a
/// small one; returns the client's growth once every callback returned.
fn growth_after_big_messages(alias: bool) -> u64 {
    const BIG: usize = 32 << 20;
    let script = Script::start(move |l| {
        let mut p = accept_child(&l);
        for i in 1..=6u16 {
            let mut props = Properties::new();
            if alias {
                props.push(Property::TopicAlias(i));
            }
            p.send(publish(&format!("big/{i}"), props, vec![i as u8; BIG]));
        }
        p.send(publish("end", Properties::new(), Vec::new()));
        p.expect_disconnect();
    });
    let m = run_child("count 7 64", &script.url());
    script.finish(WAIT).unwrap();
    m["after"].saturating_sub(m["baseline"])
}

/// Issue 8 #3: the inbound topic-alias table keeps a copy of each topic,
/// not a view that keeps the whole received message alive. After six 32
/// MiB messages that each set an alias, the client is within one message
/// of where it is after six without aliases (the reader may hold on to
/// its last buffer either way).
#[test]
fn topic_aliases_do_not_keep_messages_alive() {
    let plain = growth_after_big_messages(false);
    let aliased = growth_after_big_messages(true);
    println!(
        "after six 32 MiB messages: grew {:.1} MiB without aliases, {:.1} MiB with",
        mib(plain),
        mib(aliased)
    );
    assert!(
        aliased <= plain + 32 * MIB,
        "grew {:.1} MiB with aliases, {:.1} MiB without",
        mib(aliased),
        mib(plain)
    );
}

/// Issue 8 #3, the same for the last DISCONNECT, which the client keeps
/// (`mqtt_disconnect_properties`): a copy, not a view of the buffer that
/// held a 32 MiB message before it. Once the connection is gone, the
/// client is back near its baseline.
#[test]
fn the_last_disconnect_does_not_keep_messages_alive() {
    let script = Script::start(|l| {
        let mut p = accept_child(&l);
        // One write, so that both share the client's read buffer.
        let mut b = bytes::BytesMut::new();
        let big = publish("big", Properties::new(), vec![7; 32 << 20]);
        mqtt5c::packet::encode(&big, &mut b).unwrap();
        let bye = Packet::Disconnect(mqtt5c::packet::Disconnect {
            reason: ReasonCode::ServerBusy,
            properties: scripted::props(vec![Property::ReasonString(scripted::s("bye"))]),
        });
        mqtt5c::packet::encode(&bye, &mut b).unwrap();
        p.send_raw(&b);
        p.expect_close();
    });
    let m = run_child("count 2 64", &script.url());
    script.finish(WAIT).unwrap();
    let growth = m["after"].saturating_sub(m["baseline"]);
    println!(
        "after a 32 MiB message and DISCONNECT: grew {:.1} MiB",
        mib(growth)
    );
    assert!(
        growth <= 16 * MIB,
        "grew {:.1} MiB after the connection ended",
        mib(growth)
    );
}

/// A small message read into the tail of a buffer that held a large
/// packet is a view of that buffer, and keeps all of it alive. A broker
/// alternating a large packet the client ignores (here a PUBACK for an
/// unknown packet id, carrying 256 KiB of User Properties) with a tiny
/// message makes each queued tiny message pin a buffer of about the large
/// packet's size: the queue holds a few KiB of messages and the client
/// hundreds of times that. The client must grow by about what it holds.
#[test]
fn small_messages_do_not_pin_the_buffers_of_ignored_packets() {
    const QUEUE: u64 = 100;
    let value = "v".repeat(65_000);
    let ignored = Packet::PubAck(mqtt5c::packet::PubResp {
        packet_id: 60_000,
        reason: ReasonCode::UnspecifiedError,
        properties: (0..4)
            .map(|_| Property::UserProperty(scripted::s("k"), scripted::s(&value)))
            .collect(),
    });
    let tiny = publish("t", Properties::new(), vec![1; 16]);
    let size = wire_size(&tiny);
    let script = Script::start(move |l| {
        let mut p = accept_child(&l);
        for _ in 0..QUEUE + 20 {
            p.send(ignored.clone());
            p.send(tiny.clone());
        }
        p.send(publish("end", Properties::new(), Vec::new()));
        p.expect_disconnect();
    });
    let m = run_child(&format!("hold {QUEUE} {}", QUEUE + 21), &script.url());
    script.finish(WAIT).unwrap();
    let growth = m["full"].saturating_sub(m["baseline"]);
    let held = (QUEUE + 2) * size;
    println!(
        "{} messages of {size} bytes held: grew {:.1} MiB for {:.1} KiB",
        QUEUE + 2,
        mib(growth),
        held as f64 / 1024.0
    );
    assert!(
        growth <= 4 * held + ALLOWANCE,
        "grew {:.1} MiB holding {:.1} KiB of messages",
        mib(growth),
        held as f64 / 1024.0
    );
}

// ------------------------------------------------------------- the child

/// Counts messages and lost connections; the first message's callback
/// can be held (see `hold`).
struct Counter {
    count: Mutex<usize>,
    changed: Condvar,
    /// While true, the first callback waits.
    holding: Mutex<bool>,
    released: Condvar,
}

impl Counter {
    fn new(hold: bool) -> Arc<Counter> {
        Arc::new(Counter {
            count: Mutex::new(0),
            changed: Condvar::new(),
            holding: Mutex::new(hold),
            released: Condvar::new(),
        })
    }

    fn release(&self) {
        *self.holding.lock().unwrap() = false;
        self.released.notify_all();
    }

    /// Waits until `n` callbacks have returned.
    fn wait_for(&self, n: usize) {
        let c = self.count.lock().unwrap();
        let (_c, t) = self
            .changed
            .wait_timeout_while(c, WAIT, |c| *c < n)
            .unwrap();
        assert!(
            !t.timed_out(),
            "{n} messages did not arrive within {WAIT:?}"
        );
    }
}

impl Handler for Counter {
    fn on_message(&self, m: Publish) {
        let h = self.holding.lock().unwrap();
        drop(self.released.wait_while(h, |h| *h).unwrap());
        // Dropped before it is counted, so a count means "returned".
        drop(m);
        *self.count.lock().unwrap() += 1;
        self.changed.notify_all();
    }
    /// A lost connection counts as a message.
    fn on_connection(&self, e: &ConnectionEvent) {
        if let ConnectionEvent::Disconnected(_) = e {
            *self.count.lock().unwrap() += 1;
            self.changed.notify_all();
        }
    }
}

/// VmRSS of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb * 1024
}

fn report(name: &str, bytes: u64) {
    println!("measure {name} {bytes}");
}

/// The client side of a memory test; does nothing unless run by one.
#[test]
#[ignore = "the client side of the memory tests, run by them in a child process"]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let url = std::env::var(URL).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let words: Vec<&str> = scenario.split(' ').collect();
    match words[..] {
        ["hold", queue, total] => hold(&rt, &url, queue.parse().unwrap(), total.parse().unwrap()),
        ["count", total, max_mib] => {
            count(&rt, &url, total.parse().unwrap(), max_mib.parse().unwrap())
        }
        _ => panic!("unknown scenario {scenario}"),
    }
}

fn subscribe(rt: &tokio::runtime::Runtime, c: &MqttClient) {
    let filter = mqtt5c::packet::SubscribeFilter {
        filter: MqttStr::new("#").unwrap(),
        options: Default::default(),
    };
    rt.block_on(c.subscribe(vec![filter], Properties::new()))
        .unwrap();
}

/// Connects, measures the baseline, subscribes (the broker's cue) and
/// holds the first callback until `queue` messages wait behind it; then
/// measures and lets all `total` messages through.
fn hold(rt: &tokio::runtime::Runtime, url: &str, queue: usize, total: usize) {
    let counter = Counter::new(true);
    let options = ClientOptions {
        delivery_queue_limit: queue,
        ..Default::default()
    };
    let c = MqttClient::new(options, counter.clone(), rt.handle().clone());
    rt.block_on(c.connect(url)).unwrap();
    report("baseline", rss());
    subscribe(rt, &c);
    let deadline = Instant::now() + WAIT;
    // No event says "the queue is full"; its peak is a statistic.
    while c.delivery_queue_peak() < queue {
        assert!(Instant::now() < deadline, "the queue did not fill");
        std::thread::sleep(Duration::from_millis(10));
    }
    report("full", rss());
    counter.release();
    counter.wait_for(total);
    rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()))
        .unwrap();
}

/// Connects accepting topic aliases and packets of up to `max_mib` MiB,
/// measures the baseline, subscribes (the broker's cue) and measures again
/// once `total` callbacks returned (a lost connection counts as one).
fn count(rt: &tokio::runtime::Runtime, url: &str, total: usize, max_mib: u32) {
    let counter = Counter::new(false);
    let mut options = ClientOptions {
        max_packet_size: max_mib << 20,
        ..Default::default()
    };
    options
        .connect_properties
        .set(Property::TopicAliasMaximum(16));
    let c = MqttClient::new(options, counter.clone(), rt.handle().clone());
    rt.block_on(c.connect(url)).unwrap();
    report("baseline", rss());
    subscribe(rt, &c);
    counter.wait_for(total);
    report("after", rss());
    // Fails when the broker disconnected already.
    let _ = rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()));
}
