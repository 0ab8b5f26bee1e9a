//! A broker model for the seeded fault simulation (tests/fault_simulation.rs):
//! a small MQTT v5 broker on a loopback port, speaking the crate's own
//! codec, that keeps sessions (subscriptions, QoS 2 packet ids received,
//! messages in flight to the client) and injects faults drawn from a seed.
//!
//! Each accepted connection draws from the seed's generator a schedule of
//! at most two faults, each after the n-th packet read from the client:
//! - `Reset`: the socket is closed with an RST (SO_LINGER 0);
//! - `Blackhole`: nothing more is sent, what arrives is read and dropped,
//!   nothing is closed: only the client's keep-alive can find it;
//! - `HalfPacket`: the next packet to the client is written half, then
//!   the connection closed;
//! - `SlowReader`: from then on the broker reads a few bytes at a time;
//! - `Restart`: every connection closes, the broker refuses connections
//!   for a moment, and keeps its sessions or loses them all;
//! - `DupAck`: the next acknowledgement is sent twice (a buggy broker);
//! - `ReorderAcks`: the next acknowledgement is held back and sent after
//!   the one that follows it (a buggy broker);
//! - `DupPublish`: the next PUBLISH to the client is sent again at once
//!   with DUP set, the same packet id (legal; the client must not deliver
//!   a QoS 2 message twice).
//!
//! A run has a budget of faults (drawn from the seed too); once it is
//! spent, connections behave, so every run can settle.
//!
//! The model keeps a ledger per message (the payload names it): how
//! often the broker received it, how many delivery flows it started to a
//! subscriber, how many of those it lost itself (a session dropped by a
//! restart without session or a clean start), and checks the client's
//! side of QoS 2 as a publisher: the same message received twice, under
//! new packet ids, within one session of the broker, is the client's
//! duplicate.
//!
//! What the seed decides and what it does not: the seed fixes the faults
//! of the n-th connection and the packet after which each strikes, and
//! every choice of the test (message count, QoS, concurrency, Receive
//! Maximum, session or not). The timing of real sockets and threads is
//! not reproducible: which packet is the n-th read can differ between two
//! runs of a seed when the client writes concurrently. A seed replays the
//! same schedule, which in practice reproduces what it found.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use mqtt5c::packet::{
    self, ConnAck, Packet, Properties, Property, ProtocolVersion, PubResp, Publish, QoS,
    ReasonCode, SubAck, UnsubAck,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// splitmix64: small, fast, and the same sequence everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with `percent` percent chance.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// A generator of its own, derived from this one (so that one part
    /// of a run drawing more numbers does not shift another part's).
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

/// The faults of one connection: (after which packet, fault).
pub type Schedule = Vec<(u32, Fault)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Reset,
    Blackhole,
    HalfPacket,
    SlowReader,
    Restart { keep_sessions: bool },
    DupAck,
    ReorderAcks,
    DupPublish,
}

/// What the model's faults may include.
#[derive(Clone, Copy, Debug)]
pub struct FaultMix {
    /// A blackhole costs the client's keep-alive (1.5 s at 1 s) to find.
    pub blackhole: bool,
}

/// What the broker knows about one message (named by its payload).
#[derive(Clone, Debug, Default)]
pub struct Entry {
    /// PUBLISH packets received from the client as new messages (QoS 2
    /// duplicates by packet id excluded).
    pub received: u32,
    /// Delivery flows at QoS 1/2 started to a subscriber's session.
    pub flows: u32,
    /// Flows completed by the subscriber (PUBACK, or PUBCOMP).
    pub completed: u32,
    /// Flows the broker lost itself: a session dropped by a restart
    /// without sessions, a clean start, an expired session.
    pub dropped: u32,
    /// Times it was received with no subscription to route it to.
    pub unrouted: u32,
    /// QoS of the flows (the lowest seen).
    pub flow_qos: Option<QoS>,
}

#[derive(Clone, Debug)]
struct Outgoing {
    topic: String,
    payload: Bytes,
    qos: QoS,
    /// PUBREC received, PUBREL sent.
    released: bool,
}

#[derive(Default)]
struct Session {
    /// Counts sessions across the broker: a message received twice in
    /// the same incarnation under new packet ids is the client's fault.
    incarnation: u64,
    expiry: u32,
    subs: Vec<(String, QoS)>,
    inbound_qos2: HashSet<u16>,
    outbound: BTreeMap<u16, Outgoing>,
    next_id: u16,
}

