//! The packet reader task: reads packets until the connection ends and
//! hands each to [`handle`]. Acknowledgements complete the waiting calls;
//! messages go to the delivery queue.

use super::acks;
use super::auth::AuthEvent;
use super::delivery::{Entry, Room};
use super::logging::Level;
use super::session::{AckFit, InboundAck, PubAckKind, Receipt, Reply};
use super::{lock, Connection, DisconnectCause, Event, Inner};
use crate::packet::{
    self, DecodeError, Disconnect, MqttStr, Packet, Properties, Property, PropertyId, PubResp,
    Publish, QoS, ReasonCode,
};
use crate::transport::{PacketReader, ReadError};
use bytes::BytesMut;
use std::collections::HashMap;
use std::sync::Arc;

pub(super) async fn run(inner: Arc<Inner>, conn: Arc<Connection>, mut reader: PacketReader) {
    let mut state = ReaderState {
        aliases: HashMap::new(),
        alias_max: inner.options.topic_alias_maximum(),
        receive_max: inner.options.receive_maximum(),
        logged_excess: false,
        logged_drop: false,
        version: conn.version,
    };
    let cause = loop {
        match reader.read_packet().await {
            Ok(p) => {
                if let Err(cause) = handle(&inner, &conn, &mut state, p).await {
                    break cause;
                }
            }
            Err(ReadError::Closed) => break DisconnectCause::Closed,
            Err(ReadError::Io(e)) => break DisconnectCause::Io(e.to_string()),
            Err(ReadError::Decode(e)) => {
                let reason = match e {
                    // Our limit on properties guards memory as the size does.
                    DecodeError::PacketTooLarge { .. } | DecodeError::TooManyProperties { .. } => {
                        ReasonCode::PacketTooLarge
                    }
                    // A property on a packet that does not take it is
                    // Malformed (MQTT 5 section 2.2.2.2), a repeated one a
                    // Protocol Error (stated per property): `_` below.
                    DecodeError::ProtocolError(_) | DecodeError::DuplicateProperty(_) => {
                        ReasonCode::ProtocolError
                    }
                    _ => ReasonCode::MalformedPacket,
                };
                break protocol_error(&inner, &conn, reason, e.to_string()).await;
            }
        }
    };
    inner.connection_lost(&conn, cause);
}

struct ReaderState {
    /// Inbound topic aliases the server set on this connection.
    aliases: HashMap<u16, MqttStr>,
    /// The Topic Alias Maximum we advertised.
    alias_max: u16,
    /// The Receive Maximum we advertised.
    receive_max: u16,
    /// Whether this connection's first excess was logged already.
    logged_excess: bool,
    /// Whether this connection's first dropped QoS 0 message was logged.
    logged_drop: bool,
    version: packet::ProtocolVersion,
}

/// Accounts for a new inbound QoS 1/2 PUBLISH, `inflight` counting it
/// (see [`flow`]); an error is the strict reaction to the server exceeding
/// our Receive Maximum.
fn account_inbound(inner: &Inner, state: &mut ReaderState, inflight: usize) -> Result<(), String> {
    if !inner.stats.inbound(inflight, state.receive_max) {
        return Ok(());
    }
    let why = format!(
        "the server has {inflight} QoS 1/2 messages in flight to us, above our Receive Maximum {}",
        state.receive_max
    );
    // 3.1.1 has no Receive Maximum to tell the server: not strict there.
    if inner.options.strict_receive_maximum && state.version == packet::ProtocolVersion::V5 {
        return Err(why);
    }
    if !state.logged_excess {
        state.logged_excess = true;
        inner.log(
            Level::Warning,
            format_args!("{why}; carrying on (counted; logged once per connection)"),
        );
    }
    Ok(())
}

/// Sends DISCONNECT with `reason` (best effort) and gives the cause.
async fn protocol_error(
    inner: &Arc<Inner>,
    conn: &Arc<Connection>,
    reason: ReasonCode,
    why: String,
) -> DisconnectCause {
    let mut b = BytesMut::new();
    let d = Packet::Disconnect(Disconnect {
        reason,
        properties: Properties::new(),
    });
    if packet::encode(&d, &mut b).is_ok() {
        // After the acknowledgements of messages whose callbacks returned.
        let _ = inner.write_disconnect(conn, b.freeze()).await;
    }
    DisconnectCause::Protocol(reason, why)
}

async fn ack(inner: &Arc<Inner>, conn: &Arc<Connection>, p: Packet) {
    let mut b = BytesMut::with_capacity(4);
    if packet::encode(&p, &mut b).is_ok() {
        // A failed write ends the connection; the read loop then sees it.
        let _ = inner.send(conn, b.freeze()).await;
    }
}

fn resp(packet_id: u16, reason: ReasonCode) -> PubResp {
    PubResp {
        packet_id,
        reason,
        properties: Properties::new(),
    }
}

