//! The live set: what the log says now. Replaying the log builds it;
//! appending keeps it current; a snapshot writes it out whole.

use super::record::{self, Outgoing, QueuedMessage, Record};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct State {
    /// Outgoing publishes in flight, by send sequence.
    out: BTreeMap<u64, Outgoing>,
    /// Their sequence numbers by packet id.
    by_id: HashMap<u16, u64>,
    /// Incoming QoS 2 messages delivered and awaiting PUBREL.
    inbound: BTreeSet<u16>,
    /// QoS 1/2 publishes waiting in the offline queue, in queue order.
    queue: BTreeMap<u64, QueuedMessage>,
    /// The size of a snapshot of this state.
    bytes: usize,
}

/// The on-disk size of a record with a two-byte body.
const SMALL: usize = record::PREFIX + 3;

impl State {
    /// Applies one record. Records that do not fit the state (a
    /// completion for an id not in flight) change nothing: replay never
    /// fails on them, as a live client never makes them.
    pub fn apply(&mut self, r: Record) {
        match r {
            Record::Stored(o) => {
                self.remove(o.id);
                self.bytes += stored_size(&o);
                self.by_id.insert(o.id, o.seq);
                if let Some(old) = self.out.insert(o.seq, o) {
                    // Two live entries with one sequence number: the
                    // newer wins; the older leaves with its size.
                    self.by_id.remove(&old.id);
                    self.bytes -= stored_size(&old);
                }
            }
            Record::Released(id) => {
                if let Some(o) = self.by_id.get(&id).and_then(|s| self.out.get_mut(s)) {
                    if !o.released {
                        o.released = true;
                        self.bytes += SMALL;
                    }
                }
            }
            Record::Completed(id) => self.remove(id),
            Record::InboundHeld(id) => {
                if self.inbound.insert(id) {
                    self.bytes += SMALL;
                }
            }
            Record::InboundReleased(id) => {
                if self.inbound.remove(&id) {
                    self.bytes -= SMALL;
                }
            }
            Record::Reset => *self = State::default(),
            Record::Queued(q) => {
                self.bytes += queued_size(&q);
                if let Some(old) = self.queue.insert(q.qseq, q) {
                    self.bytes -= queued_size(&old);
                }
            }
            Record::Unqueued(qseq) => self.unqueue(qseq),
            Record::StoredFromQueue(qseq, o) => {
                self.unqueue(qseq);
                self.apply(Record::Stored(o));
            }
        }
    }

    fn unqueue(&mut self, qseq: u64) {
        if let Some(q) = self.queue.remove(&qseq) {
            self.bytes -= queued_size(&q);
        }
    }

    /// The queued publishes in queue order.
    pub fn queued(&self) -> impl Iterator<Item = &QueuedMessage> {
        self.queue.values()
    }

    fn remove(&mut self, id: u16) {
        if let Some(o) = self.by_id.remove(&id).and_then(|s| self.out.remove(&s)) {
            self.bytes -= stored_size(&o);
        }
    }

    /// The outgoing publishes in send order.
    pub fn outgoing(&self) -> impl Iterator<Item = &Outgoing> {
        self.out.values()
    }

    /// The incoming QoS 2 messages awaiting PUBREL.
    pub fn inbound(&self) -> impl Iterator<Item = u16> + '_ {
        self.inbound.iter().copied()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.out.is_empty() && self.inbound.is_empty() && self.queue.is_empty()
    }

    /// How many bytes `snapshot` writes.
    pub fn snapshot_len(&self) -> usize {
        self.bytes
    }

    /// Appends records that rebuild this state from nothing.
    pub fn snapshot(&self, out: &mut Vec<u8>) {
        out.reserve(self.bytes);
        for o in self.out.values() {
            record::encode_stored(o, out);
            if o.released {
                record::encode(&Record::Released(o.id), out);
            }
        }
        for id in &self.inbound {
            record::encode(&Record::InboundHeld(*id), out);
        }
        for q in self.queue.values() {
            record::encode(&Record::Queued(q.clone()), out);
        }
    }
}

/// The on-disk size of the Queued record of `q`.
fn queued_size(q: &QueuedMessage) -> usize {
    record::PREFIX + 1 + 17 + q.packet.len()
}

/// The on-disk size of the Stored record of `o`.
fn stored_size(o: &Outgoing) -> usize {
    let topic = o.alias_topic.as_ref().map_or(0, |t| t.len());
    let released = if o.released { SMALL } else { 0 };
    record::PREFIX + 1 + 13 + topic + o.packet.len() + released
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::QoS;

    fn out(seq: u64, id: u16) -> Outgoing {
        Outgoing {
            seq,
            id,
            qos: QoS::AtLeastOnce,
            released: false,
            alias_topic: None,
            packet: record::test_publish(id, QoS::AtLeastOnce, &[seq as u8]),
        }
    }

    #[test]
    fn the_snapshot_size_is_tracked_exactly() {
        let mut s = State::default();
        let check = |s: &State| {
            let mut b = Vec::new();
            s.snapshot(&mut b);
            assert_eq!(b.len(), s.snapshot_len());
        };
        s.apply(Record::Stored(out(1, 10)));
        s.apply(Record::Stored(out(2, 11)));
        check(&s);
        s.apply(Record::Released(10));
        s.apply(Record::Released(10));
        s.apply(Record::InboundHeld(4));
        s.apply(Record::InboundHeld(4));
        check(&s);
        // A reused id replaces the entry it names.
        s.apply(Record::Stored(out(3, 11)));
        check(&s);
        let queued = |qseq| QueuedMessage {
            qseq,
            qos: QoS::ExactlyOnce,
            queued_at_ms: 5,
            packet: record::test_publish(u16::MAX, QoS::ExactlyOnce, b"q"),
        };
        s.apply(Record::Queued(queued(1)));
        s.apply(Record::Queued(queued(2)));
        s.apply(Record::Queued(queued(3)));
        check(&s);
        s.apply(Record::Unqueued(1));
        s.apply(Record::Unqueued(1));
        s.apply(Record::StoredFromQueue(2, out(4, 12)));
        check(&s);
        assert_eq!(s.queued().map(|q| q.qseq).collect::<Vec<_>>(), vec![3]);
        s.apply(Record::Completed(10));
        s.apply(Record::Completed(99));
        s.apply(Record::InboundReleased(4));
        s.apply(Record::InboundReleased(4));
        check(&s);
        assert_eq!(s.outgoing().map(|o| o.seq).collect::<Vec<_>>(), vec![3, 4]);
        s.apply(Record::Reset);
        assert!(s.is_empty());
        assert_eq!(s.snapshot_len(), 0);
    }
}