impl Session {
    fn next_id(&mut self) -> u16 {
        loop {
            self.next_id = self.next_id.wrapping_add(1);
            if self.next_id != 0 && !self.outbound.contains_key(&self.next_id) {
                return self.next_id;
            }
        }
    }
}

#[derive(Default)]
struct Flags {
    dead: bool,
    half_next: bool,
    dup_ack: bool,
    reorder_next: bool,
    held: Option<Bytes>,
    dup_publish: bool,
    slow: bool,
}

enum Cmd {
    Bytes(Bytes),
    /// Write the first half, then close.
    Half(Bytes),
    Close,
}

struct Conn {
    id: usize,
    client_id: String,
    tx: mpsc::UnboundedSender<Cmd>,
    kill: watch::Sender<bool>,
    flags: Arc<Mutex<Flags>>,
}

impl Conn {
    fn close(&self) {
        let _ = self.tx.send(Cmd::Close);
        let _ = self.kill.send(true);
    }
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Session>,
    conns: HashMap<String, Arc<Conn>>,
    ledger: HashMap<Bytes, Entry>,
    incarnations: u64,
    /// (message, incarnation) of QoS 2 messages received.
    qos2_seen: HashSet<(Bytes, u64)>,
    down_until: Option<Instant>,
}

pub struct Model {
    state: Mutex<State>,
    plan: Mutex<(Rng, u32)>,
    mix: FaultMix,
    receive_maximum: u16,
    connections: AtomicUsize,
    log: Mutex<Vec<String>>,
    violations: Mutex<Vec<String>>,
    accept: Mutex<Option<tokio::task::AbortHandle>>,
    fixed: Mutex<Option<(Schedule, usize)>>,
    pub port: u16,
}

impl Model {
    /// Starts listening on a free loopback port. `budget`: faults in all.
    pub async fn start(rng: Rng, budget: u32, mix: FaultMix, receive_maximum: u16) -> Arc<Model> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the model");
        let port = listener.local_addr().unwrap().port();
        let model = Arc::new(Model {
            state: Mutex::default(),
            plan: Mutex::new((rng, budget)),
            mix,
            receive_maximum,
            connections: AtomicUsize::new(0),
            log: Mutex::default(),
            violations: Mutex::default(),
            accept: Mutex::default(),
            fixed: Mutex::default(),
            port,
        });
        let m = Arc::downgrade(&model);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Some(model) = m.upgrade() else { return };
                tokio::spawn(serve(model, stream));
            }
        });
        *model.accept.lock().unwrap() = Some(accept.abort_handle());
        model
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The faults as they struck, for a failure report.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    pub fn entry(&self, payload: &[u8]) -> Entry {
        let st = self.state.lock().unwrap();
        st.ledger.get(payload).cloned().unwrap_or_default()
    }

    /// Messages in flight from the broker to `client_id`.
    pub fn in_flight_to(&self, client_id: &str) -> usize {
        let st = self.state.lock().unwrap();
        st.sessions.get(client_id).map_or(0, |s| s.outbound.len())
    }

    /// Stops listening and closes every connection (the end of a run).
    pub fn shutdown(&self) {
        if let Some(a) = self.accept.lock().unwrap().take() {
            a.abort();
        }
        let st = self.state.lock().unwrap();
        for c in st.conns.values() {
            c.close();
        }
    }

    fn note(&self, what: String) {
        self.log.lock().unwrap().push(what);
    }

    fn violation(&self, what: String) {
        self.violations.lock().unwrap().push(what);
    }

    /// A model whose first `connections` connections each get `faults`
    /// (after which packet, fault), and no others: for a regression test
    /// of one fault.
    pub async fn start_fixed(
        faults: Vec<(u32, Fault)>,
        connections: usize,
        receive_maximum: u16,
    ) -> Arc<Model> {
        let mix = FaultMix { blackhole: true };
        let m = Model::start(Rng::new(0), 0, mix, receive_maximum).await;
        *m.fixed.lock().unwrap() = Some((faults, connections));
        m
    }

    /// The faults of connection `n`: (after which packet, fault).
    fn schedule(&self, n: usize) -> Vec<(u32, Fault)> {
        if let Some((faults, connections)) = &*self.fixed.lock().unwrap() {
            return if n <= *connections {
                faults.clone()
            } else {
                Vec::new()
            };
        }
        let mut g = self.plan.lock().unwrap();
        let (rng, budget) = &mut *g;
        let mut out = Vec::new();
        for _ in 0..2 {
            if *budget == 0 || !rng.chance(80) {
                break;
            }
            let fault = match rng.range(0, 12) {
                0 | 1 => Fault::Reset,
                2 if self.mix.blackhole => Fault::Blackhole,
                2 => Fault::Reset,
                3 | 4 => Fault::HalfPacket,
                5 => Fault::SlowReader,
                6 => Fault::Restart {
                    keep_sessions: true,
                },
                7 => Fault::Restart {
                    keep_sessions: false,
                },
                8 | 9 => Fault::DupAck,
                10 | 11 => Fault::ReorderAcks,
                _ => Fault::DupPublish,
            };
            // Packet 1 is CONNECT.
            let after = rng.range(1, 24) as u32;
            *budget -= 1;
            out.push((after, fault));
        }
        drop(g);
        if !out.is_empty() {
            self.note(format!("connection {n}: {out:?}"));
        }
        out
    }
}

