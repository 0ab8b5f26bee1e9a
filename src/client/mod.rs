//! The asynchronous MQTT client: direct async methods over shared state.
//!
//! There is no event loop. Each method encodes its packet and writes it on
//! the connection's writer itself; what it waits for (an acknowledgement)
//! arrives through a oneshot completed by the reader task. Background tasks
//! are plain async fns with one concern each: [`reader`], [`keepalive`]
//! and [`resend`] (what a new connection sends before anything newer: the
//! messages in flight at the loss, the offline queue), stopped by
//! aborting their handles when the connection ends, and
//! [`reconnect`], started when a connection is lost and stopped by
//! aborting its handle on `disconnect`, `connect` or `close`.
//!
//! With automatic reconnection, calls ride out a lost connection (see
//! [`link`]): a publish in flight keeps its waiter in the session until
//! the resend's acknowledgement, a publish made meanwhile waits in the
//! [`offline`] queue, a subscribe waits for the next connection; all
//! within the operation timeout.

mod acks;
mod alias;
mod attempt;
mod auth;
mod connection;
mod delivery;
mod error;
mod flow;
mod gate;
mod keepalive;
mod link;
mod logging;
mod offline;
mod options;
mod persist;
mod pool;
mod publish;
mod reader;
mod reconnect;
mod redirect;
mod request;
mod resend;
mod resubscribe;
mod secrets;
mod session;
mod v311;
mod writer;

pub use auth::{AuthAnswer, AuthChallenge};
pub use connection::Connection;
pub use delivery::{BlockingGuard, Handler};
pub use error::Error;
pub use flow::Stats;
pub use gate::{CallbackGate, Kind};
pub use logging::Level;
pub use options::{
    ClientOptions, OfflineQueueLimits, QueuePolicy, Reconnect, DEFAULT_DELIVERY_QUEUE_BYTES,
    DEFAULT_MAX_PACKET_SIZE, DEFAULT_OPERATION_TIMEOUT, DEFAULT_RECEIVE_MAXIMUM,
    PROTOCOL_MAX_PACKET_SIZE,
};
pub(crate) use pool::{on_pool_thread, stop as stop_callback_pool};
pub(crate) use publish::PublishNow;
pub use resubscribe::ResubscribeFailure;
pub use secrets::{secret_bytes, Secret};

use crate::packet::{
    self, ConnAck, Connect, Disconnect, Packet, Properties, Property, PropertyId, ReasonCode,
    SubAck, Subscribe, SubscribeFilter, UnsubAck, Unsubscribe,
};
use crate::transport::BrokerUrl;
use bytes::BytesMut;
use delivery::{Delivery, Event};
pub use session::Completion;
use session::{Pending, PendingKind, Reply, Session, Waiter};
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::task::Poll;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};
use tokio::task::AbortHandle;

/// A connection state change, delivered in order with the messages.
#[derive(Clone, Debug)]
pub enum ConnectionEvent {
    Connected {
        session_present: bool,
        /// The protocol this connection speaks (with `MQTT_PROTOCOL_AUTO`
        /// it may change on a reconnect).
        version: packet::ProtocolVersion,
    },
    Disconnected(DisconnectCause),
    /// The reconnection task is about to make attempt `attempt` (from 1).
    Reconnecting {
        attempt: u32,
    },
    /// After a reconnect that found no session, subscribing to `filter`
    /// again failed (see `resubscribe`).
    ResubscribeFailed {
        filter: String,
        failure: ResubscribeFailure,
    },
}

/// Why a connection ended.
#[derive(Clone, Debug)]
pub enum DisconnectCause {
    /// The server sent DISCONNECT.
    Server(Disconnect),
    /// We sent DISCONNECT with this reason.
    Client(ReasonCode),
    /// The server closed the socket without DISCONNECT.
    Closed,
    Io(String),
    /// No PINGRESP within the keep-alive interval.
    KeepAliveTimeout,
    /// The server broke the protocol; we sent DISCONNECT with this reason.
    Protocol(ReasonCode, String),
}

/// What the server said in CONNACK.
#[derive(Clone, Debug)]
pub struct ConnectInfo {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: Properties,
}

/// The result of an acknowledged request: reason code and properties
/// (reason string, user properties) of PUBACK/PUBREC/PUBCOMP.
#[derive(Clone, Debug)]
pub struct Ack {
    pub reason: ReasonCode,
    pub properties: Properties,
}

impl Ack {
    fn success() -> Ack {
        Ack {
            reason: ReasonCode::Success,
            properties: Properties::new(),
        }
    }
}

