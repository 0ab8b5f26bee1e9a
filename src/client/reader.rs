//! The packet reader task: reads packets until the connection ends and
//! hands each to [`handle`]. Acknowledgements complete the waiting calls;
//! messages go to the delivery queue.

use super::auth::AuthEvent;
use super::flow;
use super::session::{PendingKind, Reply};
use super::{lock, Connection, DisconnectCause, Event, Inner};
use crate::packet::{
    self, DecodeError, Disconnect, MqttStr, Packet, Properties, Property, PropertyId, PubResp,
    Publish, QoS, ReasonCode,
};
use crate::transport::{PacketReader, ReadError};
use bytes::BytesMut;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub(super) async fn run(inner: Arc<Inner>, conn: Arc<Connection>, mut reader: PacketReader) {
    let mut state = ReaderState {
        aliases: HashMap::new(),
        alias_max: inner.options.topic_alias_maximum(),
        qos2_inflight: HashSet::new(),
        receive_max: inner.options.receive_maximum(),
        logged_excess: false,
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
                    DecodeError::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
                    DecodeError::ProtocolError(_)
                    | DecodeError::PropertyNotAllowed { .. }
                    | DecodeError::DuplicateProperty(_) => ReasonCode::ProtocolError,
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
    /// Inbound QoS 2 packet ids of this connection awaiting PUBREL.
    qos2_inflight: HashSet<u16>,
    /// The Receive Maximum we advertised.
    receive_max: u16,
    /// Whether this connection's first excess was logged already.
    logged_excess: bool,
}

/// Accounts for an inbound QoS 1/2 PUBLISH (see [`flow`]); an error is the
/// strict reaction to the server exceeding our Receive Maximum.
fn account_inbound(
    inner: &Inner,
    state: &mut ReaderState,
    publish: &Publish,
) -> Result<(), String> {
    let inflight = match (publish.qos, publish.packet_id) {
        (QoS::AtLeastOnce, Some(_)) => state.qos2_inflight.len() + 1,
        (QoS::ExactlyOnce, Some(id)) => {
            if !state.qos2_inflight.insert(id) {
                return Ok(()); // a resend of one already counted
            }
            state.qos2_inflight.len()
        }
        _ => return Ok(()),
    };
    if !inner.stats.inbound(inflight, state.receive_max) {
        return Ok(());
    }
    let why = format!(
        "the server has {inflight} QoS 1/2 messages in flight to us, above our Receive Maximum {}",
        state.receive_max
    );
    if inner.options.strict_receive_maximum {
        return Err(why);
    }
    if !state.logged_excess {
        state.logged_excess = true;
        flow::log(format_args!(
            "{why}; carrying on (counted; logged once per connection)"
        ));
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
        let _ = inner.send(conn, b.freeze()).await;
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
            if let Err(why) = account_inbound(inner, state, &publish) {
                let reason = ReasonCode::ReceiveMaximumExceeded;
                return Err(protocol_error(inner, conn, reason, why).await);
            }
            match (publish.qos, publish.packet_id) {
                (QoS::AtMostOnce, _) => deliver(inner, publish).await,
                (QoS::AtLeastOnce, Some(id)) => {
                    deliver(inner, publish).await;
                    ack(inner, conn, Packet::PubAck(resp(id, ReasonCode::Success))).await;
                }
                (QoS::ExactlyOnce, Some(id)) => {
                    let first = lock(&inner.session).incoming_qos2.insert(id);
                    if first {
                        deliver(inner, publish).await;
                    }
                    ack(inner, conn, Packet::PubRec(resp(id, ReasonCode::Success))).await;
                }
                _ => {
                    let why = "PUBLISH with QoS > 0 and no packet id".to_string();
                    return Err(protocol_error(inner, conn, ReasonCode::ProtocolError, why).await);
                }
            }
        }
        Packet::PubAck(r) | Packet::PubComp(r) => finish_publish(inner, r).await,
        Packet::PubRec(r) => {
            let id = r.packet_id;
            if r.reason.is_error() {
                finish_publish(inner, r).await;
            } else {
                let known = {
                    let mut s = lock(&inner.session);
                    match s.pending.get_mut(&id).map(|p| &mut p.kind) {
                        Some(PendingKind::Publish { released, .. }) => {
                            *released = true;
                            true
                        }
                        _ => false,
                    }
                };
                let reason = if known {
                    ReasonCode::Success
                } else {
                    ReasonCode::PacketIdentifierNotFound
                };
                ack(inner, conn, Packet::PubRel(resp(id, reason))).await;
            }
        }
        Packet::PubRel(r) => {
            state.qos2_inflight.remove(&r.packet_id);
            let known = lock(&inner.session).incoming_qos2.remove(&r.packet_id);
            let reason = if known {
                ReasonCode::Success
            } else {
                ReasonCode::PacketIdentifierNotFound
            };
            ack(inner, conn, Packet::PubComp(resp(r.packet_id, reason))).await;
        }
        Packet::SubAck(s) => inner.complete(s.packet_id, Reply::SubAck(s)),
        Packet::UnsubAck(u) => inner.complete(u.packet_id, Reply::UnsubAck(u)),
        Packet::PingResp => {
            conn.pingresps
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            conn.pingresp_notify.notify_waiters();
        }
        Packet::Disconnect(d) => {
            if let Some(w) = lock(&conn.auth_waiter).take() {
                let _ = w.send(AuthEvent::Disconnect(d.clone()));
            }
            return Err(DisconnectCause::Server(d));
        }
        Packet::Auth(a) => {
            // Only while a re-authentication waits for it; never blocks.
            let forwarded = match &*lock(&conn.auth_waiter) {
                Some(w) => w.send(AuthEvent::Auth(a)).is_ok(),
                None => false,
            };
            if !forwarded {
                let why = "AUTH while no re-authentication is in progress".to_string();
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

/// Completes an outgoing QoS 1/2 publish with its final acknowledgement.
/// An asynchronous publish's completion goes to the delivery queue, so it
/// waits for room there like a message does: a slow callback then holds
/// the publish's Receive Maximum slot, and the publisher waits for a slot
/// (the flow control), instead of completions piling up without bound.
async fn finish_publish(inner: &Arc<Inner>, r: PubResp) {
    if lock(&inner.session).has_completion(r.packet_id) {
        inner.delivery.wait_for_space().await;
    }
    inner.complete(r.packet_id, Reply::PubAck(r));
}

/// Queues a message for the callback, waiting while the queue is full.
async fn deliver(inner: &Arc<Inner>, publish: Publish) {
    // A response goes straight to its waiting request (see `request`).
    let Some(publish) = inner.requests.take_response(publish) else {
        return;
    };
    inner.delivery.wait_for_space().await;
    inner.delivery.push(inner, Event::Message(publish));
}

/// Replaces an inbound topic alias by its topic, or records a new alias.
fn resolve_alias(state: &mut ReaderState, p: &mut Publish) -> Result<(), (ReasonCode, String)> {
    let alias = match p.properties.get(PropertyId::TopicAlias) {
        Some(Property::TopicAlias(a)) => *a,
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
        state.aliases.insert(alias, p.topic.clone());
    }
    Ok(())
}
