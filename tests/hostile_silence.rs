//! A malicious broker, silence (issue 14): a server that accepts TCP and
//! never answers CONNECT, one that answers a byte per second, one that
//! stops answering PINGREQ. The spec names no DISCONNECT for these: the
//! client closes the connection (MQTT 5 sections 3.1.4 and 3.1.2.10).
//! `connect` fails within the connect timeout, however slowly bytes
//! trickle in; with `connect_retry` the client tries again and connects;
//! nothing leaks (tests/hostile/mod.rs, `leak_checked`).

mod common;
mod hostile;
mod scripted;

use hostile::{
    leak_checked, leak_checked_runs, next_connection_event, next_disconnect, runtime,
    serve_until_disconnect, within,
};
use hostile::{Events, WAIT};
use mqtt5c::client::{
    ClientOptions, ConnectionEvent, DisconnectCause, Error, MqttClient, Reconnect,
};
use mqtt5c::packet::{Packet, Properties, ProtocolVersion, QoS, ReasonCode};
use scripted::{accept, accept_connected, Peer, Script};
use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Long enough for a byte of CONNACK to come in at a byte per second, and
/// another after a second: the timeout covers the whole exchange, not
/// each read.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);

/// The connect timeout against a server that says nothing at all.
const SHORT: Duration = Duration::from_millis(300);

/// How the first connection's broker behaves after reading CONNECT.
type Stall = fn(&mut Peer, ProtocolVersion);

/// Says nothing; waits for the client to give up and close.
fn never_answer(p: &mut Peer, _: ProtocolVersion) {
    p.expect_silent_close();
}

/// Sends CONNACK a byte per second until the client closes.
fn byte_per_second(p: &mut Peer, version: ProtocolVersion) {
    let connack: &[u8] = match version {
        ProtocolVersion::V5 => &[0x20, 0x03, 0x00, 0x00, 0x00],
        _ => &[0x20, 0x02, 0x00, 0x00],
    };
    let mut w = p.writer();
    for b in connack {
        let _ = w.write_all(&[*b]);
        if p.closed_within(Duration::from_secs(1)) {
            return;
        }
    }
    panic!("the client waited for the whole CONNACK, a byte per second");
}

/// A stalling broker; with `retry`, the client's next attempt is served.
/// `connect` must fail within the connect timeout (plus a margin for a
/// loaded machine, far below a byte per second's CONNACK), sending no
/// DISCONNECT; with `retry` the client reconnects by itself.
fn stalled_connect(version: ProtocolVersion, stall: Stall, retry: bool, timeout: Duration) {
    let script = Script::start(move |l: TcpListener| {
        let mut p = accept(&l);
        p.speak(version);
        p.expect_connect();
        stall(&mut p, version);
        if retry {
            let mut p = accept(&l);
            p.speak(version);
            p.handshake(vec![]);
            serve_until_disconnect(&mut p);
        }
    });
    let rt = runtime();
    let ev = Events::new();
    let opts = ClientOptions {
        protocol_version: Some(version),
        connect_timeout: timeout,
        operation_timeout: None,
        connect_retry: retry,
        reconnect: retry.then_some(Reconnect {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(20),
        }),
        ..Default::default()
    };
    let c = MqttClient::new(opts, ev.clone(), rt.handle().clone());
    let t = Instant::now();
    let r = rt.block_on(c.connect(&script.url()));
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    assert!(
        t.elapsed() < timeout + Duration::from_secs(2),
        "connect took {:?}",
        t.elapsed()
    );
    if retry {
        // The retry is announced, then connects.
        let mut announced = false;
        loop {
            match next_connection_event(&ev) {
                ConnectionEvent::Connected { .. } => break,
                ConnectionEvent::Reconnecting { .. } => announced = true,
                other => panic!("{other:?}"),
            }
        }
        assert!(announced, "CONNECTED without RECONNECTING before it");
        let ack = rt
            .block_on(c.publish(
                "after/retry",
                b"x",
                QoS::AtLeastOnce,
                false,
                Properties::new(),
            ))
            .expect("publish after the retry");
        assert_eq!(ack.reason, ReasonCode::Success);
        rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()))
            .unwrap();
    } else {
        assert!(!c.is_connected());
        assert!(ev.pending().is_empty(), "no event: never connected");
    }
    script.finish(WAIT).unwrap();
    c.close();
}

