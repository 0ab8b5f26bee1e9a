//! A Rust handler may panic with any payload (`std::panic::panic_any`),
//! also one whose own `drop` panics. The callback pool catches the panic
//! (a958836) and then drops the payload: that drop must not unwind out
//! of the pool thread either, or the thread dies still counted by the
//! pool and the client's `draining` flag stays set: none of its later
//! events is ever delivered.
//!
//! One test, its own binary: the pool is process-wide.

use mqtt5c::client::{ClientOptions, ConnectionEvent, Handler, MqttClient};
use mqtt5c::packet::{
    MqttStr, Properties, Publish, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions,
};
use std::sync::{mpsc, Arc};
use std::time::Duration;

mod common;

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
