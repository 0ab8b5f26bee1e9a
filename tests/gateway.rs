//! Manual acknowledgement with real faults (issue 9), and the gateway
//! example (examples-c/gateway.c) between two private mosquittos.
//!
//! - A subscriber process with manual acknowledgement
//!   (tests/c/helpers/manual_sub.c) receives QoS 1 and QoS 2 messages and
//!   is killed with SIGKILL before it acknowledges them: started again with
//!   the same client id, it gets them all again from the broker.
//! - The gateway forwards a stream from broker A to broker B; killed with
//!   SIGKILL in the middle of it, while its uplink to B is dead, and
//!   started again, it loses nothing; it stops cleanly on SIGTERM.
//!
//! With MQTT5C_VALGRIND=1 the C processes run under valgrind.

mod common;

use common::cprog::{self, compile, scaled, valgrind};
use common::proxy::Proxy;
use common::{Broker, TempDir};
use mqtt5c::client::{ClientOptions, ConnectionEvent, Handler, MqttClient};
use mqtt5c::packet::{
    MqttStr, Properties, Publish, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A C process whose stdout (`out`) or stderr (`err`) lines arrive on
/// `lines`; its stdin stays open until `close_stdin`.
struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Process {
    fn start(exe: &Path, args: &[&str], from_stderr: bool) -> Process {
        let mut cmd = cprog::command(exe);
        cmd.args(args);
        if from_stderr {
            cmd.stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("start the C process");
        let lines = match from_stderr {
            true => cprog::lines(child.stderr.take().unwrap(), true),
            false => cprog::lines(child.stdout.take().unwrap(), false),
        };
        let stdin = child.stdin.take();
        Process {
            child,
            stdin,
            lines,
        }
    }

    /// Reads lines until `want`; panics after `within`.
    fn wait_line(&self, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l == want => return,
                Ok(_) => {}
                Err(_) => panic!("no line '{want}' from the C process"),
            }
        }
    }

    fn kill(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    /// Closes stdin and waits for a successful exit.
    fn finish(&mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the C process exited with {status}");
    }
}

/// A test that fails must not leave its C process running: the test
/// harness would wait for its output pipe.
impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a subscriber received: payload -> times.
#[derive(Default)]
struct Received {
    seen: Mutex<BTreeMap<String, usize>>,
    more: Condvar,
}

impl Handler for Received {
    fn on_message(&self, m: Publish) {
        let p = String::from_utf8_lossy(&m.payload).into_owned();
        *self.seen.lock().unwrap().entry(p).or_default() += 1;
        self.more.notify_all();
    }
    fn on_connection(&self, _: &ConnectionEvent) {}
}

impl Received {
    /// Waits until every payload of `want` arrived; returns those missing.
    fn wait_for(&self, want: &BTreeSet<String>, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut s = self.seen.lock().unwrap();
        loop {
            let missing: Vec<String> = want
                .iter()
                .filter(|p| !s.contains_key(*p))
                .cloned()
                .collect();
            let left = deadline.saturating_duration_since(Instant::now());
            if missing.is_empty() || left.is_zero() {
                return missing;
            }
            s = self.more.wait_timeout(s, left).unwrap().0;
        }
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn client(url: &str, id: &str, received: Arc<Received>) -> MqttClient {
    let c = MqttClient::new(
        ClientOptions {
            client_id: MqttStr::new(id).unwrap(),
            ..Default::default()
        },
        received,
        tokio::runtime::Handle::current(),
    );
    c.connect(url).await.unwrap();
    c
}

async fn publish(c: &MqttClient, topic: &str, payload: &str, qos: QoS) {
    c.publish(topic, payload.as_bytes(), qos, false, Properties::new())
        .await
        .unwrap();
}

/// Reads "PAYLOAD DUP" lines from a manual_sub helper until every payload
/// of `want` came; returns payload -> dup flag.
fn read_messages(p: &Process, want: &BTreeSet<String>) -> BTreeMap<String, bool> {
    let deadline = Instant::now() + scaled(20);
    let mut got = BTreeMap::new();
    while !want.iter().all(|w| got.contains_key(w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = p
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("only {got:?} of {want:?}"));
        if let Some((payload, dup)) = line.rsplit_once(' ') {
            got.insert(payload.to_string(), dup == "1");
        }
    }
    got
}

/// A subscriber with manual acknowledgement killed before it acknowledged:
/// the broker sends everything again to its next run (issue 9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_subscriber_gets_what_it_had_not_acknowledged() {
    let exe = compile("tests/c/helpers/manual_sub.c", "manual_sub");
    let broker = Broker::start();
    let url = broker.url();
    let publisher = client(&url, "manual-pub", Arc::default()).await;

    let mut first = Process::start(&exe, &[&url, "0"], false);
    tokio::task::block_in_place(|| first.wait_line("ready", scaled(20)));
    let mut want = BTreeSet::new();
    for i in 0..5 {
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let payload = format!("q{}-{i}", qos as u8);
            publish(&publisher, "manual/kill", &payload, qos).await;
            want.insert(payload);
        }
    }
    let got = tokio::task::block_in_place(|| read_messages(&first, &want));
    assert!(got.values().all(|dup| !dup), "first deliveries: {got:?}");
    first.kill();

    // Acknowledging this time; each message comes again, flagged DUP.
    let mut second = Process::start(&exe, &[&url, "1"], false);
    let got = tokio::task::block_in_place(|| read_messages(&second, &want));
    assert!(
        got.values().all(|dup| *dup),
        "not all resent (DUP): {got:?}"
    );
    tokio::task::block_in_place(|| second.finish());

    // Acknowledged: nothing is resent to the third; the marker comes first.
    let mut third = Process::start(&exe, &[&url, "1"], false);
    tokio::task::block_in_place(|| third.wait_line("ready", scaled(20)));
    publish(&publisher, "manual/kill", "marker", QoS::AtLeastOnce).await;
    let line =
        tokio::task::block_in_place(|| third.lines.recv_timeout(scaled(20))).expect("the marker");
    assert_eq!(line, "marker 0", "resent after its acknowledgement");
    tokio::task::block_in_place(|| third.finish());
    publisher
        .disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
}

/// Waits, polling, until `cond` holds (a counter of the proxy).
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + scaled(20);
    while !cond() {
        assert!(Instant::now() < deadline, "not in time: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The gateway example forwards A's "src/#" to B under "fwd/". Its uplink
/// to B goes dead (a proxy swallows what it sends) in the middle of a
/// stream, and it is killed with SIGKILL while it holds messages it took
/// from A and B never got; started again (straight to B), it loses
/// nothing. SIGTERM then stops it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_forwards_through_its_own_crash() {
    let exe = compile("examples-c/gateway.c", "gateway");
    // Messages for the gateway's session wait while it is down.
    let a = Broker::start_with("max_queued_messages 0\n");
    let b = Broker::start();
    let proxy = Proxy::start(b.port());
    let store = TempDir::new("mqtt5c-gateway").unwrap();
    let received = Arc::new(Received::default());
    let sub = client(&b.url(), "gw-sub", received.clone()).await;
    let filter = SubscribeFilter {
        filter: MqttStr::new("fwd/src/#").unwrap(),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
    };
    sub.subscribe(vec![filter], Properties::new())
        .await
        .unwrap();
    let publisher = client(&a.url(), "gw-pub", Arc::default()).await;
    let dir = store.path().display().to_string();
    let (a_url, proxy_url, b_url) = (a.url(), proxy.url(), b.url());
    let through_proxy = [a_url.as_str(), "src/#", &proxy_url, &dir, "fwd/"];

    let mut gw = Process::start(&exe, &through_proxy, true);
    tokio::task::block_in_place(|| gw.wait_line("subscribed", scaled(20)));
    let n = if valgrind() { 300 } else { 1000 };
    let all: BTreeSet<String> = (0..n).map(|i| i.to_string()).collect();
    // The first tenth, all through.
    let tenth = n / 10;
    for i in 0..tenth {
        publish(&publisher, "src/x", &i.to_string(), QoS::AtLeastOnce).await;
    }
    let first: BTreeSet<String> = (0..tenth).map(|i| i.to_string()).collect();
    let missing = tokio::task::block_in_place(|| received.wait_for(&first, scaled(20)));
    assert!(missing.is_empty(), "not forwarded: {missing:?}");
    // The uplink goes dead; the rest is published meanwhile.
    proxy.swallow_upstream();
    for i in tenth..n {
        publish(&publisher, "src/x", &i.to_string(), QoS::AtLeastOnce).await;
    }
    // Killed once it has forwarded into the void: it holds messages that
    // B never got.
    // (B's Receive Maximum, 20, stops it at about 260 bytes.)
    until("forwards written into the dead uplink", || {
        proxy.swallowed() > 100
    })
    .await;
    gw.kill();
    let at_kill = received.count();
    assert!(
        at_kill < n,
        "everything arrived before the kill: nothing tested"
    );
    drop(proxy);

    let straight = [a_url.as_str(), "src/#", &b_url, &dir, "fwd/"];
    let mut again = Process::start(&exe, &straight, true);
    let missing = tokio::task::block_in_place(|| received.wait_for(&all, scaled(30)));
    assert!(
        missing.is_empty(),
        "{} lost by the gateway killed at {at_kill}: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    let dups: usize = received.seen.lock().unwrap().values().map(|c| c - 1).sum();
    println!("{n} forwarded through a kill at {at_kill}; {dups} duplicates");
    // SIGTERM: a clean stop, exit status 0.
    let pid = again.child.id().to_string();
    let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(ok.success());
    let status = tokio::task::block_in_place(|| again.child.wait()).unwrap();
    assert!(
        status.success(),
        "the gateway exited with {status} on SIGTERM"
    );
    sub.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
    publisher
        .disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
}

/// A gateway between two private brokers whose destination has just gone
/// down (the gateway saw it), for outage tests.
struct Outage {
    a: Broker,
    b: Broker,
    _store: TempDir,
    gw: Process,
    publisher: MqttClient,
}

impl Outage {
    async fn start(id: &str) -> Outage {
        let exe = compile("examples-c/gateway.c", "gateway");
        let a = Broker::start();
        let mut b = Broker::start();
        let store = TempDir::new("mqtt5c-gateway").unwrap();
        let publisher = client(&a.url(), &format!("{id}-pub"), Arc::default()).await;
        let dir = store.path().display().to_string();
        let (a_url, b_url) = (a.url(), b.url());
        let args = [a_url.as_str(), "src/#", &b_url, &dir, "fwd/"];
        let gw = Process::start(&exe, &args, true);
        tokio::task::block_in_place(|| gw.wait_line("subscribed", scaled(20)));
        b.stop();
        tokio::task::block_in_place(|| {
            let deadline = Instant::now() + scaled(20);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match gw.lines.recv_timeout(left) {
                    Ok(l) if l.starts_with("gateway: destination connection lost") => break,
                    Ok(_) => {}
                    Err(_) => panic!("the gateway did not see the destination go"),
                }
            }
        });
        Outage {
            a,
            b,
            _store: store,
            gw,
            publisher,
        }
    }

    /// Brings the destination back; returns a subscriber to "fwd/src/#"
    /// on it.
    async fn end(&mut self, received: Arc<Received>) -> MqttClient {
        self.b.start_again();
        let sub = client(&self.b.url(), "outage-sub", received).await;
        let filter = SubscribeFilter {
            filter: MqttStr::new("fwd/src/#").unwrap(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        };
        sub.subscribe(vec![filter], Properties::new())
            .await
            .unwrap();
        sub
    }

    /// SIGTERM: the gateway exits with status 0.
    async fn stop(mut self, sub: MqttClient) {
        let pid = self.gw.child.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(kill.unwrap().success());
        let status = tokio::task::block_in_place(|| self.gw.child.wait()).unwrap();
        assert!(status.success(), "the gateway exited with {status}");
        for c in [sub, self.publisher] {
            c.disconnect(ReasonCode::Success, Properties::new())
                .await
                .unwrap();
        }
        drop(self.a);
    }
}

/// The destination is down for longer than the messages it is to forward
/// live (Message Expiry Interval 1 s): they expire in the gateway's
/// offline queue. The gateway must still acknowledge them to the source
/// (an expired message is done with), or each holds one of the source's
/// Receive Maximum slots (100) for as long as the source connection
/// lives: once 100 expired, the source sends the gateway nothing more,
/// and forwarding stops for good after the destination is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_forwards_again_after_messages_expired_in_an_outage() {
    let outage = Outage::start("gwx").await;
    let mut outage = outage;
    // More short-lived messages than the source's Receive Maximum for the
    // gateway (100): all taken, all queued for the destination.
    let mut short = Properties::new();
    short.set(mqtt5c::packet::Property::MessageExpiryInterval(1));
    for i in 0..120 {
        let payload = format!("old{i}");
        outage
            .publisher
            .publish(
                "src/x",
                payload.as_bytes(),
                QoS::AtLeastOnce,
                false,
                short.clone(),
            )
            .await
            .unwrap();
    }
    // Not a condition to wait for: the messages' lifetime passing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let received = Arc::new(Received::default());
    let sub = outage.end(received.clone()).await;
    let fresh: BTreeSet<String> = (0..10).map(|i| format!("new{i}")).collect();
    for p in &fresh {
        publish(&outage.publisher, "src/x", p, QoS::AtLeastOnce).await;
    }
    let missing = tokio::task::block_in_place(|| received.wait_for(&fresh, scaled(30)));
    assert!(
        missing.is_empty(),
        "not forwarded after the outage: {missing:?}"
    );
    outage.stop(sub).await;
}

/// The destination's offline queue (8 MiB by default) fills up during an
/// outage with large messages: a forward it refuses (MQTT5C_ERR_QUEUE_FULL)
/// must be tried again once there is room, not left unacknowledged at
/// the source, which would never send it again while its connection
/// lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_forwards_what_a_full_offline_queue_refused() {
    let mut outage = Outage::start("gwq").await;
    let big = vec![b'x'; 700 * 1024];
    let want: BTreeSet<String> = (0..16).map(|i| format!("big{i:02}")).collect();
    for p in &want {
        let mut payload = p.clone().into_bytes();
        payload.extend_from_slice(&big);
        outage
            .publisher
            .publish(
                "src/x",
                &payload,
                QoS::AtLeastOnce,
                false,
                Properties::new(),
            )
            .await
            .unwrap();
    }
    let received = Arc::new(Received::default());
    let sub = outage.end(received.clone()).await;
    let missing: Vec<String> = tokio::task::block_in_place(|| {
        let prefixed: BTreeSet<String> = want
            .iter()
            .map(|p| format!("{p}{}", String::from_utf8_lossy(&big)))
            .collect();
        received.wait_for(&prefixed, scaled(30))
    });
    let missing: Vec<&str> = missing.iter().map(|m| &m[..5]).collect();
    assert!(
        missing.is_empty(),
        "not forwarded after the outage: {missing:?}"
    );
    outage.stop(sub).await;
}

/// The gateway example with `-V 311` (issue 12): both its clients speak
/// MQTT 3.1.1, its source session is kept by Clean Session 0 alone, and
/// what was published while it was killed comes through when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_over_3_1_1_forwards_through_a_kill() {
    let exe = compile("examples-c/gateway.c", "gateway");
    let a = Broker::start_with("max_queued_messages 0\n");
    let b = Broker::start();
    let store = TempDir::new("mqtt5c-gateway-v311").unwrap();
    let received = Arc::new(Received::default());
    let sub = client(&b.url(), "gw311-sub", received.clone()).await;
    let filter = SubscribeFilter {
        filter: MqttStr::new("fwd/src/#").unwrap(),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
    };
    sub.subscribe(vec![filter], Properties::new())
        .await
        .unwrap();
    let publisher = client(&a.url(), "gw311-pub", Arc::default()).await;
    let dir = store.path().display().to_string();
    let (a_url, b_url) = (a.url(), b.url());
    let args = ["-V", "311", a_url.as_str(), "src/#", &b_url, &dir, "fwd/"];
    let mut gw = Process::start(&exe, &args, true);
    tokio::task::block_in_place(|| gw.wait_line("subscribed", scaled(20)));
    let first: BTreeSet<String> = (0..50).map(|i| i.to_string()).collect();
    for p in &first {
        publish(&publisher, "src/x", p, QoS::AtLeastOnce).await;
    }
    let missing = tokio::task::block_in_place(|| received.wait_for(&first, scaled(20)));
    assert!(missing.is_empty(), "not forwarded: {missing:?}");
    gw.kill();
    // Published while the gateway is down: kept in its 3.1.1 session on A.
    let all: BTreeSet<String> = (0..100).map(|i| i.to_string()).collect();
    for i in 50..100 {
        publish(&publisher, "src/x", &i.to_string(), QoS::AtLeastOnce).await;
    }
    let mut again = Process::start(&exe, &args, true);
    let missing = tokio::task::block_in_place(|| received.wait_for(&all, scaled(30)));
    assert!(missing.is_empty(), "lost: {missing:?}");
    again.kill();
    sub.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
    publisher
        .disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
}
