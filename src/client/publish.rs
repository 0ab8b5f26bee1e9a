//! Publishing: straight onto the connection when there is one, into the
//! offline queue while the client reconnects (see `offline`).
//!
//! A QoS 1/2 message is registered in the session, with its encoded
//! packet and its waiter, right before it is written (see
//! `Inner::write_publish`); from then on the session owns it: when the
//! connection is lost and the client reconnects, the waiter stays with the
//! entry and learns the outcome after the resend on the next connection
//! (see `resend`). A publish that fails before its packet was handed to
//! the writer (the connection ended while it waited for a Receive Maximum
//! slot, say) has sent nothing, and goes again: on the next connection,
//! through the queue.

use super::session::{Reply, Waiter};
use super::writer::Now;
use super::{
    check_topic_name, lock, not_allowed, v311, Ack, Completion, Connection, Error, Event, Inner,
    MqttClient,
};
use crate::packet::{self, Properties, PropertyId, Publish, QoS};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

/// A publish on its way: its waiter until the session (or the queue)
/// takes it, and whether its packet was handed to the writer, after which
/// it must not be sent again.
pub(super) struct Pass {
    pub waiter: Option<Waiter>,
    pub committed: bool,
}

/// A QoS 1/2 publish registered in the session.
pub(super) struct Registered {
    id: u16,
    /// Its waiter is a completion (`publish_then` with one).
    asynchronous: bool,
    /// It has no waiter (`publish_then` without a completion).
    unwatched: bool,
    /// Its record in the store, with persistence (see `persist`).
    ticket: Option<(Arc<super::persist::Store>, u64)>,
}

/// What `MqttClient::publish_now` did.
pub(crate) enum PublishNow {
    /// Done: written (or refused, or failed).
    Done(Result<Ack, Error>),
    /// Partly written, the writer held: `MqttClient::publish_rest` writes
    /// the rest (dropped, a task does).
    Rest(PublishRest),
    /// Nothing done (no check failed, nothing sent): publish the async way.
    NotNow,
}

pub(crate) use super::writer::Rest as PublishRest;

/// Where a publish went.
enum Sent {
    /// QoS 0, written.
    Written,
    /// QoS 1/2, registered in the session and written.
    InFlight,
}

impl MqttClient {
    /// Publishes a message. Returns once written (QoS 0), on PUBACK (QoS 1)
    /// or on PUBCOMP or a failing PUBREC (QoS 2). While the client
    /// reconnects, the message is queued (see `offline`): QoS 0 returns
    /// then, QoS 1/2 waits for its acknowledgement after the reconnect; a
    /// QoS 1/2 message in flight when the connection is lost is resent, or
    /// published afresh on a new session, and the call returns its
    /// outcome. All of it within the operation timeout; after a `Timeout`
    /// the message stays queued or in flight and may still be delivered.
    /// An acknowledgement of the wrong kind for the QoS ends the
    /// connection and fails the call with `Error::Protocol` (see
    /// `Session::ack_fit`).
    pub async fn publish(
        &self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        properties: Properties,
    ) -> Result<Ack, Error> {
        let publish = self.outgoing(topic, qos, retain, properties)?;
        self.publish_outgoing(publish, payload).await
    }

    /// Checks what a publish may carry and builds its PUBLISH (the first
    /// step of `publish`).
    pub(crate) fn outgoing(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        properties: Properties,
    ) -> Result<Publish, Error> {
        v311::check_properties(self.inner.version(), &properties, "PUBLISH")?;
        outgoing(topic, qos, retain, properties)
    }

    /// `publish` of what `outgoing` built.
    pub(crate) async fn publish_outgoing(
        &self,
        publish: Publish,
        payload: &[u8],
    ) -> Result<Ack, Error> {
        match self.publish_now(&publish, payload) {
            PublishNow::Done(r) => return r,
            PublishNow::Rest(rest) => return self.publish_rest(rest).await,
            PublishNow::NotNow => {}
        }
        let call = self.publish_untimed(publish, payload);
        self.inner
            .within_operation_timeout(
                "the acknowledgement (the message stays queued or in flight)",
                call,
            )
            .await
    }