async fn handle(
    inner: &Arc<Inner>,
    conn: &Arc<Connection>,
    state: &mut ReaderState,
    p: Packet,
) -> Result<(), DisconnectCause> {
    match p {
        Packet::Publish(mut publish) => {
            if let Err((reason, why)) = resolve_alias(state, &mut publish) {
                return Err(protocol_error(inner, conn, reason, why).await);
            }
            if conn.version == crate::packet::ProtocolVersion::V311 {
                let suffix = inner.options.reply_suffix.as_deref();
                super::request::mark_response_topic(suffix, &mut publish);
            }
            receive(inner, conn, state, publish).await?;
        }
        Packet::PubAck(r) => {
            check_ack(inner, conn, r.packet_id, PubAckKind::PubAck).await?;
            finish_publish(inner, conn, r).await;
        }
        Packet::PubComp(r) => {
            check_ack(inner, conn, r.packet_id, PubAckKind::PubComp).await?;
            finish_publish(inner, conn, r).await;
        }
        Packet::PubRec(r) => {
            let id = r.packet_id;
            check_ack(inner, conn, id, PubAckKind::PubRec).await?;
            if r.reason.is_error() {
                finish_publish(inner, conn, r).await;
            } else {
                let (known, ticket) = {
                    let mut s = lock(&inner.session);
                    (s.mark_released(id), s.ticket())
                };
                let reason = if known {
                    ReasonCode::Success
                } else {
                    ReasonCode::PacketIdentifierNotFound
                };
                // Released on disk before PUBREL: once the server has it,
                // a restarted client must send PUBREL, not the PUBLISH,
                // which the server could take for a new message.
                durable(inner, ticket).await;
                ack(inner, conn, Packet::PubRel(resp(id, reason))).await;
            }
        }
        Packet::PubRel(r) => {
            let (known, ticket) = {
                let mut s = lock(&inner.session);
                (s.release(r.packet_id), s.ticket())
            };
            let reason = if known {
                ReasonCode::Success
            } else {
                ReasonCode::PacketIdentifierNotFound
            };
            // Released on disk before PUBCOMP: after it the server may
            // reuse the id for a new message, which a restarted client
            // still holding the old one would acknowledge unseen.
            durable(inner, ticket).await;
            ack(inner, conn, Packet::PubComp(resp(r.packet_id, reason))).await;
        }
        Packet::SubAck(s) => {
            check_reason_count(inner, conn, s.packet_id, s.reasons.len(), true).await?;
            inner.complete(s.packet_id, Reply::SubAck(s));
        }
        Packet::UnsubAck(u) => {
            // A 3.1.1 UNSUBACK has no reason codes: it answers them all.
            if conn.version == crate::packet::ProtocolVersion::V5 {
                check_reason_count(inner, conn, u.packet_id, u.reasons.len(), false).await?;
            }
            inner.complete(u.packet_id, Reply::UnsubAck(u));
        }
        Packet::PingResp => {
            conn.pingresps
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            conn.pingresp_notify.notify_waiters();
        }
        Packet::Disconnect(d) => {
            if let Some(w) = lock(&conn.auth_waiter).take() {
                let _ = w.try_send(AuthEvent::Disconnect(d.clone()));
            }
            return Err(DisconnectCause::Server(d));
        }
        Packet::Auth(a) => {
            if let Err(why) = forward_auth(conn, a) {
                return Err(protocol_error(inner, conn, ReasonCode::ProtocolError, why).await);
            }
        }
        other => {
            let why = format!("a server must not send {:?}", other.packet_type());
            return Err(protocol_error(inner, conn, ReasonCode::ProtocolError, why).await);
        }
    }
    Ok(())
}

/// Hands an AUTH to the re-authentication waiting for it; never blocks.
/// The server sends one AUTH and waits for our answer: one still unread
/// when the next comes is the server not waiting, which would otherwise
/// queue AUTH packets without bound while the handler thinks.
fn forward_auth(conn: &Connection, a: packet::Auth) -> Result<(), String> {
    let guard = lock(&conn.auth_waiter);
    let Some(w) = &*guard else {
        return Err("AUTH while no re-authentication is in progress".into());
    };
    if w.capacity() < w.max_capacity() {
        return Err("AUTH before we answered the previous one".into());
    }
    w.try_send(AuthEvent::Auth(a))
        .map_err(|_| "AUTH while no re-authentication is in progress".into())
}

