//! A scripted broker for what mosquitto cannot show (enhanced
//! authentication, inbound topic aliases, a broker exceeding our Receive
//! Maximum or Maximum Packet Size). Blocking std I/O on its own thread, the
//! crate's codec for the packets. A script panics on anything unexpected;
//! `Script::finish` reports that panic.
//!
//! The C test driver (tests/c_api.rs) runs one of the named scripts below
//! instead of mosquitto for a C file with a `// fake-broker: NAME` line;
//! Rust tests use `Script::start` with a closure. It is the tests' one
//! scripted broker: a test that needs exact bytes from a broker writes a
//! script here rather than a listener of its own. (Left apart: the
//! WebSocket and HTTP servers of ws_memory.rs and error_texts.rs, a TLS
//! redirector in failover.rs, and two C programs whose broker runs in
//! their own process: test_free_blocked.c counts the packets it received
//! to know when every call is blocked, test_sigpipe.c needs a Unix socket.)
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use mqtt5c::client::MqttClient;
use mqtt5c::packet::{
    self, Auth, ConnAck, Connect, Disconnect, MqttStr, Packet, PacketType, Properties, Property,
    PropertyId, ProtocolVersion, PubResp, Publish, QoS, ReasonCode, SubAck, Subscribe, Unsubscribe,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod persist;
mod protocol;
mod reliability;

/// How long a script waits for the client's next packet or connection.
pub const STEP: Duration = Duration::from_secs(60);

pub struct Peer {
    stream: TcpStream,
    buf: BytesMut,
    /// Set by `read_slowly`.
    pace: Option<Pace>,
    /// The forms `read` and `send` use (see `speak`); v5 by default.
    version: ProtocolVersion,
}

impl Peer {
    /// The next packet, or None when the client closed the connection.
    pub fn read(&mut self) -> Option<Packet> {
        self.read_max(1 << 20)
    }

    /// `read`, accepting packets of up to `max` bytes.
    pub fn read_max(&mut self, max: usize) -> Option<Packet> {
        loop {
            let decoded = packet::decode_with(&mut self.buf, max, self.version);
            if let Some(p) = decoded.expect("client sent garbage") {
                return Some(p);
            }
            let mut chunk = [0u8; 4096];
            let len = self
                .pace
                .as_ref()
                .map_or(chunk.len(), |p| p.bytes.min(chunk.len()));
            match self.stream.read(&mut chunk[..len]) {
                Ok(0) => return None,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    if let Some(pace) = &mut self.pace {
                        pace.took(n);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading from the client: {e}"),
            }
        }
    }

    /// Whether the client sends nothing (not a byte) for `d`.
    pub fn quiet_for(&mut self, d: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        self.stream.set_read_timeout(Some(d)).unwrap();
        let mut chunk = [0u8; 4096];
        let r = self.stream.read(&mut chunk);
        self.stream.set_read_timeout(Some(STEP)).unwrap();
        match r {
            Ok(0) => panic!("connection closed while checking that the client is quiet"),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                false
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => true,
            Err(e) => panic!("reading from the client: {e}"),
        }
    }

    /// Whether the client closes the connection within `d`; what it
    /// sends meanwhile is kept for `read`.
    pub fn closed_within(&mut self, d: Duration) -> bool {
        self.stream.set_read_timeout(Some(d)).unwrap();
        let mut chunk = [0u8; 4096];
        let r = self.stream.read(&mut chunk);
        self.stream.set_read_timeout(Some(STEP)).unwrap();
        match r {
            Ok(0) => true,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                false
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
            Err(e) => panic!("reading from the client: {e}"),
        }
    }

    /// Reads at least `n` bytes without decoding them (the start of a
    /// packet too large for `read`); the stream is then out of step.
    pub fn read_raw(&mut self, n: usize) {
        while self.buf.len() < n {
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("connection closed after {} bytes", self.buf.len()),
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) => panic!("reading from the client: {e}"),
            }
        }
    }

    /// From now on reads at most `bytes` per `pause` on average: a slow
    /// link (see `Pace`).
    pub fn read_slowly(&mut self, bytes: usize, pause: Duration) {
        self.pace = Some(Pace {
            bytes,
            pause,
            since: Instant::now(),
            taken: 0,
        });
        set_receive_buffer(&self.stream, RECEIVE_BUFFER);
    }

    /// The next packet; panics when the connection closed instead.
    pub fn expect(&mut self, what: &str) -> Packet {
        self.read()
            .unwrap_or_else(|| panic!("connection closed while expecting {what}"))
    }

    /// Reads and sends the forms of `version` from now on (a 3.1.1
    /// broker: `speak(ProtocolVersion::V311)` right after `accept`).
    pub fn speak(&mut self, version: ProtocolVersion) {
        self.version = version;
    }

    pub fn send(&mut self, p: Packet) {
        let mut b = BytesMut::new();
        packet::encode_with(&p, self.version, &mut b).unwrap();
        self.stream.write_all(&b).unwrap();
    }

    /// `send` for a packet the client may refuse before reading it all
    /// (one over its Maximum Packet Size): it answers and closes after the
    /// fixed header, so a broken pipe or a reset here is the expected end.
    pub fn send_refused(&mut self, p: Packet) {
        let mut b = BytesMut::new();
        packet::encode_with(&p, self.version, &mut b).unwrap();
        match self.stream.write_all(&b) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {}
            Err(e) => panic!("writing to the client: {e}"),
        }
    }

    pub fn send_raw(&mut self, b: &[u8]) {
        self.stream.write_all(b).unwrap();
    }

    /// A second handle on the connection, to write from another thread
    /// while this one waits (a write the client may never take).
    pub fn writer(&self) -> TcpStream {
        self.stream.try_clone().unwrap()
    }

    pub fn expect_connect(&mut self) -> Connect {
        match self.expect("CONNECT") {
            Packet::Connect(c) => *c,
            other => panic!("expected CONNECT, got {other:?}"),
        }
    }

    pub fn connack(&mut self, reason: ReasonCode, properties: Properties) {
        self.send(Packet::ConnAck(ConnAck {
            session_present: false,
            reason,
            properties,
        }));
    }

    /// CONNACK Success with `session_present` and `properties`.
    pub fn connack_session(&mut self, session_present: bool, properties: Vec<Property>) {
        self.send(Packet::ConnAck(ConnAck {
            session_present,
            reason: ReasonCode::Success,
            properties: props(properties),
        }));
    }

    /// Reads the CONNECT and accepts it with a new session: CONNACK
    /// Success carrying `properties`. Returns the CONNECT.
    pub fn handshake(&mut self, properties: Vec<Property>) -> Connect {
        let c = self.expect_connect();
        self.connack_session(false, properties);
        c
    }

    /// Reads the CONNECT of a client resuming its session (Clean Start 0)
    /// and answers CONNACK Success with Session Present, carrying
    /// `properties`. Returns the CONNECT.
    pub fn resume(&mut self, properties: Vec<Property>) -> Connect {
        let c = self.expect_connect();
        assert!(!c.clean_start, "the client resumes its session");
        self.connack_session(true, properties);
        c
    }

    /// The next packet, which must be a PUBLISH.
    pub fn expect_publish(&mut self) -> Publish {
        match self.expect("PUBLISH") {
            Packet::Publish(pb) => pb,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// The next packet, which must be a SUBSCRIBE.
    pub fn expect_subscribe(&mut self) -> Subscribe {
        match self.expect("SUBSCRIBE") {
            Packet::Subscribe(sub) => sub,
            other => panic!("expected SUBSCRIBE, got {other:?}"),
        }
    }

    /// The next packet, which must be an UNSUBSCRIBE.
    pub fn expect_unsubscribe(&mut self) -> Unsubscribe {
        match self.expect("UNSUBSCRIBE") {
            Packet::Unsubscribe(u) => u,
            other => panic!("expected UNSUBSCRIBE, got {other:?}"),
        }
    }

    pub fn suback(&mut self, packet_id: u16, reasons: Vec<ReasonCode>) {
        self.send(Packet::SubAck(SubAck {
            packet_id,
            properties: Properties::new(),
            reasons,
        }));
    }

    /// Reads a SUBSCRIBE and answers SUBACK with `reasons`; returns the
    /// SUBSCRIBE.
    pub fn answer_subscribe(&mut self, reasons: Vec<ReasonCode>) -> Subscribe {
        let sub = self.expect_subscribe();
        self.suback(sub.packet_id, reasons);
        sub
    }

    /// The next packet, which must be a PUBACK for `id`.
    pub fn expect_puback(&mut self, id: u16) -> PubResp {
        self.expect_resp(PacketType::PubAck, id)
    }

    /// The next packet, which must be a PUBREC for `id`.
    pub fn expect_pubrec(&mut self, id: u16) -> PubResp {
        self.expect_resp(PacketType::PubRec, id)
    }

    /// The next packet, which must be a PUBREL for `id`.
    pub fn expect_pubrel(&mut self, id: u16) -> PubResp {
        self.expect_resp(PacketType::PubRel, id)
    }

    /// The next packet, which must be a PUBCOMP for `id`.
    pub fn expect_pubcomp(&mut self, id: u16) -> PubResp {
        self.expect_resp(PacketType::PubComp, id)
    }

    /// The next packet, which must be the acknowledgement `kind` of `id`.
    fn expect_resp(&mut self, kind: PacketType, id: u16) -> PubResp {
        let what = format!("{kind:?}").to_uppercase();
        let r = match (kind, self.expect(&what)) {
            (PacketType::PubAck, Packet::PubAck(r))
            | (PacketType::PubRec, Packet::PubRec(r))
            | (PacketType::PubRel, Packet::PubRel(r))
            | (PacketType::PubComp, Packet::PubComp(r)) => r,
            (_, other) => panic!("expected {what} {id}, got {other:?}"),
        };
        assert_eq!(r.packet_id, id, "the packet id of {what}");
        r
    }

    /// Reads until DISCONNECT and returns its reason; panics on EOF.
    pub fn expect_disconnect(&mut self) -> ReasonCode {
        loop {
            match self.expect("DISCONNECT") {
                Packet::Disconnect(d) => return d.reason,
                Packet::PingReq => self.send(Packet::PingResp),
                other => panic!("expected DISCONNECT, got {other:?}"),
            }
        }
    }

    /// Waits for the client to close the connection sending nothing more
    /// (a 3.1.1 client ending a connection the server broke: no reason
    /// codes there).
    pub fn expect_silent_close(&mut self) {
        if let Some(packet) = self.read() {
            panic!("expected the connection to close without a word, got {packet:?}");
        }
    }

    /// Waits for the client to close the connection (after DISCONNECT).
    pub fn expect_close(&mut self) {
        while let Some(p) = self.read() {
            assert!(
                matches!(p, Packet::Disconnect(_) | Packet::PingReq),
                "expected the connection to close, got {p:?}"
            );
        }
    }
}

/// Accepts the next connection and its CONNECT with a new session
/// (`Peer::handshake`).
pub fn accept_connected(l: &TcpListener, properties: Vec<Property>) -> Peer {
    let mut p = accept(l);
    p.handshake(properties);
    p
}

/// Accepts the next connection, of a client resuming its session
/// (`Peer::resume`).
pub fn accept_resumed(l: &TcpListener, properties: Vec<Property>) -> Peer {
    let mut p = accept(l);
    p.resume(properties);
    p
}

pub fn accept(l: &TcpListener) -> Peer {
    let (stream, _) = l.accept().expect("accept");
    stream.set_read_timeout(Some(STEP)).unwrap();
    stream.set_nodelay(true).unwrap();
    Peer {
        stream,
        buf: BytesMut::new(),
        pace: None,
        version: ProtocolVersion::V5,
    }
}

/// The receive buffer of a slow reader (the kernel doubles it): the
/// default's size, but fixed, so that the kernel does not grow it when we
/// catch up and acknowledge megabytes ahead of our reading. Much smaller
/// stalls the link instead (windows below the loopback's MSS).
const RECEIVE_BUFFER: usize = 64 << 10;

/// Sets SO_RCVBUF, which also ends the kernel's tuning of it.
fn set_receive_buffer(stream: &TcpStream, bytes: usize) {
    use std::os::fd::AsRawFd;
    let size = libc::c_int::try_from(bytes).unwrap();
    // SAFETY: a valid socket and an int option of the stated length.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
}

/// A reading rate kept to a schedule rather than by a pause per read: a
/// thread that a loaded machine wakes late catches up instead of falling
/// ever further behind. Otherwise the bytes the kernel already acknowledged
/// (a PINGREQ among them) could wait in our receive buffer longer than the
/// client's keep-alive grants a broker to answer once its PINGREQ arrived:
/// a stalled broker, not a slow link.
#[derive(Clone, Copy)]
struct Pace {
    bytes: usize,
    pause: Duration,
    since: Instant,
    taken: u64,
}

impl Pace {
    /// Records `n` bytes read; sleeps until the schedule allows more.
    fn took(&mut self, n: usize) {
        self.taken += n as u64;
        let due = self.since + self.pause.mul_f64(self.taken as f64 / self.bytes as f64);
        if let Some(ahead) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(ahead);
        }
    }
}