/// An MQTT v5 client. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct MqttClient {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The options without their secrets, which are in `secrets`.
    options: ClientOptions,
    /// Password, Authentication Data and WebSocket headers; emptied (and
    /// so wiped) by `close`.
    secrets: Mutex<secrets::Secrets>,
    runtime: Handle,
    handler: Arc<dyn Handler>,
    /// Every call of `handler` passes through it (see `gate`).
    gate: Arc<CallbackGate>,
    /// Woken by `close`: calls raced against it by `unless_closed` return.
    closed: tokio::sync::Notify,
    /// The live connection, if any. Methods clone the `Arc` and work on it,
    /// so a connection that ends under them fails their calls cleanly.
    connection: RwLock<Option<Arc<Connection>>>,
    session: Mutex<Session>,
    delivery: Arc<Delivery>,
    /// Acknowledgements of messages whose callbacks returned (see `acks`).
    acks: acks::PendingAcks,
    /// Serialises connect/disconnect against each other.
    connecting: tokio::sync::Mutex<()>,
    /// Held while a connection event is decided and queued: by
    /// `connection_lost` from before it marks the connection dead until
    /// its DISCONNECTED is queued, by `connection::establish` around
    /// installing a connection and queueing its CONNECTED. So the events of
    /// successive connections are queued in order, and a caller that loses
    /// the race to end a connection (see `connection_lost`) returns only
    /// once the winner queued its event. Taken before every other lock,
    /// held for no wait.
    events: Mutex<()>,
    /// Client identifier in use (given, or assigned by the server), sent
    /// in every CONNECT: a session the server made for an assigned id can
    /// only be resumed with that id.
    client_id: Mutex<packet::MqttStr>,
    last_connack: Mutex<Option<ConnAck>>,
    stats: Stats,
    /// Diagnostic lines (see `logging`); shared with the store.
    logger: Arc<logging::Logger>,
    /// The DISCONNECT the server sent to end the last connection, if any.
    last_disconnect: Mutex<Option<Disconnect>>,
    requests: request::Requests,
    /// The server of the last successful connect, where reconnection
    /// goes first (see `attempt`).
    last_url: Mutex<Option<redirect::Target>>,
    /// The URL given to the last `connect`, first of the servers.
    given_url: Mutex<Option<BrokerUrl>>,
    /// The reconnection task, if one was started (it may have finished).
    reconnector: Mutex<Option<AbortHandle>>,
    /// The wait before the last successful automatic reconnection, and
    /// when it succeeded (see `reconnect::first_delay`).
    reconnected: Mutex<Option<(std::time::Duration, std::time::Instant)>>,
    /// Connected, reconnecting, or neither (see `link`).
    link: watch::Sender<link::Link>,
    /// Publishes made while reconnecting (see `offline`).
    offline: Mutex<offline::OfflineQueue>,
    /// What to subscribe to again after a lost session (see `resubscribe`).
    subscriptions: Mutex<resubscribe::Subscriptions>,
    /// The persistence store, with `options.persistence_dir`.
    store: Option<Arc<persist::Store>>,
    /// The protocol the next connection speaks (first tries, with
    /// `MQTT_PROTOCOL_AUTO`): v5 until a server refused it (see `attempt`).
    protocol: Mutex<packet::ProtocolVersion>,
    /// With `MQTT_PROTOCOL_AUTO`, the servers that agreed v5 with this
    /// client: one of them closing a later connection right after its v5
    /// CONNECT lost that connection; it did not refuse v5 (see
    /// `connection::connack_failed`).
    v5_agreed: Mutex<Vec<BrokerUrl>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Our critical sections do not panic midway through an update; if one
    // did, the data is still usable, so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MqttClient {
    /// Creates a disconnected client. Tasks it starts run on `runtime`.
    ///
    /// # Panics
    /// When `options.persistence_dir` is set and the store cannot be
    /// opened: use [`MqttClient::open`] to handle that.
    pub fn new(options: ClientOptions, handler: Arc<dyn Handler>, runtime: Handle) -> MqttClient {
        MqttClient::with_gate(options, handler, runtime, Arc::default())
    }

    /// Like `new`, with the gate the handler's calls pass through given by
    /// the caller: a handler that makes several calls of application code
    /// per event (per-subscription callbacks) checks it between them.
    ///
    /// # Panics
    /// As `new`.
    pub fn with_gate(
        options: ClientOptions,
        handler: Arc<dyn Handler>,
        runtime: Handle,
        gate: Arc<CallbackGate>,
    ) -> MqttClient {
        match MqttClient::open(options, handler, runtime, gate) {
            Ok(c) => c,
            Err(e) => panic!("MqttClient::with_gate: {e} (use MqttClient::open)"),
        }
    }

    /// Like `with_gate`, and with `options.persistence_dir` set, opens the
    /// client id's store there (blocking on file I/O) and loads what it
    /// holds into the session: publishes accepted by an earlier process
    /// and not yet acknowledged go out on the first connection. Fails when
    /// the store is in use by another process or client, or unreadable,
    /// or when there is no client id to name it.
    pub fn open(
        mut options: ClientOptions,
        handler: Arc<dyn Handler>,
        runtime: Handle,
        gate: Arc<CallbackGate>,
    ) -> Result<MqttClient, Error> {
        let logger = Arc::new(logging::Logger::default());
        let opened = match &options.persistence_dir {
            None => None,
            Some(_) if options.client_id.is_empty() => {
                return Err(Error::InvalidArgument(
                    "persistence needs a client id (the log is named after it)".into(),
                ))
            }
            Some(dir) => Some(persist::Store::open(
                dir,
                &options.client_id,
                runtime.clone(),
                logger.clone(),
            )?),
        };
        let delivery = Arc::new(Delivery::new(&options));
        let client_id = options.client_id.clone();
        let secrets = Mutex::new(secrets::Secrets::take(&mut options));
        let mut offline = offline::OfflineQueue::new(options.offline_queue);
        let mut session = Session::default();
        if let Some(o) = &opened {
            session = Session::persistent(o.store.clone(), &o.state);
            offline.restore(&o.state, &o.store);
        }
        let store = opened.map(|o| o.store);
        let protocol = Mutex::new(options.protocol_version.unwrap_or_default());
        let inner = Arc::new(Inner {
            options,
            secrets,
            runtime,
            handler,
            gate,
            closed: tokio::sync::Notify::new(),
            connection: RwLock::new(None),
            session: Mutex::new(session),
            delivery,
            acks: acks::PendingAcks::default(),
            connecting: tokio::sync::Mutex::new(()),
            events: Mutex::new(()),
            client_id: Mutex::new(client_id),
            last_connack: Mutex::new(None),
            stats: Stats::default(),
            logger,
            last_disconnect: Mutex::new(None),
            requests: request::Requests::default(),
            last_url: Mutex::new(None),
            given_url: Mutex::new(None),
            reconnector: Mutex::new(None),
            reconnected: Mutex::new(None),
            link: watch::Sender::new(link::Link::Down),
            offline: Mutex::new(offline),
            subscriptions: Mutex::default(),
            store,
            protocol,
            v5_agreed: Mutex::default(),
        });
        inner.logger.attach(&inner);
        Ok(MqttClient { inner })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The runtime the client's tasks run on (the one it was made with).
    pub(crate) fn runtime(&self) -> &Handle {
        &self.inner.runtime
    }

    /// The gate every call of the handler passes through (see `gate`).
    pub fn callback_gate(&self) -> &Arc<CallbackGate> {
        &self.inner.gate
    }

    /// Waits until no auth callback of this client runs on another thread
    /// (see `CallbackGate::wait_for_kind`): after a connect or
    /// re-authentication that stopped waiting for one (timeout, close).
    pub fn wait_for_auth_callbacks(&self) {
        self.inner.gate.wait_for_kind(Kind::Auth);
    }

    /// Runs `call`, unless `close` is called first: then its future is
    /// dropped and the result is `Error::Closed`. For calls that wait on
    /// something `close` does not fail by itself (a CONNACK, the
    /// `connecting` lock, a response, an AUTH). Dropping a call midway is
    /// harmless here: `close` ends the connection it was using.
    pub async fn unless_closed<T>(
        &self,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let mut call = std::pin::pin!(call);
        let mut closed = std::pin::pin!(self.inner.wait_closed());
        // Whether `closed` was polled (its waiter registered) yet.
        let mut armed = false;
        // Closed first, by the flag too (the notification comes at the end
        // of `close`): a call that `close` itself fails (its waiter) then
        // reports the close, like the others. A call that completes in a
        // poll that began before `close` keeps its own result. On the
        // first poll the flag alone is checked before the call, and
        // `closed` is polled only if the call did not complete: a call
        // that completes at once (a QoS 0 publish) then registers and
        // removes no waiter, which cost a few percent of its CPU
        // (docs/performance.md); `wait_closed` checks the flag after it
        // registered, so a close in between is not missed.
        std::future::poll_fn(|cx| {
            if self.inner.delivery.is_closed() || (armed && closed.as_mut().poll(cx).is_ready()) {
                return Poll::Ready(Err(Error::Closed));
            }
            if let Poll::Ready(r) = call.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            if !armed {
                armed = true;
                if closed.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(Error::Closed));
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Refuses `connect` and `disconnect` from inside the pre-connect hook
    /// or the TLS signer: they wait for the attempt in progress, which
    /// waits for the callback.
    fn not_from_pre_connect(&self, what: &str) -> Result<(), Error> {
        match self.inner.gate.inside_attempt_callback() {
            None => Ok(()),
            Some(Kind::PreConnect) => Err(Error::InvalidArgument(format!(
                "{what} called from the pre-connect callback, which runs during a connection \
                 attempt (return non-zero to skip the attempt instead)"
            ))),
            Some(_) => Err(Error::InvalidArgument(format!(
                "{what} called from the TLS client signer callback, which runs during this \
                 client's handshake (return non-zero to fail the handshake instead)"
            ))),
        }
    }

    /// The client identifier in use: the one given, or the one the server
    /// assigned at the last connect.
    pub fn client_id(&self) -> String {
        lock(&self.inner.client_id).as_str().to_string()
    }

    pub fn last_connack(&self) -> Option<ConnAck> {
        lock(&self.inner.last_connack).clone()
    }

    /// The client's counters (see [`Stats`]).
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Diagnostic lines at `level` and more severe go to the handler's
    /// `on_log` from now on (None, the default: none). They go to the
    /// `log` facade (target `mqtt5c`) whatever this says. The first call
    /// with a level also hands over the lines logged while the client was
    /// made (opening its persistence store).
    pub fn set_log_level(&self, level: Option<Level>) {
        self.inner.logger.set_level(level);
    }

    /// Outgoing QoS 1/2 publishes in flight now: written (or to be
    /// resent after a reconnect) and not yet completely acknowledged.
    pub fn outbound_in_flight(&self) -> usize {
        lock(&self.inner.session)
            .pending
            .values()
            .filter(|p| matches!(p.kind, PendingKind::Publish { .. }))
            .count()
    }

    /// Incoming QoS 1/2 messages in flight now: received and not yet
    /// acknowledged (queued, in their callback, or QoS 2 until PUBREL).
    pub fn inbound_in_flight(&self) -> usize {
        lock(&self.inner.session).inbound_in_flight()
    }

    /// Messages, connection events and completions waiting for the
    /// handler now (log lines not counted).
    pub fn delivery_queue_len(&self) -> usize {
        self.inner.delivery.queued_len()
    }

    /// The most received messages and events that were ever waiting for
    /// the handler at once: at most the delivery queue limit, except while
    /// a callback is inside a blocking call (see `delivery` for the bound
    /// then).
    pub fn delivery_queue_peak(&self) -> usize {
        self.inner.delivery.peak()
    }

    /// The most bytes of received messages (topic, properties, payload and
    /// a per-message overhead) that were ever waiting for the handler at
    /// once: at most the byte bound plus one message, except while a
    /// callback is inside a blocking call (see `delivery`).
    pub fn delivery_queue_peak_bytes(&self) -> usize {
        self.inner.delivery.peak_bytes()
    }

    /// The DISCONNECT the server sent to end the most recent connection
    /// (None if that connection ended otherwise, or none ended yet).
    pub fn last_disconnect(&self) -> Option<Disconnect> {
        lock(&self.inner.last_disconnect).clone()
    }

    pub fn is_connected(&self) -> bool {
        self.inner.current().is_some()
    }

    /// The protocol the live connection speaks; None when not connected.
    pub fn protocol_version(&self) -> Option<packet::ProtocolVersion> {
        self.inner.current().map(|c| c.version)
    }

    /// The protocol of the live connection, else the one the next
    /// connection speaks (v5 before a first `MQTT_PROTOCOL_AUTO` connect):
    /// what the v5-only refusals go by.
    pub fn version_in_use(&self) -> packet::ProtocolVersion {
        self.inner.version()
    }

    /// Whether the client is disconnected and getting a connection back
    /// (the reconnection task waits or tries). False once a reconnect has
    /// installed the new connection, even while the task is still
    /// finishing.
    pub fn is_reconnecting(&self) -> bool {
        !self.is_connected() && self.inner.link() == link::Link::Reconnecting
    }

    /// How many publishes wait in the offline queue now. Drops the expired
    /// ones first, so that the counters read next are up to date.
    pub fn offline_queue_len(&self) -> usize {
        self.inner.prune_offline();
        lock(&self.inner.offline).len()
    }

    /// Connects to `url` and waits for CONNACK (at most the connect timeout).
    /// When that attempt fails, tries the further servers of the options
    /// (`servers`) in turn, each within the connect timeout, and returns
    /// the first success or the last failure. Stops a running
    /// reconnection first: the caller takes over. When every attempt
    /// fails and the options ask for it (`connect_retry` with automatic
    /// reconnection), the client goes on trying in the background, as
    /// after a lost connection, and the error is returned.
    pub async fn connect(&self, url: &str) -> Result<ConnectInfo, Error> {
        let url = BrokerUrl::parse(url).map_err(Error::InvalidArgument)?;
        self.not_from_pre_connect("connect")?;
        // Before the lock, which an attempt in progress holds, and after it,
        // for a task started in between.
        self.inner.stop_reconnect();
        let _serial = self.inner.connecting.lock().await;
        let (_, current) = self.inner.stop_reconnect_settled();
        if self.inner.delivery.is_closed() {
            return Err(Error::Closed);
        }
        if current.is_some() {
            return Err(Error::AlreadyConnected);
        }
        *lock(&self.inner.given_url) = Some(url);
        // The application chose where to go: a reconnection after this
        // (with `connect_retry`) follows its order, not an older server.
        *lock(&self.inner.last_url) = None;
        let start = connection::Start::Application;
        let mut r = Err(Error::Internal("a round without servers"));
        for (number, target) in (1u32..).zip(self.inner.round(None)) {
            let shown = target.url.shown();
            r = attempt::attempt(&self.inner, target, start, 0, number).await;
            match &r {
                Ok(_) | Err(Error::Closed) => break,
                Err(e) => self.inner.log(
                    Level::Warning,
                    format_args!("connect to {shown} failed: {e}"),
                ),
            }
        }
        if let Err(e) = &r {
            self.inner.connect_failed(e);
        }
        r
    }

    /// Subscribes to one or more filters; returns the SUBACK (one reason
    /// code per filter: the granted QoS or a failure). While the client
    /// reconnects, waits for the next connection; a SUBSCRIBE whose
    /// connection is lost before its SUBACK goes again on the next one;
    /// all within the operation timeout. The granted filters are recorded
    /// for a re-subscription after a lost session (see `resubscribe`).
    pub async fn subscribe(
        &self,
        filters: Vec<SubscribeFilter>,
        properties: Properties,
    ) -> Result<SubAck, Error> {
        if filters.is_empty() {
            return Err(Error::InvalidArgument("no topic filter given".into()));
        }
        for f in &filters {
            check_topic_filter(&f.filter)?;
        }
        let version = self.inner.version();
        v311::check_properties(version, &properties, "SUBSCRIBE")?;
        v311::check_filters(version, &filters)?;
        if let Some(id) = properties.first_not_allowed(
            packet::PropertyContext::Packet(packet::PacketType::Subscribe),
            packet::Direction::ToServer,
        ) {
            return Err(not_allowed(id, "SUBSCRIBE"));
        }
        if properties
            .iter()
            .filter(|p| p.id() == PropertyId::SubscriptionIdentifier)
            .count()
            > 1
        {
            return Err(Error::InvalidArgument(
                "property Subscription Identifier (0x0B) may appear only once in SUBSCRIBE".into(),
            ));
        }
        let build = |packet_id| {
            Packet::Subscribe(Subscribe {
                packet_id,
                properties: properties.clone(),
                filters: filters.clone(),
            })
        };
        let ack = match self
            .inner
            .request(
                PendingKind::Subscribe {
                    filters: filters.len(),
                },
                build,
                "SUBACK",
            )
            .await?
        {
            Reply::SubAck(s) => s,
            _ => return Err(Error::Internal("wrong reply kind")),
        };
        check_count("SUBACK", ack.reasons.len(), filters.len())?;
        if self.inner.options.resubscribe {
            lock(&self.inner.subscriptions).granted(&filters, &properties, &ack);
        }
        Ok(ack)
    }

    /// Unsubscribes from one or more filters; returns the UNSUBACK. Rides
    /// out a reconnect as `subscribe` does.
    pub async fn unsubscribe(
        &self,
        filters: Vec<packet::MqttStr>,
        properties: Properties,
    ) -> Result<UnsubAck, Error> {
        if filters.is_empty() {
            return Err(Error::InvalidArgument("no topic filter given".into()));
        }
        for f in &filters {
            check_topic_filter(f)?;
        }
        v311::check_properties(self.inner.version(), &properties, "UNSUBSCRIBE")?;
        if let Some(id) = properties.first_not_allowed(
            packet::PropertyContext::Packet(packet::PacketType::Unsubscribe),
            packet::Direction::ToServer,
        ) {
            return Err(not_allowed(id, "UNSUBSCRIBE"));
        }
        let build = |packet_id| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties: properties.clone(),
                filters: filters.clone(),
            })
        };
        let mut ack = match self
            .inner
            .request(
                PendingKind::Unsubscribe {
                    filters: filters.len(),
                },
                build,
                "UNSUBACK",
            )
            .await?
        {
            Reply::UnsubAck(u) => u,
            _ => return Err(Error::Internal("wrong reply kind")),
        };
        if ack.reasons.is_empty() {
            // A 3.1.1 UNSUBACK (a v5 one always has reason codes): it
            // acknowledges every filter, without saying more.
            ack.reasons = vec![ReasonCode::Success; filters.len()];
        }
        check_count("UNSUBACK", ack.reasons.len(), filters.len())?;
        lock(&self.inner.subscriptions).removed(&filters, &ack.reasons);
        Ok(ack)
    }

    /// Sends DISCONNECT with `reason`, after the acknowledgements of the
    /// messages whose callbacks returned (in the same write, see `acks`),
    /// and closes the connection. The connection callback then reports the disconnect with that reason.
    /// While reconnecting, stops the reconnection instead and returns Ok
    /// (the loss was reported already; no event follows); the calls that
    /// waited for it return `ConnectionLost` (their messages stay queued or
    /// in the session, for the next connection). Waits to write
    /// DISCONNECT (behind a write in progress) at most the keep-alive
    /// interval or the connect timeout, whichever is shorter; then closes
    /// the connection without it and returns `Timeout`. A `connect` under
    /// way on another task is waited for first (its attempt, signer
    /// included); what it connected is then disconnected.
    pub async fn disconnect(
        &self,
        reason: ReasonCode,
        properties: Properties,
    ) -> Result<(), Error> {
        if !reason.allowed_in(packet::PacketType::Disconnect) {
            return Err(Error::InvalidArgument(format!(
                "0x{:02X} ({}) is not a DISCONNECT reason code",
                reason as u8,
                reason.description()
            )));
        }
        if let Some(id) = properties.first_not_allowed(
            packet::PropertyContext::Packet(packet::PacketType::Disconnect),
            packet::Direction::ToServer,
        ) {
            return Err(not_allowed(id, "DISCONNECT"));
        }
        let version = self.inner.version();
        v311::check_properties(version, &properties, "DISCONNECT")?;
        if version == packet::ProtocolVersion::V311 && reason != ReasonCode::Success {
            return Err(v311::refuse(&format!(
                "a DISCONNECT reason code (0x{:02X})",
                reason as u8
            )));
        }
        self.not_from_pre_connect("disconnect")?;
        let stopped = self.inner.stop_reconnect();
        let _serial = self.inner.connecting.lock().await;
        let (again, current) = self.inner.stop_reconnect_settled();
        let stopped = again || stopped;
        let Some(conn) = current else {
            let reconnecting = self.inner.link() == link::Link::Reconnecting;
            self.inner.stop_reconnecting();
            return if stopped || reconnecting {
                Ok(())
            } else {
                Err(Error::NotConnected)
            };
        };
        conn.check_disconnect(&properties)?;
        let mut buf = BytesMut::new();
        packet::encode(
            &Packet::Disconnect(Disconnect { reason, properties }),
            &mut buf,
        )?;
        conn.check_size(buf.len())?;
        *lock(&conn.closing) = Some(reason);
        // The acknowledgements of messages whose callbacks returned go
        // out first, in the same write (see `acks`).
        let write = self.inner.write_disconnect(&conn, buf.freeze());
        // A write in progress (or the DISCONNECT itself) blocked on a
        // silent broker must not hold us for ever: after the bound the
        // connection is closed without DISCONNECT.
        let written = tokio::time::timeout(disconnect_bound(&self.inner.options, &conn), write)
            .await
            .unwrap_or(Err(Error::Timeout(
                "room to write DISCONNECT (the connection was closed without it)",
            )));
        self.inner
            .connection_lost(&conn, DisconnectCause::Client(reason));
        // The reader may have seen the socket close before `closing` was
        // set, and started a reconnection (blocked on our lock until now).
        self.inner.stop_reconnect();
        self.inner.stop_reconnecting();
        written
    }

    /// Ends everything without DISCONNECT (the server will publish the
    /// will): aborts the tasks, closes the socket, drops the events not
    /// yet delivered, makes waiting calls (and calls raced by
    /// `unless_closed`) return, and stops callbacks: none starts any more,
    /// and this returns only once no callback of this client runs on
    /// another thread (auth callbacks included). Called from inside a
    /// callback, it does not wait for that one.
    pub fn close(&self) {
        self.inner.delivery.close();
        self.inner.gate.shut();
        // After the delivery is closed: `start_reconnect` checks it under
        // the same lock, so no task starts after this one is stopped.
        self.inner.stop_reconnect();
        // The connection goes first: a callback blocked on the broker
        // (waiting for an ack or a Receive Maximum slot) then returns.
        if let Some(conn) = self.inner.current() {
            self.inner.connection_lost(&conn, DisconnectCause::Closed);
        }
        self.inner.set_link(link::Link::Closed);
        // The delivery is closed: the completions are dropped unrun.
        drop(lock(&self.inner.session).fail_waiters());
        lock(&self.inner.offline).clear();
        self.inner.closed.notify_waiters();
        // The client's copies of its secrets go now; the tasks stopped
        // above may hold the client a moment longer.
        *lock(&self.inner.secrets) = secrets::Secrets::default();
        self.inner.gate.wait_for_other_threads();
        // Last: what the session recorded until now reaches the disk, and
        // the lock is released for the next client of this id.
        if let Some(store) = &self.inner.store {
            store.shutdown();
        }
    }
}