    /// The rest of a QoS 0 publish that `publish_now` began: the socket
    /// took only part of it.
    pub(crate) async fn publish_rest(&self, rest: PublishRest) -> Result<Ack, Error> {
        let call = rest.finish();
        self.inner
            .within_operation_timeout(
                "the acknowledgement (the message stays queued or in flight)",
                call,
            )
            .await
            .map(|()| Ack::success())
    }

    /// `publish_outgoing` of a QoS 0 message begun on the calling thread,
    /// without a runtime, when that needs no waiting: the client
    /// connected, the resends and the offline queue of the connection gone
    /// out (`Connection::resends_finished`: until then the async path
    /// waits for them, so the message goes after them), the writer free
    /// and the transport a TCP or Unix socket (see `Inner::send_now`). This is what makes a blocking QoS 0
    /// publish from C cost no more than the packet's encoding and one
    /// `send` (docs/performance.md).
    pub(crate) fn publish_now(&self, publish: &Publish, payload: &[u8]) -> PublishNow {
        if publish.qos != QoS::AtMostOnce || self.inner.delivery.is_closed() {
            return PublishNow::NotNow;
        }
        // Not before the resends and the offline queue of a new connection
        // went out (see `resend`): the async path waits for them.
        let Some(conn) = self
            .inner
            .current()
            .filter(|c| c.is_alive() && c.resends_finished())
        else {
            return PublishNow::NotNow;
        };
        let full_len = match conn.check_publish_fits(publish, payload.len()) {
            Ok(n) => n,
            Err(e) => return PublishNow::Done(Err(e)),
        };
        let mut pass = Pass {
            waiter: None,
            committed: false,
        };
        match self
            .inner
            .write_publish_now(&conn, publish, payload, full_len, &mut pass)
        {
            None => PublishNow::NotNow,
            Some(Err(e)) => PublishNow::Done(Err(e)),
            Some(Ok(Now::Written(r))) => PublishNow::Done(r.map(|()| Ack::success())),
            Some(Ok(Now::Rest(rest))) => PublishNow::Rest(rest),
        }
    }

    /// `publish` without the operation timeout.
    pub(super) async fn publish_untimed(
        &self,
        publish: Publish,
        payload: &[u8],
    ) -> Result<Ack, Error> {
        if publish.qos == QoS::AtMostOnce {
            // No waiter: a QoS 0 publish is done once written, and the
            // channel would be an allocation per message.
            self.route(publish, payload, None).await?;
            return Ok(Ack::success());
        }
        let (tx, rx) = oneshot::channel();
        self.route(publish, payload, Some(Waiter::Call(tx))).await?;
        match rx.await {
            Ok(Ok(Reply::PubAck(r))) => Ok(Ack {
                reason: r.reason,
                properties: r.properties,
            }),
            Ok(Ok(_)) => Err(Error::Internal("wrong reply kind")),
            Ok(Err(e)) => Err(e),
            // The entry went without an outcome: the client was closed.
            Err(_) => Err(Error::ConnectionLost),
        }
    }

    /// Publishes a message without waiting for its acknowledgement.
    /// Returns once the PUBLISH is written (after waiting, for QoS 1/2, for
    /// a free slot of the server's Receive Maximum, and for room in the
    /// delivery queue at QoS 0), or queued while the client reconnects.
    /// On `Ok`, `then` (if any) runs exactly once, on the delivery thread
    /// in order with the other callbacks: at QoS 0 with success once
    /// written, at QoS 1/2 with the PUBACK / PUBCOMP / failing PUBREC
    /// (after the resend, when the connection was lost and the client
    /// reconnected), or with an error: `ConnectionLost` when the
    /// connection ends and the client does not reconnect (the message
    /// stays in the session or the queue for the next connection),
    /// `QueueFull` when the queue dropped it, `Expired`. On `Err`, `then`
    /// is dropped unrun. The operation timeout does not apply: nothing
    /// waits. When the client is closed, completions not yet run are
    /// dropped unrun.
    pub async fn publish_then(
        &self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        properties: Properties,
        then: Option<Completion>,
    ) -> Result<(), Error> {
        v311::check_properties(self.inner.version(), &properties, "PUBLISH")?;
        let publish = outgoing(topic, qos, retain, properties)?;
        let left = self.route(publish, payload, then.map(Waiter::Then)).await?;
        if let Some(Waiter::Then(f)) = left {
            // Room first, as for a received message: a flood of QoS 0
            // publishes must not grow the queue past its bound.
            self.inner.delivery.wait_for_space().await;
            self.inner
                .delivery
                .push(&self.inner, Event::Completion(f, Ok(Ack::success())));
        }
        Ok(())
    }

