//! One network connection: its writer, limits the server set in CONNACK,
//! and the handles of the tasks that serve it.

use super::alias::OutAliases;
use super::auth::{self, AuthEvent};
use super::redirect::Target;
use super::writer::Outbox;
use super::{
    connect_packet, keepalive, lock, reader, resend, v311, ConnectInfo, ConnectionEvent, Error,
    Event, Inner,
};
use crate::packet::{
    self, Packet, Properties, Property, PropertyId, ProtocolVersion, QoS, ReasonCode,
};
use crate::transport::{self, BrokerUrl, PacketWriter, PeerActivity};
use bytes::BytesMut;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;

pub struct Connection {
    /// The protocol this connection speaks (see `v311`).
    pub(super) version: ProtocolVersion,
    /// The transport's writer and the packets waiting for it (see `writer`).
    pub(super) outbox: Outbox,
    /// Signs of life of the broker, for the keep-alive.
    activity: PeerActivity,
    /// Shuts the socket down from any thread, waking blocked I/O.
    control: Option<transport::Control>,
    alive: AtomicBool,
    /// One permit per QoS 1/2 publish the server's Receive Maximum allows.
    send_quota: Arc<Semaphore>,
    server_max_packet_size: usize,
    /// The server's Maximum QoS and Retain Available from CONNACK.
    max_qos: QoS,
    retain_available: bool,
    /// Outgoing topic aliases of this connection (None: not used). Taken
    /// only under the outbox's lock, so aliases reach the wire in the
    /// order they are assigned.
    pub(super) aliases: Option<Mutex<OutAliases>>,
    /// Where the reader forwards AUTH (and DISCONNECT) while a
    /// re-authentication waits; `auth_serial` lets one run at a time.
    pub(super) auth_waiter: Mutex<Option<tokio::sync::mpsc::Sender<AuthEvent>>>,
    pub(super) auth_serial: tokio::sync::Mutex<()>,
    pub(super) keep_alive: Duration,
    epoch: Instant,
    last_sent_ms: AtomicU64,
    /// How many of our bytes the peer had acknowledged when `heard_at`
    /// last looked (an estimate that is never too high).
    acked_seen: AtomicU64,
    /// While a keep-alive exchange runs: our bytes in the socket before
    /// the write that carried its first PINGREQ (all, until that is
    /// written). The peer acknowledging bytes before it is a sign of
    /// life; 0 otherwise (see `heard_at`).
    ping_at: AtomicU64,
    pub(super) pingresps: AtomicU64,
    pub(super) pingresp_notify: tokio::sync::Notify,
    /// Set while the reader waits for room in the delivery queue: the
    /// broker's packets (a PINGRESP too) then wait in the socket by our
    /// choice, which the keep-alive must not take for silence.
    reading_paused: AtomicBool,
    /// When reading last resumed after such a pause (ms since `epoch`).
    reading_resumed_ms: AtomicU64,
    tasks: Mutex<Vec<AbortHandle>>,
    /// Set by `disconnect` before it sends DISCONNECT, so that the reader
    /// seeing the socket close first still reports our reason.
    pub(super) closing: Mutex<Option<ReasonCode>>,
    /// The Session Expiry Interval our CONNECT sent (0 when absent).
    session_expiry: u32,
    /// True once the resend task (see `resend`) has sent everything that
    /// goes before new publishes, or there was nothing.
    resends: watch::Receiver<bool>,
    /// The same, read with one atomic load by `MqttClient::publish_now`
    /// (set first, see `finish_resends`).
    resends_finished: AtomicBool,
    /// Woken when the connection ends (see `lost`).
    ended: tokio::sync::Notify,
}

impl Connection {
    pub(super) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Returns true the first time only.
    pub(super) fn mark_dead(&self) -> bool {
        let first = self.alive.swap(false, Ordering::AcqRel);
        self.ended.notify_waiters();
        first
    }

