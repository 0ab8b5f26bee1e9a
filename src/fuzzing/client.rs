//! The `client_v5` and `client_v311` fuzz targets: the real [`MqttClient`]
//! fed arbitrary bytes as if they came from its broker. The session,
//! topic aliases, flow control and delivery all run as in production,
//! over a Unix socket to a fake broker the target owns (the `unix://`
//! transport, so no seam in the library is needed), on a small Tokio
//! runtime of its own per input.
//!
//! **The input.** Byte 0 chooses the options (see [`Plan`]); the rest
//! is records, each a length byte and that many bytes (the last one cut
//! short if the input ends), written by the broker one record per write,
//! so the input chooses how the stream is split. A record of length 0
//! ends the connection; with reconnection on, the client comes back and
//! the records after it are the next connection's (at most
//! [`MAX_CONNECTIONS`]).
//!
//! **The broker.** It accepts, reads CONNECT and answers with a CONNACK
//! built from byte 0, or (first connection, [`Plan::raw_connack`]) with
//! the first record instead. On the first connection with its own
//! CONNACK it waits until it has read the client's [`REQUESTS`]
//! packets (so the client's packet ids are 1: SUBSCRIBE, 2: QoS 1
//! PUBLISH, 3: QoS 2 PUBLISH, 4: QoS 1 asynchronous PUBLISH, then a QoS
//! 0 PUBLISH), then writes the records, then closes the connection.
//! Everything the client sends must decode.
//!
//! **What must hold**, else a panic: nothing panics; `connect` returns;
//! once the broker closed the last connection the client reports the
//! disconnect (as many `Disconnected` events as `Connected` ones), and
//! every call returns, within [`DEADLINE`] each, after `disconnect`
//! where reconnection was on; the delivery queue stays within its bounds;
//! and, when the process counts its allocations ([`super::CountingAlloc`],
//! as the fuzz targets and tests/fuzz_corpus.rs do), the memory in use
//! grows by at most [`MEMORY_BOUND`] during the input.

use super::CountingAlloc;
use crate::client::{ClientOptions, ConnectionEvent, Handler, MqttClient, Reconnect};
use crate::packet::{
    self, ConnAck, MqttStr, Packet, Properties, Property, ProtocolVersion, Publish, QoS,
    ReasonCode, SubscribeFilter, SubscriptionOptions,
};
use bytes::BytesMut;
use std::future::{poll_fn, Future};
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

/// The longest any one step may take: far beyond what each needs (well
/// under a millisecond), so a step that takes it hangs.
pub const DEADLINE: Duration = Duration::from_secs(3);

/// How many packets the client sends after CONNECT before the broker
/// writes the records (see the module docs).
pub const REQUESTS: usize = 5;

/// The most connections an input makes (records after the last one's
/// end are ignored): each costs a reconnection, and an input must stay
/// fast.
pub const MAX_CONNECTIONS: usize = 16;

/// The most the memory in use may grow during one input.
pub const MEMORY_BOUND: usize = 32 << 20;

/// The client's bounds: small, so that the fuzzer reaches them.
const MAX_PACKET_SIZE: u32 = 16 * 1024;
const QUEUE_LIMIT: usize = 8;
const QUEUE_BYTES: usize = 4 * 1024;

/// Options chosen by the input's first byte, one bit each.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// The first record is the first CONNACK (else one built from the
    /// bits below), and the broker writes at once.
    pub raw_connack: bool,
    /// The broker's CONNACKs after the first say Session Present.
    pub session_present: bool,
    /// The broker's CONNACK allows 2 topic aliases (v5): the client's
    /// publishes use them.
    pub server_aliases: bool,
    /// We allow the broker 4 topic aliases (v5).
    pub client_aliases: bool,
    /// `strict_receive_maximum`.
    pub strict: bool,
    /// Our Receive Maximum is 2 (else 10); the broker's CONNACK says 3
    /// (else none): just the client's three QoS 1/2 publishes.
    pub small_receive_maximum: bool,
    /// Automatic reconnection (1 ms to 4 ms), a session that outlives the
    /// connection, and records of length 0 between connections.
    pub reconnect: bool,
    /// `manual_ack`: nothing the broker sends is acknowledged.
    pub manual_ack: bool,
}

impl Plan {
    pub fn from_byte(b: u8) -> Plan {
        let bit = |n: u8| b & (1 << n) != 0;
        Plan {
            raw_connack: bit(0),
            session_present: bit(1),
            server_aliases: bit(2),
            client_aliases: bit(3),
            strict: bit(4),
            small_receive_maximum: bit(5),
            reconnect: bit(6),
            manual_ack: bit(7),
        }
    }

