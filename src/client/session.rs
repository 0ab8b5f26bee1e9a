//! Session state that outlives a single connection: packet identifiers in
//! use, QoS 1/2 publishes in flight (kept encoded so a reconnect can resend
//! them), and incoming QoS 2 messages between PUBREC and PUBREL.

use super::Error;
use crate::packet::{MqttStr, PubResp, SubAck, UnsubAck};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
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

pub type Waiter = oneshot::Sender<Result<Reply, Error>>;

#[derive(Debug)]
pub enum PendingKind {
    /// An outgoing QoS 1/2 PUBLISH, encoded. `released` is set once PUBREC
    /// arrived and PUBREL went out (QoS 2 second half). `alias_topic` is
    /// the topic when `packet` carries a topic alias instead, which a
    /// resend on a new connection must replace.
    Publish {
        packet: Bytes,
        released: bool,
        alias_topic: Option<MqttStr>,
    },
    Subscribe,
    Unsubscribe,
}

#[derive(Debug)]
pub struct Pending {
    pub kind: PendingKind,
    pub waiter: Option<Waiter>,
    /// A slot of the server's Receive Maximum, freed with this entry.
    pub permit: Option<OwnedSemaphorePermit>,
}

#[derive(Debug, Default)]
pub struct Session {
    last_id: u16,
    pub pending: HashMap<u16, Pending>,
    /// Incoming QoS 2 packet ids we sent PUBREC for and await PUBREL on:
    /// a resent PUBLISH with one of these is not delivered twice.
    pub incoming_qos2: HashSet<u16>,
}

impl Session {
    /// Reserves a free packet identifier for `pending`.
    pub fn insert(&mut self, pending: Pending) -> Result<u16, Error> {
        if self.pending.len() >= u16::MAX as usize {
            return Err(Error::Internal("all 65535 packet identifiers are in use"));
        }
        loop {
            self.last_id = self.last_id.wrapping_add(1);
            if self.last_id != 0 && !self.pending.contains_key(&self.last_id) {
                break;
            }
        }
        self.pending.insert(self.last_id, pending);
        Ok(self.last_id)
    }

    /// Completes and removes the entry for `id`, if it is of the right kind.
    /// Returns false for an id we do not know (a protocol error by the peer).
    pub fn complete(&mut self, id: u16, reply: Reply) -> bool {
        let matches = matches!(
            (self.pending.get(&id).map(|p| &p.kind), &reply),
            (Some(PendingKind::Publish { .. }), Reply::PubAck(_))
                | (Some(PendingKind::Subscribe), Reply::SubAck(_))
                | (Some(PendingKind::Unsubscribe), Reply::UnsubAck(_))
        );
        if !matches {
            return false;
        }
        if let Some(mut p) = self.pending.remove(&id) {
            if let Some(w) = p.waiter.take() {
                let _ = w.send(Ok(reply));
            }
        }
        true
    }

    /// Fails every waiting call; the entries stay for a resend.
    /// Subscribe/unsubscribe entries are dropped: they are not resent.
    pub fn fail_waiters(&mut self) {
        self.pending.retain(|_, p| {
            if let Some(w) = p.waiter.take() {
                let _ = w.send(Err(Error::ConnectionLost));
            }
            p.permit = None;
            matches!(p.kind, PendingKind::Publish { .. })
        });
    }

    /// A new session on the server: nothing of ours survives.
    pub fn clear(&mut self) {
        self.fail_waiters();
        self.pending.clear();
        self.incoming_qos2.clear();
    }
}
