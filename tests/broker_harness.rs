//! Proves the mosquitto harness in tests/common on its own, with hand-written
//! MQTT v5 bytes, so that a failure elsewhere is not blamed on the harness.

mod common;

use common::{raw, Broker};
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

#[test]
fn raw_connect_connack() {
    let broker = Broker::start();
    assert_ne!(broker.port(), 1883, "must never use the shared broker");
    assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{}", broker.port()));

    let (mut stream, body) =
        raw::connect(broker.port(), "harness-sanity").expect("CONNECT/CONNACK");
    assert!(body.len() >= 3, "CONNACK too short: {body:02x?}");
    assert_eq!(body[0], 0x00, "session present must be 0 with clean start");
    assert_eq!(body[1], 0x00, "CONNACK reason code: {body:02x?}");

    // SUBSCRIBE (packet id 1, no properties, "h/t" options QoS 1), expect SUBACK granting 1.
    let mut sub = vec![
        0x82, 0x09, 0x00, 0x01, 0x00, 0x00, 0x03, b'h', b'/', b't', 0x01,
    ];
    sub[1] = (sub.len() - 2) as u8;
    stream.write_all(&sub).unwrap();
    let (first, suback) = raw::read_packet(&mut stream).expect("SUBACK");
    assert_eq!(first, 0x90, "expected SUBACK, body {suback:02x?}");
    assert_eq!(&suback[..2], &[0x00, 0x01], "packet id");
    assert_eq!(*suback.last().unwrap(), 0x01, "granted QoS 1");

    // PUBLISH QoS 0 to ourselves and read it back.
    let publish = [0x30, 0x08, 0x00, 0x03, b'h', b'/', b't', 0x00, b'h', b'i'];
    stream.write_all(&publish).unwrap();
    let (first, body) = raw::read_packet(&mut stream).expect("PUBLISH back");
    assert_eq!(
        first & 0xf0,
        0x30,
        "expected PUBLISH, got {first:02x} {body:02x?}"
    );
    assert_eq!(&body[..5], &[0x00, 0x03, b'h', b'/', b't']);
    assert_eq!(&body[body.len() - 2..], b"hi");

    // DISCONNECT (normal).
    stream.write_all(&[0xe0, 0x00]).unwrap();
    drop(stream);

    // The log is ours and mosquitto wrote to it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !broker.log().contains("harness-sanity") {
        assert!(
            std::time::Instant::now() < deadline,
            "client id never appeared in the broker log:\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn extra_conf_is_applied() {
    let broker = Broker::start_with("max_packet_size 2000\n");
    let (_stream, body) = raw::connect(broker.port(), "harness-conf").expect("CONNECT/CONNACK");
    assert_eq!(body[1], 0x00, "CONNACK reason code: {body:02x?}");
    assert_eq!(
        raw::connack_u32_property(&body, 0x27),
        Some(2000),
        "Maximum Packet Size in CONNACK: {body:02x?}"
    );
}

#[test]
fn brokers_are_independent_and_cleaned_up() {
    let a = Broker::start();
    let b = Broker::start();
    assert_ne!(a.port(), b.port());
    let (dir, port) = (a.dir().to_path_buf(), a.port());
    assert!(dir.join("mosquitto.conf").is_file());
    drop(a);
    assert!(!dir.exists(), "temp dir {} left behind", dir.display());
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
        "broker still listening on {port} after drop"
    );
    raw::connect(b.port(), "still-up").expect("second broker unaffected");
}

#[test]
#[should_panic(expected = "mosquitto did not start")]
fn bad_config_fails_with_log() {
    let _ = Broker::start_with("this_is_not_an_option 1\n");
}
