//! Acknowledgements of received QoS 1/2 messages whose callbacks returned.
//!
//! The drain job (see `delivery`) never waits for the writer: it runs
//! application code, and a write can block for as long as the broker does
//! not read (behind a publisher stuck on a full socket, say). A drain job
//! blocked there would stop draining the queue; the reader, waiting for
//! room, would stop reading, and the keep-alive, which does not count that
//! pause as silence, would never see a dead broker. So after a callback
//! returns, its acknowledgement goes into the client's [`PendingAcks`] and
//! the job goes on with the next event.
//!
//! **Flat combining.** The first acknowledgement pushed while no flush is
//! scheduled spawns one flush task; those pushed until that task takes the
//! batch join it. The task takes the writer lock first and only then the
//! batch, so a batch grows for as long as the writer is busy, and while
//! messages keep the queue busy one task and one write carry many
//! acknowledgements rather than one each. Nothing waits on a timer: an
//! acknowledgement goes out as soon as the writer is free, whatever the
//! next callback does.
//!
//! **The idle case.** When nothing else is queued (messages arriving one
//! at a time), no other acknowledgement would join the batch, and a task
//! per message would cost a spawn and a thread wake-up each. Then, if the
//! writer is free at that moment (`try_lock`, never a wait), the drain job
//! takes the batch and starts the write itself: one poll, which on a
//! socket with room writes the few bytes at once; if the socket is full,
//! the rest is handed to a task with the writer lock (see `writer`), so
//! the job never waits for the broker either way.
//!
//! **Before DISCONNECT.** `disconnect` (and a DISCONNECT for a protocol
//! error) takes the writer lock, then the pending acknowledgements, and
//! writes them ahead of the DISCONNECT in one write. So the
//! acknowledgement of a message whose callback returned either goes out
//! before DISCONNECT or stays pending and is settled without a write once
//! the connection is gone: the broker then resends the message on resume,
//! and the resend is answered with the acknowledgement, not delivered
//! again (`session::Receipt::Answer`).
//!
//! **Manual acknowledgement.** With `ClientOptions::manual_ack`, the drain
//! job pushes nothing: [`MqttClient::ack`](super::MqttClient::ack) claims
//! the message's session entry (so a second ack of it fails) and pushes
//! its acknowledgement here, from any thread, never waiting.
//!
//! **With persistence.** A delivered QoS 2 message is recorded when it is
//! settled, and the record is on disk before its PUBREC is written (see
//! `persist`): the write waits for the commit, holding the writer lock, so
//! the acknowledgements keep their order and their connection; the
//! acknowledgements of a batch share one fdatasync. Such an
//! acknowledgement never takes the idle path (a write started there must
//! not wait).

use super::persist::Store;
use super::session::{ClaimError, InboundAck};
use super::writer::Writer;
use super::{lock, Connection, Error, Inner};
use crate::packet::{self, Packet, Properties, PubResp, QoS, ReasonCode};
use bytes::{Bytes, BytesMut};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, RawWaker, RawWakerVTable, Waker};

/// Acknowledgements due, not yet written (see the module docs).
#[derive(Default)]
pub(super) struct PendingAcks {
    batch: Mutex<Batch>,
}

#[derive(Default)]
struct Batch {
    items: Vec<InboundAck>,
    /// A flush task is spawned and has not taken the batch yet.
    scheduled: bool,
}

impl PendingAcks {
    /// Adds the acknowledgement of a message whose callback returned and
    /// spawns a flush task unless one is already scheduled; `idle`: no
    /// other event is queued, so the write is started here if the writer
    /// is free (see the module docs).
    pub(super) fn push(&self, inner: &Arc<Inner>, ack: InboundAck, idle: bool) {
        let mut b = lock(&self.batch);
        b.items.push(ack);
        if b.scheduled {
            return;
        }
        // Never waits: the lock order elsewhere is writer, then this. A
        // PUBREC that must wait for the disk first goes to a task.
        let must_wait = ack.qos == QoS::ExactlyOnce && inner.store.is_some();
        let idle = idle && !must_wait;
        if let Some(w) = idle.then(|| try_current_writer(inner)).flatten() {
            let acks = std::mem::take(&mut b.items);
            drop(b);
            start(write_acks(inner, w, &acks));
            return;
        }
        b.scheduled = true;
        drop(b);
        inner.runtime.spawn(flush(inner.clone()));
    }