    pub fn to_byte(self) -> u8 {
        [
            self.raw_connack,
            self.session_present,
            self.server_aliases,
            self.client_aliases,
            self.strict,
            self.small_receive_maximum,
            self.reconnect,
            self.manual_ack,
        ]
        .iter()
        .enumerate()
        .fold(0, |b, (n, on)| b | (u8::from(*on) << n))
    }

    fn options(self, version: ProtocolVersion) -> ClientOptions {
        let mut connect_properties = Properties::new();
        if self.client_aliases && version == ProtocolVersion::V5 {
            connect_properties.set(Property::TopicAliasMaximum(4));
        }
        ClientOptions {
            protocol_version: Some(version),
            client_id: MqttStr::from_static("fuzz"),
            // A session that outlives the connection: v5's Session
            // Expiry Interval, 3.1.1's Clean Session 0.
            clean_start: !(self.reconnect && version == ProtocolVersion::V311),
            session_expiry: match version {
                ProtocolVersion::V5 if self.reconnect => 600,
                _ => 0,
            },
            connect_properties,
            receive_maximum: if self.small_receive_maximum { 2 } else { 10 },
            connect_timeout: DEADLINE,
            // Longer than every deadline here: a call that returns by its
            // timeout has hung all the same.
            operation_timeout: Some(Duration::from_secs(60)),
            max_packet_size: MAX_PACKET_SIZE,
            delivery_queue_limit: QUEUE_LIMIT,
            delivery_queue_bytes: QUEUE_BYTES,
            strict_receive_maximum: self.strict,
            reconnect: self.reconnect.then_some(Reconnect {
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(4),
            }),
            manual_ack: self.manual_ack,
            ..ClientOptions::default()
        }
    }

    /// The CONNACK the broker answers connection `n` (from 0) with when
    /// the input does not give it: never Session Present on the first
    /// (the client asked for a clean start).
    fn connack(self, version: ProtocolVersion, n: usize) -> Packet {
        let mut properties = Properties::new();
        if version == ProtocolVersion::V5 {
            if self.server_aliases {
                properties.set(Property::TopicAliasMaximum(2));
            }
            if self.small_receive_maximum {
                properties.set(Property::ReceiveMaximum(3));
            }
        }
        Packet::ConnAck(ConnAck {
            session_present: self.session_present && n > 0,
            reason: ReasonCode::Success,
            properties,
        })
    }
}

/// The input's records, by connection (see the module docs).
pub fn connections(records: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut all = vec![Vec::new()];
    let mut rest = records;
    while let Some((&len, after)) = rest.split_first() {
        let len = (len as usize).min(after.len());
        let (record, after) = after.split_at(len);
        rest = after;
        if len == 0 {
            if all.len() == MAX_CONNECTIONS {
                break;
            }
            all.push(Vec::new());
        } else if let Some(last) = all.last_mut() {
            last.push(record);
        }
    }
    all
}

/// The inverse of [`connections`], for writing seeds: each packet its
/// own records (split every 255 bytes), connections apart.
pub fn records(connections: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, conn) in connections.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        for chunk in conn.iter().flat_map(|r| r.chunks(255)) {
            out.push(chunk.len() as u8);
            out.extend_from_slice(chunk);
        }
    }
    out
}

/// Runs one input (see the module docs); panics when an invariant breaks.
pub fn client(data: &[u8], version: ProtocolVersion) {
    let Some((&plan, records)) = data.split_first() else {
        return;
    };
    let plan = Plan::from_byte(plan);
    let conns = connections(records);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let start = CountingAlloc::start();
    rt.block_on(run(plan, &conns, version));
    drop(rt);
    if let Some(grown) = CountingAlloc::peak_growth(start) {
        assert!(
            grown <= MEMORY_BOUND,
            "memory in use grew by {grown} bytes during one input"
        );
    }
}

/// Connection events, counted by the handler.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    connected: u32,
    disconnected: u32,
    /// Messages that reached the application without a topic (an alias
    /// left unresolved): checked by the body, as a panic here would end
    /// a callback thread rather than the input.
    without_topic: u32,
}

struct Recorder(watch::Sender<Counts>);

impl Handler for Recorder {
    fn on_message(&self, message: Publish) {
        trace(format_args!(
            "message: {:?} {:?}",
            message.topic, message.qos
        ));
        if message.topic.is_empty() {
            self.0.send_modify(|c| c.without_topic += 1);
        }
    }
    fn on_connection(&self, event: &ConnectionEvent) {
        trace(format_args!("event: {event:?}"));
        match event {
            ConnectionEvent::Connected { .. } => self.0.send_modify(|c| c.connected += 1),
            ConnectionEvent::Disconnected(_) => self.0.send_modify(|c| c.disconnected += 1),
            _ => {}
        }
    }
}

