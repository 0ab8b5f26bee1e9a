//! The connection as the caller sees it, against a scripted broker: the
//! state a failed call leaves behind (issue 7, defect 13).

mod scripted;

use mqtt5c::client::{ClientOptions, ConnectionEvent, Error, Handler, MqttClient};
use mqtt5c::packet::{Packet, Properties, Publish, QoS};
use scripted::{accept, Script};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

struct Quiet;
impl Handler for Quiet {
    fn on_message(&self, _: Publish) {}
    fn on_connection(&self, _: &ConnectionEvent) {}
}

/// A runtime driven like the C layer drives it: each call is `block_on`
/// from a thread of the caller's, not from a runtime worker.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Issue 7 #13: right after a call fails with ConnectionLost, the client
/// says it is disconnected and `connect` works. The broker closes the
/// socket while a QoS 1 publish waits for its PUBACK, many times over:
/// the race (waiters failed before the connection slot was cleared) hit
/// about one time in a hundred.
#[test]
fn after_connection_lost_the_client_is_disconnected_at_once() {
    const ROUNDS: usize = 1000;
    let script = Script::start(|l| {
        for _ in 0..ROUNDS {
            let mut p = accept(&l);
            p.expect_connect();
            p.connack(mqtt5c::packet::ReasonCode::Success, Properties::new());
            match p.expect("PUBLISH") {
                Packet::Publish(_) => {}
                other => panic!("expected PUBLISH, got {other:?}"),
            }
            // Closed with the PUBLISH unacknowledged.
        }
    });
    let rt = runtime();
    let c = MqttClient::new(
        ClientOptions::default(),
        Arc::new(Quiet),
        rt.handle().clone(),
    );
    let url = script.url();
    for round in 0..ROUNDS {
        // In the race, this is where ALREADY_CONNECTED came back.
        let r = rt.block_on(c.connect(&url));
        assert!(r.is_ok(), "round {round}: connect: {r:?}");
        let r = rt.block_on(c.publish(
            "lost/wait",
            b"x",
            QoS::AtLeastOnce,
            false,
            Properties::new(),
        ));
        assert!(
            matches!(r, Err(Error::ConnectionLost)),
            "round {round}: {r:?}"
        );
        assert!(
            !c.is_connected(),
            "round {round}: is_connected() right after ConnectionLost"
        );
    }
    script.finish(WAIT).unwrap();
}