/// How long `disconnect` waits to write DISCONNECT: the keep-alive
/// interval (by then a silent broker is nearly declared lost anyway) or the
/// connect timeout, whichever is shorter. The connect timeout alone when
/// keep-alive is off, and it caps a huge interval (mosquitto answers a
/// keep-alive of 0 with a Server Keep Alive of 65535 s).
fn disconnect_bound(options: &ClientOptions, conn: &Connection) -> std::time::Duration {
    if conn.keep_alive.is_zero() {
        options.connect_timeout
    } else {
        conn.keep_alive.min(options.connect_timeout)
    }
}

/// A topic for PUBLISH: 1 to 65535 bytes, without wildcards.
fn check_topic_name(topic: &str) -> Result<(), Error> {
    if topic.len() > u16::MAX as usize {
        return Err(Error::InvalidArgument(format!(
            "topic name is {} bytes long; the maximum is 65535",
            topic.len()
        )));
    }
    if !packet::topic::is_valid_topic_name(topic) {
        return Err(Error::InvalidArgument(format!(
            "invalid topic name '{topic}': it must be non-empty and must not contain the wildcards '+' or '#'"
        )));
    }
    Ok(())
}

/// A topic filter: 1 to 65535 bytes, wildcards only as whole levels.
fn check_topic_filter(filter: &str) -> Result<(), Error> {
    if filter.len() > u16::MAX as usize {
        return Err(Error::InvalidArgument(format!(
            "topic filter is {} bytes long; the maximum is 65535",
            filter.len()
        )));
    }
    if !packet::topic::is_valid_topic_filter(filter) {
        return Err(Error::InvalidArgument(format!(
            "invalid topic filter '{filter}': '#' must be the whole last level and '+' a whole level"
        )));
    }
    Ok(())
}

