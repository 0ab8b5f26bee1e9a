//! The harness of the hostile_*.rs tests (issue 14, "A malicious broker"):
//! one attack per call of [`attack`], checked for what the client owes
//! any broker, however broken:
//!
//! 1. the calls waiting on the broker (a SUBSCRIBE waiting for its SUBACK,
//!    a QoS 1 PUBLISH waiting for its PUBACK) return promptly: an error
//!    without automatic reconnection; with it, they go again on the next
//!    connection and complete there (nothing lost);
//! 2. the client sends the DISCONNECT the spec names for the fault (v5),
//!    or closes without a word (3.1.1, which has no reason codes);
//! 3. the connection callback reports the cause;
//! 4. with automatic reconnection, the client connects again;
//! 5. nothing leaks: the bytes allocated after repeated runs (client,
//!    runtime and all dropped) are those before them, measured with a
//!    counting allocator over the whole test process (`leak_checked`);
//!    runs are serialized for it. The peak of each run is reported too.
#![allow(dead_code)]

use crate::scripted::{accept, resp, s, Peer, Script};
use mqtt5c::client::{
    ClientOptions, ConnectionEvent, DisconnectCause, Error, MqttClient, Reconnect,
};
use mqtt5c::packet::{
    Packet, Properties, ProtocolVersion, QoS, ReasonCode, SubAck, SubscribeFilter,
    SubscriptionOptions,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long an outcome may take on a slow, shared CI machine. The client
/// has no keep-alive and no operation timeout in these runs: whatever
/// ends a waiting call is its reaction to the attack, never a timer.
pub const WAIT: Duration = Duration::from_secs(30);

/// Counts the bytes allocated and not yet freed in this process, and
/// their peak since [`reset_peak`].
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
            grew(new);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated and not freed.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// The peak of [`live`] since the last call, which starts a new one.
pub fn reset_peak() -> usize {
    PEAK.swap(live(), Ordering::Relaxed)
}

/// How many runs [`leak_checked`] measures.
pub const RUNS: usize = 4;

/// Most bytes [`RUNS`] runs may leave allocated in all: less than a
/// connection leaked per run would (its read buffer alone is 8 KiB, and
/// each run makes two or three connections), more than the capacity a
/// global structure may gain once.
pub const LEAK_BOUND: usize = 48 << 10;

/// One run at a time per test process, for the allocation counts.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A runtime driven like the C layer drives it: `block_on` from a thread
/// of the caller's.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` on `rt` for at most [`WAIT`].
pub fn within<F: std::future::Future>(
    rt: &tokio::runtime::Runtime,
    f: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    rt.block_on(async { tokio::time::timeout(WAIT, f).await })
}

pub use crate::common::events::{Event, Events};

/// The next connection event, skipping messages; panics after `WAIT`.
pub fn next_connection_event(ev: &Events) -> ConnectionEvent {
    ev.wait_conn(|_| true)
}

/// The cause of the next DISCONNECTED event (skipping others).
pub fn next_disconnect(ev: &Events) -> DisconnectCause {
    match ev.wait_conn(|c| matches!(c, ConnectionEvent::Disconnected(_))) {
        ConnectionEvent::Disconnected(c) => c,
        _ => unreachable!(),
    }
}

/// Waits for the next CONNECTED event (skipping others).
pub fn next_connected(ev: &Events) {
    ev.wait_conn(|c| matches!(c, ConnectionEvent::Connected { .. }));
}

/// How the client must end the attacked connection.
#[derive(Clone, Copy, Debug)]
pub enum Want {
    /// A protocol failure: DISCONNECT with this reason (v5; 3.1.1 closes
    /// without one), reported as `DisconnectCause::Protocol(reason, _)`.
    Disconnect(ReasonCode),
    /// The broker closed the socket (mid-packet): nothing to send, the
    /// cause is a closed or broken connection.
    Lost,
}

/// The ids of the calls waiting on the broker when the attack comes.
#[derive(Clone, Copy, Debug)]
pub struct Waiting {
    pub subscribe: u16,
    pub publish: u16,
}

/// What the broker does to attack, given the waiting calls' ids.
pub type Strike = dyn Fn(&mut Peer, Waiting) + Send + Sync;

/// An attack: what the broker sends once a SUBSCRIBE and a QoS 1 PUBLISH
/// wait for it, and how the client must react.
pub struct Attack {
    pub version: ProtocolVersion,
    pub send: Arc<Strike>,
    pub want: Want,
    /// The waiting SUBSCRIBE fails with `Error::Protocol` (its SUBACK is
    /// the fault), even with automatic reconnection.
    pub subscribe_blamed: bool,
    /// Changes to the client's options (a lower maximum, ...).
    pub tune: fn(&mut ClientOptions),
}

impl Attack {
    pub fn new(send: impl Fn(&mut Peer, Waiting) + Send + Sync + 'static, want: Want) -> Attack {
        Attack {
            version: ProtocolVersion::V5,
            send: Arc::new(send),
            want,
            subscribe_blamed: false,
            tune: |_| {},
        }
    }

    /// The same attack on a 3.1.1 connection.
    pub fn v311(mut self) -> Attack {
        self.version = ProtocolVersion::V311;
        self
    }

    pub fn blaming_subscribe(mut self) -> Attack {
        self.subscribe_blamed = true;
        self
    }

    pub fn tune(mut self, tune: fn(&mut ClientOptions)) -> Attack {
        self.tune = tune;
        self
    }

    /// Runs the attack without and with automatic reconnection (see
    /// [`leak_checked`]); returns what the last run saw.
    pub fn run(&self) -> Report {
        leak_checked(|| {
            let a = self.once(false);
            let b = self.once(true);
            Report {
                peak: a.peak.max(b.peak),
                messages: b.messages,
            }
        })
    }

    /// One connection attacked; with `reconnect`, a second one served.
    fn once(&self, reconnect: bool) -> Report {
        let base = live();
        reset_peak();
        let version = self.version;
        let send = self.send.clone();
        let want = self.want;
        let script = Script::start(move |l| {
            let mut p = accept(&l);
            p.speak(version);
            p.expect_connect();
            p.connack(ReasonCode::Success, Properties::new());
            let waiting = read_waiting(&mut p);
            send(&mut p, waiting);
            match (want, version) {
                (Want::Disconnect(reason), ProtocolVersion::V5) => {
                    assert_eq!(p.expect_disconnect(), reason, "DISCONNECT reason");
                    p.expect_close();
                }
                (Want::Disconnect(_), _) => p.expect_silent_close(),
                (Want::Lost, _) => {}
            }
            drop(p);
            if reconnect {
                let mut p = accept(&l);
                p.speak(version);
                p.expect_connect();
                p.connack(ReasonCode::Success, Properties::new());
                serve_until_disconnect(&mut p);
            }
        });
        let rt = runtime();
        let ev = Events::new();
        let mut opts = ClientOptions {
            protocol_version: Some(version),
            keep_alive: 0,
            operation_timeout: None,
            reconnect: reconnect.then_some(Reconnect {
                min_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(20),
            }),
            ..Default::default()
        };
        (self.tune)(&mut opts);
        let c = MqttClient::new(opts, ev.clone(), rt.handle().clone());
        rt.block_on(c.connect(&script.url())).expect("connect");
        next_connected(&ev);
        let filter = SubscribeFilter {
            filter: s("hostile/sub"),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        };
        let sub = {
            let c = c.clone();
            rt.spawn(async move { c.subscribe(vec![filter], Properties::new()).await })
        };
        let publ = {
            let c = c.clone();
            rt.spawn(async move {
                c.publish(
                    "hostile/pub",
                    b"x",
                    QoS::AtLeastOnce,
                    false,
                    Properties::new(),
                )
                .await
            })
        };
        let mut messages = Vec::new();
        let cause = loop {
            match ev.next(WAIT).expect("no DISCONNECTED event") {
                Event::Msg(m) => messages.push(m.topic.as_str().to_string()),
                Event::Conn(ConnectionEvent::Disconnected(c)) => break c,
                Event::Conn(_) => {}
            }
        };
        match (want, &cause) {
            (Want::Disconnect(w), DisconnectCause::Protocol(r, _)) => {
                assert_eq!(*r, w, "the cause reported: {cause:?}")
            }
            (Want::Lost, DisconnectCause::Closed | DisconnectCause::Io(_)) => {}
            _ => panic!("want {want:?}, the callback reported {cause:?}"),
        }
        let sub = within(&rt, sub)
            .expect("the waiting subscribe did not return")
            .unwrap();
        let publ = within(&rt, publ)
            .expect("the waiting publish did not return")
            .unwrap();
        if reconnect {
            next_connected(&ev);
            match sub {
                Ok(SubAck { ref reasons, .. }) if !self.subscribe_blamed => {
                    assert_eq!(reasons[..], [ReasonCode::GrantedQoS1])
                }
                Err(Error::Protocol(_)) if self.subscribe_blamed => {}
                other => panic!("subscribe after a reconnect: {other:?}"),
            }
            let ack = publ.expect("the publish completes on the next connection");
            assert_eq!(ack.reason, ReasonCode::Success);
            rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()))
                .expect("disconnect");
        } else {
            assert!(
                matches!(sub, Err(Error::ConnectionLost | Error::Protocol(_))),
                "subscribe: {sub:?}"
            );
            assert!(
                matches!(publ, Err(Error::ConnectionLost | Error::Protocol(_))),
                "publish: {publ:?}"
            );
            if self.subscribe_blamed {
                assert!(matches!(sub, Err(Error::Protocol(_))), "{sub:?}");
            }
            assert!(!c.is_connected());
        }
        script.finish(WAIT).unwrap();
        c.close();
        drop(c);
        drop(rt);
        Report {
            peak: reset_peak().saturating_sub(base),
            messages,
        }
    }
}

