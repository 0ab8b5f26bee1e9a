//! What the client is subscribed to, and subscribing to it again after an
//! automatic reconnect that found no session (CONNACK Session Present 0:
//! the broker lost or dropped the session, and our subscriptions with it).
//!
//! Each filter a SUBACK granted is recorded with its options and the
//! properties of its SUBSCRIBE (Subscription Identifier, user properties),
//! so that the re-subscription is the same: per-subscription callbacks
//! routed by identifier keep working. An UNSUBACK removes the filter. A
//! `connect` by the application that finds no session forgets them all:
//! the application starts afresh then, and knows it.
//!
//! The re-subscription runs first in the resend task of the new connection
//! (see `resend`), before the messages in flight and the offline queue go
//! out, and waits for the SUBACKs. A refused filter is reported with a
//! connection event (`ConnectionEvent::ResubscribeFailed`) and counted,
//! and stays recorded: the next reconnect tries it again.

use super::logging::Level;
use super::session::{Pending, PendingKind, Reply, Waiter};
use super::{lock, Connection, ConnectionEvent, Error, Event, Inner};
use crate::packet::{self, Packet, Properties, ReasonCode, SubAck, Subscribe, SubscribeFilter};
use bytes::BytesMut;
use std::sync::Arc;
use tokio::sync::oneshot;

/// How many filters one re-SUBSCRIBE carries at most.
const FILTERS_PER_PACKET: usize = 32;

/// Why a filter could not be subscribed again.
#[derive(Clone, Debug)]
pub enum ResubscribeFailure {
    /// The SUBACK refused it.
    Refused {
        reason: ReasonCode,
        reason_string: Option<String>,
    },
    /// No SUBACK within the operation timeout.
    Timeout,
    /// The SUBSCRIBE exceeds the new server's Maximum Packet Size.
    TooLarge,
    /// The SUBACK was malformed (wrong number of reason codes).
    Protocol(String),
}

/// The filters the client is subscribed to, in the order first granted.
#[derive(Default)]
pub(super) struct Subscriptions {
    list: Vec<(SubscribeFilter, Properties)>,
}

impl Subscriptions {
    /// Records the filters of a SUBSCRIBE the SUBACK granted.
    pub fn granted(&mut self, filters: &[SubscribeFilter], properties: &Properties, ack: &SubAck) {
        for (f, r) in filters.iter().zip(&ack.reasons) {
            if r.is_error() {
                continue;
            }
            match self.list.iter_mut().find(|(g, _)| g.filter == f.filter) {
                Some(entry) => *entry = (f.clone(), properties.clone()),
                None => self.list.push((f.clone(), properties.clone())),
            }
        }
    }

    /// Forgets the filters an UNSUBACK did not refuse.
    pub fn removed(&mut self, filters: &[packet::MqttStr], reasons: &[ReasonCode]) {
        for (f, r) in filters.iter().zip(reasons) {
            if !r.is_error() {
                self.list.retain(|(g, _)| g.filter != *f);
            }
        }
    }

    pub fn clear(&mut self) {
        self.list.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The SUBSCRIBEs that restore them: filters with equal properties
    /// together, in order, a bounded number per packet.
    fn packets(&self) -> Vec<(Vec<SubscribeFilter>, Properties)> {
        let mut out: Vec<(Vec<SubscribeFilter>, Properties)> = Vec::new();
        for (f, props) in &self.list {
            match out.last_mut() {
                Some((fs, p)) if p == props && fs.len() < FILTERS_PER_PACKET => fs.push(f.clone()),
                _ => out.push((vec![f.clone()], props.clone())),
            }
        }
        out
    }
}

/// Subscribes again to every recorded filter on `conn` and waits for the
/// SUBACKs (each at most the operation timeout), reporting failures. Err
/// when the connection ended.
pub(super) async fn run(inner: &Arc<Inner>, conn: &Arc<Connection>) -> Result<(), Error> {
    let packets = lock(&inner.subscriptions).packets();
    let mut waiting = Vec::new();
    for (filters, properties) in packets {
        let (filters, properties) = for_version(conn.version, filters, properties);
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            kind: PendingKind::Subscribe {
                filters: filters.len(),
            },
            waiter: Some(Waiter::Call(tx)),
            permit: None,
        };
        let id = inner.register(conn, pending)?;
        let packet = Packet::Subscribe(Subscribe {
            packet_id: id,
            properties,
            filters: filters.clone(),
        });
        let mut buf = BytesMut::new();
        let encoded = packet::encode(&packet, &mut buf)
            .map_err(Error::from)
            .and_then(|()| conn.check_size(buf.len()));
        if encoded.is_err() {
            lock(&inner.session).pending.remove(&id);
            for f in &filters {
                report(inner, f, ResubscribeFailure::TooLarge);
            }
            continue;
        }
        inner.send(conn, buf.freeze()).await?;
        waiting.push((filters, rx));
    }
    for (filters, rx) in waiting {
        let reply = match inner.options.operation_timeout {
            Some(t) => tokio::time::timeout(t, rx).await.ok(),
            None => Some(rx.await),
        };
        match reply {
            Some(Ok(Ok(Reply::SubAck(ack)))) => settle(inner, &filters, &ack),
            None => {
                for f in &filters {
                    report(inner, f, ResubscribeFailure::Timeout);
                }
            }
            // The connection ended: the next one subscribes again.
            _ => return Err(Error::ConnectionLost),
        }
    }
    Ok(())
}

/// A recorded SUBSCRIBE as `version` can send it: on 3.1.1 (a connection
/// `MQTT_PROTOCOL_AUTO` fell back to after subscribing over v5) without
/// properties and with QoS as the only option, which 3.1.1 cannot refuse
/// to encode; the broker's 3.1.1 session has no more to keep.
fn for_version(
    version: packet::ProtocolVersion,
    mut filters: Vec<SubscribeFilter>,
    properties: Properties,
) -> (Vec<SubscribeFilter>, Properties) {
    if version != packet::ProtocolVersion::V311 {
        return (filters, properties);
    }
    for f in &mut filters {
        f.options = packet::SubscriptionOptions {
            qos: f.options.qos,
            ..Default::default()
        };
    }
    (filters, Properties::new())
}

/// Reports the filters a re-SUBSCRIBE's SUBACK refused.
fn settle(inner: &Arc<Inner>, filters: &[SubscribeFilter], ack: &SubAck) {
    if ack.reasons.len() != filters.len() {
        let why = format!(
            "the SUBACK has {} reason codes for {} filters",
            ack.reasons.len(),
            filters.len()
        );
        for f in filters {
            report(inner, f, ResubscribeFailure::Protocol(why.clone()));
        }
        return;
    }
    for (f, r) in filters.iter().zip(&ack.reasons) {
        if r.is_error() {
            let reason_string = super::reason_string(&ack.properties);
            let failure = ResubscribeFailure::Refused {
                reason: *r,
                reason_string,
            };
            report(inner, f, failure);
        }
    }
}

fn report(inner: &Arc<Inner>, f: &SubscribeFilter, failure: ResubscribeFailure) {
    inner.stats.count_resubscribe_failed();
    inner.log(
        Level::Warning,
        format_args!(
            "re-subscription to '{}' after a lost session failed: {failure:?}",
            f.filter.as_str()
        ),
    );
    inner.delivery.push(
        inner,
        Event::Connection(ConnectionEvent::ResubscribeFailed {
            filter: f.filter.as_str().to_string(),
            failure,
        }),
    );
}