/// Checks an acknowledgement of an outgoing publish against the QoS and
/// state of the publish it names (see `Session::ack_fit`). The wrong kind
/// is a protocol error: that publish fails with it (see `Session::blame`),
/// never reported delivered, its entry left as it was (for a resend on
/// resume), and the connection ends with DISCONNECT 0x82. An unknown
/// packet id passes: the caller's handling of it stays as it was
/// (ignored, or PUBREL 0x92 for a PUBREC).
async fn check_ack(
    inner: &Arc<Inner>,
    conn: &Arc<Connection>,
    id: u16,
    ack: PubAckKind,
) -> Result<(), DisconnectCause> {
    let why = {
        let mut s = lock(&inner.session);
        let AckFit::Wrong(why) = s.ack_fit(id, ack) else {
            return Ok(());
        };
        // Under the session lock that `connection_lost` takes: alive now,
        // its end fails the waiters after this (see `Session::blame`).
        if conn.is_alive() {
            s.blame(id, why.clone());
        }
        why
    };
    Err(protocol_error(inner, conn, ReasonCode::ProtocolError, why).await)
}

/// Checks that a SUBACK (`subscribe`) or UNSUBACK has one reason code per
/// filter of the request it answers (MQTT-3.8.4-6, MQTT-3.10.4-5). Any
/// other count is a protocol error: the request fails with it (the
/// client cannot tell which filter a code belongs to) and the connection
/// ends with DISCONNECT 0x82, as for an acknowledgement of the wrong kind
/// (see `check_ack`). An unknown packet id passes, ignored later.
async fn check_reason_count(
    inner: &Arc<Inner>,
    conn: &Arc<Connection>,
    id: u16,
    codes: usize,
    subscribe: bool,
) -> Result<(), DisconnectCause> {
    let why = {
        let mut s = lock(&inner.session);
        let filters = match s.request_filters(id, subscribe) {
            Some(n) if n != codes => n,
            _ => return Ok(()),
        };
        let ack = if subscribe { "SUBACK" } else { "UNSUBACK" };
        let why = format!("the {ack} has {codes} reason codes for {filters} filters");
        // As in `check_ack`: the connection's end fails the call with it.
        if conn.is_alive() {
            s.blame(id, why.clone());
        }
        why
    };
    Err(protocol_error(inner, conn, ReasonCode::ProtocolError, why).await)
}

/// Waits until the store (if any) has the records up to `ticket` on
/// disk. A failed write is logged, and the acknowledgement that waited
/// goes out all the same: holding it back would stall the session, and
/// the publishes that failed to be stored have been told.
async fn durable(inner: &Inner, ticket: Option<(Arc<super::persist::Store>, u64)>) {
    if let Some((store, t)) = ticket {
        if let Err(e) = store.commit(t).await {
            inner.log(Level::Error, format_args!("{e}"));
        }
    }
}

/// Completes an outgoing QoS 1/2 publish with its final acknowledgement.
/// An asynchronous publish's completion goes to the delivery queue, so it
/// waits for room there like a message does: a slow callback then holds
/// the publish's Receive Maximum slot, and the publisher waits for a slot
/// (the flow control), instead of completions piling up without bound.
async fn finish_publish(inner: &Arc<Inner>, conn: &Connection, r: PubResp) {
    if lock(&inner.session).has_completion(r.packet_id) {
        wait_for_room(inner, conn, Entry::Other).await;
    }
    inner.complete(r.packet_id, Reply::PubAck(r));
}

/// Handles a received PUBLISH: hands a response to its request, queues
/// anything else for the callback. A QoS 1/2 message is acknowledged after
/// its callback (see `delivery`); a response at once, as the request holds
/// it then.
async fn receive(
    inner: &Arc<Inner>,
    conn: &Arc<Connection>,
    state: &mut ReaderState,
    publish: Publish,
) -> Result<(), DisconnectCause> {
    let (qos, id) = match (publish.qos, publish.packet_id) {
        (QoS::AtMostOnce, _) => return deliver_qos0(inner, conn, state, publish).await,
        (qos, Some(id)) => (qos, id),
        (_, None) => {
            let why = "PUBLISH with QoS > 0 and no packet id".to_string();
            return Err(protocol_error(inner, conn, ReasonCode::ProtocolError, why).await);
        }
    };
    let receipt = lock(&inner.session).receipt(id, qos, publish.dup);
    match receipt {
        Receipt::New => inner.stats.count_received(qos, publish.payload.len()),
        // Its callback is still to come, then its acknowledgement; or the
        // acknowledgement we wrote on this connection answers the resend.
        Receipt::Queued | Receipt::Crossed => return Ok(()),
        Receipt::Delivered => {
            ack(inner, conn, Packet::PubRec(resp(id, ReasonCode::Success))).await;
            return Ok(());
        }
        // Acknowledged while no connection was up: the resend gets it.
        Receipt::Answer(a) => {
            let mut b = BytesMut::with_capacity(4);
            acks::encode_ack(&a, &mut b);
            let _ = inner.send(conn, b.freeze()).await;
            return Ok(());
        }
    }
    // A response goes straight to its waiting request (see `request`),
    // before it could wait for room in the queue; the rest is the
    // callback's.
    let for_callback = inner.requests.take_response(publish);
    // Beyond twice our Receive Maximum the server broke the protocol; only
    // the strict option cuts it off (mosquitto 2.0 goes past it in bursts,
    // see `flow`), otherwise the message is queued within the byte bound.
    if for_callback.is_some() && wait_for_room(inner, conn, Entry::Qos12).await == Room::Exceeded {
        let why = format!(
            "while a callback blocks, the server sent more than twice our Receive Maximum ({}) \
             of QoS 1/2 messages not yet acknowledged",
            state.receive_max
        );
        let reason = ReasonCode::ReceiveMaximumExceeded;
        return Err(protocol_error(inner, conn, reason, why).await);
    }
    let inbound = match register_inbound(inner, conn, state, id, qos, for_callback.is_none()) {
        Ok(Some(a)) => a,
        Ok(None) => return Ok(()),
        Err(why) => {
            let reason = ReasonCode::ReceiveMaximumExceeded;
            return Err(protocol_error(inner, conn, reason, why).await);
        }
    };
    match for_callback {
        Some(p) => inner.delivery.push(inner, Event::Message(p, Some(inbound))),
        None => {
            let mut b = BytesMut::with_capacity(4);
            acks::encode_ack(&inbound, &mut b);
            // A failed write ends the connection; the read loop then sees it.
            let _ = inner.send(conn, b.freeze()).await;
        }
    }
    Ok(())
}