/// A script running on its own thread.
pub struct Script {
    pub port: u16,
    done: mpsc::Receiver<Result<(), String>>,
}

impl Script {
    pub fn start(f: impl FnOnce(TcpListener) + Send + 'static) -> Script {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(l)));
            let _ = tx.send(r.map_err(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "script panicked".into())
            }));
        });
        Script { port, done }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Waits for the script to end; Err carries its failure.
    pub fn finish(self, within: Duration) -> Result<(), String> {
        self.done
            .recv_timeout(within)
            .unwrap_or_else(|_| Err(format!("the script did not finish within {within:?}")))
    }

    /// The usual end of a test: `c` disconnects (Normal), then the script
    /// must finish within `within`; panics with its failure otherwise.
    pub async fn end(self, c: &MqttClient, within: Duration) {
        c.disconnect(ReasonCode::Success, Properties::new())
            .await
            .unwrap();
        self.finish(within).unwrap();
    }
}

pub fn s(v: &str) -> MqttStr {
    MqttStr::new(v).unwrap()
}

pub fn props(list: Vec<Property>) -> Properties {
    Properties::from(list)
}

pub fn publish(topic: &str, qos: QoS, id: Option<u16>, p: Vec<Property>, payload: &[u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: s(topic),
        packet_id: id,
        properties: props(p),
        payload: Bytes::copy_from_slice(payload),
    })
}

