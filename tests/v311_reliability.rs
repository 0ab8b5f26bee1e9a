//! Reliability over MQTT 3.1.1 against mosquitto (issue 12): what a
//! client persisted (v5 packets on disk, see `client::v311`) goes out on a
//! 3.1.1 connection of the next process, and the offline queue filled
//! while the broker was down is sent after a restart. The proxy-based
//! in-flight resend and re-subscription are in tests/c/test_v311_reconnect.c.

mod common;

use common::{Broker, TempDir};
use mqtt5c::client::{ClientOptions, ConnectionEvent, Handler, MqttClient, Reconnect};
use mqtt5c::packet::{
    MqttStr, Properties, ProtocolVersion, Publish, QoS, ReasonCode, SubscribeFilter,
    SubscriptionOptions,
};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

struct Events(Mutex<mpsc::Sender<Publish>>);
impl Handler for Events {
    fn on_message(&self, m: Publish) {
        let _ = self.0.lock().unwrap().send(m);
    }
    fn on_connection(&self, _: &ConnectionEvent) {}
}

fn opts(id: &str) -> ClientOptions {
    ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        protocol_version: Some(ProtocolVersion::V311),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

fn client(o: ClientOptions) -> (MqttClient, mpsc::Receiver<Publish>) {
    let (tx, rx) = mpsc::channel();
    let c = MqttClient::open(
        o,
        Arc::new(Events(Mutex::new(tx))),
        tokio::runtime::Handle::current(),
        Arc::default(),
    )
    .expect("client");
    (c, rx)
}

async fn subscriber(broker: &Broker) -> (MqttClient, mpsc::Receiver<Publish>) {
    // Clean Session 0 on a persistent broker: the subscription and the
    // messages for it outlive a broker restart and our reconnection.
    let mut o = opts("v311-rel-sub");
    o.clean_start = false;
    o.reconnect = Some(Reconnect {
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(300),
    });
    let (s, rx) = client(o);
    s.connect(&broker.url()).await.unwrap();
    let f = SubscribeFilter {
        filter: MqttStr::new("rel/#").unwrap(),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
    };
    s.subscribe(vec![f], Properties::new()).await.unwrap();
    (s, rx)
}

fn payloads(rx: &mpsc::Receiver<Publish>, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| rx.recv_timeout(WAIT).expect("message").payload.to_vec())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_queue_and_persistence_over_3_1_1() {
    let mut broker = Broker::start_persistent("");
    let dir = TempDir::new("mqtt5c-v311-persist").unwrap();
    let mut o = opts("v311-rel-pub");
    o.persistence_dir = Some(dir.path().to_path_buf());
    o.reconnect = Some(Reconnect {
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(300),
    });
    let (p, _prx) = client(o.clone());
    p.connect(&broker.url()).await.unwrap();

    // Broker down: queued (and on disk), then the process "crashes".
    broker.stop();
    for i in 0..3u8 {
        p.publish_then(
            "rel/q",
            &[i],
            QoS::AtLeastOnce,
            false,
            Properties::new(),
            None,
        )
        .await
        .expect("queued while the broker is down");
    }
    p.close();
    drop(p);

    // Next process: the same store, a 3.1.1 connection.
    broker.start_again();
    let (s, rx) = subscriber(&broker).await;
    let (p2, _rx2) = client(o);
    p2.connect(&broker.url()).await.unwrap();
    assert_eq!(p2.protocol_version(), Some(ProtocolVersion::V311));
    let got = tokio::task::block_in_place(|| payloads(&rx, 3));
    assert_eq!(got, [vec![0u8], vec![1], vec![2]]);

    // Offline queue of a live client across a restart.
    broker.stop();
    for i in 10..12u8 {
        p2.publish_then(
            "rel/q",
            &[i],
            QoS::AtLeastOnce,
            false,
            Properties::new(),
            None,
        )
        .await
        .expect("queued");
    }
    broker.start_again();
    // Both reconnect by themselves; the broker kept the subscriber's
    // session, so the order they come back in does not matter. QoS 1 is
    // at least once: a message of the first part whose PUBACK the broker
    // had not processed when it stopped comes again first.
    let got: Vec<Vec<u8>> = tokio::task::block_in_place(|| {
        let mut got = Vec::new();
        while got.len() < 2 {
            let m = payloads(&rx, 1).remove(0);
            if m[0] >= 10 {
                got.push(m);
            }
        }
        got
    });
    assert_eq!(got, [vec![10u8], vec![11]]);
    for c in [&p2, &s] {
        let _ = c.disconnect(ReasonCode::Success, Properties::new()).await;
    }
}