/// What a run saw.
#[derive(Debug)]
pub struct Report {
    /// The most bytes allocated at once during a run, beyond those
    /// allocated before it.
    pub peak: usize,
    /// The topics of the messages delivered before the attacked
    /// connection ended.
    pub messages: Vec<String>,
}

/// Runs `f` once to warm up (lazily built statics), then [`RUNS`] times,
/// and checks that those runs left no more than [`LEAK_BOUND`] bytes
/// allocated in all: a leak grows with the runs, while the capacity a
/// global structure (the callback pool's queue, a thread's) gains once
/// does not. Returns the last run's result. One at a time per process.
pub fn leak_checked<T>(f: impl Fn() -> T) -> T {
    leak_checked_runs(RUNS, f)
}

/// [`leak_checked`] with `runs` measured runs instead of [`RUNS`], for a
/// slow attack (the bound stays: it catches fewer leaks).
pub fn leak_checked_runs<T>(runs: usize, f: impl Fn() -> T) -> T {
    let _serial = serial();
    drop(f());
    let before = live();
    for _ in 1..runs {
        drop(f());
    }
    let r = f();
    let after = live();
    assert!(
        after <= before + LEAK_BOUND + std::mem::size_of::<T>(),
        "{} bytes more allocated after {runs} runs than before them",
        after.saturating_sub(before)
    );
    r
}

