//! A Rust handler may panic with any payload (`std::panic::panic_any`),
//! also one whose own `drop` panics. Where the library catches a
//! handler's panic it then drops the payload, and that drop must not
//! unwind either: in the callback pool (a958836) it killed the pool
//! thread, still counted by the pool, and left the client's `draining`
//! flag set (none of its later events was ever delivered); in a
//! reconnection (the pre-connect hook's panic, caught by the blocking
//! pool) it ended the reconnection task.
//!
//! Its own binary: the pool is process-wide.

use mqtt5c::client::{ClientOptions, ConnectionEvent, Handler, MqttClient, Reconnect};
use mqtt5c::packet::{
    MqttStr, Properties, Publish, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions,
};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
mod scripted;

/// A panic payload whose drop panics in turn.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload's own drop panics (expected by the test)");
    }
}

/// Panics with a `Bomb` at a payload "bomb"; sends the others on.
struct Bomber(mpsc::SyncSender<Vec<u8>>);

impl Handler for Bomber {
    fn on_message(&self, m: Publish) {
        if &m.payload[..] == b"bomb" {
            std::panic::panic_any(Bomb);
        }
        let _ = self.0.send(m.payload.to_vec());
    }
    fn on_connection(&self, _: &ConnectionEvent) {}
}

#[test]
fn a_panic_payload_that_panics_when_dropped_stops_no_delivery() {
    let broker = common::Broker::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = mpsc::sync_channel(100);
    let c = MqttClient::new(
        ClientOptions::default(),
        Arc::new(Bomber(tx)),
        rt.handle().clone(),
    );
    let filter = vec![SubscribeFilter {
        filter: MqttStr::new("bomb/t").unwrap(),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
    }];
    rt.block_on(async {
        c.connect(&broker.url()).await.unwrap();
        c.subscribe(filter, Properties::new()).await.unwrap();
    });
    let publish = |payload: &[u8]| {
        rt.block_on(c.publish(
            "bomb/t",
            payload,
            QoS::AtLeastOnce,
            false,
            Properties::new(),
        ))
        .unwrap();
    };
    publish(b"bomb");
    publish(b"after");
    let got = rx.recv_timeout(Duration::from_secs(10));
    assert_eq!(
        got.as_deref().ok(),
        Some(&b"after"[..]),
        "nothing delivered after a callback panicked with a payload that panics when dropped"
    );
    let _ = rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()));
}

/// Its `before_connect` panics with a `Bomb` at its second call (the
/// first reconnection's); tells each connection event.
struct BombBeforeConnect {
    calls: std::sync::atomic::AtomicUsize,
    events: Mutex<mpsc::Sender<String>>,
}

impl Handler for BombBeforeConnect {
    fn on_message(&self, _: Publish) {}
    fn on_connection(&self, e: &ConnectionEvent) {
        let _ = self.events.lock().unwrap().send(format!("{e:?}"));
    }
    fn has_pre_connect(&self) -> bool {
        true
    }
    fn before_connect(&self, _: &str, _: u32, _: &mut ClientOptions) -> bool {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 1 {
            std::panic::panic_any(Bomb);
        }
        true
    }
}

/// The pre-connect hook runs on the blocking pool; its panic comes back
/// as the job's error, whose payload is dropped by the reconnection task:
/// a payload that panics then must not end that task (the client would
/// stay reconnecting for good).
#[test]
fn a_pre_connect_panic_payload_that_panics_when_dropped_stops_no_reconnection() {
    let mut broker = common::Broker::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, events) = mpsc::channel();
    let c = MqttClient::new(
        ClientOptions {
            reconnect: Some(Reconnect {
                min_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(200),
            }),
            ..Default::default()
        },
        Arc::new(BombBeforeConnect {
            calls: Default::default(),
            events: Mutex::new(tx),
        }),
        rt.handle().clone(),
    );
    rt.block_on(c.connect(&broker.url())).unwrap();
    broker.restart();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 2
        || !seen[1..]
            .iter()
            .any(|e: &String| e.starts_with("Connected"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(e) => seen.push(e),
            Err(_) => panic!("no reconnection after the pre-connect hook's panic: {seen:?}"),
        }
    }
    let _ = rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()));
}

/// Its `on_auth` panics with a `Bomb`.
struct BombOnAuth;

impl Handler for BombOnAuth {
    fn on_message(&self, _: Publish) {}
    fn on_connection(&self, _: &ConnectionEvent) {}
    fn on_auth(&self, _: &mqtt5c::client::AuthChallenge) -> mqtt5c::client::AuthAnswer {
        std::panic::panic_any(Bomb)
    }
}

/// The auth callback runs on the blocking pool too (here asked to accept
/// the CONNACK's success): its panic ends the exchange (DISCONNECT 0x83,
/// the connect fails), and a payload that panics when dropped changes
/// nothing to that.
#[test]
fn an_auth_panic_payload_that_panics_when_dropped_ends_the_exchange_only() {
    const M: &str = "TOY";
    let script = scripted::Script::start(|l| {
        let mut p = scripted::accept(&l);
        p.expect_connect();
        p.connack(
            ReasonCode::Success,
            scripted::props(vec![mqtt5c::packet::Property::AuthenticationMethod(
                scripted::s(M),
            )]),
        );
        assert_eq!(
            p.expect_disconnect(),
            ReasonCode::ImplementationSpecificError
        );
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut options = ClientOptions::default();
    options
        .connect_properties
        .set(mqtt5c::packet::Property::AuthenticationMethod(scripted::s(
            M,
        )));
    let c = MqttClient::new(options, Arc::new(BombOnAuth), rt.handle().clone());
    // The CONNACK's success is the callback's to accept: it panics.
    let r = rt.block_on(c.connect(&script.url()));
    assert!(
        matches!(
            r,
            Err(mqtt5c::client::Error::AuthAborted(
                ReasonCode::ImplementationSpecificError
            ))
        ),
        "{r:?}"
    );
    script.finish(Duration::from_secs(20)).unwrap();
}