    /// Takes the batch; `flushing`: by the scheduled flush task, after
    /// which the next push schedules another.
    fn take(&self, flushing: bool) -> Vec<InboundAck> {
        let mut b = lock(&self.batch);
        if flushing {
            b.scheduled = false;
        }
        std::mem::take(&mut b.items)
    }
}

/// The flush task: writes the pending acknowledgements on the connection
/// current when it gets the writer lock. Without one, they are settled
/// without a write (the broker resends those messages on resume, and the
/// resends are answered then).
async fn flush(inner: Arc<Inner>) {
    // A connection that ended while we waited for its writer has left the
    // slot: the next one (if any) is the current one now.
    let mut last: Option<Arc<Connection>> = None;
    let writer = loop {
        let Some(conn) = inner.current() else {
            break None;
        };
        // The slot never holds a dead connection for long; should it
        // hand the same one back, this gives up rather than spin.
        if last.as_ref().is_some_and(|l| Arc::ptr_eq(l, &conn)) {
            break None;
        }
        if let Ok(w) = inner.lock_writer(&conn).await {
            break Some(w);
        }
        last = Some(conn);
    };
    let acks = inner.acks.take(true);
    match writer {
        Some(w) => write_acks(&inner, w, &acks).await,
        None => drop(settle(&inner, &acks, false, &mut BytesMut::new())),
    }
}

/// Settles `acks` and writes those still due with `w`, the writer of the
/// current connection.
async fn write_acks(inner: &Inner, w: Writer, acks: &[InboundAck]) {
    let mut buf = BytesMut::new();
    let held = settle(inner, acks, true, &mut buf);
    durable(inner, held).await;
    if !buf.is_empty() {
        // A failed write ends the connection (the reader reports it); the
        // broker resends what was not acknowledged.
        let _ = w.write(buf.freeze()).await;
    }
}

/// The writer of the current connection, if it is free right now.
fn try_current_writer(inner: &Arc<Inner>) -> Option<Writer> {
    let conn = inner.current()?;
    inner.try_lock_writer(&conn)
}

/// Polls `write` once, on this thread, and drops it. A write does not
/// depend on being polled again: dropped before it completed, it is
/// finished by a task of its own (see `writer`), which polls it with its
/// own waker.
fn start(write: impl Future<Output = ()>) {
    let write = std::pin::pin!(write);
    let _ = write.poll(&mut Context::from_waker(&noop_waker()));
}

/// A waker that does nothing: `Waker::noop`, which needs Rust 1.85 (we
/// support 1.75). Not an `Arc<impl Wake>`: a zero-sized one is pointed
/// at one past its allocation, which valgrind reports as a leak whenever
/// a client is still alive at exit.
fn noop_waker() -> Waker {
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    fn ignore(_: *const ()) {}
    const VTABLE: RawWakerVTable = RawWakerVTable::new(clone, ignore, ignore, ignore);
    // SAFETY: no function of the vtable reads the data pointer (null),
    // and each does what the contract asks of a waker that never wakes:
    // clone makes another such waker, the others do nothing.
    unsafe { Waker::from_raw(clone(std::ptr::null())) }
}

/// Settles the session entries of `acks` and, when `write`, appends the
/// acknowledgements of those whose entries still held their tokens to
/// `buf` (a session that was not resumed has forgotten them: an old
/// message is never acknowledged into a new session). Returns, with
/// persistence, the store's ticket to wait for before the write when a
/// PUBREC is in it (see `durable`).
fn settle(
    inner: &Inner,
    acks: &[InboundAck],
    write: bool,
    buf: &mut BytesMut,
) -> Option<(Arc<Store>, u64)> {
    let mut s = lock(&inner.session);
    let mut held = false;
    for a in acks {
        if s.settle(a, write) && write {
            encode_ack(a, buf);
            held |= a.qos == QoS::ExactlyOnce;
        }
    }
    s.ticket().filter(|_| held)
}