    /// Sends `publish` on the current connection, or queues it while the
    /// client reconnects. Returns the waiter of a QoS 0 message written
    /// (unused: the caller reports the write).
    async fn route(
        &self,
        publish: Publish,
        payload: &[u8],
        waiter: Option<Waiter>,
    ) -> Result<Option<Waiter>, Error> {
        let mut pass = Pass {
            waiter,
            committed: false,
        };
        loop {
            if let Some(conn) = self.inner.current() {
                match self.send_on(&conn, &publish, payload, &mut pass).await {
                    Ok(Sent::Written) => return Ok(pass.waiter.take()),
                    Ok(_) => return Ok(None),
                    // Nothing was sent: again, on what follows.
                    Err(Error::ConnectionLost)
                        if !pass.committed && !conn.is_alive() && self.inner.may_retry() =>
                    {
                        continue
                    }
                    Err(e) => return Err(e),
                }
            }
            if let Some(stored) = self.inner.enqueue(&publish, payload, &mut pass.waiter)? {
                // With persistence: on disk before the call returns.
                self.inner.queued_on_disk(stored).await?;
                return Ok(None);
            }
        }
    }

    /// Checks `publish` against what the server said in CONNACK, waits
    /// for the resends of the connection and its drain of the offline
    /// queue (any QoS: the queued messages go first), for a Receive
    /// Maximum slot (QoS 1/2), registers and writes it.
    async fn send_on(
        &self,
        conn: &Arc<Connection>,
        publish: &Publish,
        payload: &[u8],
        pass: &mut Pass,
    ) -> Result<Sent, Error> {
        let full_len = conn.check_publish_fits(publish, payload.len())?;
        conn.wait_for_resends().await?;
        if publish.qos == QoS::AtMostOnce {
            self.inner
                .write_publish(conn, publish, payload, full_len, pass, None)
                .await?;
            return Ok(Sent::Written);
        }
        let permit = conn.acquire_send_slot().await?;
        self.inner
            .write_publish(conn, publish, payload, full_len, pass, Some(permit))
            .await?;
        Ok(Sent::InFlight)
    }
}

/// Checks what a publish may carry and builds its PUBLISH (payload apart).
pub(super) fn outgoing(
    topic: &str,
    qos: QoS,
    retain: bool,
    properties: Properties,
) -> Result<Publish, Error> {
    check_topic_name(topic)?;
    if let Some(id) = properties.first_not_allowed(
        packet::PropertyContext::Packet(packet::PacketType::Publish),
        packet::Direction::ToServer,
    ) {
        return Err(not_allowed(id, "PUBLISH"));
    }
    if properties.get(PropertyId::TopicAlias).is_some() {
        return Err(Error::InvalidArgument(
            "Topic Alias is chosen by the library (see the outgoing topic aliases option)".into(),
        ));
    }
    Ok(Publish {
        dup: false,
        qos,
        retain,
        topic: packet::MqttStr::new(topic)?,
        // A placeholder of the right size: the id is allocated and
        // written into the packet when it is registered.
        packet_id: (qos != QoS::AtMostOnce).then_some(u16::MAX),
        properties,
        payload: Bytes::new(),
    })
}

/// Encodes a PUBLISH with `payload` copied once, into the packet buffer.
pub(super) fn encode_publish(publish: &Publish, payload: &[u8]) -> Result<BytesMut, Error> {
    let mut buf = BytesMut::new();
    packet::encode_publish(publish, payload, &mut buf)?;
    Ok(buf)
}