    /// Returns once the connection has ended.
    pub(super) async fn lost(&self) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if !self.is_alive() {
                return;
            }
            ended.await;
        }
    }

    pub(super) fn check_size(&self, size: usize) -> Result<(), Error> {
        if size > self.server_max_packet_size {
            return Err(Error::PacketTooLarge {
                size,
                max: self.server_max_packet_size,
            });
        }
        Ok(())
    }

    /// `check_publish` and `check_size` of `publish` sent with `payload`
    /// bytes; its whole encoded size.
    pub(super) fn check_publish_fits(
        &self,
        publish: &crate::packet::Publish,
        payload: usize,
    ) -> Result<usize, Error> {
        self.check_publish(publish.qos, publish.retain)?;
        let len = crate::packet::publish_len(publish, payload)?;
        self.check_size(len)?;
        Ok(len)
    }

    /// Refuses what the server said in CONNACK it does not support.
    pub(super) fn check_publish(&self, qos: QoS, retain: bool) -> Result<(), Error> {
        if qos > self.max_qos {
            return Err(Error::InvalidArgument(format!(
                "QoS {} exceeds the server's Maximum QoS {} (CONNACK)",
                qos as u8, self.max_qos as u8
            )));
        }
        if retain && !self.retain_available {
            return Err(Error::InvalidArgument(
                "retain is not available on this server (CONNACK Retain Available 0)".into(),
            ));
        }
        Ok(())
    }

    /// Refuses a DISCONNECT Session Expiry Interval above 0 when our
    /// CONNECT had 0: the spec makes it a Protocol Error (3.14.2.2.2), and
    /// mosquitto answers it by publishing the will.
    pub(super) fn check_disconnect(&self, properties: &Properties) -> Result<(), Error> {
        match properties.get_int(PropertyId::SessionExpiryInterval) {
            Some(v) if v > 0 && self.session_expiry == 0 => Err(Error::InvalidArgument(format!(
                "Session Expiry Interval {v} in DISCONNECT: this connection's CONNECT had 0 \
                 (none set), and the spec forbids raising it from 0 at DISCONNECT \
                 (set it with mqtt_options_set_session_expiry before connecting)"
            ))),
            _ => Ok(()),
        }
    }

    /// The server's Maximum Packet Size (or the protocol's limit).
    pub(super) fn server_max_packet_size(&self) -> usize {
        self.server_max_packet_size
    }

    /// Whether the resend task is done (see `wait_for_resends`), without
    /// waiting: one atomic load, for the QoS 0 fast path.
    pub(super) fn resends_finished(&self) -> bool {
        self.resends_finished.load(Ordering::Acquire)
    }

    /// Records that everything that goes before new publishes was sent,
    /// and wakes those waiting for it.
    pub(super) fn finish_resends(&self, done: &watch::Sender<bool>) {
        self.resends_finished.store(true, Ordering::Release);
        done.send_replace(true);
    }

    /// Waits until the messages in flight at the last loss have been sent
    /// again and the offline queue drained, so that a new publish, of any
    /// QoS, goes out after them (and they get the Receive Maximum slots
    /// first).
    pub(super) async fn wait_for_resends(&self) -> Result<(), Error> {
        let mut done = self.resends.clone();
        // Err: the resend task ended without finishing: with the
        // connection, or (a bug) on its own, when waiting longer would
        // only stall the publisher.
        let finished = done.wait_for(|d| *d).await.is_ok();
        if finished || self.is_alive() {
            Ok(())
        } else {
            Err(Error::ConnectionLost)
        }
    }

    /// Waits for a free slot of the server's Receive Maximum.
    pub(super) async fn acquire_send_slot(&self) -> Result<OwnedSemaphorePermit, Error> {
        self.send_quota
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::ConnectionLost)
    }

    /// Records that a whole packet was just written.
    pub(super) fn sent_now(&self) {
        self.last_sent_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
    }

    /// Time since we last sent a whole packet.
    pub(super) fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_sent_ms.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// Marks reading as paused by back-pressure (see `reading_paused`)
    /// for as long as the guard lives.
    pub(super) fn pause_reading(&self) -> ReadingPaused<'_> {
        self.reading_paused.store(true, Ordering::Release);
        ReadingPaused(self)
    }

    /// How long the broker has been silent since `since`: since the later
    /// of `since`, its last sign of life (`heard_at`) and the end of the
    /// last pause of reading, so counting only time in which we were
    /// reading. None while reading is paused by back-pressure.
    pub(super) fn silent_since(&self, since: Instant) -> Option<Duration> {
        if self.reading_paused.load(Ordering::Acquire) {
            return None;
        }
        let resumed =
            self.epoch + Duration::from_millis(self.reading_resumed_ms.load(Ordering::Acquire));
        Some(since.max(resumed).max(self.heard_at()).elapsed())
    }

    /// When the broker last showed it is alive: bytes arrived from it, or
    /// it took bytes of ours while a keep-alive exchange runs: the peer
    /// acknowledged more of the bytes before our PINGREQ since the last
    /// look (all of them until the PINGREQ is written: a large write that
    /// the kernel took whole, or one still waiting for room, that drains
    /// slowly with the PINGREQ behind it, is progress). Such progress
    /// counts as life at the look that sees it, the look that sees the
    /// last of those bytes taken too: so the broker's time to answer
    /// starts once the PINGREQ is written and everything before it was
    /// seen taken, not at a look up to K/2 before the PINGREQ even left
    /// (the writer looks right after the PINGREQ's write, see
    /// `pingreq_written`, so a peer that had taken everything before it
    /// gets no later start than that write).
    ///
    /// Acknowledgements of other bytes prove nothing: the TCP peer may be
    /// a middlebox whose far side is dead (or a stopped broker's kernel),
    /// which acknowledges whatever we send. Once the PINGREQ itself is
    /// acknowledged, only the PINGRESP (bytes in) counts: so a client that
    /// keeps publishing through such a peer still finds it dead in time.
    /// Where the socket cannot tell what it still holds (not Linux), a
    /// write that waited for room and went through counts instead.
    fn heard_at(&self) -> Instant {
        // Sent first, then the queue: a write in between makes the
        // estimate low, never high.
        let sent = self.activity.sent();
        let last = self.activity.last();
        let Some(queued) = self.control.as_ref().and_then(|c| c.unacknowledged()) else {
            return last.max(self.activity.last_drained().unwrap_or(last));
        };
        let acked = sent.saturating_sub(queued);
        let before = self.acked_seen.fetch_max(acked, Ordering::AcqRel);
        // `before`: the last look still saw bytes before the PINGREQ
        // untaken, so this progress is (also) on them.
        if acked > before && before < self.ping_at.load(Ordering::Acquire) {
            self.activity.touch();
        }
        self.activity.last()
    }

    /// A keep-alive exchange begins: the peer taking any bytes of ours
    /// counts as life until its PINGREQ is written (see `heard_at`).
    pub(super) fn ping_started(&self) {
        self.ping_at.store(u64::MAX, Ordering::Release);
    }

    /// True during a keep-alive exchange until its PINGREQ is written
    /// and a look saw the peer take every byte before it (`heard_at`).
    pub(super) fn draining_before_ping(&self) -> bool {
        self.acked_seen.load(Ordering::Acquire) < self.ping_at.load(Ordering::Acquire)
    }

    /// Our bytes handed to the socket so far (for the writer).
    pub(super) fn bytes_sent(&self) -> u64 {
        self.activity.sent()
    }

    /// Called by the writer right after the write that carried the
    /// exchange's first PINGREQ went into the socket, `before` our bytes
    /// in it before that write: from now on only those count (see
    /// `heard_at`), and a look now records what the peer took so far.
    /// Nothing when no exchange awaits it (it ended meanwhile).
    pub(super) fn pingreq_written(&self, before: u64) {
        let awaited =
            self.ping_at
                .compare_exchange(u64::MAX, before, Ordering::AcqRel, Ordering::Acquire);
        if awaited.is_ok() {
            self.heard_at();
        }
    }

    /// The exchange ended: acknowledgements count for nothing again.
    pub(super) fn ping_ended(&self) {
        self.ping_at.store(0, Ordering::Release);
    }

    /// Closes the socket and stops the tasks and anything waiting on them.
    pub(super) fn shutdown(&self) {
        self.send_quota.close();
        // Ends a waiting re-authentication (its channel closes).
        lock(&self.auth_waiter).take();
        if let Some(c) = &self.control {
            c.shutdown();
        }
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }

    fn add_task(&self, handle: AbortHandle) {
        lock(&self.tasks).push(handle);
        // The connection may have ended before the task was registered.
        if !self.is_alive() {
            self.shutdown();
        }
    }
}