/// Waits until a store's records up to the ticket are on disk: a
/// delivered QoS 2 message before its PUBREC, so that a restarted client
/// answers the broker's resend with PUBREC alone, never a second delivery.
/// A failed write is logged and the PUBREC goes out all the same (a
/// duplicate after a crash is the worst that can follow).
async fn durable(inner: &Inner, ticket: Option<(Arc<Store>, u64)>) {
    if let Some((store, t)) = ticket {
        if let Err(e) = store.commit(t).await {
            inner.log(super::Level::Error, format_args!("{e}"));
        }
    }
}

impl Inner {
    /// Writes `disconnect`, an encoded DISCONNECT, as the last packet of
    /// `conn`, with the pending acknowledgements ahead of it in the same
    /// write (see the module docs).
    pub(super) async fn write_disconnect(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        disconnect: Bytes,
    ) -> Result<(), Error> {
        let w = self.lock_writer(conn).await?;
        let mut buf = BytesMut::new();
        let held = settle(self, &self.acks.take(false), true, &mut buf);
        durable(self, held).await;
        buf.extend_from_slice(&disconnect);
        w.write_last(buf.freeze()).await
    }
}

/// Appends the PUBACK (QoS 1) or PUBREC (QoS 2) of `ack` to `buf`.
pub(super) fn encode_ack(ack: &InboundAck, buf: &mut BytesMut) {
    let r = PubResp {
        packet_id: ack.id,
        reason: ack.reason,
        properties: Properties::new(),
    };
    let p = match ack.qos {
        QoS::ExactlyOnce => Packet::PubRec(r),
        _ => Packet::PubAck(r),
    };
    // Four bytes, no properties: encoding cannot fail.
    let _ = packet::encode(&p, buf);
}

impl super::MqttClient {
    /// Manual acknowledgement (`ClientOptions::manual_ack`): acknowledges
    /// the received message `ack_id` (given to
    /// `Handler::on_message_with_ack`) with `reason`: Success, or a
    /// PUBACK/PUBREC failure (>= 0x80), after which the broker does not
    /// send the message again. Never waits: the PUBACK (QoS 1) or PUBREC
    /// (QoS 2) joins the pending acknowledgements and is written as soon
    /// as the writer is free, on the connection current then; without
    /// one, it answers the broker's resend on the resumed session. The id
    /// stays valid across reconnects that resume the session (the
    /// broker's resend is not delivered again). 0 (QoS 0) is accepted and
    /// does nothing.
    pub fn ack(&self, ack_id: u64, reason: ReasonCode) -> Result<(), Error> {
        if ack_id == 0 {
            return Ok(());
        }
        let inner = &self.inner;
        if inner.delivery.is_closed() {
            return Err(Error::Closed);
        }
        if !inner.options.manual_ack {
            return Err(Error::InvalidArgument(format!(
                "ack id {ack_id}: manual acknowledgement is off (acknowledgements follow the callbacks)"
            )));
        }
        if reason != ReasonCode::Success
            && !(reason.is_error() && reason.allowed_in(packet::PacketType::PubAck))
        {
            return Err(Error::InvalidArgument(format!(
                "reason code 0x{:02X} ({}) is not a PUBACK/PUBREC code for an acknowledgement: use 0x00 or a failure (0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99)",
                reason as u8,
                reason.description()
            )));
        }
        if reason != ReasonCode::Success && inner.version() == packet::ProtocolVersion::V311 {
            // A 3.1.1 PUBACK/PUBREC has no reason code: sent, the refusal
            // would tell the broker the message was taken.
            return Err(super::v311::refuse(&format!(
                "refusing a message in its acknowledgement (reason code 0x{:02X})",
                reason as u8
            )));
        }
        let claimed = lock(&inner.session).claim(ack_id, reason);
        let a = match claimed {
            Ok(a) => a,
            Err(ClaimError::Unknown) => {
                return Err(Error::InvalidArgument(format!(
                    "ack id {ack_id} was not handed out by this client"
                )))
            }
            Err(ClaimError::Done) => return Err(Error::AlreadyAcknowledged(ack_id)),
            Err(ClaimError::Stale) => return Err(Error::StaleAck(ack_id)),
        };
        // Not the idle path: this thread may be outside the runtime.
        inner.acks.push(inner, a, false);
        Ok(())
    }
}