#[test]
fn a_server_that_never_answers_connect_fails_it_within_the_timeout() {
    leak_checked(|| stalled_connect(ProtocolVersion::V5, never_answer, false, SHORT));
}

#[test]
fn a_server_that_never_answers_connect_is_retried() {
    leak_checked(|| stalled_connect(ProtocolVersion::V5, never_answer, true, SHORT));
}

#[test]
fn a_server_that_never_answers_connect_is_retried_on_3_1_1() {
    leak_checked(|| stalled_connect(ProtocolVersion::V311, never_answer, true, SHORT));
}

#[test]
fn a_connack_at_a_byte_per_second_fails_the_connect_within_the_timeout() {
    leak_checked_runs(1, || {
        stalled_connect(ProtocolVersion::V5, byte_per_second, false, CONNECT_TIMEOUT)
    });
}

#[test]
fn a_connack_at_a_byte_per_second_is_retried() {
    leak_checked_runs(1, || {
        stalled_connect(ProtocolVersion::V5, byte_per_second, true, CONNECT_TIMEOUT)
    });
}

#[test]
fn a_connack_at_a_byte_per_second_is_retried_on_3_1_1() {
    leak_checked_runs(1, || {
        stalled_connect(
            ProtocolVersion::V311,
            byte_per_second,
            true,
            CONNECT_TIMEOUT,
        )
    });
}

/// A broker that stops answering (PINGREQ swallowed, socket open): after
/// one PINGREQ unanswered the keep-alive ends the connection and the
/// publish waiting for its PUBACK fails. (Moved from tests/fake_broker.rs,
/// with the waiting publish added.)
#[test]
fn keepalive_without_pingresp_ends_the_connection() {
    leak_checked_runs(1, || {
        let script = Script::start(|l| {
            let mut p = accept_connected(&l, vec![]);
            let mut pings = 0;
            while let Some(pk) = p.read() {
                match pk {
                    Packet::PingReq => pings += 1,
                    Packet::Publish(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(pings, 1, "exactly one PINGREQ before giving up");
        });
        let rt = runtime();
        let ev = Events::new();
        let opts = ClientOptions {
            keep_alive: 1,
            operation_timeout: None,
            ..Default::default()
        };
        let c = MqttClient::new(opts, ev.clone(), rt.handle().clone());
        rt.block_on(c.connect(&script.url())).unwrap();
        let r = within(
            &rt,
            c.publish("a/b", b"x", QoS::AtLeastOnce, false, Properties::new()),
        );
        assert!(
            matches!(r, Ok(Err(Error::ConnectionLost))),
            "the waiting publish: {r:?}"
        );
        assert!(matches!(
            next_disconnect(&ev),
            DisconnectCause::KeepAliveTimeout
        ));
        assert!(!c.is_connected());
        script.finish(WAIT).unwrap();
        c.close();
    });
}

/// A broker that answers PINGREQ keeps the connection. (Moved from
/// tests/fake_broker.rs.)
#[test]
fn pingresp_keeps_the_connection() {
    let (answered, pings) = std::sync::mpsc::channel();
    let script = Script::start(move |l| {
        let mut p = accept_connected(&l, vec![]);
        for _ in 0..3 {
            match p.expect("PINGREQ") {
                Packet::PingReq => p.send(Packet::PingResp),
                other => panic!("expected PINGREQ, got {other:?}"),
            }
            answered.send(()).unwrap();
        }
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
        p.expect_close();
    });
    let rt = runtime();
    let ev = Events::new();
    let opts = ClientOptions {
        keep_alive: 1,
        ..Default::default()
    };
    let c = MqttClient::new(opts, ev.clone(), rt.handle().clone());
    rt.block_on(c.connect(&script.url())).unwrap();
    assert!(matches!(
        next_connection_event(&ev),
        ConnectionEvent::Connected { .. }
    ));
    for n in 1..=3 {
        pings
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("PINGREQ {n} within {WAIT:?}"));
    }
    assert!(c.is_connected());
    assert!(ev.pending().is_empty(), "no disconnect event");
    rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()))
        .unwrap();
    script.finish(WAIT).unwrap();
}