/// `MQTT5C_SIM_TRACE=1`: the model prints every packet (for one seed).
fn trace() -> bool {
    std::env::var("MQTT5C_SIM_TRACE").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn encode(p: &Packet) -> Bytes {
    let mut b = BytesMut::new();
    packet::encode_with(p, ProtocolVersion::V5, &mut b).expect("encode");
    b.freeze()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ack,
    Publish,
    Other,
}

/// Sends `p` on `conn` as its flags say (half, duplicate, held back).
fn send(conn: &Conn, p: &Packet, kind: Kind) {
    if trace() {
        eprintln!("model {} conn {} -> {p:?}", conn.client_id, conn.id);
    }
    let bytes = encode(p);
    let mut f = conn.flags.lock().unwrap();
    if f.dead {
        return;
    }
    if f.half_next {
        f.dead = true;
        let _ = conn.tx.send(Cmd::Half(bytes));
        return;
    }
    match kind {
        Kind::Ack if f.reorder_next && f.held.is_none() => {
            f.reorder_next = false;
            f.held = Some(bytes.clone());
            // Sent anyway if no other acknowledgement comes soon.
            let flags = conn.flags.clone();
            let tx = conn.tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let mut f = flags.lock().unwrap();
                if let (Some(b), false) = (f.held.take(), f.dead) {
                    let _ = tx.send(Cmd::Bytes(b));
                }
            });
        }
        Kind::Ack => {
            let _ = conn.tx.send(Cmd::Bytes(bytes.clone()));
            if let Some(held) = f.held.take() {
                let _ = conn.tx.send(Cmd::Bytes(held));
            }
            if f.dup_ack {
                f.dup_ack = false;
                let _ = conn.tx.send(Cmd::Bytes(bytes));
            }
        }
        Kind::Publish
            if f.dup_publish && !matches!(p, Packet::Publish(x) if x.qos == QoS::AtMostOnce) =>
        {
            f.dup_publish = false;
            let _ = conn.tx.send(Cmd::Bytes(bytes));
            if let Packet::Publish(mut p) = p.clone() {
                p.dup = true;
                let _ = conn.tx.send(Cmd::Bytes(encode(&Packet::Publish(p))));
            }
        }
        _ => {
            let _ = conn.tx.send(Cmd::Bytes(bytes));
        }
    }
}

fn resp(id: u16) -> PubResp {
    PubResp::new(id)
}

fn matches(filter: &str, topic: &str) -> bool {
    match filter.strip_suffix('#') {
        Some(prefix) => topic.starts_with(prefix),
        None => filter == topic,
    }
}

impl State {
    /// Drops a session, counting its flows as lost by the broker.
    fn drop_session(&mut self, client_id: &str) {
        if let Some(s) = self.sessions.remove(client_id) {
            for o in s.outbound.values() {
                self.ledger.entry(o.payload.clone()).or_default().dropped += 1;
            }
        }
    }

