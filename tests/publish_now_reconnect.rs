//! QoS 0 publishes from one thread on the caller-thread path
//! (`publish_now`) while the broker drops the connection and the client
//! reconnects: those made meanwhile go into the offline queue, and after
//! the reconnect the queue goes out before anything newer (the
//! `resends_finished` flag keeps `publish_now` off until then). The
//! broker sees one thread's sequence numbers strictly increasing across
//! both connections (some lost with the first connection: QoS 0).

mod common;
mod scripted;

use mqtt5c::client::{ClientOptions, Reconnect};
use mqtt5c::packet::{Properties, QoS, ReasonCode};
use scripted::{accept_connected, Script};
use std::time::Duration;

const N: u64 = 3000;

#[test]
fn one_threads_qos0_order_survives_a_reconnect_through_the_offline_queue() {
    let script = Script::start(|l| {
        let seq =
            |p: &mqtt5c::packet::Publish| u64::from_be_bytes(p.payload[..8].try_into().unwrap());
        let mut p = accept_connected(&l, vec![]);
        let mut last = None;
        for _ in 0..50 {
            let s = seq(&p.expect_publish());
            assert!(last.is_none_or(|l| s > l), "{s} after {last:?}");
            last = Some(s);
        }
        drop(p);
        let mut p = accept_connected(&l, vec![]);
        let mut got = 0;
        loop {
            let pb = p.expect_publish();
            if pb.topic.as_str() == "end" {
                break;
            }
            let s = seq(&pb);
            assert!(
                last.is_none_or(|l| s > l),
                "{s} after {last:?} (second connection)"
            );
            last = Some(s);
            got += 1;
        }
        assert!(got > 0, "nothing from the offline queue or after it");
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let o = ClientOptions {
        reconnect: Some(Reconnect {
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
        }),
        ..Default::default()
    };
    let (c, events) = common::events::client_on(o, rt.handle());
    rt.block_on(c.connect(&script.url())).unwrap();
    events.expect("connected");
    for s in 0..N {
        // Errors (the write that met the loss) are QoS 0's to lose.
        let _ = rt.block_on(c.publish(
            "seq",
            &s.to_be_bytes(),
            QoS::AtMostOnce,
            false,
            Properties::new(),
        ));
    }
    events.expect("disconnected");
    events.expect("connected");
    rt.block_on(c.publish("end", b"", QoS::AtMostOnce, false, Properties::new()))
        .unwrap();
    rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()))
        .unwrap();
    script.finish(Duration::from_secs(60)).unwrap();
}