/// Prints what the client did when `MQTT5C_FUZZ_TRACE` is set, to
/// understand an input (a crash found, a seed).
fn trace(what: std::fmt::Arguments<'_>) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("MQTT5C_FUZZ_TRACE").is_some()) {
        eprintln!("fuzz client: {what}");
    }
}

/// `f` within [`DEADLINE`], else a panic naming `what`.
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, f).await {
        Ok(v) => v,
        Err(_) => panic!("hang: {what} took longer than {DEADLINE:?}"),
    }
}

/// A task's outcome; its panic goes on in ours.
async fn joined<T>(what: &str, task: tokio::task::JoinHandle<T>) -> T {
    match within(what, task).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// A socket path of its own for each input.
fn socket_path() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("mqtt5c-fuzz-{}-{n}.sock", std::process::id()))
}

async fn run(plan: Plan, conns: &[Vec<&[u8]>], version: ProtocolVersion) {
    let path = socket_path();
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind the fake broker's socket");
    let url = format!("unix://{}", path.display());
    let (counts_tx, counts) = watch::channel(Counts::default());
    let client = MqttClient::new(
        plan.options(version),
        Arc::new(Recorder(counts_tx)),
        tokio::runtime::Handle::current(),
    );
    // Set when the client will not come back (its connect failed).
    let (gave_up, gave_up_rx) = watch::channel(false);
    let owned: Vec<Vec<Vec<u8>>> = conns
        .iter()
        .map(|c| c.iter().map(|r| r.to_vec()).collect())
        .collect();
    let broker = tokio::spawn(broker(
        listener,
        owned,
        plan,
        version,
        client.clone(),
        counts.clone(),
        gave_up_rx,
    ));

    let connect = within("connect", client.connect(&url)).await;
    trace(format_args!("connect: {connect:?}"));
    let connected = connect.is_ok();
    let mut calls = Vec::new();
    if connected {
        calls = requests(&client);
    } else {
        gave_up.send_replace(true);
    }
    // Each step of the broker has its deadline; all of them together
    // take longer with many connections on a busy machine.
    match broker.await {
        Ok(()) => {}
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("the fake broker: {e}"),
    }

    // The stream has ended: the client reports the loss of every
    // connection it reported.
    let mut counts = counts;
    let least = u32::from(connected);
    within(
        "reporting the disconnect",
        counts.wait_for(|c| c.connected >= least && c.disconnected >= c.connected),
    )
    .await
    .expect("the client keeps its handler");
    let seen = *counts.borrow();
    trace(format_args!("{seen:?}"));
    assert_eq!(
        seen.connected, seen.disconnected,
        "Connected and Disconnected events do not pair up"
    );
    assert_eq!(seen.without_topic, 0, "messages without topic delivered");
    // Stops a reconnection: what waited for it returns.
    let _ = within(
        "disconnect",
        client.disconnect(ReasonCode::Success, Properties::new()),
    )
    .await;
    for call in calls {
        joined("a call after the connection ended", call).await;
    }

    let peak = client.delivery_queue_peak();
    let peak_bytes = client.delivery_queue_peak_bytes();
    // Besides messages, connection events (two per connection) and the
    // one completion are queued without waiting for room.
    let events = 2 * conns.len() + 2;
    assert!(
        peak <= QUEUE_LIMIT + events,
        "{peak} events queued at once (limit {QUEUE_LIMIT})"
    );
    assert!(
        peak_bytes <= QUEUE_BYTES + (events + 1) * MAX_PACKET_SIZE as usize,
        "{peak_bytes} bytes queued at once (bound {QUEUE_BYTES})"
    );
    client.close();
    let _ = std::fs::remove_file(&path);
}

/// The client's calls, made at once (see the module docs for their
/// packet ids): tasks that end with the call; any outcome will do, but
/// each must come.
fn requests(client: &MqttClient) -> Vec<tokio::task::JoinHandle<()>> {
    let mut calls = Vec::new();
    let c = client.clone();
    calls.push(tokio::spawn(async move {
        let filter = |f: &'static str, qos| SubscribeFilter {
            filter: MqttStr::from_static(f),
            options: SubscriptionOptions {
                qos,
                ..Default::default()
            },
        };
        let filters = vec![
            filter("t/#", QoS::ExactlyOnce),
            filter("a/+", QoS::AtLeastOnce),
        ];
        let r = c.subscribe(filters, Properties::new()).await;
        trace(format_args!("subscribe: {r:?}"));
    }));
    for (topic, qos) in [("t/1", QoS::AtLeastOnce), ("t/2", QoS::ExactlyOnce)] {
        let c = client.clone();
        calls.push(tokio::spawn(async move {
            let r = c.publish(topic, b"x", qos, false, Properties::new()).await;
            trace(format_args!("publish {topic} {qos:?}: {r:?}"));
        }));
    }
    let c = client.clone();
    calls.push(tokio::spawn(async move {
        let done = Box::new(|r| trace(format_args!("publish_then completion: {r:?}")));
        let props = Properties::new();
        let r = c
            .publish_then("t/1", b"y", QoS::AtLeastOnce, false, props, Some(done))
            .await;
        trace(format_args!("publish_then: {r:?}"));
    }));
    let c = client.clone();
    calls.push(tokio::spawn(async move {
        let r = c
            .publish("t/0", b"z", QoS::AtMostOnce, false, Properties::new())
            .await;
        trace(format_args!("publish t/0 QoS 0: {r:?}"));
    }));
    calls
}