    fn route(&mut self, topic: &str, payload: &Bytes, qos: QoS) {
        let mut routed = false;
        let ids: Vec<String> = self.sessions.keys().cloned().collect();
        for cid in ids {
            let s = self.sessions.get_mut(&cid).unwrap();
            let Some(sub_qos) = s
                .subs
                .iter()
                .filter(|(f, _)| matches(f, topic))
                .map(|(_, q)| *q)
                .max()
            else {
                continue;
            };
            routed = true;
            let q = qos.min(sub_qos);
            let id = (q != QoS::AtMostOnce).then(|| s.next_id());
            if let Some(id) = id {
                s.outbound.insert(
                    id,
                    Outgoing {
                        topic: topic.to_string(),
                        payload: payload.clone(),
                        qos: q,
                        released: false,
                    },
                );
                let e = self.ledger.entry(payload.clone()).or_default();
                e.flows += 1;
                e.flow_qos = Some(e.flow_qos.map_or(q, |old| old.min(q)));
            }
            if let Some(c) = self.conns.get(&cid) {
                let p = Packet::Publish(Publish {
                    dup: false,
                    qos: q,
                    retain: false,
                    topic: packet::MqttStr::new(topic).unwrap(),
                    packet_id: id,
                    properties: Properties::new(),
                    payload: payload.clone(),
                });
                send(c, &p, Kind::Publish);
            }
        }
        if !routed {
            self.ledger.entry(payload.clone()).or_default().unrouted += 1;
        }
    }
}