/// A SUBACK or UNSUBACK has one reason code per filter (both versions);
/// with another count no code can be matched to its filter, so none is
/// believed (nor recorded for re-subscription).
fn check_count(ack: &str, codes: usize, filters: usize) -> Result<(), Error> {
    if codes == filters {
        return Ok(());
    }
    Err(Error::Protocol(format!(
        "the {ack} has {codes} reason codes for {filters} filters"
    )))
}

fn not_allowed(id: PropertyId, packet: &str) -> Error {
    Error::InvalidArgument(format!(
        "property {} (0x{:02X}) is not allowed in {packet} sent by a client",
        id.name(),
        id as u8
    ))
}

impl Inner {
    /// Returns once `close` has been called.
    async fn wait_closed(&self) {
        loop {
            let notified = self.closed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.delivery.is_closed() {
                return;
            }
            notified.await;
        }
    }

    fn current(&self) -> Option<Arc<Connection>> {
        self.connection
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reserves a packet id for `pending`, unless the connection is gone.
    /// Done under the session lock that `connection_lost` also takes, so a
    /// waiter is either failed by it or never registered.
    fn register(&self, conn: &Connection, pending: Pending) -> Result<u16, Error> {
        let mut s = lock(&self.session);
        if !conn.is_alive() {
            return Err(Error::ConnectionLost);
        }
        s.insert(pending)
    }

    /// Completes the request registered under `id` with `reply` (see
    /// `Session::complete`). A completion is queued under the session
    /// lock, which keeps it before a DISCONNECTED event that follows.
    fn complete(self: &Arc<Self>, id: u16, reply: Reply) {
        let mut s = lock(&self.session);
        if let Some((f, r)) = s.complete(id, reply) {
            self.delivery.push(self, Event::Completion(f, r));
        }
    }

    /// Sends the SUBSCRIBE or UNSUBSCRIBE that `build` makes with a fresh
    /// packet id and waits for its acknowledgement: on the next connection
    /// while the client reconnects, again on the next one when the
    /// connection is lost before the acknowledgement; all within the
    /// operation timeout.
    async fn request(
        self: &Arc<Self>,
        kind: PendingKind,
        build: impl Fn(u16) -> Packet,
        what: &'static str,
    ) -> Result<Reply, Error> {
        let call = async {
            loop {
                // A call that waited for a reconnection which was then
                // stopped reports the loss, as one waiting for its ack.
                let waits = self.link() == link::Link::Reconnecting;
                let conn = match self.connection_or_wait().await {
                    Err(Error::NotConnected) if waits => return Err(Error::ConnectionLost),
                    r => r?,
                };
                match self.request_on(&conn, kind.clone(), &build, what).await {
                    Err(Error::ConnectionLost) if self.may_retry() => continue,
                    r => return r,
                }
            }
        };
        self.within_operation_timeout(what, call).await
    }

    /// `request` on `conn` only, without a timeout.
    async fn request_on(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        kind: PendingKind,
        build: impl Fn(u16) -> Packet,
        what: &'static str,
    ) -> Result<Reply, Error> {
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            kind,
            waiter: Some(Waiter::Call(tx)),
            permit: None,
        };
        let id = self.register(conn, pending)?;
        let bytes = self.encode_registered(conn, id, &build(id))?;
        self.send(conn, bytes.freeze()).await?;
        let _ = what;
        rx.await.map_err(|_| Error::ConnectionLost)?
    }

