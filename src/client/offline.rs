//! The offline queue: publishes made while the client reconnects wait
//! here, bounded in messages and bytes, and go out in order on the next
//! connection, after the messages in flight at the loss (resent by
//! `resend`) and before any newer publish (those wait for the resend task,
//! which drains this queue last).
//!
//! A message keeps its waiter (the blocking call's oneshot, or the
//! completion of `publish_then`) until it is registered in the session
//! and written: its outcome is reported after delivery, as for a message
//! published while connected. What a full queue does is the policy's
//! choice (`QueuePolicy`); a message whose Message Expiry Interval passes
//! while queued is dropped (counted, never sent late), and one sent later
//! than queued carries the interval that remains (MQTT-3.3.2-6).
//!
//! Expired messages are dropped when the queue is next touched: a publish
//! into it, its drain after the reconnect, or a read of its counters.
//!
//! The drain takes a message off the queue only while it holds the writer
//! lock and registers it in the session in the same step, so a drain cut
//! short by a lost connection (its task is aborted at any await) leaves
//! every message either queued or in the session.
//!
//! **With persistence** (see `persist`), a QoS 1/2 message is recorded
//! when it is queued, and the publish returns once the record is on disk;
//! it is recorded again when it leaves the queue: unsent (dropped,
//! expired, refused), or registered in the session, in one record that
//! moves it. The next client of the store loads the queue as it was; an
//! `mqtt_client_free` keeps it on disk.

use super::logging::{Level, Logger};
use super::options::{OfflineQueueLimits, QueuePolicy};
use super::persist::{QueueSlot, QueuedMessage, State, Store};
use super::session::{Finished, Waiter};
use super::{flow, lock, Connection, Error, Event, Inner};
use crate::packet::{self, Property, PropertyId, Publish, QoS};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// A queued publish.
pub(super) struct Queued {
    /// Its packet id a placeholder (QoS 1/2), its payload empty.
    pub publish: Publish,
    pub payload: Bytes,
    pub waiter: Option<Waiter>,
    /// The encoded size, counted against the byte bound.
    size: usize,
    queued_at: Instant,
    /// The Message Expiry Interval it was published with, in seconds.
    expiry: Option<u32>,
    /// Its record in the store, with persistence (QoS 1/2).
    stored: Option<QueueSlot>,
}

impl Queued {
    pub fn new(publish: Publish, payload: Bytes, waiter: Option<Waiter>) -> Result<Queued, Error> {
        let size = packet::publish_len(&publish, payload.len())?;
        let expiry = publish
            .properties
            .get_int(PropertyId::MessageExpiryInterval);
        Ok(Queued {
            publish,
            payload,
            waiter,
            size,
            queued_at: Instant::now(),
            expiry,
            stored: None,
        })
    }

    /// A message the store held queued (see `persist`), as it was queued:
    /// its Message Expiry Interval counts the time since, across the
    /// restart. None for a packet that does not decode (never the case:
    /// the store checked it).
    fn restored(m: &QueuedMessage, store: &Arc<Store>) -> Option<Queued> {
        let mut buf = BytesMut::from(&m.packet[..]);
        let Ok(Some(packet::Packet::Publish(mut publish))) = packet::decode(&mut buf, usize::MAX)
        else {
            return None;
        };
        let payload = std::mem::take(&mut publish.payload);
        let mut q = Queued::new(publish, payload, None).ok()?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let waited = std::time::Duration::from_millis(now_ms.saturating_sub(m.queued_at_ms));
        q.queued_at = Instant::now()
            .checked_sub(waited)
            .unwrap_or_else(Instant::now);
        q.stored = Some(store.slot(m.qseq));
        Some(q)
    }

    fn expired(&self, now: Instant) -> bool {
        self.expiry
            .is_some_and(|e| now.duration_since(self.queued_at).as_secs() >= e as u64)
    }

    /// Ends the message unsent: its waiter gets `error`.
    fn fail(self, error: Error) -> Option<Finished> {
        if let Some(slot) = &self.stored {
            slot.unqueued();
        }
        self.waiter?.finish(Err(error))
    }
}