async fn serve(model: Arc<Model>, stream: TcpStream) {
    let n = model.connections.fetch_add(1, Ordering::SeqCst) + 1;
    let down = {
        let st = model.state.lock().unwrap();
        st.down_until.is_some_and(|t| Instant::now() < t)
    };
    if down {
        // Restarting: the connection is closed at once.
        model.note(format!("connection {n}: refused (restarting)"));
        return;
    }
    let mut schedule = model.schedule(n);
    if schedule.iter().any(|(_, f)| *f == Fault::Reset) {
        // Deprecated because a lingering close blocks the thread; a zero
        // linger does not block, it resets.
        #[allow(deprecated)]
        let _ = stream.set_linger(Some(Duration::ZERO));
    }
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Cmd>();
    let (kill, mut killed) = watch::channel(false);
    let flags: Arc<Mutex<Flags>> = Arc::default();
    let kill2 = kill.clone();
    tokio::spawn(async move {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                Cmd::Bytes(b) => {
                    if wr.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Cmd::Half(b) => {
                    let _ = wr.write_all(&b[..b.len() / 2]).await;
                    break;
                }
                Cmd::Close => break,
            }
        }
        let _ = wr.shutdown().await;
        let _ = kill2.send(true);
    });
    let mut conn: Option<Arc<Conn>> = None;
    let mut buf = BytesMut::new();
    let mut count = 0u32;
    let mut blackholed = false;
    loop {
        let packet = match packet::decode_with(&mut buf, 1 << 20, ProtocolVersion::V5) {
            Ok(Some(p)) => Some(p),
            Ok(None) => None,
            Err(e) => {
                model.violation(format!("connection {n}: the client sent garbage: {e:?}"));
                break;
            }
        };
        let Some(packet) = packet else {
            let slow = flags.lock().unwrap().slow;
            let mut chunk = [0u8; 4096];
            let len = if slow { 7 } else { chunk.len() };
            let read = tokio::select! {
                r = rd.read(&mut chunk[..len]) => r,
                _ = killed.wait_for(|k| *k) => break,
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(k) if !blackholed => {
                    buf.extend_from_slice(&chunk[..k]);
                    if slow {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                Ok(_) => {}
            }
            continue;
        };
        count += 1;
        if trace() {
            let who = conn.as_ref().map_or("?", |c| c.client_id.as_str());
            eprintln!("model {} {who} conn {n} <- {packet:?}", model.port);
        }
        let done = handle(&model, n, &tx, &kill, &flags, &mut conn, packet);
        if done {
            break;
        }
        while let Some(i) = schedule.iter().position(|(after, _)| *after <= count) {
            let (_, fault) = schedule.remove(i);
            model.note(format!("connection {n}: {fault:?} after packet {count}"));
            match fault {
                Fault::Reset => {
                    let _ = tx.send(Cmd::Close);
                    let _ = kill.send(true);
                }
                Fault::Blackhole => {
                    flags.lock().unwrap().dead = true;
                    blackholed = true;
                    buf.clear();
                }
                Fault::HalfPacket => flags.lock().unwrap().half_next = true,
                Fault::SlowReader => flags.lock().unwrap().slow = true,
                Fault::DupAck => flags.lock().unwrap().dup_ack = true,
                Fault::ReorderAcks => flags.lock().unwrap().reorder_next = true,
                Fault::DupPublish => flags.lock().unwrap().dup_publish = true,
                Fault::Restart { keep_sessions } => {
                    let mut st = model.state.lock().unwrap();
                    for c in st.conns.values() {
                        c.close();
                    }
                    st.conns.clear();
                    let _ = kill.send(true);
                    // Sessions without expiry ended with their connection.
                    let ids: Vec<String> = st
                        .sessions
                        .iter()
                        .filter(|(_, s)| !keep_sessions || s.expiry == 0)
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in ids {
                        st.drop_session(&id);
                    }
                    st.down_until = Some(Instant::now() + Duration::from_millis(30));
                }
            }
        }
        if *kill.borrow() {
            break;
        }
    }
    // The connection ends: its session ends too when it has no expiry.
    let _ = tx.send(Cmd::Close);
    let _ = kill.send(true);
    if let Some(c) = conn {
        let mut st = model.state.lock().unwrap();
        let current = st.conns.get(&c.client_id).is_some_and(|x| x.id == c.id);
        if current {
            st.conns.remove(&c.client_id);
            if st.sessions.get(&c.client_id).is_some_and(|s| s.expiry == 0) {
                st.drop_session(&c.client_id);
            }
        }
    }
}

/// Handles one packet from the client; true: the connection ends.
fn handle(
    model: &Model,
    n: usize,
    tx: &mpsc::UnboundedSender<Cmd>,
    kill: &watch::Sender<bool>,
    flags: &Arc<Mutex<Flags>>,
    conn: &mut Option<Arc<Conn>>,
    packet: Packet,
) -> bool {
    let mut st = model.state.lock().unwrap();
    let Some(c) = conn.clone() else {
        let Packet::Connect(connect) = packet else {
            model.violation(format!("connection {n}: first packet not CONNECT"));
            return true;
        };
        let cid = connect.client_id.as_str().to_string();
        let expiry = connect
            .properties
            .get_int(packet::PropertyId::SessionExpiryInterval)
            .unwrap_or(0);
        if let Some(old) = st.conns.remove(&cid) {
            old.close();
        }
        if connect.clean_start {
            st.drop_session(&cid);
        }
        let present = st.sessions.contains_key(&cid);
        if !present {
            st.incarnations += 1;
            let incarnation = st.incarnations;
            st.sessions.insert(
                cid.clone(),
                Session {
                    incarnation,
                    ..Default::default()
                },
            );
        }
        st.sessions.get_mut(&cid).unwrap().expiry = expiry;
        let c = Arc::new(Conn {
            id: n,
            client_id: cid.clone(),
            tx: tx.clone(),
            kill: kill.clone(),
            flags: flags.clone(),
        });
        st.conns.insert(cid.clone(), c.clone());
        *conn = Some(c.clone());
        let mut props = Properties::new();
        props.set(Property::ReceiveMaximum(model.receive_maximum));
        send(
            &c,
            &Packet::ConnAck(ConnAck {
                session_present: present,
                reason: ReasonCode::Success,
                properties: props,
            }),
            Kind::Other,
        );
        // Resume: what is in flight, in order.
        let s = st.sessions.get(&cid).unwrap();
        for (id, o) in &s.outbound {
            let p = if o.released {
                Packet::PubRel(resp(*id))
            } else {
                Packet::Publish(Publish {
                    dup: true,
                    qos: o.qos,
                    retain: false,
                    topic: packet::MqttStr::new(&o.topic).unwrap(),
                    packet_id: Some(*id),
                    properties: Properties::new(),
                    payload: o.payload.clone(),
                })
            };
            send(&c, &p, Kind::Other);
        }
        return false;
    };
    let cid = c.client_id.clone();
    // Taken over or closed by a restart: what it still had buffered is
    // not processed (a real broker drops the old connection's bytes too).
    if st.conns.get(&cid).map_or(true, |x| x.id != c.id) {
        return true;
    }
    match packet {
        Packet::Connect(_) => {
            model.violation(format!("connection {n}: a second CONNECT"));
            return true;
        }
        Packet::Publish(p) => {
            let topic = p.topic.as_str().to_string();
            let id = p.packet_id.unwrap_or(0);
            match p.qos {
                QoS::AtMostOnce => {
                    st.ledger.entry(p.payload.clone()).or_default().received += 1;
                    st.route(&topic, &p.payload, p.qos);
                }
                QoS::AtLeastOnce => {
                    st.ledger.entry(p.payload.clone()).or_default().received += 1;
                    st.route(&topic, &p.payload, p.qos);
                    send(&c, &Packet::PubAck(resp(id)), Kind::Ack);
                }
                QoS::ExactlyOnce => {
                    let s = st.sessions.get_mut(&cid).unwrap();
                    let incarnation = s.incarnation;
                    if s.inbound_qos2.insert(id) {
                        st.ledger.entry(p.payload.clone()).or_default().received += 1;
                        if !st.qos2_seen.insert((p.payload.clone(), incarnation)) {
                            model.violation(format!(
                                "connection {n}: QoS 2 message {:?} published twice in one \
                                 session (packet id {id}, dup {})",
                                String::from_utf8_lossy(&p.payload),
                                p.dup
                            ));
                        }
                        st.route(&topic, &p.payload, p.qos);
                    }
                    send(&c, &Packet::PubRec(resp(id)), Kind::Ack);
                }
            }
        }
        Packet::PubRel(r) => {
            if let Some(s) = st.sessions.get_mut(&cid) {
                s.inbound_qos2.remove(&r.packet_id);
            }
            send(&c, &Packet::PubComp(resp(r.packet_id)), Kind::Ack);
        }
        Packet::PubAck(r) => {
            let s = st.sessions.get_mut(&cid).unwrap();
            match s.outbound.get(&r.packet_id) {
                Some(o) if o.qos == QoS::AtLeastOnce => {
                    let o = s.outbound.remove(&r.packet_id).unwrap();
                    st.ledger.entry(o.payload).or_default().completed += 1;
                }
                // The answer to a duplicate PUBLISH: already complete.
                None => {}
                Some(o) => model.violation(format!(
                    "connection {n}: PUBACK {} for a QoS {:?} message",
                    r.packet_id, o.qos
                )),
            }
        }
        Packet::PubRec(r) => {
            let s = st.sessions.get_mut(&cid).unwrap();
            match s.outbound.get_mut(&r.packet_id) {
                Some(o) if o.qos == QoS::ExactlyOnce => {
                    o.released = true;
                    send(&c, &Packet::PubRel(resp(r.packet_id)), Kind::Other);
                }
                other => model.violation(format!(
                    "connection {n}: PUBREC {} for {:?}",
                    r.packet_id,
                    other.map(|o| o.qos)
                )),
            }
        }
        Packet::PubComp(r) => {
            let s = st.sessions.get_mut(&cid).unwrap();
            match s.outbound.get(&r.packet_id) {
                Some(o) if o.qos == QoS::ExactlyOnce && o.released => {
                    let o = s.outbound.remove(&r.packet_id).unwrap();
                    st.ledger.entry(o.payload).or_default().completed += 1;
                }
                // A PUBCOMP answering a duplicate PUBREL: already complete.
                None => {}
                Some(o) => model.violation(format!(
                    "connection {n}: PUBCOMP {} before PUBREC (qos {:?})",
                    r.packet_id, o.qos
                )),
            }
        }
        Packet::Subscribe(sub) => {
            let s = st.sessions.get_mut(&cid).unwrap();
            let mut reasons = Vec::new();
            for f in &sub.filters {
                let filter = f.filter.as_str().to_string();
                s.subs.retain(|(x, _)| *x != filter);
                s.subs.push((filter, f.options.qos));
                reasons.push(match f.options.qos {
                    QoS::AtMostOnce => ReasonCode::Success,
                    QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                    QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
                });
            }
            send(
                &c,
                &Packet::SubAck(SubAck {
                    packet_id: sub.packet_id,
                    properties: Properties::new(),
                    reasons,
                }),
                Kind::Other,
            );
        }
        Packet::Unsubscribe(u) => {
            let s = st.sessions.get_mut(&cid).unwrap();
            let mut reasons = Vec::new();
            for f in &u.filters {
                s.subs.retain(|(x, _)| x != f.as_str());
                reasons.push(ReasonCode::Success);
            }
            send(
                &c,
                &Packet::UnsubAck(UnsubAck {
                    packet_id: u.packet_id,
                    properties: Properties::new(),
                    reasons,
                }),
                Kind::Other,
            );
        }
        Packet::PingReq => send(&c, &Packet::PingResp, Kind::Other),
        Packet::Disconnect(_) => return true,
        _ => {}
    }
    false
}
