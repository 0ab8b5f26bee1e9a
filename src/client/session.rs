//! Session state that outlives a single connection: packet identifiers in
//! use, QoS 1/2 publishes in flight (kept encoded, with their send order,
//! so a reconnect can resend them in that order), and incoming QoS 1/2
//! messages not yet fully acknowledged.

use super::persist::{self, Outgoing, Record, Store};
use super::{Ack, Error};
use crate::packet::{self, MqttStr, PubResp, QoS, ReasonCode, SubAck, UnsubAck};
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

/// What the reader hands back to the call waiting on a packet id.
#[derive(Debug)]
#[allow(clippy::enum_variant_names)] // named after the packets
pub enum Reply {
    /// PUBACK, PUBCOMP, or a PUBREC carrying a failure.
    PubAck(PubResp),
    SubAck(SubAck),
    UnsubAck(UnsubAck),
}

/// What to run when an asynchronous publish ends: with the PUBACK /
/// PUBCOMP (or failing PUBREC), or with `ConnectionLost`. Never run by the
/// session itself: the reader and `connection_lost` hand it to the
/// delivery queue, so it runs on the delivery thread, in order with the
/// other callbacks.
pub type Completion = Box<dyn FnOnce(Result<Ack, Error>) + Send>;

/// A completion with its result, ready for the delivery queue.
pub type Finished = (Completion, Result<Ack, Error>);

/// Who learns the outcome of a request.
pub enum Waiter {
    /// A call waiting on the other end of the oneshot.
    Call(oneshot::Sender<Result<Reply, Error>>),
    /// An asynchronous publish (`publish_then`).
    Then(Completion),
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Waiter::Call(_) => "Waiter::Call",
            Waiter::Then(_) => "Waiter::Then",
        })
    }
}

