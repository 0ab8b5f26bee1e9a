//! What a hostile WebSocket server can make the client spend (issue 8,
//! finding 2), measured in child processes so that the numbers are the
//! client's alone and a crash is seen as a crash:
//! - a frame header declaring 260,000,000 bytes, under an address-space
//!   limit 192 MiB above the child's size: the connection fails with an
//!   error; the process neither aborts nor grows;
//! - a 64 MiB message (one frame, as mosquitto sends it) costs at most 1.5
//!   times over ws:// what it costs over TCP (peak RSS growth).
//!
//! The servers are scripted here with std I/O; each child is this test
//! executable running the ignored test `child` with its role in the
//! environment.

use bytes::BytesMut;
use mqtt5c::client::{ClientOptions, ConnectionEvent, Handler, MqttClient};
use mqtt5c::packet::{self, ConnAck, MqttStr, Packet, Properties, Publish, QoS, ReasonCode};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

const MIB: usize = 1024 * 1024;
const BIG: usize = 64 * MIB;

/// One line of /proc/self/status, in KiB.
fn status_kib(field: &str) -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

// ---------------------------------------------------------------- server

/// Answers the upgrade request on `s` (the ws:// servers).
fn upgrade(s: &mut TcpStream) {
    let mut req = Vec::new();
    let mut b = [0u8; 1];
    while !req.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        req.push(b[0]);
    }
    let req = String::from_utf8(req).unwrap();
    let key = req
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("no key in the upgrade request");
    write!(
        s,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
        derive_accept_key(key.as_bytes())
    )
    .unwrap();
}

/// Reads the client's CONNECT: over ws:// one masked frame, else raw.
fn read_connect(s: &mut TcpStream, ws: bool) {
    let mut buf = BytesMut::new();
    loop {
        if let Some(p) = packet::decode(&mut buf, MIB).unwrap() {
            assert!(matches!(p, Packet::Connect(_)), "expected CONNECT");
            return;
        }
        if ws {
            let mut h = [0u8; 2];
            s.read_exact(&mut h).unwrap();
            let len = match h[1] & 0x7F {
                126 => {
                    let mut l = [0u8; 2];
                    s.read_exact(&mut l).unwrap();
                    u16::from_be_bytes(l) as usize
                }
                n => n as usize,
            };
            let mut mask = [0u8; 4];
            s.read_exact(&mut mask).unwrap();
            let mut p = vec![0u8; len];
            s.read_exact(&mut p).unwrap();
            p.iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= mask[i % 4]);
            buf.extend_from_slice(&p);
        } else {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "client closed before CONNECT");
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// `bytes` as one unmasked binary frame header (the payload follows).
fn frame_header(len: u64) -> Vec<u8> {
    let mut h = vec![0x82, 127];
    h.extend(len.to_be_bytes());
    h
}

fn encode(p: &Packet) -> Vec<u8> {
    let mut b = BytesMut::new();
    packet::encode(p, &mut b).unwrap();
    b.to_vec()
}

fn connack() -> Vec<u8> {
    encode(&Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::Success,
        properties: Properties::new(),
    }))
}

/// The hostile server: a 10-byte header claiming 260,000,000
/// bytes, a little payload (not an MQTT packet), then the end.
fn hostile_server(l: TcpListener) {
    let (mut s, _) = l.accept().unwrap();
    upgrade(&mut s);
    read_connect(&mut s, true);
    let mut out = frame_header(260_000_000);
    out.extend(vec![0u8; 1000]);
    s.write_all(&out).unwrap();
    // Until the client gives up on the connection.
    let _ = s.read(&mut [0u8; 64]);
}

/// CONNACK, then a QoS 0 PUBLISH of `BIG` payload bytes, over ws:// as
/// one frame holding both.
fn big_message_server(l: TcpListener, ws: bool) {
    let (mut s, _) = l.accept().unwrap();
    if ws {
        upgrade(&mut s);
    }
    read_connect(&mut s, ws);
    let publish = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: MqttStr::new("big").unwrap(),
        packet_id: None,
        properties: Properties::new(),
        payload: vec![0x5A; BIG].into(),
    };
    let mut body = connack();
    body.extend(encode(&Packet::Publish(publish)));
    if ws {
        s.write_all(&frame_header(body.len() as u64)).unwrap();
    }
    s.write_all(&body).unwrap();
    drop(body);
    // Until the client disconnects.
    let _ = s.read(&mut [0u8; 64]);
}

