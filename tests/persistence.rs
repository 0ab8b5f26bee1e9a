//! Persistence across a crash, with real faults: a C publisher process
//! (tests/c/helpers/persist_pub.c) with a persistence directory is killed
//! with SIGKILL in the middle of a pipelined QoS 1 stream, while the last
//! messages it wrote never reached the broker (a proxy swallows them: the
//! uplink went dead, as a blackholed network does). Started again with the
//! same client id and directory, it resends them: every message whose
//! `mqtt_publish_async` returned `MQTT5C_OK` arrives at a subscriber.
//!
//! With MQTT5C_VALGRIND=1 the publisher runs under valgrind, like the C
//! tests (tests/c_api.rs).

mod common;

use common::cprog::{self, scaled};
use common::proxy::Proxy;
use common::{Broker, TempDir};
use mqtt5c::client::{ClientOptions, ConnectionEvent, Handler, MqttClient};
use mqtt5c::packet::{MqttStr, Properties, Publish, QoS, SubscribeFilter, SubscriptionOptions};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The publisher helper, compiled once per test process: the tests run in
/// parallel, and one must not run the file another is writing.
fn publisher_exe() -> PathBuf {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(|| cprog::compile("tests/c/helpers/persist_pub.c", "persist_pub"))
        .clone()
}

/// A running publisher helper: its stdout lines arrive on `lines`.
struct Publisher {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Publisher {
    /// Starts the helper; `clean`: with Clean Start 1; `offline`: the
    /// second batch waits for the connection to be lost (see the helper).
    fn start(exe: &Path, url: &str, dir: &Path, counts: (u32, u32), mode: Mode) -> Publisher {
        let (count1, count2) = counts;
        let mut child = cprog::command(exe)
            .args([url, &dir.display().to_string()])
            .args([count1.to_string(), count2.to_string()])
            .env("PERSIST_CLEAN", if mode.clean { "1" } else { "0" })
            .env("PERSIST_OFFLINE", if mode.offline { "1" } else { "0" })
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the publisher");
        let lines = cprog::lines(child.stdout.take().unwrap(), false);
        let stdin = child.stdin.take();
        Publisher {
            child,
            stdin,
            lines,
        }
    }

    /// The next line, within `within`.
    fn line(&self, within: Duration) -> Option<String> {
        self.lines.recv_timeout(within).ok()
    }

    /// Reads accepted numbers into `into` until the line `until`.
    fn numbers_until(&self, until: &str, into: &mut BTreeSet<u32>) {
        loop {
            let line = self
                .line(scaled(20))
                .unwrap_or_else(|| panic!("no line '{until}' from the publisher"));
            if line == until {
                return;
            }
            into.insert(line.parse().expect("a number"));
        }
    }

    /// Lets the publisher go on after "paused".
    fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }
}

/// How the helper runs (see tests/c/helpers/persist_pub.c).
#[derive(Clone, Copy, Default)]
struct Mode {
    /// Clean Start 1.
    clean: bool,
    /// The second batch after the connection was lost: queued offline.
    offline: bool,
}

/// The numbers a subscriber received.
#[derive(Default)]
struct Received {
    seen: Mutex<(BTreeSet<u32>, usize)>,
    more: Condvar,
}

impl Handler for Received {
    fn on_message(&self, m: Publish) {
        let n: u32 = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
        let mut s = self.seen.lock().unwrap();
        s.0.insert(n);
        s.1 += 1;
        self.more.notify_all();
    }
    fn on_connection(&self, _: &ConnectionEvent) {}
}

impl Received {
    /// Waits until every number of `want` arrived; returns those missing.
    fn wait_for(&self, want: &BTreeSet<u32>, within: Duration) -> Vec<u32> {
        let deadline = Instant::now() + within;
        let mut s = self.seen.lock().unwrap();
        loop {
            let missing: Vec<u32> = want.difference(&s.0).copied().collect();
            let left = deadline.saturating_duration_since(Instant::now());
            if missing.is_empty() || left.is_zero() {
                return missing;
            }
            s = self.more.wait_timeout(s, left).unwrap().0;
        }
    }
}

/// The subscriber of a test: a Rust client on `broker`, subscribed to the
/// helper's topic at QoS 1.
async fn subscriber(broker: &Broker) -> (MqttClient, Arc<Received>) {
    let received = Arc::new(Received::default());
    let sub = MqttClient::new(
        ClientOptions {
            client_id: MqttStr::new("persist-sub").unwrap(),
            ..Default::default()
        },
        received.clone(),
        tokio::runtime::Handle::current(),
    );
    sub.connect(&broker.url()).await.unwrap();
    let filter = SubscribeFilter {
        filter: MqttStr::new("persist/kill").unwrap(),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
    };
    sub.subscribe(vec![filter], Properties::new())
        .await
        .unwrap();
    (sub, received)
}