/// Reading is paused by back-pressure while this lives (see
/// [`Connection::pause_reading`]).
pub(super) struct ReadingPaused<'a>(&'a Connection);

impl Drop for ReadingPaused<'_> {
    fn drop(&mut self) {
        let c = self.0;
        let now = c.epoch.elapsed().as_millis() as u64;
        c.reading_resumed_ms.store(now, Ordering::Release);
        c.reading_paused.store(false, Ordering::Release);
    }
}

/// Who asked for a connection: the application (`connect`) or the
/// reconnection task, which restores the subscriptions of a lost session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Start {
    Application,
    Automatic,
}

/// The TLS options with the client signer, if any, entering the client's
/// callback gate for each signature: `close` (mqtt_client_free) then
/// waits for a signature under way, and none starts after it, so the
/// signer's `user_data` is unused once the client is freed.
fn gated_signer(inner: &Arc<Inner>, tls: &transport::TlsOptions) -> Option<transport::TlsOptions> {
    let client = Arc::downgrade(inner);
    tls.with_signer_wrapped(|signer| Arc::new(GatedSigner { client, signer }))
}

struct GatedSigner {
    client: std::sync::Weak<Inner>,
    signer: Arc<dyn transport::ExternalSigner>,
}

impl transport::ExternalSigner for GatedSigner {
    fn sign(&self, scheme: u16, message: &[u8]) -> Result<Vec<u8>, String> {
        let closed = || "the client is being freed".to_string();
        let inner = self.client.upgrade().ok_or_else(closed)?;
        let _inside = inner
            .gate
            .enter(super::gate::Kind::Signer)
            .ok_or_else(closed)?;
        // A Rust signer's panic fails the signature: unwound, it would end
        // the task whose poll runs the handshake, a reconnection's for
        // one, and the client would stay reconnecting for ever.
        let signed = super::delivery::catch_panic(|| self.signer.sign(scheme, message))
            .unwrap_or_else(|| Err("the signer panicked".to_string()));
        // A signer that freed its client (allowed, as from any callback)
        // fails the handshake, signed or not: on a runtime thread (a
        // reconnection's handshake) the rest of this poll runs after the
        // client is gone, maybe while `mqtt_global_cleanup`, which may
        // start at once, stops the runtime's timers, which panic when
        // polled then. Failing here ends the attempt in this poll,
        // before its connect timeout or a CONNACK is waited for.
        if inner.gate.is_closed() {
            return Err(closed());
        }
        signed
    }
}

