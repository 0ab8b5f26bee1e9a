//! The client's counters (`Stats`) and diagnostic lines (`Handler::on_log`
//! and the `log` facade), against a private mosquitto: exact counts for
//! known traffic by QoS, a broker restart counted as one reconnect and
//! logged at the right levels, the same lines reaching a `log` logger, and
//! never a password or a payload byte in a line.

mod common;

use common::events::{Events, WAIT};
use common::Broker;
use mqtt5c::client::{ClientOptions, Level, MqttClient, Reconnect, Secret};
use mqtt5c::packet::{MqttStr, Properties, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "pw-SECRET-5d1e";
const MARKER: &[u8] = b"PAYLOAD-MARKER-44b0";

fn client(id: &str, password: bool) -> (MqttClient, Arc<Events>) {
    let events = Events::new();
    let o = ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        connect_timeout: Duration::from_secs(10),
        username: password.then(|| MqttStr::new("user").unwrap()),
        password: password.then(|| Secret::new(PASSWORD.as_bytes())),
        reconnect: Some(Reconnect {
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
        }),
        ..Default::default()
    };
    let c = MqttClient::new(o, events.clone(), tokio::runtime::Handle::current());
    (c, events)
}

fn filter(f: &str, qos: QoS) -> Vec<SubscribeFilter> {
    vec![SubscribeFilter {
        filter: MqttStr::new(f).unwrap(),
        options: SubscriptionOptions {
            qos,
            ..Default::default()
        },
    }]
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn assert_no_secret(lines: &[(Level, String)]) {
    let marker = std::str::from_utf8(MARKER).unwrap();
    for (_, l) in lines {
        assert!(
            !l.contains("SECRET") && !l.contains(marker),
            "a log line holds a secret or a payload: {l}"
        );
    }
}

const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

/// Known traffic by QoS is counted exactly, on both sides; a broker
/// restart is one reconnect, logged at the right levels; no line holds
/// the password or the payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_log_lines_of_known_traffic_and_a_restart() {
    let mut broker = Broker::start();
    let (publisher, pub_events) = client("ls-rust-pub", true);
    let (subscriber, sub_events) = client("ls-rust-sub", false);
    publisher.set_log_level(Some(Level::Debug));
    subscriber.set_log_level(Some(Level::Warning));
    publisher.connect(&broker.url()).await.unwrap();
    subscriber.connect(&broker.url()).await.unwrap();
    let granted = subscriber
        .subscribe(filter("lsr/#", QoS::ExactlyOnce), Properties::new())
        .await
        .unwrap();
    assert_eq!(granted.reasons, vec![ReasonCode::GrantedQoS2]);

    let counts = [4usize, 3, 2];
    let sizes = [25usize, 35, 45];
    for (q, qos) in QOS.iter().enumerate() {
        let mut payload = vec![b'y'; sizes[q]];
        payload[..MARKER.len()].copy_from_slice(MARKER);
        for _ in 0..counts[q] {
            publisher
                .publish("lsr/data", &payload, *qos, false, Properties::new())
                .await
                .unwrap();
        }
    }
    let total: usize = counts.iter().sum();
    sub_events.wait_tally("the messages", |s| s.returned == total);
    for (q, qos) in QOS.iter().enumerate() {
        let (p, s) = (publisher.stats(), subscriber.stats());
        assert_eq!(p.messages_sent(*qos), counts[q] as u64, "QoS {q} sent");
        assert_eq!(p.payload_bytes_sent(*qos), (counts[q] * sizes[q]) as u64);
        assert_eq!(
            s.messages_received(*qos),
            counts[q] as u64,
            "QoS {q} received"
        );
        assert_eq!(
            s.payload_bytes_received(*qos),
            (counts[q] * sizes[q]) as u64
        );
        assert_eq!(p.messages_received(*qos), 0);
        assert_eq!(s.messages_sent(*qos), 0);
    }
    assert_eq!(publisher.outbound_in_flight(), 0);
    assert_eq!(publisher.stats().reconnects(), 0);

    // Stopped, then a QoS 1 publish while the client knows it is lost (it
    // is queued) or not yet (written to the dead connection, in flight):
    // either way sent after the reconnect, counted once, with a DEBUG line.
    blocking(|| broker.stop());
    pub_events.wait_tally("the loss", |s| {
        s.log_lines
            .iter()
            .any(|(l, t)| *l == Level::Warning && t.contains("ended"))
    });
    let (done, acked) = std::sync::mpsc::channel();
    let then: mqtt5c::client::Completion = Box::new(move |r| {
        let _ = done.send(r.is_ok());
    });
    publisher
        .publish_then(
            "lsr/late",
            MARKER,
            QoS::AtLeastOnce,
            false,
            Properties::new(),
            Some(then),
        )
        .await
        .unwrap();
    blocking(|| broker.start_again());
    pub_events.wait_tally("the reconnection", |s| s.connected == 2);
    sub_events.wait_tally("the reconnection", |s| s.connected == 2);
    assert_eq!(publisher.stats().reconnects(), 1);
    assert!(publisher.stats().reconnect_attempts() >= 1);
    pub_events.wait_tally("a DEBUG line for the late message", |s| {
        s.log_lines.iter().any(|(l, t)| {
            *l == Level::Debug && (t.contains("offline queue") || t.contains("in flight at"))
        })
    });
    let ok = blocking(|| acked.recv_timeout(WAIT));
    assert_eq!(ok, Ok(true), "the late message was not acknowledged");
    assert_eq!(publisher.outbound_in_flight(), 0);
    assert_eq!(
        publisher.stats().messages_sent(QoS::AtLeastOnce),
        counts[1] as u64 + 1
    );
    pub_events.wait_tally("the log lines of the restart", |s| {
        let has = |level, a: &str, b: &str| {
            s.log_lines
                .iter()
                .any(|(l, t)| *l == level && t.contains(a) && t.contains(b))
        };
        has(Level::Warning, "connection to", "ended")
            && has(Level::Info, "reconnecting in", "ms")
            && has(Level::Info, "connected to", "session present")
    });
    sub_events.wait_tally("the warning", |s| {
        s.log_lines
            .iter()
            .any(|(l, t)| *l == Level::Warning && t.contains("ended"))
    });
    let sub_lines = sub_events.tally().log_lines;
    assert!(
        sub_lines.iter().all(|(l, _)| *l <= Level::Warning),
        "a WARNING handler got more: {sub_lines:?}"
    );
    assert_no_secret(&pub_events.tally().log_lines);
    assert_no_secret(&sub_lines);
    publisher.close();
    subscriber.close();
}