pub fn resp(id: u16) -> PubResp {
    PubResp {
        packet_id: id,
        reason: ReasonCode::Success,
        properties: Properties::new(),
    }
}

pub fn auth(reason: ReasonCode, method: &str, data: Option<&[u8]>) -> Packet {
    let mut p = vec![Property::AuthenticationMethod(s(method))];
    if let Some(d) = data {
        p.push(Property::AuthenticationData(Bytes::copy_from_slice(d)));
    }
    Packet::Auth(Auth {
        reason,
        properties: props(p),
    })
}

/// The data of an AUTH the client sent, checking reason and method.
pub fn auth_data(p: Packet, reason: ReasonCode, method: &str) -> Bytes {
    match p {
        Packet::Auth(a) => {
            assert_eq!(a.reason, reason, "AUTH reason");
            assert_eq!(
                a.properties
                    .get_str(PropertyId::AuthenticationMethod)
                    .as_deref(),
                Some(method),
                "AUTH method"
            );
            a.properties
                .get_binary(PropertyId::AuthenticationData)
                .unwrap_or_default()
        }
        other => panic!("expected AUTH, got {other:?}"),
    }
}

/// A named script for the C tests.
pub fn by_name(name: &str) -> fn(TcpListener) {
    match name {
        "auth" => auth_script,
        "inbound" => inbound_script,
        "reconnect" => reconnect_script,
        "publish_async_lost" => publish_async_lost_script,
        "free_auth" => free_auth_script,
        "lost_connection" => lost_connection_script,
        "auth_verify" => protocol::auth_verify_script,
        "wrong_acks" => protocol::wrong_acks_script,
        "session_present" => protocol::session_present_script,
        "resubscribe" => reliability::resubscribe_script,
        "persist_qos2" => persist::persist_qos2_script,
        "persist_torn" => persist::persist_torn_script,
        _ => panic!("unknown fake-broker script '{name}'"),
    }
}