/// Opens the transport, exchanges CONNECT/CONNACK and starts the tasks.
/// A refusing CONNACK is kept in `last_connack` (its Server Reference is
/// read from there, see `attempt`).
/// `opened` is set once the transport is open (TCP, a proxy's tunnel,
/// TLS, WebSocket): the connect timeout then says which part it cut.
pub(super) async fn establish(
    inner: &Arc<Inner>,
    target: &Target,
    start: Start,
    opened: &std::sync::atomic::AtomicBool,
) -> Result<ConnectInfo, Error> {
    let o = &inner.options;
    let url = &target.url;
    // Copies (wiped when dropped), so the lock is not held while connecting.
    let (ws_headers, proxy) = {
        let secrets = lock(&inner.secrets);
        (secrets.ws_headers.clone(), secrets.proxy.clone())
    };
    // A server name override names the configured servers' certificate:
    // a server we were redirected to is verified against its own name.
    let mut own_tls;
    let mut tls = &o.tls;
    if let Some(gated) = gated_signer(inner, tls) {
        own_tls = gated;
        tls = &own_tls;
    }
    if target.redirected {
        own_tls = tls.clone();
        own_tls.set_server_name(None).map_err(Error::Tls)?;
        tls = &own_tls;
    }
    let version = *lock(&inner.protocol);
    let cfg = transport::ConnectConfig {
        tcp: &o.tcp,
        tls,
        ws_headers: &ws_headers,
        // MQTT_PROTOCOL_AUTO offers `mqttv3.1` with its v5 CONNECT too:
        // a broker that wants it then refuses v5, and we fall back.
        ws_subprotocols: match o.protocol_version {
            Some(ProtocolVersion::V5) => transport::WS_MQTT,
            _ => transport::WS_MQTT_311,
        },
        proxy: &proxy,
        max_packet_size: o.effective_max_packet_size() as usize,
    };
    let mut t = transport::connect(url, &cfg).await?;
    opened.store(true, std::sync::atomic::Ordering::Relaxed);
    t.reader.set_version(version);
    let mut buf = BytesMut::new();
    let client_id = lock(&inner.client_id).clone();
    let connect = {
        let secrets = lock(&inner.secrets);
        let connect = connect_packet(o, &secrets, client_id)?;
        match version {
            ProtocolVersion::V5 => connect,
            ProtocolVersion::V311 => v311::connect(
                connect,
                o,
                &secrets.connect_properties,
                secrets.auth_data.is_some(),
            )?,
        }
    };
    let clean_start = connect.clean_start;
    let session_expiry = connect
        .properties
        .get_int(PropertyId::SessionExpiryInterval)
        .unwrap_or(0);
    // Its password and authentication data are wiped with their last
    // copy (see `secrets::wiped`): the packet's when it is dropped here,
    // the encoded packet's after the write, or if this future is dropped.
    let connect = Packet::Connect(Box::new(connect));
    let encoded = packet::encode_with(&connect, version, &mut buf);
    drop(connect);
    let buf = super::secrets::wiped(buf);
    encoded?;
    t.writer.write_packet(&buf).await?;
    drop(buf);
    // AUTH packets of an enhanced authentication come before CONNACK.
    let connack = loop {
        match t.reader.read_packet().await {
            Ok(Packet::ConnAck(c)) => break c,
            Ok(Packet::Auth(a)) => auth::answer_during_connect(inner, &mut t.writer, a).await?,
            Ok(other) => {
                return Err(Error::Protocol(format!(
                    "expected CONNACK, got {:?}",
                    other.packet_type()
                )))
            }
            Err(e) => return Err(connack_failed(inner, version, &target.url, e)),
        }
    };
    *lock(&inner.last_connack) = Some(connack.clone());
    if connack.reason.is_error() {
        return Err(Error::Refused {
            reason: connack.reason,
            reason_string: super::reason_string(&connack.properties),
        });
    }
    if clean_start && connack.session_present {
        return Err(session_not_asked_for(inner, &mut t.writer, version).await);
    }
    let props = &connack.properties;
    auth::verify_success(inner, &mut t.writer, props).await?;
    if let Some(Property::AssignedClientIdentifier(id)) =
        props.get(PropertyId::AssignedClientIdentifier)
    {
        *lock(&inner.client_id) = id.clone();
    }
    let receive_max = props.get_int(PropertyId::ReceiveMaximum).unwrap_or(65_535) as usize;
    let server_max = props
        .get_int(PropertyId::MaximumPacketSize)
        .map_or(268_435_460, |v| v as usize);
    let max_qos = props
        .get_int(PropertyId::MaximumQoS)
        .and_then(|q| QoS::from_u8(q as u8))
        .unwrap_or(QoS::ExactlyOnce);
    let retain_available = props.get_int(PropertyId::RetainAvailable) != Some(0);
    let alias_max = props
        .get_int(PropertyId::TopicAliasMaximum)
        .map_or(0, |v| v as u16)
        .min(o.outgoing_topic_aliases);
    let keep_alive = props
        .get_int(PropertyId::ServerKeepAlive)
        .unwrap_or(o.keep_alive as u32);
    let (resends_done, resends) = watch::channel(false);
    let conn = Arc::new(Connection {
        version,
        outbox: Outbox::new(t.writer),
        activity: t.activity,
        control: t.control,
        alive: AtomicBool::new(true),
        send_quota: Arc::new(Semaphore::new(receive_max.max(1))),
        server_max_packet_size: server_max,
        max_qos,
        retain_available,
        aliases: (alias_max > 0).then(|| Mutex::new(OutAliases::new(alias_max))),
        auth_waiter: Mutex::new(None),
        auth_serial: tokio::sync::Mutex::new(()),
        keep_alive: Duration::from_secs(keep_alive as u64),
        epoch: Instant::now(),
        last_sent_ms: AtomicU64::new(0),
        acked_seen: AtomicU64::new(0),
        ping_at: AtomicU64::new(0),
        pingresps: AtomicU64::new(0),
        pingresp_notify: tokio::sync::Notify::new(),
        reading_paused: AtomicBool::new(false),
        reading_resumed_ms: AtomicU64::new(0),
        tasks: Mutex::new(Vec::new()),
        closing: Mutex::new(None),
        session_expiry,
        resends,
        resends_finished: AtomicBool::new(false),
        ended: tokio::sync::Notify::new(),
    });

    let plan = session_plan(inner, connack.session_present, start);

    // Installed and reported under the events lock: a connection ended
    // meanwhile (one that `connection_lost` took out of the slot before
    // this `connect` found it empty) has queued its DISCONNECTED first.
    let events = lock(&inner.events);
    {
        let mut cur = inner.connection.write().unwrap_or_else(|e| e.into_inner());
        // `close` marks the delivery closed before it looks for a
        // connection under this lock: a client being freed (while a
        // reconnection attempt ran) never gets a connection after it.
        if inner.delivery.is_closed() {
            conn.mark_dead();
            conn.shutdown();
            return Err(Error::Closed);
        }
        *cur = Some(conn.clone());
        *lock(&inner.last_url) = Some(target.clone());
    }
    inner.set_link(super::link::Link::Up);
    // Counted before CONNECTED is queued: an application reading the
    // statistics once it saw the event finds the reconnection in them.
    if start == Start::Automatic {
        inner.stats.count_reconnect_attempt(true);
    }
    // Queued before the reader starts, so that a DISCONNECT right after
    // CONNACK is reported after CONNECTED, not before.
    inner.delivery.push(
        inner,
        Event::Connection(ConnectionEvent::Connected {
            session_present: connack.session_present,
            version,
        }),
    );
    drop(events);
    let r = inner
        .runtime
        .spawn(reader::run(inner.clone(), conn.clone(), t.reader));
    conn.add_task(r.abort_handle());
    if !conn.keep_alive.is_zero() {
        let k = inner
            .runtime
            .spawn(keepalive::run(inner.clone(), conn.clone()));
        conn.add_task(k.abort_handle());
    }
    // Nothing after this point waits: a connect timeout around this
    // function cannot make a connection that is installed look failed.
    // The queue is looked at after the connection is installed, under its
    // lock: a publisher that queued before is seen here, one that comes
    // later finds the connection (see `Inner::enqueue`).
    let nothing = !plan.resubscribe && plan.order.is_empty() && lock(&inner.offline).is_empty();
    if nothing {
        conn.finish_resends(&resends_done);
    } else {
        let task = resend::run(inner.clone(), conn.clone(), plan, resends_done);
        conn.add_task(inner.runtime.spawn(task).abort_handle());
    }
    Ok(ConnectInfo {
        session_present: connack.session_present,
        reason: connack.reason,
        properties: connack.properties,
    })
}