pub(super) struct OfflineQueue {
    items: VecDeque<Queued>,
    bytes: usize,
    limits: OfflineQueueLimits,
}

impl OfflineQueue {
    pub fn new(limits: OfflineQueueLimits) -> Self {
        OfflineQueue {
            items: VecDeque::new(),
            bytes: 0,
            limits,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Puts back what the store held queued (`state`, read from its
    /// log), in order and whatever the limits: those messages were
    /// accepted.
    pub fn restore(&mut self, state: &State, store: &Arc<Store>) {
        for q in state.queued().filter_map(|m| Queued::restored(m, store)) {
            self.bytes += q.size;
            self.items.push_back(q);
        }
    }

    /// Takes the queued message recorded as `qseq` out of the queue
    /// (recorded unsent), with its waiter; None when it left already.
    pub fn take_back(&mut self, qseq: u64) -> Option<Option<Waiter>> {
        let at = self
            .items
            .iter()
            .position(|q| q.stored.as_ref().is_some_and(|s| s.qseq == qseq))?;
        let q = self.remove(at)?;
        if let Some(slot) = &q.stored {
            slot.unqueued();
        }
        Some(q.waiter)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds `q` at the back, making room by the policy. Returns the
    /// completions of the messages it dropped (expired or evicted); on
    /// `Err` (`QueueFull`) nothing was queued.
    pub fn push(
        &mut self,
        q: Queued,
        stats: &flow::Stats,
        logger: &Logger,
    ) -> Result<Vec<Finished>, Error> {
        let mut out = self.prune_expired(stats);
        let limits = self.limits;
        if q.size > limits.max_bytes {
            return Err(Error::QueueFull(format!(
                "the message ({} bytes encoded) is larger than the offline queue ({} bytes)",
                q.size, limits.max_bytes
            )));
        }
        while self.items.len() >= limits.max_messages || self.bytes + q.size > limits.max_bytes {
            if limits.policy == QueuePolicy::FailNew {
                return Err(Error::QueueFull(format!(
                    "the offline queue is full ({} messages, {} bytes; at most {} messages, {} bytes)",
                    self.items.len(),
                    self.bytes,
                    limits.max_messages,
                    limits.max_bytes
                )));
            }
            out.extend(self.evict_oldest(stats, logger));
        }
        self.bytes += q.size;
        self.items.push_back(q);
        stats.count_queued();
        Ok(out)
    }

    /// Drops the oldest QoS 0 message, else the oldest message.
    fn evict_oldest(&mut self, stats: &flow::Stats, logger: &Logger) -> Option<Finished> {
        let at = self
            .items
            .iter()
            .position(|q| q.publish.qos == QoS::AtMostOnce)
            .unwrap_or(0);
        let q = self.remove(at)?;
        stats.count_queue_dropped();
        logger.log(
            Level::Warning,
            format_args!(
                "the offline queue is full: dropped a queued QoS {} message to '{}' (counted)",
                q.publish.qos as u8,
                q.publish.topic.as_str()
            ),
        );
        q.fail(Error::QueueFull(
            "dropped from the full offline queue (policy: drop oldest)".into(),
        ))
    }

    fn remove(&mut self, at: usize) -> Option<Queued> {
        let q = self.items.remove(at)?;
        self.bytes -= q.size;
        Some(q)
    }

    /// Drops the messages whose Message Expiry Interval has passed.
    #[must_use = "the completions must be queued for delivery"]
    pub fn prune_expired(&mut self, stats: &flow::Stats) -> Vec<Finished> {
        let now = Instant::now();
        if !self.items.iter().any(|q| q.expired(now)) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.items.len() {
            if !self.items[i].expired(now) {
                i += 1;
                continue;
            }
            if let Some(q) = self.remove(i) {
                stats.count_queue_expired();
                out.extend(q.fail(Error::Expired));
            }
        }
        out
    }

    fn pop_front(&mut self) -> Option<Queued> {
        self.remove(0)
    }

    fn push_front(&mut self, q: Queued) {
        self.bytes += q.size;
        self.items.push_front(q);
    }

    fn front_qos(&self) -> Option<QoS> {
        self.items.front().map(|q| q.publish.qos)
    }

    /// The waiters learn `ConnectionLost` (the reconnection stopped); the
    /// messages stay, for the next connection.
    #[must_use = "the completions must be queued for delivery"]
    pub fn fail_waiters(&mut self) -> Vec<Finished> {
        self.items
            .iter_mut()
            .filter_map(|q| q.waiter.take()?.finish(Err(Error::ConnectionLost)))
            .collect()
    }

    /// Empties the queue (the client is closed); completions are dropped
    /// unrun, as everywhere after `close`.
    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }
}

impl Inner {
    /// Queues a publish made while the client reconnects. Ok(None) when
    /// a connection came meanwhile (the caller publishes on it);
    /// `NotConnected` when the client does not reconnect or the queue
    /// takes no such message. Ok(Some(slot)) when queued: with
    /// persistence and QoS 1/2, its queue number in the store, whose
    /// record the caller waits for (see `Inner::queued_on_disk`).
    pub(super) fn enqueue(
        self: &Arc<Self>,
        publish: &Publish,
        payload: &[u8],
        waiter: &mut Option<Waiter>,
    ) -> Result<Option<Option<u64>>, Error> {
        let limits = self.options.offline_queue;
        let mut q = lock(&self.offline);
        // Looked at under the queue lock, which the drain of a new
        // connection takes after the connection is installed: a message
        // queued here is seen by that drain.
        if self.current().is_some() {
            return Ok(None);
        }
        match self.link() {
            super::link::Link::Reconnecting => {}
            super::link::Link::Closed => return Err(Error::Closed),
            _ => return Err(Error::NotConnected),
        }
        if matches!(waiter, Some(Waiter::Call(_))) {
            // Its caller would wait for the outcome (see `link`).
            self.not_waiting_in_pre_connect()?;
        }
        if !limits.enabled() || (publish.qos == QoS::AtMostOnce && !limits.qos0) {
            return Err(Error::NotConnected);
        }
        let mut item = Queued::new(
            publish.clone(),
            Bytes::copy_from_slice(payload),
            waiter.take(),
        )?;
        // With persistence, numbered before the push and recorded after
        // it: a message the queue refuses leaves no record.
        let stored = match self.store.as_ref() {
            Some(st) if publish.qos != QoS::AtMostOnce => {
                let mut buf = BytesMut::new();
                packet::encode_publish(&item.publish, &item.payload, &mut buf)?;
                let qseq = st.next_qseq();
                item.stored = Some(st.slot(qseq));
                Some((st, qseq, buf.freeze()))
            }
            _ => None,
        };
        let finished = q.push(item, &self.stats, &self.logger)?;
        let qseq = stored.map(|(st, qseq, bytes)| {
            st.record_queued(qseq, publish.qos, bytes);
            qseq
        });
        drop(q);
        self.delivery.push_finished(self, finished);
        Ok(Some(qseq))
    }

    /// With persistence, waits until the queued message `qseq` is on disk.
    /// If the store failed, the message is taken back out of the queue
    /// (unless it left already) and the error is the publish's outcome.
    pub(super) async fn queued_on_disk(self: &Arc<Self>, qseq: Option<u64>) -> Result<(), Error> {
        let (Some(store), Some(qseq)) = (&self.store, qseq) else {
            return Ok(());
        };
        let Err(e) = store.commit(store.last_ticket()).await else {
            return Ok(());
        };
        match lock(&self.offline).take_back(qseq) {
            // Gone: sent or dropped meanwhile; its waiter has the outcome.
            None => Ok(()),
            Some(_waiter) => Err(e),
        }
    }

    /// Drops the expired messages of the offline queue now (before its
    /// counters are read).
    pub(super) fn prune_offline(self: &Arc<Self>) {
        let finished = lock(&self.offline).prune_expired(&self.stats);
        self.delivery.push_finished(self, finished);
    }
}

/// Sends the queued messages on `conn`, in order, until the queue is
/// empty. Each QoS 1/2 message waits for a slot of the Receive Maximum.
/// Err when the connection ended.
pub(super) async fn drain(inner: &Arc<Inner>, conn: &Arc<Connection>) -> Result<(), Error> {
    loop {
        let front = {
            let mut q = lock(&inner.offline);
            let expired = q.prune_expired(&inner.stats);
            inner.delivery.push_finished(inner, expired);
            q.front_qos()
        };
        let Some(qos) = front else {
            return Ok(());
        };
        let permit = match qos {
            QoS::AtMostOnce => None,
            _ => Some(conn.acquire_send_slot().await?),
        };
        let w = inner.lock_writer(conn).await?;
        let Some(mut q) = lock(&inner.offline).pop_front() else {
            return Ok(());
        };
        // The front may have changed (a late publisher's eviction) to a
        // message that needs a slot we do not hold: back, and again.
        if q.publish.qos != QoS::AtMostOnce && permit.is_none() {
            lock(&inner.offline).push_front(q);
            continue;
        }
        let encoded = match prepare(inner, conn, &mut q) {
            Ok(b) => b,
            Err(e) => {
                inner.log(
                    Level::Warning,
                    format_args!(
                        "a queued message to '{}' was not sent: {e}",
                        q.publish.topic.as_str()
                    ),
                );
                let finished = q.fail(e);
                inner
                    .delivery
                    .push_finished(inner, finished.into_iter().collect());
                continue;
            }
        };
        if q.publish.qos == QoS::AtMostOnce {
            inner.stats.count_sent(QoS::AtMostOnce, q.payload.len());
            let written = w.write(encoded.freeze()).await;
            let finished = q.waiter.and_then(|w| {
                w.finish(
                    written
                        .as_ref()
                        .map(|_| ok())
                        .map_err(|_| Error::ConnectionLost),
                )
            });
            if let Some((f, r)) = finished {
                inner.delivery.push(inner, Event::Completion(f, r));
            }
            written?;
            continue;
        }
        let bytes = {
            let mut s = lock(&inner.session);
            if !conn.is_alive() {
                drop(s);
                lock(&inner.offline).push_front(q);
                return Err(Error::ConnectionLost);
            }
            let qos = q.publish.qos;
            let qseq = q.stored.as_ref().map(|slot| slot.qseq);
            let registered = s.insert_queued_publish(encoded, qos, q.waiter.take(), permit, qseq);
            match registered {
                Ok((_, bytes)) => {
                    inner.stats.count_sent(qos, q.payload.len());
                    bytes
                }
                Err(e) => {
                    drop(s);
                    let finished = q.fail(e);
                    inner
                        .delivery
                        .push_finished(inner, finished.into_iter().collect());
                    continue;
                }
            }
        };
        // A failed write ends the connection; the message is in the
        // session then, and rides out the reconnect.
        w.write(bytes).await?;
    }
}

/// A successful outcome as a reply, for a QoS 0 message's completion.
fn ok() -> super::session::Reply {
    super::session::Reply::PubAck(packet::PubResp {
        packet_id: 0,
        reason: packet::ReasonCode::Success,
        properties: Default::default(),
    })
}

/// The message encoded for `conn`: with the Message Expiry Interval that
/// remains, checked against what the server said in CONNACK. An error
/// (expired, now too large, above the server's Maximum QoS) discards it.
fn prepare(inner: &Inner, conn: &Connection, q: &mut Queued) -> Result<BytesMut, Error> {
    if let Some(e) = q.expiry {
        let waited = q.queued_at.elapsed().as_secs();
        if waited >= e as u64 {
            inner.stats.count_queue_expired();
            return Err(Error::Expired);
        }
        q.publish
            .properties
            .set(Property::MessageExpiryInterval(e - waited as u32));
    }
    conn.check_publish(q.publish.qos, q.publish.retain)?;
    let mut buf = BytesMut::new();
    packet::encode_publish(&q.publish, &q.payload, &mut buf)?;
    conn.check_size(buf.len())?;
    Ok(buf)
}