/// Reads the SUBSCRIBE and the QoS 1 PUBLISH that will wait for the
/// broker, in whichever order they come.
pub fn read_waiting(p: &mut Peer) -> Waiting {
    let (mut subscribe, mut publish) = (None, None);
    while subscribe.is_none() || publish.is_none() {
        match p.expect("SUBSCRIBE and PUBLISH") {
            Packet::Subscribe(s) => subscribe = Some(s.packet_id),
            Packet::Publish(pb) => publish = pb.packet_id,
            other => panic!("expected SUBSCRIBE or PUBLISH, got {other:?}"),
        }
    }
    Waiting {
        subscribe: subscribe.unwrap(),
        publish: publish.unwrap(),
    }
}

/// A well-behaved broker: grants every SUBSCRIBE, acknowledges every
/// PUBLISH, until the client's DISCONNECT (Normal), then its close.
pub fn serve_until_disconnect(p: &mut Peer) {
    loop {
        match p.expect("SUBSCRIBE, PUBLISH or DISCONNECT") {
            Packet::Subscribe(s) => {
                p.suback(s.packet_id, vec![ReasonCode::GrantedQoS1; s.filters.len()])
            }
            Packet::Publish(pb) => {
                if let Some(id) = pb.packet_id {
                    p.send(Packet::PubAck(resp(id)));
                }
            }
            Packet::Disconnect(d) => {
                assert_eq!(d.reason, ReasonCode::Success);
                break;
            }
            Packet::PingReq => p.send(Packet::PingResp),
            other => panic!("unexpected {other:?}"),
        }
    }
    p.expect_close();
}

/// A packet built by hand (what the crate's encoder refuses to make):
/// `first` byte, Remaining Length, `body`.
pub fn raw(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let byte = (n % 128) as u8;
        n /= 128;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(body);
    out
}

/// A two-byte length and `b`: a UTF-8 string or binary data on the wire,
/// valid or not.
pub fn string(b: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(b.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(b);
    out
}

/// A QoS 0 PUBLISH by hand: `topic` bytes as given, v5 `props` (their
/// bytes, without the length; 3.1.1 has none and `props` must be empty).
pub fn raw_publish(
    version: ProtocolVersion,
    topic: &[u8],
    props: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut body = string(topic);
    if version == ProtocolVersion::V5 {
        body.extend(raw(0, props).into_iter().skip(1));
    } else {
        assert!(props.is_empty(), "3.1.1 has no properties");
    }
    body.extend_from_slice(payload);
    raw(0x30, &body)
}

/// A v5 PUBACK (`first` 0x40), PUBREC (0x50) or PUBCOMP (0x70) by hand,
/// reason Success, with `props` bytes.
pub fn raw_ack(first: u8, id: u16, props: &[u8]) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    body.push(0);
    body.extend(raw(0, props).into_iter().skip(1));
    raw(first, &body)
}
