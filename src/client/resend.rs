//! The resend task of a new connection: first, after an automatic
//! reconnect that found no session, the re-subscription (see
//! `resubscribe`); then the QoS 1/2 messages still in flight are sent
//! again, in the order they were first sent (MQTT-4.6.0-1): on a resumed
//! session as resends (PUBLISH with DUP, or PUBREL once PUBREC came), on a
//! new session published afresh (see `Session::restart`); last, the
//! offline queue is drained (see `offline`). Each publish goes out only
//! once a slot of the new connection's Receive Maximum is free (the
//! reader frees slots as acknowledgements arrive, MQTT-3.3.4-7), and each
//! is checked against the new connection's Maximum Packet Size.
//!
//! It runs after `establish` has installed the connection and queued the
//! CONNECTED event, so the connect timeout covers CONNACK only: a connect
//! that got its CONNACK never fails because resends are slow. It is a task
//! of the connection, aborted with it. New publishes of the connection,
//! QoS 0 too, wait until it is done, so they go out after the messages
//! sent or queued before them (`MqttClient::publish_now` leaves them to
//! the async path until then).

use super::logging::Level;
use super::session::PendingKind;
use super::{lock, Connection, Error, Inner};
use crate::packet::{self, Packet, PubResp, ReasonCode};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use tokio::sync::{watch, OwnedSemaphorePermit};

/// What a new connection sends before anything newer.
pub(super) struct Plan {
    /// Subscribe again to what the client was subscribed to.
    pub resubscribe: bool,
    /// The publishes in flight (packet ids, in send order).
    pub order: Vec<u16>,
    /// The session is new: publish them afresh (no DUP).
    pub fresh: bool,
}

/// Sends what `plan` says, then the offline queue, then sets `done`.
/// Ends early only when the connection ends.
pub(super) async fn run(
    inner: Arc<Inner>,
    conn: Arc<Connection>,
    plan: Plan,
    done: watch::Sender<bool>,
) {
    if plan.resubscribe && super::resubscribe::run(&inner, &conn).await.is_err() {
        return;
    }
    if !plan.order.is_empty() {
        inner.log(
            Level::Debug,
            format_args!(
                "{} {} QoS 1/2 messages in flight at the loss of the connection",
                if plan.fresh {
                    "publishing afresh (the session is new)"
                } else {
                    "resending"
                },
                plan.order.len()
            ),
        );
    }
    let queued = lock(&inner.offline).len();
    if queued > 0 {
        inner.log(
            Level::Debug,
            format_args!("sending {queued} messages from the offline queue after the resends"),
        );
    }
    for id in plan.order {
        let Ok(permit) = conn.acquire_send_slot().await else {
            return;
        };
        let Some(bytes) = prepare(&inner, &conn, id, permit, plan.fresh) else {
            continue;
        };
        if inner.send(&conn, bytes).await.is_err() {
            return;
        }
    }
    if super::offline::drain(&inner, &conn).await.is_err() {
        return;
    }
    conn.finish_resends(&done);
}

/// Gives the publish `id` its Receive Maximum slot and returns the packet
/// to resend; None when there is nothing to send: it was acknowledged
/// meanwhile, or is discarded (see `discard`).
fn prepare(
    inner: &Arc<Inner>,
    conn: &Connection,
    id: u16,
    permit: OwnedSemaphorePermit,
    fresh: bool,
) -> Option<Bytes> {
    let mut s = lock(&inner.session);
    let p = s.pending.get_mut(&id)?;
    let resend = match &mut p.kind {
        PendingKind::Publish {
            packet,
            released,
            alias_topic,
            ..
        } => resend_packet(id, packet, *released, alias_topic, fresh),
        _ => return None,
    };
    let checked = resend.and_then(|b| conn.check_size(b.len()).map(|()| b));
    match checked {
        Ok(bytes) => {
            p.permit = Some(permit);
            Some(bytes)
        }
        Err(e) => {
            inner.log(
                Level::Warning,
                format_args!("in-flight message (packet id {id}) discarded, not resent: {e}"),
            );
            if let Some(finished) = s.discard(id, e) {
                inner.delivery.push_finished(inner, vec![finished]);
            }
            None
        }
    }
}

/// The packet that resends a publish in flight: PUBREL once PUBREC came;
/// otherwise the PUBLISH with DUP set (not when `fresh`: on a new session
/// it is a first delivery attempt) and, if it used a topic alias (which
/// does not outlive its connection), with the topic instead (kept, for a
/// later resend). A stored packet that is missing (never the case: a
/// publish is registered with its packet) is an error, and `prepare`
/// discards the message, as it does one too large for the new connection
/// (MQTT-3.1.2-25).
fn resend_packet(
    id: u16,
    packet: &mut Bytes,
    released: bool,
    alias_topic: &mut Option<packet::MqttStr>,
    fresh: bool,
) -> Result<Bytes, Error> {
    if released {
        let mut b = BytesMut::new();
        let rel = Packet::PubRel(PubResp {
            packet_id: id,
            reason: ReasonCode::Success,
            properties: Default::default(),
        });
        packet::encode(&rel, &mut b)?;
        return Ok(b.freeze());
    }
    if let Some(topic) = alias_topic.take() {
        *packet = super::alias::without_alias(packet, topic)?;
    }
    if packet.is_empty() {
        return Err(Error::Internal("a message in flight without its packet"));
    }
    if fresh {
        return Ok(packet.clone());
    }
    // DUP is bit 3 of the first byte.
    let mut b = BytesMut::from(&packet[..]);
    b[0] |= 0x08;
    Ok(b.freeze())
}