impl Waiter {
    /// Hands `result` to a waiting call (which may have given up), or
    /// returns the completion with its result for the delivery queue.
    pub(super) fn finish(self, result: Result<Reply, Error>) -> Option<Finished> {
        match self {
            Waiter::Call(tx) => {
                let _ = tx.send(result);
                None
            }
            Waiter::Then(f) => {
                let r = match result {
                    Ok(Reply::PubAck(r)) => Ok(Ack {
                        reason: r.reason,
                        properties: r.properties,
                    }),
                    Ok(_) => Err(Error::Internal("wrong reply kind")),
                    Err(e) => Err(e),
                };
                Some((f, r))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub enum PendingKind {
    /// An outgoing QoS 1/2 PUBLISH, encoded, with its QoS, which says
    /// which acknowledgements it may get (see `Session::ack_fit`).
    /// `released` is set once PUBREC arrived and PUBREL went out (QoS 2
    /// second half). `alias_topic` is
    /// the topic when `packet` carries a topic alias instead, which a
    /// resend on a new connection must replace. `sent` orders the
    /// publishes as they were first written: resends follow it, not the
    /// packet ids, which wrap (MQTT-4.6.0-1).
    Publish {
        packet: Bytes,
        qos: QoS,
        released: bool,
        alias_topic: Option<MqttStr>,
        sent: u64,
    },
    /// A SUBSCRIBE or UNSUBSCRIBE of `filters` topic filters, which its
    /// acknowledgement must answer with as many reason codes.
    Subscribe {
        filters: usize,
    },
    Unsubscribe {
        filters: usize,
    },
}

#[derive(Debug)]
pub struct Pending {
    pub kind: PendingKind,
    pub waiter: Option<Waiter>,
    /// A slot of the server's Receive Maximum, freed with this entry.
    pub permit: Option<OwnedSemaphorePermit>,
}

/// An incoming QoS 1/2 message we have not fully acknowledged yet.
#[derive(Debug)]
pub struct Inbound {
    /// Unique per receipt. The delivery job acknowledges a message only if
    /// its entry still holds the token it was queued with: a session that
    /// was not resumed clears the entries, so an old message is never
    /// acknowledged into a new session whose broker reused its id.
    token: u64,
    /// Its QoS: an ack id names it too (see [`InboundAck::ack_id`]), and
    /// one naming another QoS was not handed out (its acknowledgement
    /// would be the wrong packet: PUBACK for a QoS 2 message).
    qos: QoS,
    state: InboundState,
    /// The connection (`Session::connection`) on which the broker last
    /// sent it: the first receipt, or a resend swallowed.
    sent_on: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InboundState {
    /// Queued for its callback (or in it, or, with manual acknowledgement,
    /// waiting for the application's `ack`); not acknowledged.
    Queued,
    /// Manual acknowledgement: the application acknowledged it, and the
    /// acknowledgement waits in the pending acknowledgements (see `acks`).
    Claimed,
    /// Its acknowledgement (PUBACK, or a failing PUBREC) was due while no
    /// connection was up: the broker's resend on the resumed session is
    /// answered with it, not delivered again (see [`Receipt::Answer`]).
    Unsent(ReasonCode),
    /// QoS 2 only: its callback returned and PUBREC is sent (or was due
    /// while no connection was up); awaiting PUBREL.
    Delivered,
    /// Acknowledged (PUBACK, or a failing PUBREC) on this connection while
    /// it had been received on an earlier one: the broker resent it when
    /// the session resumed, maybe before it read our acknowledgement, and
    /// that resend (DUP) may still come. It is not delivered again
    /// (`Receipt::Crossed`); anything else on the id is a new message.
    /// Forgotten with the next connection.
    Answered(u64),
}

/// What to do with an incoming QoS 1/2 PUBLISH (see [`Session::receipt`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Receipt {
    /// Not seen before: deliver it.
    New,
    /// A resend of one still queued: its acknowledgement follows its
    /// callback, which is still to come.
    Queued,
    /// A resend of a QoS 2 message already delivered: PUBREC again, do
    /// not deliver.
    Delivered,
    /// A resend of a message whose acknowledgement was due while no
    /// connection was up: send it now (the entry is gone), do not deliver.
    Answer(InboundAck),
    /// The resend of a message we acknowledged on this connection, which
    /// crossed our acknowledgement: nothing to do, the acknowledgement
    /// answers it.
    Crossed,
}

/// A received QoS 1/2 message travelling with its event through the
/// delivery queue, to be acknowledged after its callback (or, with manual
/// acknowledgement, when the application says so: see [`Session::claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundAck {
    pub id: u16,
    pub qos: QoS,
    pub token: u64,
    /// The PUBACK / PUBREC reason: Success, or a failure the application
    /// gave to `ack`.
    pub reason: ReasonCode,
}

impl InboundAck {
    /// The application's handle on this receipt (manual acknowledgement):
    /// the token, which is unique per receipt and never 0, above the QoS
    /// and the packet id, so that `claim` finds the entry without a
    /// table of its own.
    pub fn ack_id(&self) -> u64 {
        (self.token << 18) | ((self.qos as u64) << 16) | u64::from(self.id)
    }
}

/// Why [`Session::claim`] refused an ack id.
#[derive(Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// Never handed out by this client.
    Unknown,
    /// Acknowledged already (by this ack id).
    Done,
    /// Received in a session the broker no longer has (a reconnect found
    /// no session): nothing to acknowledge any more.
    Stale,
}

#[derive(Debug, Default)]
pub struct Session {
    last_id: u16,
    /// The `sent` number of the last publish registered.
    last_sent: u64,
    pub pending: HashMap<u16, Pending>,
    /// Incoming QoS 1/2 messages by packet id, from receipt until our
    /// PUBACK (QoS 1) or the broker's PUBREL (QoS 2).
    inbound: HashMap<u16, Inbound>,
    last_token: u64,
    /// `last_token` when the broker last started a new session: receipts
    /// up to it belong to a session that is gone (see `claim`).
    stale_up_to: u64,
    /// Counts the connections (see `connected`), to tell a resend that
    /// crosses our acknowledgement from a new message (see `Inbound`).
    connection: u64,
    /// How many `inbound` entries are `Answered`: acknowledged, so not in
    /// flight for the broker (see `inbound_in_flight`).
    answered: usize,
    /// A publish the server acknowledged with the wrong packet, and why:
    /// its waiter fails with that protocol error instead of
    /// `ConnectionLost` when the connection ends (see `blame`).
    fault: Option<(u16, String)>,
    /// Where the changes that must survive a crash are recorded (see
    /// `persist`), when the client has a persistence directory: each is
    /// appended under the session lock, so the log's order is the
    /// session's.
    store: Option<Arc<Store>>,
    /// The store's ticket of the last record appended (see `ticket`).
    ticket: u64,
}

/// The acknowledgements of an outgoing publish (MQTT v5 4.3.2, 4.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // named after the packets
pub enum PubAckKind {
    PubAck,
    PubRec,
    PubComp,
}

/// How an acknowledgement fits the publish in flight it names.
#[derive(Debug, PartialEq, Eq)]
pub enum AckFit {
    /// No publish in flight under that packet id.
    Unknown,
    /// The acknowledgement its QoS and state expect.
    Expected,
    /// One it can never get: a protocol error; the text says what came.
    Wrong(String),
}

impl Session {
    /// A session whose changes are recorded in `store`, starting from
    /// the state it held (`state`, read from its log): publishes in
    /// flight in their send order, to be resent on the next connection
    /// (they have no waiter: their calls were in an earlier process), and
    /// incoming QoS 2 messages delivered but not released, so a resend of
    /// one is not delivered again.
    pub fn persistent(store: Arc<Store>, state: &persist::State) -> Session {
        let mut s = Session {
            store: Some(store),
            ..Session::default()
        };
        for o in state.outgoing() {
            let kind = PendingKind::Publish {
                packet: o.packet.clone(),
                qos: o.qos,
                released: o.released,
                alias_topic: o.alias_topic.clone(),
                sent: o.seq,
            };
            let (waiter, permit) = (None, None);
            s.pending.insert(
                o.id,
                Pending {
                    kind,
                    waiter,
                    permit,
                },
            );
            // In send order: the last is the latest.
            s.last_sent = o.seq;
            s.last_id = o.id;
        }
        for id in state.inbound() {
            s.last_token += 1;
            let (token, state) = (s.last_token, InboundState::Delivered);
            let sent_on = 0;
            s.inbound.insert(
                id,
                Inbound {
                    token,
                    qos: QoS::ExactlyOnce,
                    state,
                    sent_on,
                },
            );
        }
        s
    }

    /// Appends the record `r` makes to the store, if there is one.
    fn record(&mut self, r: impl FnOnce() -> Record) {
        if let Some(store) = &self.store {
            self.ticket = store.append(r());
        }
    }

    /// The store and the ticket of the last record appended, to wait for
    /// with `Store::commit` once the session lock is released; None
    /// without persistence.
    pub fn ticket(&self) -> Option<(Arc<Store>, u64)> {
        self.store.as_ref().map(|s| (s.clone(), self.ticket))
    }

    /// Reserves a free packet identifier for `pending`.
    pub fn insert(&mut self, pending: Pending) -> Result<u16, Error> {
        let id = self.free_id()?;
        self.pending.insert(id, pending);
        Ok(id)
    }

    fn free_id(&mut self) -> Result<u16, Error> {
        if self.pending.len() >= u16::MAX as usize {
            return Err(Error::Internal("all 65535 packet identifiers are in use"));
        }
        loop {
            self.last_id = self.last_id.wrapping_add(1);
            if self.last_id != 0 && !self.pending.contains_key(&self.last_id) {
                return Ok(self.last_id);
            }
        }
    }

    /// Registers an outgoing QoS 1/2 PUBLISH, `packet` encoded with any
    /// packet id: allocates its id and writes it into the packet, so the
    /// entry never exists without its packet (an entry without one could
    /// be neither resent nor acknowledged, and would hold a Receive
    /// Maximum slot on every resume). The caller holds the outbox's lock
    /// and hands the packet to the writer next: the registration order is
    /// the send order.
    /// Returns the id and the packet to write.
    pub fn insert_publish(
        &mut self,
        packet: BytesMut,
        qos: QoS,
        alias_topic: Option<MqttStr>,
        waiter: Option<Waiter>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<(u16, Bytes), Error> {
        let pending = (waiter, permit);
        self.insert_publish_from(packet, qos, alias_topic, pending, None)
    }

    /// `insert_publish` for a publish that waited in the offline queue:
    /// with persistence, stored as moved from the queue (`qseq` there) in
    /// one record.
    pub fn insert_queued_publish(
        &mut self,
        packet: BytesMut,
        qos: QoS,
        waiter: Option<Waiter>,
        permit: Option<OwnedSemaphorePermit>,
        qseq: Option<u64>,
    ) -> Result<(u16, Bytes), Error> {
        self.insert_publish_from(packet, qos, None, (waiter, permit), qseq)
    }

    fn insert_publish_from(
        &mut self,
        mut packet: BytesMut,
        qos: QoS,
        alias_topic: Option<MqttStr>,
        (waiter, permit): (Option<Waiter>, Option<OwnedSemaphorePermit>),
        qseq: Option<u64>,
    ) -> Result<(u16, Bytes), Error> {
        let id = self.free_id()?;
        packet::set_publish_packet_id(&mut packet, id)?;
        let packet = packet.freeze();
        self.last_sent += 1;
        let stored_topic = self.store.as_ref().and_then(|_| alias_topic.clone());
        let kind = PendingKind::Publish {
            packet: packet.clone(),
            qos,
            released: false,
            alias_topic,
            sent: self.last_sent,
        };
        self.pending.insert(
            id,
            Pending {
                kind,
                waiter,
                permit,
            },
        );
        let seq = self.last_sent;
        self.record(|| {
            let o = Outgoing {
                seq,
                id,
                qos,
                released: false,
                alias_topic: stored_topic,
                packet: packet.clone(),
            };
            match qseq {
                Some(q) => Record::StoredFromQueue(q, o),
                None => Record::Stored(o),
            }
        });
        Ok((id, packet))
    }

    /// PUBREC came for the QoS 2 publish `id` and PUBREL is due: records
    /// it released (once). False when no publish is in flight under `id`.
    pub fn mark_released(&mut self, id: u16) -> bool {
        let Some(PendingKind::Publish { released, .. }) =
            self.pending.get_mut(&id).map(|p| &mut p.kind)
        else {
            return false;
        };
        if !*released {
            *released = true;
            self.record(|| Record::Released(id));
        }
        true
    }

    /// The packet ids of the publishes in flight, in the order they were
    /// first sent: the order of their resend.
    pub fn resend_order(&self) -> Vec<u16> {
        let mut publishes: Vec<(u64, u16)> = self
            .pending
            .iter()
            .filter_map(|(id, p)| match p.kind {
                PendingKind::Publish { sent, .. } => Some((sent, *id)),
                _ => None,
            })
            .collect();
        publishes.sort_unstable();
        publishes.into_iter().map(|(_, id)| id).collect()
    }

    /// Removes the entry for `id` without an acknowledgement, failing its
    /// waiter (if it still has one) with `error`. Returns the completion
    /// to queue, if any.
    #[must_use = "the completion must be queued for delivery"]
    pub fn discard(&mut self, id: u16, error: Error) -> Option<Finished> {
        self.remove(id)?.waiter?.finish(Err(error))
    }

    /// Removes the entry for `id`; a publish's removal is recorded.
    fn remove(&mut self, id: u16) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        if matches!(p.kind, PendingKind::Publish { .. }) {
            self.record(|| Record::Completed(id));
        }
        Some(p)
    }

    /// Whether the entry for `id` ends in a completion (which will need
    /// room in the delivery queue).
    pub fn has_completion(&self, id: u16) -> bool {
        self.pending
            .get(&id)
            .is_some_and(|p| matches!(p.waiter, Some(Waiter::Then(_))))
    }

    /// Completes and removes the entry for `id`, if it is of the right kind
    /// (an unknown id is the peer's mistake and is ignored). Returns the
    /// completion to queue for delivery, if the entry had one.
    pub fn complete(&mut self, id: u16, reply: Reply) -> Option<Finished> {
        let matches = matches!(
            (self.pending.get(&id).map(|p| &p.kind), &reply),
            (Some(PendingKind::Publish { .. }), Reply::PubAck(_))
                | (Some(PendingKind::Subscribe { .. }), Reply::SubAck(_))
                | (Some(PendingKind::Unsubscribe { .. }), Reply::UnsubAck(_))
        );
        if !matches {
            return None;
        }
        let w = self.remove(id)?.waiter?;
        w.finish(Ok(reply))
    }

    /// How many filters the SUBSCRIBE (`subscribe`) or UNSUBSCRIBE waiting
    /// under `id` has; None when no request of that kind waits there.
    pub fn request_filters(&self, id: u16, subscribe: bool) -> Option<usize> {
        match (self.pending.get(&id).map(|p| &p.kind), subscribe) {
            (Some(PendingKind::Subscribe { filters }), true)
            | (Some(PendingKind::Unsubscribe { filters }), false) => Some(*filters),
            _ => None,
        }
    }

    /// How an acknowledgement of kind `ack` fits the publish in flight
    /// under `id`: QoS 1 ends with PUBACK only; QoS 2 gets PUBREC (again
    /// after a resend, even once released) and ends with PUBCOMP only
    /// once released, i.e. after PUBREC. Anything else is the server
    /// breaking the protocol, and taking it as the outcome would report
    /// a message delivered that may not be (or release a QoS 1 message,
    /// which a resend would then replace by a PUBREL).
    pub fn ack_fit(&self, id: u16, ack: PubAckKind) -> AckFit {
        let Some(PendingKind::Publish { qos, released, .. }) =
            self.pending.get(&id).map(|p| &p.kind)
        else {
            return AckFit::Unknown;
        };
        let expected = match (qos, ack) {
            (QoS::AtLeastOnce, PubAckKind::PubAck) | (QoS::ExactlyOnce, PubAckKind::PubRec) => true,
            (QoS::ExactlyOnce, PubAckKind::PubComp) => *released,
            _ => false,
        };
        if expected {
            return AckFit::Expected;
        }
        let state = if *released { ", after PUBREC" } else { "" };
        AckFit::Wrong(format!(
            "the server answered a QoS {} publish (packet id {id}{state}) with {ack:?}",
            *qos as u8
        ))
    }

    /// Records that the server broke the protocol in acknowledging the
    /// publish (or answering the subscribe or unsubscribe) `id`: its
    /// waiter is failed with `Error::Protocol(why)` by
    /// the `fail_waiters` of the connection's end, which follows (the
    /// caller holds the session lock and checked that the connection is
    /// alive). The entry itself stays as it is, for a resend on resume.
    pub fn blame(&mut self, id: u16, why: String) {
        self.fault = Some((id, why));
    }

    /// Fails every waiting call and returns the completions to queue with
    /// `ConnectionLost` (or the protocol error of a publish `blame`d);
    /// the entries stay for a resend (without a waiter: each outcome is
    /// reported once). Subscribe/unsubscribe entries are dropped: they are
    /// not resent.
    #[must_use = "the completions must be queued for delivery"]
    pub fn fail_waiters(&mut self) -> Vec<Finished> {
        let fault = self.fault.take();
        let mut out = Vec::new();
        self.pending.retain(|id, p| {
            if let Some(w) = p.waiter.take() {
                let e = match &fault {
                    Some((blamed, why)) if blamed == id => Error::Protocol(why.clone()),
                    _ => Error::ConnectionLost,
                };
                out.extend(w.finish(Err(e)));
            }
            p.permit = None;
            matches!(p.kind, PendingKind::Publish { .. })
        });
        out
    }

    /// The connection was lost and the client reconnects: the publishes
    /// keep their waiters, which learn the outcome after the resend on the
    /// next connection; their Receive Maximum slots go with the old one.
    /// Calls waiting for a SUBACK/UNSUBACK fail with `ConnectionLost` and
    /// their entries go (those calls send again on the next connection).
    /// A publish `blame`d for a wrong acknowledgement fails with its
    /// protocol error, as in `fail_waiters`. Returns the completions to
    /// queue.
    #[must_use = "the completions must be queued for delivery"]
    pub fn suspend(&mut self) -> Vec<Finished> {
        let fault = self.fault.take();
        let mut out = Vec::new();
        self.pending.retain(|id, p| {
            p.permit = None;
            let publish = matches!(p.kind, PendingKind::Publish { .. });
            let error = match &fault {
                Some((blamed, why)) if blamed == id => Error::Protocol(why.clone()),
                _ if publish => return true,
                _ => Error::ConnectionLost,
            };
            if let Some(w) = p.waiter.take() {
                out.extend(w.finish(Err(error)));
            }
            publish
        });
        out
    }

    /// A new session on the server (CONNACK without Session Present):
    /// the inbound state goes (the broker forgot what it sent us), our
    /// publishes stay, to be published afresh; returns their ids in send
    /// order, and the completions to queue. A QoS 2 publish whose PUBREC
    /// came is the server's already: publishing it again could deliver it
    /// twice, so it completes as a success (PUBCOMP only frees the id).
    #[must_use = "the completions must be queued for delivery"]
    pub fn restart(&mut self) -> (Vec<u16>, Vec<Finished>) {
        let held: Vec<u16> = self
            .inbound
            .iter()
            .filter(|(_, e)| e.state == InboundState::Delivered)
            .map(|(id, _)| *id)
            .collect();
        for id in held {
            self.record(|| Record::InboundReleased(id));
        }
        self.inbound.clear();
        self.answered = 0;
        self.stale_up_to = self.last_token;
        let mut out = Vec::new();
        let done: Vec<u16> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                !matches!(
                    p.kind,
                    PendingKind::Publish {
                        released: false,
                        ..
                    }
                )
            })
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            let Some(p) = self.remove(id) else {
                continue;
            };
            let result = match p.kind {
                PendingKind::Publish { .. } => Ok(Reply::PubAck(PubResp {
                    packet_id: id,
                    reason: packet::ReasonCode::Success,
                    properties: Default::default(),
                })),
                _ => Err(Error::ConnectionLost),
            };
            out.extend(p.waiter.and_then(|w| w.finish(result)));
        }
        (self.resend_order(), out)
    }

    /// A new connection is up (its CONNACK came): acknowledgements that
    /// answered resends of the previous one are forgotten (see
    /// [`InboundState::Answered`]).
    pub fn connected(&mut self) {
        self.connection += 1;
        if self.answered > 0 {
            self.inbound
                .retain(|_, e| !matches!(e.state, InboundState::Answered(_)));
            self.answered = 0;
        }
    }

    /// What an incoming QoS 1/2 PUBLISH with `id` (with the DUP flag
    /// `dup`) is to us. A broker cannot reuse an id we have not
    /// acknowledged, so a known id with DUP is a resend of the same
    /// message (one still queued, without DUP, is a new one: see below). A
    /// resend whose acknowledgement was due while no connection was up is
    /// answered with it (the entry goes). A resend never comes without DUP
    /// (MQTT-3.3.1-1): once we acknowledged an id, a PUBLISH on it without
    /// DUP is a new message.
    pub fn receipt(&mut self, id: u16, qos: QoS, dup: bool) -> Receipt {
        let connection = self.connection;
        let Some(e) = self.inbound.get_mut(&id) else {
            return Receipt::New;
        };
        match e.state {
            InboundState::Queued | InboundState::Claimed if dup => {
                e.sent_on = connection;
                Receipt::Queued
            }
            // Without DUP, not a resend (MQTT-3.3.1-1) but a new message
            // on the id of one whose acknowledgement the broker no longer
            // waits for: a broker restored from an older save, say. Taken
            // as a resend, it would never be delivered, and the old
            // message's acknowledgement would acknowledge it. It replaces
            // the old entry, whose acknowledgement is then not sent (its
            // token no longer matches).
            InboundState::Queued | InboundState::Claimed => Receipt::New,
            // Until its PUBREL, any QoS 2 PUBLISH on the id is answered
            // with PUBREC and not delivered again, DUP or not
            // (MQTT-4.3.3-9; 3.1.1 4.3.3 says the same): a broker that
            // resends without DUP must not get a message delivered twice.
            InboundState::Delivered if qos == QoS::ExactlyOnce => Receipt::Delivered,
            InboundState::Unsent(reason) if dup => {
                let token = e.token;
                self.inbound.remove(&id);
                Receipt::Answer(InboundAck {
                    id,
                    qos,
                    token,
                    reason,
                })
            }
            InboundState::Answered(on) => {
                self.inbound.remove(&id);
                self.answered -= 1;
                if dup && on == connection {
                    Receipt::Crossed
                } else {
                    Receipt::New
                }
            }
            // A QoS 1 message on the id of a QoS 2 one awaiting PUBREL:
            // the broker forgot the old one or broke the rules; deliver it
            // rather than lose it.
            state @ (InboundState::Delivered | InboundState::Unsent(_)) => {
                self.inbound.remove(&id);
                if state == InboundState::Delivered {
                    // Its PUBREL will not come: a restarted client must
                    // not hold the id either.
                    self.record(|| Record::InboundReleased(id));
                }
                Receipt::New
            }
        }
    }

    /// Records a new incoming message as queued for its callback.
    pub fn queue_inbound(&mut self, id: u16, qos: QoS) -> InboundAck {
        self.last_token += 1;
        let token = self.last_token;
        let state = InboundState::Queued;
        let sent_on = self.connection;
        self.inbound.insert(
            id,
            Inbound {
                token,
                qos,
                state,
                sent_on,
            },
        );
        InboundAck {
            id,
            qos,
            token,
            reason: ReasonCode::Success,
        }
    }

    /// Manual acknowledgement: the application acknowledges the receipt
    /// `ack_id` (see [`InboundAck::ack_id`]) with `reason`. Returns the
    /// acknowledgement for the pending ones, its entry marked so that a
    /// second `claim` of it fails.
    pub fn claim(&mut self, ack_id: u64, reason: ReasonCode) -> Result<InboundAck, ClaimError> {
        let token = ack_id >> 18;
        let qos = match (ack_id >> 16) & 3 {
            1 => QoS::AtLeastOnce,
            2 => QoS::ExactlyOnce,
            _ => return Err(ClaimError::Unknown),
        };
        if token == 0 || token > self.last_token {
            return Err(ClaimError::Unknown);
        }
        let id = (ack_id & 0xFFFF) as u16;
        match self.inbound.get_mut(&id) {
            Some(e) if e.token == token && e.qos != qos => Err(ClaimError::Unknown),
            Some(e) if e.token == token && e.state == InboundState::Queued => {
                e.state = InboundState::Claimed;
                Ok(InboundAck {
                    id,
                    qos,
                    token,
                    reason,
                })
            }
            Some(e) if e.token == token => Err(ClaimError::Done),
            _ if token <= self.stale_up_to => Err(ClaimError::Stale),
            _ => Err(ClaimError::Done),
        }
    }

    /// The callback of `ack`'s message returned (or the application
    /// acknowledged it): true when it is to be acknowledged now, i.e. its
    /// entry still holds its token and was not acknowledged yet. A QoS 1
    /// entry, or a QoS 2 one refused (reason >= 0x80), ends here; a QoS 2
    /// one accepted waits for PUBREL. `connected`: false when there is no
    /// connection to write on; the acknowledgement then answers the
    /// broker's resend on the resumed session (`Receipt::Answer`), except
    /// an accepted QoS 2 one, whose resend gets PUBREC as delivered.
    pub fn settle(&mut self, ack: &InboundAck, connected: bool) -> bool {
        let Some(e) = self.inbound.get_mut(&ack.id) else {
            return false;
        };
        if e.token != ack.token || !matches!(e.state, InboundState::Queued | InboundState::Claimed)
        {
            return false;
        }
        let held = ack.qos == QoS::ExactlyOnce && !ack.reason.is_error();
        if held {
            e.state = InboundState::Delivered;
            self.record(|| Record::InboundHeld(ack.id));
        } else if !connected {
            e.state = InboundState::Unsent(ack.reason);
        } else if e.sent_on < self.connection {
            // Its resend may be on its way (see `InboundState::Answered`).
            e.state = InboundState::Answered(self.connection);
            self.answered += 1;
        } else {
            self.inbound.remove(&ack.id);
        }
        true
    }

    /// PUBREL for `id`: true when a delivered QoS 2 message awaited it.
    pub fn release(&mut self, id: u16) -> bool {
        match self.inbound.get(&id).map(|e| e.state) {
            Some(InboundState::Delivered) => {
                self.inbound.remove(&id);
                self.record(|| Record::InboundReleased(id));
                true
            }
            _ => false,
        }
    }

    /// Incoming QoS 1/2 messages not yet fully acknowledged (for the
    /// broker: an `Answered` entry is not).
    pub fn inbound_in_flight(&self) -> usize {
        self.inbound.len() - self.answered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Properties, ReasonCode};
    use std::sync::{Arc, Mutex};

    fn publish_entry(waiter: Option<Waiter>) -> Pending {
        Pending {
            kind: PendingKind::Publish {
                packet: Bytes::new(),
                qos: QoS::AtLeastOnce,
                released: false,
                alias_topic: None,
                sent: 0,
            },
            waiter,
            permit: None,
        }
    }

    /// A QoS 1 PUBLISH encoded with packet id 1, to be registered.
    fn encoded(payload: &[u8]) -> BytesMut {
        let p = crate::packet::Publish {
            qos: crate::packet::QoS::AtLeastOnce,
            topic: MqttStr::new("t").unwrap(),
            packet_id: Some(1),
            ..Default::default()
        };
        let mut b = BytesMut::new();
        crate::packet::encode_publish(&p, payload, &mut b).unwrap();
        b
    }

    /// The packet id written in an encoded QoS 1 PUBLISH to "t".
    fn id_in(packet: &Bytes) -> u16 {
        // Fixed header (2 bytes here), topic length (2) and "t" (1).
        u16::from_be_bytes([packet[5], packet[6]])
    }

    #[test]
    fn resends_follow_the_send_order_when_packet_ids_wrap() {
        let mut s = Session {
            last_id: 65533,
            ..Default::default()
        };
        let mut ids = Vec::new();
        for n in 0..4u8 {
            let (id, packet) = s
                .insert_publish(encoded(&[n]), QoS::AtLeastOnce, None, None, None)
                .unwrap();
            assert_eq!(id_in(&packet), id, "the id is written into the packet");
            ids.push(id);
        }
        assert_eq!(ids, vec![65534, 65535, 1, 2]);
        // Not sorted by id: 1, 2, 65534, 65535 would break MQTT-4.6.0-1.
        assert_eq!(s.resend_order(), vec![65534, 65535, 1, 2]);
        // Acknowledged ones leave the order; a later send goes last.
        let ack = |id| {
            Reply::PubAck(PubResp {
                packet_id: id,
                reason: ReasonCode::Success,
                properties: Properties::new(),
            })
        };
        assert!(s.complete(65535, ack(65535)).is_none());
        let (id, _) = s
            .insert_publish(encoded(b"x"), QoS::AtLeastOnce, None, None, None)
            .unwrap();
        assert_eq!(id, 3);
        assert_eq!(s.resend_order(), vec![65534, 1, 2, 3]);
    }

    #[test]
    fn a_discarded_entry_is_gone_and_its_completion_failed() {
        let mut s = Session::default();
        let (f, seen) = recorder();
        let (id, _) = s
            .insert_publish(
                encoded(b"big"),
                QoS::AtLeastOnce,
                None,
                Some(Waiter::Then(f)),
                None,
            )
            .unwrap();
        let (f, r) = s
            .discard(id, Error::PacketTooLarge { size: 9, max: 5 })
            .expect("a completion");
        f(r);
        assert!(s.pending.is_empty());
        assert!(seen.lock().unwrap()[0].is_err());
        assert!(s.discard(id, Error::ConnectionLost).is_none(), "once");
    }

    type Seen = Arc<Mutex<Vec<Result<ReasonCode, String>>>>;

    /// A completion that records what it was given.
    fn recorder() -> (Completion, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let f: Completion = Box::new(move |r: Result<Ack, Error>| {
            s.lock()
                .unwrap()
                .push(r.map(|a| a.reason).map_err(|e| e.to_string()))
        });
        (f, seen)
    }

    #[test]
    fn a_completion_is_handed_back_with_the_ack_not_run() {
        let mut s = Session::default();
        let (f, seen) = recorder();
        let id = s.insert(publish_entry(Some(Waiter::Then(f)))).unwrap();
        assert!(s.has_completion(id));
        let reply = Reply::PubAck(PubResp {
            packet_id: id,
            reason: ReasonCode::NoMatchingSubscribers,
            properties: Properties::new(),
        });
        let (f, r) = s.complete(id, reply).expect("a completion");
        assert!(seen.lock().unwrap().is_empty(), "the session runs nothing");
        assert!(!s.pending.contains_key(&id));
        f(r);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![Ok(ReasonCode::NoMatchingSubscribers)]
        );
    }

    #[test]
    fn a_call_waiter_gets_its_reply_through_the_oneshot() {
        let mut s = Session::default();
        let (tx, mut rx) = oneshot::channel();
        let id = s.insert(publish_entry(Some(Waiter::Call(tx)))).unwrap();
        assert!(!s.has_completion(id));
        let reply = Reply::PubAck(PubResp {
            packet_id: id,
            reason: ReasonCode::Success,
            properties: Properties::new(),
        });
        assert!(s.complete(id, reply).is_none());
        assert!(matches!(rx.try_recv(), Ok(Ok(Reply::PubAck(_)))));
    }

    #[test]
    fn connection_loss_fails_each_completion_once_and_keeps_the_message() {
        let mut s = Session::default();
        let (f, seen) = recorder();
        let id = s.insert(publish_entry(Some(Waiter::Then(f)))).unwrap();
        let failed = s.fail_waiters();
        assert_eq!(failed.len(), 1);
        for (f, r) in failed {
            f(r);
        }
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert!(seen.lock().unwrap()[0].is_err());
        // Kept for a resend, without a waiter: a second loss reports nothing.
        assert!(s.pending.contains_key(&id));
        assert!(s.fail_waiters().is_empty());
        // An ack after a resume completes it silently.
        let reply = Reply::PubAck(PubResp {
            packet_id: id,
            reason: ReasonCode::Success,
            properties: Properties::new(),
        });
        assert!(s.complete(id, reply).is_none());
        assert!(s.pending.is_empty());
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_inbound_message_is_acknowledged_once_for_its_own_receipt() {
        let mut s = Session::default();
        // QoS 1: a resend while queued is not queued again; settled once.
        assert_eq!(s.receipt(5, QoS::AtLeastOnce, false), Receipt::New);
        let a = s.queue_inbound(5, QoS::AtLeastOnce);
        assert_eq!(s.receipt(5, QoS::AtLeastOnce, true), Receipt::Queued);
        assert_eq!(s.inbound_in_flight(), 1);
        assert!(s.settle(&a, true));
        assert!(!s.settle(&a, true), "acknowledged once");
        assert_eq!(s.receipt(5, QoS::AtLeastOnce, false), Receipt::New);
        // QoS 2: delivered until PUBREL; a resend then gets PUBREC only.
        let b = s.queue_inbound(6, QoS::ExactlyOnce);
        assert!(s.settle(&b, true));
        assert_eq!(s.receipt(6, QoS::ExactlyOnce, true), Receipt::Delivered);
        assert_eq!(s.inbound_in_flight(), 1);
        assert!(s.release(6));
        assert!(!s.release(6));
        assert_eq!(s.inbound_in_flight(), 0);
    }

    #[test]
    fn a_cleared_session_never_acknowledges_an_old_receipt() {
        let mut s = Session::default();
        let old = s.queue_inbound(7, QoS::AtLeastOnce);
        drop(s.restart());
        // The new session's broker reuses the id for another message.
        let new = s.queue_inbound(7, QoS::AtLeastOnce);
        assert!(
            !s.settle(&old, true),
            "the old message's ack would ack the new one"
        );
        assert_eq!(s.receipt(7, QoS::AtLeastOnce, true), Receipt::Queued);
        assert!(s.settle(&new, true));
    }

    #[test]
    fn an_acknowledgement_must_fit_the_qos_and_state() {
        use PubAckKind::*;
        let mut s = Session::default();
        let (one, _) = s
            .insert_publish(encoded(b"1"), QoS::AtLeastOnce, None, None, None)
            .unwrap();
        let (two, _) = s
            .insert_publish(encoded(b"2"), QoS::ExactlyOnce, None, None, None)
            .unwrap();
        assert_eq!(s.ack_fit(one, PubAck), AckFit::Expected);
        assert!(matches!(s.ack_fit(one, PubRec), AckFit::Wrong(_)));
        assert!(matches!(s.ack_fit(one, PubComp), AckFit::Wrong(_)));
        assert!(matches!(s.ack_fit(two, PubAck), AckFit::Wrong(_)));
        assert!(matches!(s.ack_fit(two, PubComp), AckFit::Wrong(_)));
        assert_eq!(s.ack_fit(two, PubRec), AckFit::Expected);
        if let Some(PendingKind::Publish { released, .. }) =
            s.pending.get_mut(&two).map(|p| &mut p.kind)
        {
            *released = true;
        }
        assert_eq!(s.ack_fit(two, PubComp), AckFit::Expected);
        assert_eq!(s.ack_fit(two, PubRec), AckFit::Expected, "a repeat");
        assert_eq!(s.ack_fit(999, PubAck), AckFit::Unknown);
    }

    #[test]
    fn a_blamed_publish_fails_with_the_protocol_error_once() {
        let mut s = Session::default();
        let (f, seen) = recorder();
        let (g, other) = recorder();
        let (id, _) = s
            .insert_publish(
                encoded(b"a"),
                QoS::ExactlyOnce,
                None,
                Some(Waiter::Then(f)),
                None,
            )
            .unwrap();
        s.insert_publish(
            encoded(b"b"),
            QoS::AtLeastOnce,
            None,
            Some(Waiter::Then(g)),
            None,
        )
        .unwrap();
        s.blame(id, "PUBACK for QoS 2".into());
        for (f, r) in s.fail_waiters() {
            f(r);
        }
        let seen = seen.lock().unwrap();
        assert!(matches!(&seen[..], [Err(e)] if e.contains("PUBACK for QoS 2")));
        assert!(matches!(&other.lock().unwrap()[..], [Err(e)] if e == "connection lost"));
        assert_eq!(s.pending.len(), 2, "both stay for a resend");
        assert!(s.fault.is_none(), "consumed");
    }

    #[test]
    fn an_ack_id_naming_another_qos_was_not_handed_out() {
        let mut s = Session::default();
        let a = s.queue_inbound(4, QoS::ExactlyOnce);
        let forged = a.ack_id() ^ (3 << 16); // QoS 1 instead of 2
                                             // Claimed, it would send PUBACK for a QoS 2 message, and forget
                                             // it: the broker's resend would then be delivered a second time.
        assert_eq!(
            s.claim(forged, ReasonCode::Success),
            Err(ClaimError::Unknown)
        );
        assert!(s.claim(a.ack_id(), ReasonCode::Success).is_ok());
    }

    #[test]
    fn a_publish_without_dup_on_an_unacknowledged_id_is_a_new_message() {
        let mut s = Session::default();
        s.connected();
        let x = s.queue_inbound(5, QoS::AtLeastOnce);
        // The application holds x (manual acknowledgement); the broker,
        // restored from a save older than x, sends a new message on id 5.
        s.connected();
        assert_eq!(s.receipt(5, QoS::AtLeastOnce, false), Receipt::New);
        let z = s.queue_inbound(5, QoS::AtLeastOnce);
        // x's acknowledgement must not acknowledge z.
        assert!(!s.settle(&x, true), "x's PUBACK would acknowledge z");
        assert_eq!(s.inbound_in_flight(), 1);
        assert!(s.settle(&z, true));
    }

    #[test]
    fn a_qos2_publish_awaiting_pubrel_is_not_delivered_again_with_or_without_dup() {
        let mut s = Session::default();
        let a = s.queue_inbound(8, QoS::ExactlyOnce);
        assert!(s.settle(&a, true));
        assert_eq!(s.receipt(8, QoS::ExactlyOnce, true), Receipt::Delivered);
        // MQTT-4.3.3-9: until PUBREL, PUBREC and no second delivery, even
        // from a broker that resends without DUP.
        assert_eq!(s.receipt(8, QoS::ExactlyOnce, false), Receipt::Delivered);
        assert!(s.release(8), "the id still awaits its PUBREL");
        // After PUBREL the id is free: the next PUBLISH on it is new.
        assert_eq!(s.receipt(8, QoS::ExactlyOnce, false), Receipt::New);
    }

    #[test]
    fn pubrel_for_a_message_not_yet_delivered_is_unknown() {
        let mut s = Session::default();
        let a = s.queue_inbound(9, QoS::ExactlyOnce);
        assert!(!s.release(9), "PUBREC was not sent yet");
        assert!(s.settle(&a, true));
        assert!(s.release(9));
    }

    #[test]
    fn an_ack_crossing_the_resend_keeps_the_resend_out_and_lets_a_new_message_in() {
        let mut s = Session::default();
        s.connected();
        let x = s.queue_inbound(5, QoS::AtLeastOnce);
        // The session resumes; x's ack goes out on the new connection
        // before its resend is read.
        s.connected();
        assert!(s.settle(&x, true));
        assert_eq!(s.inbound_in_flight(), 0, "acknowledged: not in flight");
        assert_eq!(s.receipt(5, QoS::AtLeastOnce, true), Receipt::Crossed);
        // Then the broker reuses the id: a new message (no DUP).
        assert_eq!(s.receipt(5, QoS::AtLeastOnce, false), Receipt::New);
        // A tombstone lives for its connection only, and never takes a
        // message without DUP.
        let y = s.queue_inbound(6, QoS::AtLeastOnce);
        s.connected();
        assert!(s.settle(&y, true));
        assert_eq!(s.receipt(6, QoS::AtLeastOnce, false), Receipt::New);
        s.queue_inbound(6, QoS::AtLeastOnce);
        let z = s.queue_inbound(7, QoS::AtLeastOnce);
        s.connected();
        assert!(s.settle(&z, true));
        s.connected();
        assert_eq!(s.receipt(7, QoS::AtLeastOnce, true), Receipt::New);
        assert_eq!(s.inbound_in_flight(), 1, "only 6");
    }
}