/// The same lines reach a `log` logger (target "mqtt5c"), whatever the
/// handler's level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_reach_the_log_facade() {
    static LINES: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    struct Collector;
    impl log::Log for Collector {
        fn enabled(&self, m: &log::Metadata) -> bool {
            m.target() == "mqtt5c"
        }
        fn log(&self, r: &log::Record) {
            if r.target() == "mqtt5c" {
                CALLS.fetch_add(1, Ordering::Relaxed);
                LINES
                    .lock()
                    .unwrap()
                    .push((r.level(), r.args().to_string()));
            }
        }
        fn flush(&self) {}
    }
    static COLLECTOR: Collector = Collector;
    log::set_logger(&COLLECTOR).unwrap();
    log::set_max_level(log::LevelFilter::Debug);

    let broker = Broker::start();
    let port = broker.port().to_string();
    let (c, _events) = client("ls-rust-facade", true);
    c.connect(&broker.url()).await.unwrap();
    let mut payload = MARKER.to_vec();
    payload.extend_from_slice(b" facade");
    c.publish(
        "lsr/facade",
        &payload,
        QoS::AtLeastOnce,
        false,
        Properties::new(),
    )
    .await
    .unwrap();
    c.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
    let lines: Vec<(Level, String)> = LINES
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, t)| t.contains(&port))
        .map(|(l, t)| {
            let l = match l {
                log::Level::Error => Level::Error,
                log::Level::Warn => Level::Warning,
                log::Level::Info => Level::Info,
                _ => Level::Debug,
            };
            (l, t.clone())
        })
        .collect();
    let has = |level, text: &str| lines.iter().any(|(l, t)| *l == level && t.contains(text));
    assert!(has(Level::Info, "connecting to"), "{lines:?}");
    assert!(has(Level::Info, "connected to"), "{lines:?}");
    assert!(has(Level::Info, "we sent DISCONNECT 0x00"), "{lines:?}");
    assert_no_secret(&lines);
    assert!(CALLS.load(Ordering::Relaxed) >= 3);
    c.close();
}