/// A publisher whose connection is gone (the proxy it used stopped)
/// queues what it publishes; killed, then started again, it publishes
/// what it had queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_publisher_publishes_what_it_queued() {
    let exe = publisher_exe();
    let broker = Broker::start();
    let proxy = Proxy::start(broker.port());
    let store = TempDir::new("mqtt5c-persist").unwrap();
    let (sub, received) = subscriber(&broker).await;

    let offline = Mode {
        offline: true,
        ..Mode::default()
    };
    let mut publisher = Publisher::start(&exe, &proxy.url(), store.path(), (100, 50), offline);
    let mut before = BTreeSet::new();
    tokio::task::block_in_place(|| publisher.numbers_until("paused", &mut before));
    // The proxy closes the connection and accepts no more: the client
    // reconnects in vain, and queues.
    drop(proxy);
    publisher.go();
    let mut queued = BTreeSet::new();
    tokio::task::block_in_place(|| publisher.numbers_until("idle", &mut queued));
    publisher.child.kill().unwrap();
    publisher.child.wait().unwrap();
    assert_eq!(queued.len(), 50, "every publish was accepted (queued)");

    let mut again = Publisher::start(&exe, &broker.url(), store.path(), (0, 0), Mode::default());
    tokio::task::block_in_place(|| {
        again.numbers_until("paused", &mut BTreeSet::new());
        again.go();
        again.numbers_until("idle", &mut BTreeSet::new());
    });
    let all: BTreeSet<u32> = before.union(&queued).copied().collect();
    let missing = tokio::task::block_in_place(|| received.wait_for(&all, scaled(20)));
    assert!(
        missing.is_empty(),
        "queued by the killed publisher but never delivered: {missing:?}"
    );
    drop(again.stdin.take());
    let status = tokio::task::block_in_place(|| again.child.wait()).unwrap();
    assert!(
        status.success(),
        "the second publisher exited with {status}"
    );
    sub.disconnect(mqtt5c::packet::ReasonCode::Success, Properties::new())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_publisher_resends_what_it_accepted() {
    killed_then_started_again(false).await;
}

/// Started again with Clean Start 1, the client finds no session on the
/// broker: what the killed one accepted is published afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_publisher_started_clean_publishes_afresh() {
    killed_then_started_again(true).await;
}

/// Kills a publisher in the middle of a stream whose last messages never
/// reached the broker, starts it again (with Clean Start `clean` the
/// second time), and checks that everything it had accepted arrives.
async fn killed_then_started_again(clean: bool) {
    let exe = publisher_exe();
    let broker = Broker::start();
    let proxy = Proxy::start(broker.port());
    let store = TempDir::new("mqtt5c-persist").unwrap();
    let (sub, received) = subscriber(&broker).await;

    // 1: 200 messages through the proxy, all delivered; then the proxy
    // swallows what the publisher writes (the uplink went dead without a
    // word), and the publisher goes on: it accepts what the broker's
    // Receive Maximum allows in flight, none of which reaches the broker,
    // and is killed once 10 were accepted.
    let counts = (200, 1_000_000);
    let mut publisher = Publisher::start(&exe, &proxy.url(), store.path(), counts, Mode::default());
    let mut before = BTreeSet::new();
    tokio::task::block_in_place(|| {
        publisher.numbers_until("paused", &mut before);
        let missing = received.wait_for(&before, scaled(20));
        assert!(
            missing.is_empty(),
            "not delivered before the cut: {missing:?}"
        );
    });
    proxy.swallow_upstream();
    publisher.go();
    let mut cut_off = BTreeSet::new();
    while cut_off.len() < 10 {
        let line = tokio::task::block_in_place(|| publisher.line(scaled(20)))
            .expect("the publisher stopped accepting messages");
        cut_off.insert(line.parse::<u32>().expect("a number"));
    }
    publisher.child.kill().unwrap();
    publisher.child.wait().unwrap();
    // Lines written before the kill are still in the pipe.
    while let Some(line) = publisher.line(Duration::ZERO) {
        cut_off.insert(line.parse::<u32>().expect("a number"));
    }

    // 2: started again with the same id and directory, publishing nothing
    // new: its resends bring the messages the broker never got.
    let mode = Mode {
        clean,
        ..Mode::default()
    };
    let mut again = Publisher::start(&exe, &broker.url(), store.path(), (0, 0), mode);
    tokio::task::block_in_place(|| {
        again.numbers_until("paused", &mut BTreeSet::new());
        again.go();
        again.numbers_until("idle", &mut BTreeSet::new());
    });
    let missing = tokio::task::block_in_place(|| received.wait_for(&cut_off, scaled(20)));
    assert!(
        missing.is_empty(),
        "accepted by the killed publisher but never delivered: {missing:?} (of {} accepted \
         after the cut)",
        cut_off.len()
    );
    drop(again.stdin.take());
    let status = tokio::task::block_in_place(|| again.child.wait()).unwrap();
    assert!(
        status.success(),
        "the second publisher exited with {status}"
    );
    let dups = {
        let s = received.seen.lock().unwrap();
        s.1 - s.0.len()
    };
    println!(
        "{} accepted before the cut, {} after it, all delivered ({dups} duplicates)",
        before.len(),
        cut_off.len()
    );
    let _ = std::io::stdout().flush();
    sub.disconnect(mqtt5c::packet::ReasonCode::Success, Properties::new())
        .await
        .unwrap();
}