/// Records a new QoS 1/2 message in the session, as queued for its
/// callback or, when it was `handed_over` to a request, as settled (due
/// for its acknowledgement now). None when the connection has ended: its
/// successor may have cleared the session, and the broker resends what
/// this one did not acknowledge. An error is the strict reaction to the
/// server exceeding our Receive Maximum.
fn register_inbound(
    inner: &Inner,
    conn: &Connection,
    state: &mut ReaderState,
    id: u16,
    qos: QoS,
    handed_over: bool,
) -> Result<Option<InboundAck>, String> {
    let mut s = lock(&inner.session);
    if !conn.is_alive() {
        return Ok(None);
    }
    account_inbound(inner, state, s.inbound_in_flight() + 1)?;
    let a = s.queue_inbound(id, qos);
    if handed_over {
        s.settle(&a, true);
    }
    Ok(Some(a))
}

/// Queues a QoS 0 message, waiting while the queue is full, or drops it
/// while a callback blocks and the queue is beyond the allowance (see
/// `delivery`).
async fn deliver_qos0(
    inner: &Arc<Inner>,
    conn: &Arc<Connection>,
    state: &mut ReaderState,
    publish: Publish,
) -> Result<(), DisconnectCause> {
    inner
        .stats
        .count_received(QoS::AtMostOnce, publish.payload.len());
    let Some(publish) = inner.requests.take_response(publish) else {
        return Ok(());
    };
    if wait_for_room(inner, conn, Entry::Qos0).await == Room::Drop {
        inner.stats.count_qos0_dropped();
        if !state.logged_drop {
            state.logged_drop = true;
            inner.log(Level::Warning, format_args!(
                "a QoS 0 message was dropped: the delivery queue is beyond its allowance while a callback waits in a blocking call (counted; logged once per connection)"
            ));
        }
        return Ok(());
    }
    inner.delivery.push(inner, Event::Message(publish, None));
    Ok(())
}

/// Waits until the delivery queue takes an event (see `delivery`). While
/// it waits, the connection knows that reading is paused by our choice, so
/// that the keep-alive does not take it for a silent broker.
async fn wait_for_room(inner: &Arc<Inner>, conn: &Connection, entry: Entry) -> Room {
    match inner.delivery.room(entry) {
        Room::Wait => {
            let _paused = conn.pause_reading();
            inner.delivery.wait_for_room(entry).await
        }
        r => r,
    }
}

/// Replaces an inbound topic alias by its topic, or records a new alias.
fn resolve_alias(state: &mut ReaderState, p: &mut Publish) -> Result<(), (ReasonCode, String)> {
    let alias = match p.properties.get(PropertyId::TopicAlias) {
        Some(Property::TopicAlias(a)) => a,
        _ => return Ok(()),
    };
    if alias == 0 || alias > state.alias_max {
        return Err((
            ReasonCode::TopicAliasInvalid,
            format!("topic alias {alias} outside 1..={}", state.alias_max),
        ));
    }
    if p.topic.is_empty() {
        match state.aliases.get(&alias) {
            Some(t) => p.topic = t.clone(),
            None => {
                return Err((
                    ReasonCode::ProtocolError,
                    format!("unknown topic alias {alias}"),
                ))
            }
        }
    } else {
        // A view would keep the whole message alive as long as the alias.
        state.aliases.insert(alias, p.topic.detached());
    }
    Ok(())
}