impl Inner {
    /// Registers a QoS 1/2 publish (`permit` given) with its `encoded`
    /// packet and the waiter of `pass` (see `Session::insert_publish`),
    /// unless the connection is gone. Called under the outbox's lock,
    /// right before the bytes are handed to the writer (see `writer`),
    /// which `pass` then records as committed.
    /// Returns the packet to write: with its packet id for QoS 1/2.
    /// Counts the message sent (`Stats::messages_sent`, `payload` bytes):
    /// from here it reaches the wire whole, or the connection ends.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn register_publish(
        &self,
        conn: &Connection,
        encoded: BytesMut,
        qos: QoS,
        payload: usize,
        alias_topic: Option<packet::MqttStr>,
        pass: &mut Pass,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<(Bytes, Option<Registered>), Error> {
        let Some(permit) = permit else {
            pass.committed = true;
            self.stats.count_sent(qos, payload);
            return Ok((encoded.freeze(), None));
        };
        let mut s = lock(&self.session);
        if !conn.is_alive() {
            return Err(Error::ConnectionLost);
        }
        let waiter = pass.waiter.take();
        let registered = |id| Registered {
            id,
            asynchronous: matches!(waiter, Some(Waiter::Then(_))),
            unwatched: waiter.is_none(),
            ticket: None,
        };
        let r = registered(0);
        let (id, bytes) = s.insert_publish(encoded, qos, alias_topic, waiter, Some(permit))?;
        pass.committed = true;
        self.stats.count_sent(qos, payload);
        let ticket = s.ticket();
        Ok((bytes, Some(Registered { id, ticket, ..r })))
    }

    /// The result of writing a publish (a failed write has ended the
    /// connection). A registered publish's outcome is reported once. When
    /// the client reconnects, its entry kept the waiter (see
    /// `Session::suspend`): it is in flight, and the outcome comes after
    /// the resend. Otherwise the loss was handed to the waiter, and an
    /// asynchronous publish counts as sent (it stays in the session for
    /// the next connection); if the connection is somehow still up, the
    /// waiter is taken back and the error returned.
    ///
    /// With persistence, a registered publish is on disk first (its
    /// fdatasync overlapping the round trip to the server), so that one
    /// that returns Ok survives a crash. If the store fails, the error is
    /// the outcome: the waiter is taken back (an asynchronous publish
    /// whose completion was already queued counts as sent, as above).
    pub(super) async fn publish_written(
        &self,
        conn: &Connection,
        written: Result<(), Error>,
        registered: Option<Registered>,
    ) -> Result<(), Error> {
        let stored = match registered.as_ref().and_then(|r| r.ticket.as_ref()) {
            Some((store, t)) => store.commit(*t).await,
            None => Ok(()),
        };
        match (stored, registered) {
            (Err(e), Some(r)) => self.not_stored(e, &r),
            (_, registered) => self.written_outcome(conn, written, registered),
        }
    }

    /// The outcome of a registered publish whose record the store could
    /// not write: `e`, its waiter taken back, unless an asynchronous
    /// publish's completion has the outcome already.
    fn not_stored(&self, e: Error, r: &Registered) -> Result<(), Error> {
        let taken_back = lock(&self.session)
            .pending
            .get_mut(&r.id)
            .and_then(|p| p.waiter.take())
            .is_some();
        if !taken_back && r.asynchronous {
            return Ok(());
        }
        Err(e)
    }

    fn written_outcome(
        &self,
        conn: &Connection,
        written: Result<(), Error>,
        registered: Option<Registered>,
    ) -> Result<(), Error> {
        let Err(e) = written else {
            return Ok(());
        };
        if let Some(r) = registered {
            let mut s = lock(&self.session);
            let waiting = s.pending.get(&r.id).is_some_and(|p| p.waiter.is_some());
            if !r.unwatched && !waiting {
                // Its waiter has the outcome already: the client
                // reconnected, resent it and got the acknowledgement
                // before this caller woke from the failed write (or the
                // loss was final and reported). The caller reads it
                // there; `ConnectionLost` here would fail a publish that
                // succeeded.
                return Ok(());
            }
            let rides_out = if r.unwatched {
                self.may_retry()
            } else {
                waiting
            };
            if rides_out && !conn.is_alive() {
                return Ok(());
            }
            let taken_back = s
                .pending
                .get_mut(&r.id)
                .and_then(|p| p.waiter.take())
                .is_some();
            if !taken_back && r.asynchronous {
                return Ok(());
            }
        }
        Err(e)
    }
}