/// Runs `server` on a free port and this executable's `child` test with
/// `role`; returns the child's stdout, after checking it exited normally.
fn run_child(role: &str, server: impl FnOnce(TcpListener) + Send + 'static) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || server(l));
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WS_MEMORY_ROLE", role)
        .env("WS_MEMORY_PORT", port.to_string())
        // One malloc arena: thread arenas would reserve 64 MiB of address
        // space each, noise for the address-space limit.
        .env("MALLOC_ARENA_MAX", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child '{role}' failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    t.join().unwrap();
    stdout
}

/// The value of `key=` in the child's output.
fn result(stdout: &str, key: &str) -> usize {
    stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in the child's output:\n{stdout}"))
}

#[test]
fn a_huge_frame_header_fails_the_connection_not_the_process() {
    let out = run_child("huge", hostile_server);
    assert!(out.contains("connect failed:"), "{out}");
    let growth = result(&out, "peak_growth_kib");
    assert!(
        growth < 32 * 1024,
        "peak virtual size grew by {growth} KiB for a declared frame:\n{out}"
    );
}

#[test]
fn a_message_over_ws_costs_at_most_one_and_a_half_times_tcp() {
    let tcp = result(
        &run_child("big-tcp", |l| big_message_server(l, false)),
        "rss_growth_kib",
    );
    let ws = result(
        &run_child("big-ws", |l| big_message_server(l, true)),
        "rss_growth_kib",
    );
    println!("64 MiB message: RSS growth {tcp} KiB over TCP, {ws} KiB over ws://");
    // The measurement means something: the message itself is resident.
    assert!(
        tcp >= BIG / 1024,
        "TCP growth {tcp} KiB is below the message size"
    );
    assert!(
        ws * 2 <= tcp * 3,
        "over ws:// {ws} KiB, over TCP {tcp} KiB: more than 1.5 times"
    );
}

// ----------------------------------------------------------------- child

struct Got(Mutex<mpsc::Sender<usize>>);

impl Handler for Got {
    fn on_message(&self, m: Publish) {
        // Peak RSS with the message (and its receive buffer) alive.
        let rss = status_kib("VmHWM");
        assert_eq!(m.payload.len(), BIG);
        let _ = self.0.lock().unwrap().send(rss);
    }
    fn on_connection(&self, _e: &ConnectionEvent) {}
}

/// Lowers this process's address-space limit to `extra` above its size.
fn limit_address_space(extra: usize) {
    let limit = (status_kib("VmSize") * 1024 + extra) as libc::rlim_t;
    let r = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: a valid rlimit for this process.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &r) }, 0);
}

#[test]
#[ignore = "run in a child process by the other tests of this file"]
fn child() {
    let role = std::env::var("WS_MEMORY_ROLE").expect("WS_MEMORY_ROLE");
    let port = std::env::var("WS_MEMORY_PORT").expect("WS_MEMORY_PORT");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let opts = ClientOptions {
        client_id: MqttStr::new("ws-memory").unwrap(),
        connect_timeout: Duration::from_secs(20),
        // No Maximum Packet Size (the default 1 MiB would refuse the 64
        // MiB message): the frame limits must hold on their own.
        max_packet_size: mqtt5c::client::PROTOCOL_MAX_PACKET_SIZE,
        ..Default::default()
    };
    let c = MqttClient::new(opts, Arc::new(Got(Mutex::new(tx))), rt.handle().clone());
    match role.as_str() {
        "huge" => {
            let before = status_kib("VmPeak");
            limit_address_space(192 * MIB);
            let r = rt.block_on(c.connect(&format!("ws://127.0.0.1:{port}")));
            let e = r.expect_err("connected to a hostile server");
            println!("connect failed: {e}");
            println!("peak_growth_kib={}", status_kib("VmPeak") - before);
        }
        "big-tcp" | "big-ws" => {
            let scheme = if role == "big-ws" { "ws" } else { "mqtt" };
            let before = status_kib("VmHWM");
            rt.block_on(c.connect(&format!("{scheme}://127.0.0.1:{port}")))
                .unwrap();
            let peak = rx.recv_timeout(Duration::from_secs(60)).unwrap();
            println!("rss_growth_kib={}", peak - before);
            rt.block_on(c.disconnect(ReasonCode::Success, Properties::new()))
                .unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}