/// The fake broker (see the module docs).
async fn broker(
    listener: UnixListener,
    conns: Vec<Vec<Vec<u8>>>,
    plan: Plan,
    version: ProtocolVersion,
    client: MqttClient,
    mut counts: watch::Receiver<Counts>,
    mut gave_up: watch::Receiver<bool>,
) {
    for (n, records) in conns.into_iter().enumerate() {
        if n > 0 && !plan.reconnect {
            break;
        }
        let accept = next_connection(&listener, n, &client, &mut counts, &mut gave_up);
        let Some(stream) = within("the client's connection", accept).await else {
            trace(format_args!("broker: no connection {n}"));
            break;
        };
        trace(format_args!("broker: connection {n}"));
        let (read, mut write) = stream.into_split();
        let (seen_tx, mut seen) = watch::channel(0usize);
        let reader = tokio::spawn(read_client(read, version, seen_tx));
        // The client may have closed already: a reconnection stopped.
        if within("CONNECT", seen.wait_for(|n| *n >= 1)).await.is_err() {
            joined("the client closing the connection", reader).await;
            continue;
        }
        let mut records = records.into_iter();
        let raw = n == 0 && plan.raw_connack;
        if !raw {
            let mut buf = BytesMut::new();
            packet::encode_with(&plan.connack(version, n), version, &mut buf)
                .expect("encode CONNACK");
            // Err: the client closed first; the records' writes stop too.
            let written = write.write_all(&buf).await.is_ok();
            if written && n == 0 {
                // Err: the connection ended first, as it may.
                let _ = within("the client's requests", seen.wait_for(|n| *n > REQUESTS)).await;
            }
        }
        within(
            "writing the records",
            write_records(&mut write, &mut records),
        )
        .await;
        drop(write);
        // The client closes its end when it sees ours closed.
        joined("the client closing the connection", reader).await;
    }
}

/// Accepts connection `n` (from 0), or None once the client will not
/// come back: its connect failed (`gave_up`), or it reported the loss of
/// connection `n - 1` and is neither reconnecting nor connected.
async fn next_connection(
    listener: &UnixListener,
    n: usize,
    client: &MqttClient,
    counts: &mut watch::Receiver<Counts>,
    gave_up: &mut watch::Receiver<bool>,
) -> Option<UnixStream> {
    loop {
        let lost = counts.borrow_and_update().disconnected as usize >= n;
        if *gave_up.borrow_and_update()
            || (n > 0 && lost && !client.is_reconnecting() && !client.is_connected())
        {
            return None;
        }
        let mut accept = pin!(listener.accept());
        let mut counted = pin!(counts.changed());
        let mut stopped = pin!(gave_up.changed());
        let accepted = poll_fn(|cx| {
            if let Poll::Ready(r) = accept.as_mut().poll(cx) {
                return Poll::Ready(Some(r));
            }
            let c = counted.as_mut().poll(cx);
            let s = stopped.as_mut().poll(cx);
            if c.is_ready() || s.is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        match accepted {
            Some(Ok((stream, _))) => return Some(stream),
            Some(Err(e)) => panic!("accept on the fake broker's socket: {e}"),
            None => {}
        }
    }
}

/// Writes each record in its own write, letting the client run between
/// them; stops when the client has closed the connection.
async fn write_records(write: &mut OwnedWriteHalf, records: &mut impl Iterator<Item = Vec<u8>>) {
    for r in records {
        if write.write_all(&r).await.is_err() {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// Reads what the client sends until it closes the connection: every
/// packet must decode. Counts them in `seen`.
async fn read_client(
    mut read: OwnedReadHalf,
    version: ProtocolVersion,
    seen: watch::Sender<usize>,
) {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        match read.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        loop {
            match packet::decode_with(&mut buf, usize::MAX, version) {
                Ok(Some(_)) => seen.send_modify(|n| *n += 1),
                Ok(None) => break,
                Err(e) => panic!("the client sent a packet that does not decode: {e:?}"),
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
    }
}