/// A CONNACK with Session Present 1 in answer to our Clean Start 1: the
/// server claims a session it was told to discard, so what it would
/// resume is not what we hold (a Clean Start resets our side). A client
/// without session state must close the connection (MQTT-3.2.2-4): we
/// send DISCONNECT 0x82 first. Our session is reset as a Clean Start
/// resets it, so no stale inbound QoS 2 id survives (one would make a new
/// message on that id look like a resend, acknowledged but never
/// delivered).
async fn session_not_asked_for(
    inner: &Arc<Inner>,
    w: &mut PacketWriter,
    version: ProtocolVersion,
) -> Error {
    // 3.1.1 has no reason code to send: the connection just closes.
    let (rule, how) = match version {
        ProtocolVersion::V5 => {
            auth::write_disconnect(w, ReasonCode::ProtocolError).await;
            ("MQTT-3.2.2-4", "with DISCONNECT 0x82")
        }
        ProtocolVersion::V311 => (
            "MQTT-3.2.2-1",
            "without DISCONNECT (MQTT 3.1.1 has no reason code to send)",
        ),
    };
    // Our publishes stay, to be published afresh on the next connection.
    let (_, finished) = lock(&inner.session).restart();
    inner.delivery.push_finished(inner, finished);
    let start = match version {
        ProtocolVersion::V5 => "Clean Start 1",
        ProtocolVersion::V311 => "Clean Session 1",
    };
    Error::Protocol(format!(
        "the server answered {start} with Session Present 1, claiming a session it was told to discard ({rule}); connection closed {how}"
    ))
}