    /// Runs `call` for at most the operation timeout (if one is set);
    /// `what` names what it waited for in the `Timeout` error.
    async fn within_operation_timeout<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let Some(t) = self.options.operation_timeout else {
            return call.await;
        };
        // One poll before the timer: a call that completes at once (a QoS
        // 0 publish written straight away) reads no clock and arms no
        // timer. The timer then starts microseconds late, which the
        // timeout (seconds) does not notice.
        let mut call = std::pin::pin!(call);
        let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
        if let Poll::Ready(r) = first {
            return r;
        }
        tokio::time::timeout(t, call)
            .await
            .unwrap_or(Err(Error::Timeout(what)))
    }

    /// Encodes a request registered under `id`, checking it against the
    /// server's Maximum Packet Size; on failure the id is released.
    fn encode_registered(
        &self,
        conn: &Connection,
        id: u16,
        packet: &Packet,
    ) -> Result<BytesMut, Error> {
        let mut buf = BytesMut::new();
        let r = packet::encode(packet, &mut buf)
            .map_err(Error::from)
            .and_then(|_| conn.check_size(buf.len()));
        if let Err(e) = r {
            lock(&self.session).pending.remove(&id);
            return Err(e);
        }
        Ok(buf)
    }

    /// Ends `conn` once: stops its tasks, closes the socket, reports the
    /// disconnect and, when the options and the cause allow it, starts the
    /// reconnection. Safe to call from any context, including the
    /// connection's own tasks.
    ///
    /// The calls waiting on it: when the client reconnects, the publishes
    /// keep their waiters for the outcome after the resend, and the others
    /// fail so that they go again on the next connection
    /// (`Session::suspend`); otherwise they all fail with `ConnectionLost`.
    ///
    /// Order matters: the link state leaves `Up`, the slot is cleared,
    /// then the connection marked dead, then the waiting calls handled, so
    /// that a call that fails with `ConnectionLost` (from its waiter, or
    /// from seeing the connection dead) returns to a client that already
    /// says it is disconnected (and whether it reconnects) and accepts
    /// `connect`. All under the session lock (taken before the connection
    /// slot's lock, as everywhere).
    ///
    /// The whole of it, up to the DISCONNECTED event queued, under the
    /// `events` lock: a second caller for the same connection (the reader
    /// that saw the socket close, racing `disconnect`) waits there until
    /// this one has queued the event, so `disconnect` never returns before
    /// it is queued; and a connection made meanwhile (by a `connect` that
    /// found the slot empty) queues its CONNECTED after it.
    fn connection_lost(self: &Arc<Self>, conn: &Arc<Connection>, cause: DisconnectCause) {
        let cause = match *lock(&conn.closing) {
            Some(reason) => DisconnectCause::Client(reason),
            // Kept as the last DISCONNECT and queued for the callback: a
            // view would keep the whole read buffer alive (see
            // `MqttStr::detached`).
            None => match cause {
                DisconnectCause::Server(d) => DisconnectCause::Server(Disconnect {
                    reason: d.reason,
                    properties: d.properties.detached(),
                }),
                other => other,
            },
        };
        let redirect = self.disconnect_redirect(&cause);
        // Where the reconnection goes first (the reconnection itself
        // makes rounds over all the servers, see `attempt`).
        let url = self
            .options
            .reconnect
            .filter(|_| redirect.is_some() || reconnect::wanted(&cause))
            .and_then(|_| redirect.or_else(|| lock(&self.last_url).clone()));
        let events = lock(&self.events);
        {
            let mut s = lock(&self.session);
            if !conn.is_alive() {
                return;
            }
            self.set_link(match url {
                Some(_) => link::Link::Reconnecting,
                None => link::Link::Down,
            });
            self.clear_slot(conn);
            if !conn.mark_dead() {
                return;
            }
            self.log_disconnect(&cause);
            // Before the waiters fail, so they can read it.
            *lock(&self.last_disconnect) = match &cause {
                DisconnectCause::Server(d) => Some(d.clone()),
                _ => None,
            };
            // Queued under the session lock, so they come before the
            // DISCONNECTED event, and after any completion the reader
            // queued (it queues under this lock too).
            let failed = match url {
                Some(_) => s.suspend(),
                None => s.fail_waiters(),
            };
            self.delivery.push_finished(self, failed);
        }
        if url.is_none() {
            self.requests.fail_all();
            let failed = lock(&self.offline).fail_waiters();
            self.delivery.push_finished(self, failed);
        }
        conn.shutdown();
        // Started before the event is queued, so that a callback handling
        // it can stop the reconnection (with `disconnect` or `connect`),
        // and let go after, so that its CONNECTED comes after this event.
        let go = url.and_then(|url| self.start_reconnect(Some(url)));
        self.delivery.push(
            self,
            Event::Connection(ConnectionEvent::Disconnected(cause)),
        );
        drop(events);
        if let Some(go) = go {
            let _ = go.send(());
        }
    }

    /// Logs why a connection ended: at Info when we ended it, Error for
    /// a protocol error (with the reason code we sent), Warning otherwise.
    fn log_disconnect(&self, cause: &DisconnectCause) {
        let from = lock(&self.last_url)
            .as_ref()
            .map_or_else(|| "the server".to_string(), |t| t.url.shown());
        let code = |r: ReasonCode| format!("0x{:02X} ({})", r as u8, r.description());
        let (level, why) = match cause {
            DisconnectCause::Client(r) => (Level::Info, format!("we sent DISCONNECT {}", code(*r))),
            DisconnectCause::Closed if self.delivery.is_closed() => {
                (Level::Info, "the client was closed".to_string())
            }
            DisconnectCause::Closed => (
                Level::Warning,
                "the server closed the connection without DISCONNECT".to_string(),
            ),
            DisconnectCause::Server(d) => {
                let mut why = format!("the server sent DISCONNECT {}", code(d.reason));
                if let Some(s) = reason_string(&d.properties) {
                    why.push_str(": ");
                    why.push_str(&s);
                }
                (Level::Warning, why)
            }
            DisconnectCause::Io(e) => (Level::Warning, format!("network error: {e}")),
            DisconnectCause::KeepAliveTimeout => (
                Level::Warning,
                "keep-alive timeout: the server stayed silent past the keep-alive interval"
                    .to_string(),
            ),
            DisconnectCause::Protocol(r, why) => (
                Level::Error,
                format!(
                    "protocol error of the server: {why}; we sent DISCONNECT {}",
                    code(*r)
                ),
            ),
        };
        self.log(level, format_args!("connection to {from} ended: {why}"));
    }

    /// After a failed `connect`: with `connect_retry` (and automatic
    /// reconnection) and an error worth retrying, the reconnection task
    /// goes on trying the servers; otherwise the client gives up (see
    /// `stop_reconnecting`).
    fn connect_failed(self: &Arc<Self>, e: &Error) {
        let retry = self.options.connect_retry
            && self.options.reconnect.is_some()
            && !matches!(
                e,
                Error::InvalidArgument(_)
                    | Error::AlreadyConnected
                    | Error::Closed
                    | Error::AuthAborted(_)
            );
        if self.current().is_some() {
            return;
        }
        if !retry {
            self.stop_reconnecting();
            return;
        }
        self.set_link(link::Link::Reconnecting);
        if let Some(go) = self.start_reconnect(None) {
            let _ = go.send(());
        }
    }

    /// Where a server DISCONNECT with a Server Reference sends the client,
    /// when the options allow it to go there (a reconnection, starting
    /// a chain of redirections with this hop, see `redirect`); a refusal
    /// is logged.
    fn disconnect_redirect(&self, cause: &DisconnectCause) -> Option<redirect::Target> {
        let DisconnectCause::Server(d) = cause else {
            return None;
        };
        let reference = redirect::reference(d.reason, &d.properties)?;
        let from = lock(&self.last_url).clone()?.url;
        let shown = crate::redact::url(&reference);
        let followed = if self.options.reconnect.is_none() && self.options.follow_redirects > 0 {
            Err("it needs automatic reconnection (mqtt_options_set_auto_reconnect)".into())
        } else {
            redirect::follow(&self.options, &from, &reference, 0)
        };
        match followed {
            Ok(url) => {
                self.log(Level::Info, format_args!(
                    "{} sent DISCONNECT 0x{:02X} with Server Reference '{shown}': following it to {}",
                    from.shown(),
                    d.reason as u8,
                    url.shown()
                ));
                Some(redirect::Target {
                    url,
                    redirected: true,
                })
            }
            Err(why) => {
                self.log(
                    Level::Warning,
                    format_args!(
                        "{} sent DISCONNECT 0x{:02X} with Server Reference '{shown}'; \
                     redirect not followed: {why}",
                        from.shown(),
                        d.reason as u8
                    ),
                );
                None
            }
        }
    }

    /// The protocol of the live connection, else the one the next
    /// connection speaks (v5 before a first `MQTT_PROTOCOL_AUTO` connect).
    fn version(&self) -> packet::ProtocolVersion {
        match self.current() {
            Some(c) => c.version,
            None => *lock(&self.protocol),
        }
    }

    /// `stop_reconnect` once a `connection_lost` in progress has finished
    /// (queued its DISCONNECTED and started its reconnection), and the
    /// connection in place then. So a reconnection started by a connection
    /// the reader was ending meanwhile is stopped too, and None means that
    /// the last connection's loss is reported: the caller (`connect`,
    /// `disconnect`, under the `connecting` lock) leaves no reconnection
    /// behind and reports nothing before that loss.
    fn stop_reconnect_settled(&self) -> (bool, Option<Arc<Connection>>) {
        let _events = lock(&self.events);
        (self.stop_reconnect(), self.current())
    }

    /// Empties the connection slot if it still holds `conn`.
    fn clear_slot(&self, conn: &Arc<Connection>) {
        let mut cur = self.connection.write().unwrap_or_else(|e| e.into_inner());
        if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            *cur = None;
        }
    }

    /// Starts the reconnection task, which goes to `first` first (see
    /// `reconnect::run`), when the options ask for automatic
    /// reconnection. The task waits for the returned sender before
    /// anything else.
    fn start_reconnect(
        self: &Arc<Self>,
        first: Option<redirect::Target>,
    ) -> Option<oneshot::Sender<()>> {
        let policy = self.options.reconnect?;
        let mut slot = lock(&self.reconnector);
        // Checked under the slot lock, which `close` takes after closing
        // the delivery: a client being freed never gets a new task.
        if self.delivery.is_closed() {
            return None;
        }
        // A task still in the slot is the one that made the lost
        // connection (finished, or finishing): its job is done.
        if let Some(old) = slot.take() {
            old.abort();
        }
        let (go, wait) = oneshot::channel();
        let task = self
            .runtime
            .spawn(reconnect::run(self.clone(), first, policy, wait));
        *slot = Some(task.abort_handle());
        Some(go)
    }

    /// Whether the task calling this is the reconnection task in the slot,
    /// i.e. was not stopped (see `reconnect`).
    fn is_reconnector(&self) -> bool {
        let me = tokio::task::try_id();
        me.is_some() && lock(&self.reconnector).as_ref().map(|h| h.id()) == me
    }

    /// Stops the reconnection task; true when one was running.
    fn stop_reconnect(&self) -> bool {
        // A connection made by hand starts the back-off afresh.
        *lock(&self.reconnected) = None;
        match lock(&self.reconnector).take() {
            Some(h) => {
                let running = !h.is_finished();
                h.abort();
                running
            }
            None => false,
        }
    }
}

