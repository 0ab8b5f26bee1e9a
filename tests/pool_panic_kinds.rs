//! Every kind of Rust callback may panic (a958836): the connection
//! callback, the log callback, a publish's completion, and a QoS 1
//! message callback whose message must still be acknowledged (else it
//! holds a slot of our Receive Maximum for ever: with a Receive Maximum
//! of 1 the broker would send nothing more). After all of them panicked,
//! the client's next message is still delivered.
//!
//! Its own binary: the pool is process-wide.

use mqtt5c::client::{ClientOptions, ConnectionEvent, Handler, Level, MqttClient};
use mqtt5c::packet::{
    MqttStr, Properties, Publish, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

mod common;

/// Panics in every callback but a message other than "boom".
struct Grumpy {
    got: Mutex<mpsc::Sender<Vec<u8>>>,
    logs: AtomicUsize,
    connections: AtomicUsize,
}

impl Handler for Grumpy {
    fn on_message(&self, m: Publish) {
        if &m.payload[..] == b"boom" {
            panic!("a message callback's panic (expected by the test)");
        }
        let _ = self.got.lock().unwrap().send(m.payload.to_vec());
    }
    fn on_connection(&self, _: &ConnectionEvent) {
        self.connections.fetch_add(1, Ordering::SeqCst);
        panic!("a connection callback's panic (expected by the test)");
    }
    fn on_log(&self, _: Level, _: &str) {
        self.logs.fetch_add(1, Ordering::SeqCst);
        panic!("a log callback's panic (expected by the test)");
    }
}

#[test]
fn every_kind_of_callback_may_panic() {
    let broker = common::Broker::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let h = Arc::new(Grumpy {
        got: Mutex::new(tx),
        logs: AtomicUsize::new(0),
        connections: AtomicUsize::new(0),
    });
    let c = MqttClient::new(
        ClientOptions {
            receive_maximum: 1,
            ..Default::default()
        },
        h.clone(),
        rt.handle().clone(),
    );
    c.set_log_level(Some(Level::Debug));
    let filter = vec![SubscribeFilter {
        filter: MqttStr::new("kinds/t").unwrap(),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
    }];
    let (done_tx, done) = mpsc::channel::<()>();
    rt.block_on(async {
        c.connect(&broker.url()).await.unwrap();
        c.subscribe(filter, Properties::new()).await.unwrap();
        // Its completion panics.
        let then: mqtt5c::client::Completion = Box::new(move |_| {
            let _ = done_tx.send(());
            panic!("a completion's panic (expected by the test)");
        });
        c.publish_then(
            "kinds/other",
            b"x",
            QoS::AtLeastOnce,
            false,
            Properties::new(),
            Some(then),
        )
        .await
        .unwrap();
        // Three QoS 1 messages whose callback panics: each must be
        // acknowledged for the next to come (Receive Maximum 1).
        for _ in 0..3 {
            c.publish(
                "kinds/t",
                b"boom",
                QoS::AtLeastOnce,
                false,
                Properties::new(),
            )
            .await
            .unwrap();
        }
        c.publish(
            "kinds/t",
            b"after",
            QoS::AtLeastOnce,
            false,
            Properties::new(),
        )
        .await
        .unwrap();
    });
    done.recv_timeout(Duration::from_secs(10))
        .expect("the completion did not run");
    let got = rx.recv_timeout(Duration::from_secs(10));
    assert_eq!(
        got.as_deref().ok(),
        Some(&b"after"[..]),
        "nothing delivered after the callbacks panicked"
    );
    assert!(h.connections.load(Ordering::SeqCst) >= 1);
    assert!(h.logs.load(Ordering::SeqCst) >= 1);
    let _ = rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()));
}

/// Its `has_pre_connect` panics at its second call (as a poisoned mutex
/// of the application's would); tells each connection event.
struct PanicsWhenAsked {
    calls: AtomicUsize,
    events: Mutex<mpsc::Sender<String>>,
}

impl Handler for PanicsWhenAsked {
    fn on_message(&self, _: Publish) {}
    fn on_connection(&self, e: &ConnectionEvent) {
        let _ = self.events.lock().unwrap().send(format!("{e:?}"));
    }
    fn has_pre_connect(&self) -> bool {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 1 {
            panic!("has_pre_connect's panic (expected by the test)");
        }
        false
    }
}

/// `has_pre_connect` is asked inside the reconnection task's poll: its
/// panic must fail that attempt only, not end the task (the client would
/// stay reconnecting for good).
#[test]
fn a_panicking_has_pre_connect_fails_one_reconnection_attempt_only() {
    let mut broker = common::Broker::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, events) = mpsc::channel();
    let c = MqttClient::new(
        ClientOptions {
            reconnect: Some(mqtt5c::client::Reconnect {
                min_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(200),
            }),
            ..Default::default()
        },
        Arc::new(PanicsWhenAsked {
            calls: AtomicUsize::new(0),
            events: Mutex::new(tx),
        }),
        rt.handle().clone(),
    );
    rt.block_on(c.connect(&broker.url())).unwrap();
    broker.restart();
    let mut seen: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 2 || !seen[1..].iter().any(|e| e.starts_with("Connected")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(left) {
            Ok(e) => seen.push(e),
            Err(_) => panic!("no reconnection after has_pre_connect panicked: {seen:?}"),
        }
    }
    let _ = rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()));
}