/// The reason string of the refusal `connack_failed` makes of a server
/// closing the connection right after our v5 CONNECT.
pub(super) const CLOSED_AFTER_V5_CONNECT: &str =
    "the server closed the connection after the MQTT v5 CONNECT";

/// The error of a connection that ended before its CONNACK was read.
/// A v5 CONNECT answered in 3.1.1's form with return code 1 ("unacceptable
/// protocol version", which a v5 decoder reads as an unknown reason code),
/// or, with `MQTT_PROTOCOL_AUTO`, a server closing the connection right
/// after our v5 CONNECT, is the server refusing v5: `Refused` with 0x84,
/// so that `attempt` falls back to 3.1.1 when the options allow it.
fn connack_failed(
    inner: &Inner,
    version: ProtocolVersion,
    url: &BrokerUrl,
    e: transport::ReadError,
) -> Error {
    let refused = |why: &str| Error::Refused {
        reason: ReasonCode::UnsupportedProtocolVersion,
        reason_string: Some(why.into()),
    };
    // A server that agreed v5 with us before and now closes right after
    // the CONNECT is going down (or a proxy lost its backend): a lost
    // connection, not a refusal of v5 to settle on 3.1.1 for good.
    let auto = inner.options.protocol_version.is_none() && !lock(&inner.v5_agreed).contains(url);
    match e {
        transport::ReadError::Decode(packet::DecodeError::InvalidReasonCode(1))
            if version == ProtocolVersion::V5 =>
        {
            refused("the server answered the MQTT v5 CONNECT with an MQTT 3.1.1 CONNACK refusing the protocol version (it speaks 3.1.1 only: set MQTT_PROTOCOL_V311 or MQTT_PROTOCOL_AUTO)")
        }
        transport::ReadError::Closed | transport::ReadError::Io(_)
            if auto && version == ProtocolVersion::V5 =>
        {
            refused(CLOSED_AFTER_V5_CONNECT)
        }
        transport::ReadError::Closed => Error::ConnectionLost,
        transport::ReadError::Io(e) => e.into(),
        transport::ReadError::Decode(e) => e.into(),
    }
}

/// Resumes or resets the session for a connection whose CONNACK said
/// `session_present`, and says what its resend task sends first: on a
/// resumed session the messages in flight, resent; on a new one the same
/// messages published afresh, and, after an automatic reconnect, the
/// subscriptions again (an application's `connect` starts afresh: they
/// are forgotten).
fn session_plan(inner: &Arc<Inner>, session_present: bool, start: Start) -> resend::Plan {
    // Before the reader starts: its receipts are of this connection.
    lock(&inner.session).connected();
    if session_present {
        let order = lock(&inner.session).resend_order();
        return resend::Plan {
            resubscribe: false,
            order,
            fresh: false,
        };
    }
    let (order, finished) = lock(&inner.session).restart();
    inner.delivery.push_finished(inner, finished);
    let mut subs = lock(&inner.subscriptions);
    let resubscribe = start == Start::Automatic && inner.options.resubscribe && !subs.is_empty();
    if start == Start::Application {
        subs.clear();
    }
    resend::Plan {
        resubscribe,
        order,
        fresh: true,
    }
}
