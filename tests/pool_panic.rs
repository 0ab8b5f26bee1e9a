//! A Rust handler that panics runs on a thread of the process-wide
//! callback pool (src/client/pool.rs). The panic must stay with that
//! call: the client's later events are still delivered, and the pool
//! keeps its threads for every other client (a pool thread killed by the
//! panic but still counted left the pool without threads: each delivery
//! then waited for the 100 ms starvation check).
//!
//! One test, its own binary: the pool is process-wide.

use mqtt5c::client::{ClientOptions, ConnectionEvent, Handler, MqttClient};
use mqtt5c::packet::{
    MqttStr, Properties, Publish, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions,
};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

mod common;

/// More panicking clients than the pool has threads (4).
const PANICKY: usize = 6;
const ROUND_TRIPS: usize = 20;

/// The handlers' panics so far.
static PANICS: Mutex<usize> = Mutex::new(0);
static PANICKED: Condvar = Condvar::new();

/// Counts the handlers' panics (then reports them as the default hook does).
fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if format!("{info}").contains("expected by the test") {
            *PANICS.lock().unwrap() += 1;
            PANICKED.notify_all();
        }
        default(info);
    }));
}

/// Waits until the handlers panicked `n` times.
fn panics(n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut p = PANICS.lock().unwrap();
    while *p < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "only {} of {n} handlers panicked", *p);
        p = PANICKED.wait_timeout(p, left).unwrap().0;
    }
}

/// Panics at a payload "boom"; sends the others' payloads on.
struct Panicky(mpsc::SyncSender<Vec<u8>>);

impl Handler for Panicky {
    fn on_message(&self, m: Publish) {
        if &m.payload[..] == b"boom" {
            panic!("a handler's own panic (expected by the test)");
        }
        let _ = self.0.send(m.payload.to_vec());
    }
    fn on_connection(&self, _: &ConnectionEvent) {}
}

fn sub(filter: &str) -> Vec<SubscribeFilter> {
    vec![SubscribeFilter {
        filter: MqttStr::new(filter).unwrap(),
        options: SubscriptionOptions {
            qos: QoS::AtMostOnce,
            ..Default::default()
        },
    }]
}

#[test]
fn panicking_callbacks_neither_stop_their_client_nor_starve_the_pool() {
    count_panics();
    let broker = common::Broker::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let subscriber = |topic: &str| {
        let (tx, rx) = mpsc::sync_channel(100);
        let c = MqttClient::new(
            ClientOptions::default(),
            Arc::new(Panicky(tx)),
            rt.handle().clone(),
        );
        rt.block_on(async {
            c.connect(&broker.url()).await.unwrap();
            c.subscribe(sub(topic), Properties::new()).await.unwrap();
        });
        (c, rx)
    };
    let (publisher, _) = subscriber("unused");
    let publish = |topic: &str, payload: &[u8]| {
        rt.block_on(publisher.publish(topic, payload, QoS::AtMostOnce, false, Properties::new()))
            .unwrap();
    };
    let panicky: Vec<_> = (0..PANICKY)
        .map(|i| subscriber(&format!("panic/{i}")))
        .collect();
    // Each panics once (a pool thread each, without the fix).
    for i in 0..PANICKY {
        publish(&format!("panic/{i}"), b"boom");
    }
    // Then, one at a time, messages to another client.
    panics(PANICKY);
    let (_steady, rx) = subscriber("steady");
    // About a millisecond each on a healthy pool; at least 100 ms each
    // when every delivery waits for the starvation check. Counted one by
    // one, so that a loaded machine's slow moments do not decide.
    let mut slow = 0;
    for n in 0..ROUND_TRIPS {
        let started = Instant::now();
        publish("steady", n.to_string().as_bytes());
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| {
                panic!("message {n} to a client that never panicked not delivered")
            });
        assert_eq!(got, n.to_string().into_bytes());
        if started.elapsed() >= Duration::from_millis(95) {
            slow += 1;
        }
    }
    assert!(
        slow < ROUND_TRIPS / 2,
        "{slow} of {ROUND_TRIPS} deliveries took 95 ms or more: the pool lost its threads to the panics"
    );
    // The clients whose callback panicked still get their messages.
    for (i, (_, rx)) in panicky.iter().enumerate() {
        publish(&format!("panic/{i}"), b"after");
        let got = rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            got.as_deref().ok(),
            Some(&b"after"[..]),
            "client {i}: nothing delivered after its callback panicked"
        );
    }
    for (c, _) in panicky {
        let _ = rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()));
    }
}