/// The reason string of a set of properties, for error messages: the
/// server's text, with control characters escaped (see `redact::peer`).
pub fn reason_string(props: &Properties) -> Option<String> {
    match props.get(PropertyId::ReasonString) {
        Some(Property::ReasonString(s)) => Some(crate::redact::peer(s.as_str())),
        _ => None,
    }
}

/// Builds the CONNECT packet from the options and secrets, with
/// `client_id`: the configured one, or the one the server assigned at an
/// earlier connect.
fn connect_packet(
    o: &ClientOptions,
    secrets: &secrets::Secrets,
    client_id: packet::MqttStr,
) -> Result<Connect, Error> {
    let mut properties = secrets.connect_properties.clone();
    if o.session_expiry > 0 {
        properties.set(Property::SessionExpiryInterval(o.session_expiry));
    }
    if o.effective_max_packet_size() < PROTOCOL_MAX_PACKET_SIZE {
        properties.set(Property::MaximumPacketSize(o.effective_max_packet_size()));
    }
    if o.receive_maximum() < u16::MAX {
        properties.set(Property::ReceiveMaximum(o.receive_maximum()));
    }
    if let Some(d) = &secrets.auth_data {
        properties = secrets::with_auth_data(&properties, d.expose(), packet::PacketType::Connect)?;
    }
    Ok(Connect {
        clean_start: o.clean_start,
        keep_alive: o.keep_alive,
        properties,
        client_id,
        will: o.will.clone(),
        username: secrets.username.clone(),
        password: secrets
            .password
            .as_ref()
            .map(|p| secrets::secret_bytes(p.expose())),
    })
}
