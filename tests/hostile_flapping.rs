//! A malicious broker, flapping (issue 14): a server that accepts the
//! connection, answers CONNACK Success and drops it at once, again and
//! again. Automatic reconnection must back off as it does for failed
//! attempts, not come back at the minimum delay for ever (a connection
//! loop as fast as the minimum delay allows, on the client and the
//! broker).

mod common;
mod hostile;
mod scripted;

use hostile::{runtime, Events, WAIT};
use mqtt5c::client::{ClientOptions, MqttClient, Reconnect};
use mqtt5c::packet::{Properties, ReasonCode};
use scripted::{accept, Script};
use std::time::{Duration, Instant};

const MIN: Duration = Duration::from_millis(100);
const CONNECTIONS: usize = 5;

#[test]
fn a_server_that_drops_each_connection_after_connack_is_backed_off() {
    let (accepted, at) = std::sync::mpsc::channel();
    let script = Script::start(move |l| {
        for _ in 0..CONNECTIONS {
            let mut p = accept(&l);
            accepted.send(Instant::now()).unwrap();
            p.expect_connect();
            p.connack(ReasonCode::Success, Properties::new());
        }
    });
    let rt = runtime();
    let ev = Events::new();
    let opts = ClientOptions {
        operation_timeout: None,
        reconnect: Some(Reconnect {
            min_delay: MIN,
            max_delay: Duration::from_secs(10),
        }),
        ..Default::default()
    };
    let c = MqttClient::new(opts, ev.clone(), rt.handle().clone());
    rt.block_on(c.connect(&script.url())).unwrap();
    let times: Vec<Instant> = (0..CONNECTIONS)
        .map(|n| {
            at.recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("connection {} within {WAIT:?}", n + 1))
        })
        .collect();
    // The waits before reconnections 1..4 are MIN, 2 MIN, 4 MIN, 8 MIN,
    // each shortened by up to a fifth: the last one at least 6.4 MIN.
    // Without the back-off each is about MIN.
    let last = times[CONNECTIONS - 1] - times[CONNECTIONS - 2];
    assert!(
        last >= MIN * 6,
        "reconnection {} came {last:?} after the one before: no back-off",
        CONNECTIONS - 1
    );
    script.finish(WAIT).unwrap();
    c.close();
}