/// tests/c/test_auth.c
fn auth_script(l: TcpListener) {
    const M: &str = "TOY";
    // 1: challenge/response at connect, then two re-authentications.
    let mut p = accept(&l);
    let c = p.expect_connect();
    assert_eq!(
        c.properties
            .get_str(PropertyId::AuthenticationMethod)
            .as_deref(),
        Some(M)
    );
    assert_eq!(
        c.properties
            .get_binary(PropertyId::AuthenticationData)
            .as_deref(),
        Some(&b"client-first"[..])
    );
    p.send(auth(
        ReasonCode::ContinueAuthentication,
        M,
        Some(b"challenge-1"),
    ));
    let d = auth_data(p.expect("AUTH"), ReasonCode::ContinueAuthentication, M);
    assert_eq!(&d[..], b"response-1");
    p.connack(
        ReasonCode::Success,
        props(vec![
            Property::AuthenticationMethod(s(M)),
            Property::AuthenticationData(Bytes::from_static(b"server-final")),
        ]),
    );
    let d = auth_data(p.expect("AUTH 0x19"), ReasonCode::ReAuthenticate, M);
    assert_eq!(&d[..], b"again");
    p.send(auth(
        ReasonCode::ContinueAuthentication,
        M,
        Some(b"challenge-2"),
    ));
    // The callback publishes at QoS 1 before it answers: acknowledge it
    // while the exchange is in progress.
    loop {
        match p.expect("PUBLISH or AUTH") {
            Packet::Publish(pb) => {
                assert_eq!(pb.topic.as_str(), "auth/inside-callback");
                p.send(Packet::PubAck(resp(pb.packet_id.unwrap())));
            }
            a @ Packet::Auth(_) => {
                let d = auth_data(a, ReasonCode::ContinueAuthentication, M);
                assert_eq!(&d[..], b"response-2");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    p.send(auth(ReasonCode::Success, M, Some(b"server-final")));
    // The connection carries on: a publish is acknowledged as usual.
    let id = p.expect_publish().packet_id.unwrap();
    p.send(Packet::PubAck(resp(id)));
    // A re-authentication the broker refuses.
    let d = auth_data(p.expect("AUTH 0x19"), ReasonCode::ReAuthenticate, M);
    assert_eq!(&d[..], b"wrong");
    p.send(Packet::Disconnect(Disconnect {
        reason: ReasonCode::NotAuthorized,
        properties: props(vec![Property::ReasonString(s("bad secret"))]),
    }));
    p.expect_close();

    // 2: the broker does not know the method.
    let mut p = accept(&l);
    p.expect_connect();
    p.connack(ReasonCode::BadAuthenticationMethod, Properties::new());
    p.expect_close();

    // 3: the callback refuses a challenge.
    let mut p = accept(&l);
    p.expect_connect();
    p.send(auth(
        ReasonCode::ContinueAuthentication,
        M,
        Some(b"reject-me"),
    ));
    assert_eq!(
        p.expect_disconnect(),
        ReasonCode::ImplementationSpecificError
    );
    p.expect_close();
}

/// tests/c/test_inbound_limits.c
fn inbound_script(l: TcpListener) {
    // 1: aliases resolved, then one above our maximum (2).
    let mut p = accept(&l);
    let c = p.expect_connect();
    assert_eq!(c.properties.get_int(PropertyId::TopicAliasMaximum), Some(2));
    assert_eq!(
        c.properties.get_int(PropertyId::MaximumPacketSize),
        Some(200)
    );
    assert_eq!(c.properties.get_int(PropertyId::ReceiveMaximum), Some(2));
    p.connack(ReasonCode::Success, Properties::new());
    let a = |n| vec![Property::TopicAlias(n)];
    p.send(publish("in/a", QoS::AtMostOnce, None, a(1), b"1"));
    p.send(publish("", QoS::AtMostOnce, None, a(1), b"2"));
    p.send(publish("in/b", QoS::AtMostOnce, None, a(2), b"3"));
    p.send(publish("", QoS::AtMostOnce, None, a(2), b"4"));
    p.send(publish("in/c", QoS::AtMostOnce, None, a(1), b"5"));
    p.send(publish("", QoS::AtMostOnce, None, a(1), b"6"));
    p.send(publish("", QoS::AtMostOnce, None, a(3), b"7"));
    assert_eq!(p.expect_disconnect(), ReasonCode::TopicAliasInvalid);
    p.expect_close();

    // 2: an alias this connection never set.
    let mut p = accept_connected(&l, vec![]);
    p.send(publish("", QoS::AtMostOnce, None, a(2), b"8"));
    assert_eq!(p.expect_disconnect(), ReasonCode::ProtocolError);
    p.expect_close();

    // 3: a packet above our Maximum Packet Size (200).
    let mut p = accept_connected(&l, vec![]);
    p.send(publish(
        "in/big",
        QoS::AtMostOnce,
        None,
        vec![],
        &[b'x'; 300],
    ));
    assert_eq!(p.expect_disconnect(), ReasonCode::PacketTooLarge);
    p.expect_close();

    // 4: lenient: three QoS 2 messages in flight against Receive Maximum 2.
    let mut p = accept_connected(&l, vec![]);
    for id in 1..=3u16 {
        p.send(publish("in/q2", QoS::ExactlyOnce, Some(id), vec![], b"q"));
    }
    for id in 1..=3u16 {
        p.expect_pubrec(id);
    }
    for id in 1..=3u16 {
        p.send(Packet::PubRel(resp(id)));
    }
    for id in 1..=3u16 {
        p.expect_pubcomp(id);
    }
    // Tells the test that the flow is complete.
    p.send(publish("in/done", QoS::AtMostOnce, None, vec![], b"done"));
    assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    p.expect_close();

    // 5: strict: the third ends the connection with 0x93. The first two
    // are PUBRECed after their callbacks; the third is sent after that, so
    // that the outcome does not depend on how fast the callbacks are.
    let mut p = accept_connected(&l, vec![]);
    for id in 1..=2u16 {
        p.send(publish("in/q2", QoS::ExactlyOnce, Some(id), vec![], b"q"));
    }
    for id in 1..=2u16 {
        p.expect_pubrec(id);
    }
    p.send(publish("in/q2", QoS::ExactlyOnce, Some(3), vec![], b"q"));
    assert_eq!(p.expect_disconnect(), ReasonCode::ReceiveMaximumExceeded);
    p.expect_close();
}

/// A CONNECT from tests/c/test_reconnect.c: its credentials every time
/// (the password must survive the wiping of the first CONNECT's copy).
fn expect_reconnect_client(p: &mut Peer) {
    let c = p.expect_connect();
    assert_eq!(c.client_id.as_str(), "c-reconnect");
    assert_eq!(c.username.as_ref().map(|u| u.as_str()), Some("user"));
    assert_eq!(c.password.as_deref(), Some(&b"secret"[..]), "password");
    p.connack(ReasonCode::Success, Properties::new());
}

/// Acknowledges one QoS 1 PUBLISH to `topic`.
fn ack_publish(p: &mut Peer, topic: &str) {
    let pb = p.expect_publish();
    assert_eq!(pb.topic.as_str(), topic);
    p.send(Packet::PubAck(resp(pb.packet_id.unwrap())));
}

/// tests/c/test_reconnect.c
fn reconnect_script(l: TcpListener) {
    // 1: the server shuts down (DISCONNECT 0x8B): the client comes back.
    let mut p = accept(&l);
    expect_reconnect_client(&mut p);
    p.send(Packet::Disconnect(Disconnect {
        reason: ReasonCode::ServerShuttingDown,
        properties: Properties::new(),
    }));
    p.expect_close();

    // 2: the automatic reconnect; a publish; then the socket closes. The
    // DISCONNECTED callback stops the reconnection with mqtt_disconnect.
    let mut p = accept(&l);
    expect_reconnect_client(&mut p);
    ack_publish(&mut p, "rc/after-reconnect");
    drop(p);

    // 3: connected by hand; session taken over (0x8E): no reconnection.
    // The DISCONNECTED callback connects by hand (4).
    let mut p = accept(&l);
    expect_reconnect_client(&mut p);
    p.send(Packet::Disconnect(Disconnect {
        reason: ReasonCode::SessionTakenOver,
        properties: Properties::new(),
    }));
    p.expect_close();

    // 4: closed at once: the client comes back (5) by itself.
    let mut p = accept(&l);
    expect_reconnect_client(&mut p);
    drop(p);

    // 5: a publish and a clean end.
    let mut p = accept(&l);
    expect_reconnect_client(&mut p);
    ack_publish(&mut p, "rc/final");
    assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    p.expect_close();
}

/// The next PUBLISH, checking its topic and QoS; returns its packet id.
fn expect_publish_to(p: &mut Peer, topic: &str, qos: QoS) -> u16 {
    let pb = p.expect_publish();
    assert_eq!(pb.topic.as_str(), topic);
    assert_eq!(pb.qos, qos, "QoS of a PUBLISH to {topic}");
    pb.packet_id.expect("packet id")
}

/// tests/c/test_publish_async_lost.c
fn publish_async_lost_script(l: TcpListener) {
    let mut p = accept_connected(&l, vec![Property::ReceiveMaximum(10)]);
    // 1: PUBACK 0x10 with a reason string and a user property.
    let id = expect_publish_to(&mut p, "lost/ack", QoS::AtLeastOnce);
    p.send(Packet::PubAck(PubResp {
        packet_id: id,
        reason: ReasonCode::NoMatchingSubscribers,
        properties: props(vec![
            Property::ReasonString(s("nobody listens")),
            Property::UserProperty(s("k"), s("v")),
        ]),
    }));
    // 2: QoS 2 refused at PUBREC.
    let id = expect_publish_to(&mut p, "lost/refused", QoS::ExactlyOnce);
    p.send(Packet::PubRec(PubResp {
        packet_id: id,
        reason: ReasonCode::NotAuthorized,
        properties: props(vec![Property::ReasonString(s("not yours"))]),
    }));
    // 3: five never acknowledged; then the socket closes.
    for _ in 0..5 {
        expect_publish_to(&mut p, "lost/pending", QoS::AtLeastOnce);
    }
    drop(p);
}

/// tests/c/test_free_auth.c: a challenge on every connect, so that the
/// auth callback also runs during the automatic reconnect.
fn free_auth_script(l: TcpListener) {
    const M: &str = "TOY";
    // 1: the first connect; its callback is replaced while it runs.
    let mut p = accept(&l);
    p.expect_connect();
    p.send(auth(ReasonCode::ContinueAuthentication, M, Some(b"slow-1")));
    let d = auth_data(p.expect("AUTH"), ReasonCode::ContinueAuthentication, M);
    assert_eq!(&d[..], b"answer-1");
    p.connack(ReasonCode::Success, Properties::new());
    // The connection breaks: the client reconnects by itself.
    drop(p);

    // 2: the reconnect's challenge; the client is freed while its
    // callback runs, which closes this connection.
    let mut p = accept(&l);
    p.expect_connect();
    p.send(auth(ReasonCode::ContinueAuthentication, M, Some(b"slow-2")));
    while let Some(pk) = p.read() {
        // The answer may still go out before the socket closes.
        assert!(matches!(pk, Packet::Auth(_)), "unexpected {pk:?}");
    }
}

/// tests/c/test_lost_connection.c: one connection per case, each from a
/// new client whose id names the case.
fn lost_connection_script(l: TcpListener) {
    let connect = |p: &mut Peer, id: &str| {
        let c = p.expect_connect();
        assert_eq!(c.client_id.as_str(), id);
    };
    // A DISCONNECT 0x8E right after CONNACK, then the server closes.
    let mut p = accept(&l);
    connect(&mut p, "fake-8e");
    p.connack(ReasonCode::Success, Properties::new());
    p.send(Packet::Disconnect(Disconnect {
        reason: ReasonCode::SessionTakenOver,
        properties: Properties::new(),
    }));
    drop(p);

    // CONNACK 0x87, then the server closes, as after a refusal.
    let mut p = accept(&l);
    connect(&mut p, "fake-87");
    p.connack(ReasonCode::NotAuthorized, Properties::new());
    drop(p);

    // Closed when a PUBLISH arrives.
    let mut p = accept(&l);
    connect(&mut p, "fake-close");
    p.connack(ReasonCode::Success, Properties::new());
    loop {
        match p.expect("PUBLISH") {
            Packet::Publish(_) => break,
            Packet::PingReq => p.send(Packet::PingResp),
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    drop(p);

    // CONNECT never answered: the client gives up and closes.
    let mut p = accept(&l);
    connect(&mut p, "fake-silent");
    while p.read().is_some() {}

    // PUBLISH never acknowledged: the client times out, then is freed.
    let mut p = accept(&l);
    connect(&mut p, "fake-nopuback");
    p.connack(ReasonCode::Success, Properties::new());
    let mut published = false;
    while let Some(pk) = p.read() {
        match pk {
            Packet::Publish(_) => published = true,
            Packet::PingReq => p.send(Packet::PingResp),
            Packet::Disconnect(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(published, "no PUBLISH before the client left");
}
