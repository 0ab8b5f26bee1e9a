//! Outgoing topic aliases (spec 3.3.2.3.4), per connection.
//!
//! Up to the server's Topic Alias Maximum (and our own limit), each topic
//! published gets an alias; the first PUBLISH with it carries topic and
//! alias, later ones the alias and an empty topic. When all aliases are
//! taken, or the topics bound would cost more than [`TABLE_BYTES`], the
//! least recently used one is given to the new topic (sent again with its
//! topic, which rebinds it on the server).
//!
//! Ordering: the alias is chosen and the packet encoded and handed to the
//! writer under the outbox's lock (see `writer`), so the PUBLISH that binds
//! an alias is on the wire before any PUBLISH that uses it without the
//! topic. This puts one copy of the payload (the encoding) inside that
//! critical section, for publishes on connections where aliases are in use
//! only.

use super::publish::{encode_publish, Pass, Registered};
use super::writer::Now;
use super::{lock, Connection, Error, Inner};
use crate::packet::{self, MqttStr, Packet, Property, PropertyId, Publish};
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The most a PUBLISH grows by carrying a Topic Alias: the property
/// (identifier and two bytes), plus one byte more in each of the two
/// variable byte integers it lengthens (the property length and the
/// remaining length) when they cross a boundary (127, 16383, ...).
const ALIAS_GROWTH_MAX: usize = 3 + 2;

/// The most a connection's alias table holds, in topic bytes plus
/// [`ENTRY_COST`] per topic: the server's Topic Alias Maximum (up to
/// 65535) is the server's to choose, and an application publishing to
/// many topics would otherwise keep that many of them, megabytes per
/// connection. Beyond it the least recently used topics leave the table
/// (their aliases are rebound, as when all are taken).
const TABLE_BYTES: usize = 64 * 1024;

/// What a topic's entry costs besides its bytes: its place in both maps
/// and its allocation.
const ENTRY_COST: usize = 128;

pub(crate) struct OutAliases {
    max: u16,
    /// What the bound topics cost (see [`TABLE_BYTES`]).
    bytes: usize,
    /// Aliases handed out so far are 1..=next_unused-1 (minus `free`).
    next_unused: u32,
    free: Vec<u16>,
    /// topic -> (alias, tick of last use)
    by_topic: HashMap<MqttStr, (u16, u64)>,
    /// tick of last use -> topic, oldest first.
    by_use: BTreeMap<u64, MqttStr>,
    tick: u64,
}

/// The alias chosen for a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AliasUse {
    /// Already bound on the server: send an empty topic.
    Known(u16),
    /// Bound by this PUBLISH: send the topic with it.
    New(u16),
}

impl OutAliases {
    pub(crate) fn new(max: u16) -> Self {
        OutAliases {
            max,
            bytes: 0,
            next_unused: 1,
            free: Vec::new(),
            by_topic: HashMap::new(),
            by_use: BTreeMap::new(),
            tick: 0,
        }
    }

    /// The alias for `topic`, binding a free or the least recently used
    /// one when it has none.
    pub(crate) fn assign(&mut self, topic: &MqttStr) -> AliasUse {
        if let Some((alias, last)) = self.by_topic.get_mut(topic) {
            // Already the most recently used (a stream of messages on one
            // topic): nothing moves, and `by_use` loses and regains no
            // node, which was an allocation per message.
            if *last != self.tick {
                self.tick += 1;
                self.by_use.remove(last);
                *last = self.tick;
                self.by_use.insert(self.tick, topic.clone());
            }
            return AliasUse::Known(*alias);
        }
        self.tick += 1;
        let tick = self.tick;
        let cost = topic.len() + ENTRY_COST;
        // Room in bytes first: the aliases of the topics let go are free.
        while self.bytes + cost > TABLE_BYTES {
            let Some((_, old)) = self.by_use.pop_first() else {
                break;
            };
            let (a, _) = self
                .by_topic
                .remove(&old)
                .expect("by_use and by_topic hold the same topics");
            self.bytes -= old.len() + ENTRY_COST;
            self.free.push(a);
        }
        let alias = if let Some(a) = self.free.pop() {
            a
        } else if self.next_unused <= self.max as u32 {
            self.next_unused += 1;
            (self.next_unused - 1) as u16
        } else {
            // All taken, so `by_use` is not empty (max >= 1).
            let (_, old) = self
                .by_use
                .pop_first()
                .expect("all aliases bound, so one is least recently used");
            self.bytes -= old.len() + ENTRY_COST;
            self.by_topic
                .remove(&old)
                .expect("by_use and by_topic hold the same topics")
                .0
        };
        self.bytes += cost;
        self.by_topic.insert(topic.clone(), (alias, tick));
        self.by_use.insert(tick, topic.clone());
        AliasUse::New(alias)
    }

    /// Unbinds `topic` from `alias`: the PUBLISH that was to bind it never
    /// reached the wire.
    pub(crate) fn forget(&mut self, topic: &MqttStr, alias: u16) {
        if let Some((a, last)) = self.by_topic.get(topic).copied() {
            if a == alias {
                self.by_topic.remove(topic);
                self.by_use.remove(&last);
                self.bytes -= topic.len() + ENTRY_COST;
                self.free.push(alias);
            }
        }
    }
}

/// Unbinds a new alias when the publish is abandoned (its future dropped,
/// or encoding failed) before the PUBLISH was written.
struct Unbind<'a> {
    aliases: &'a Mutex<OutAliases>,
    topic: MqttStr,
    alias: u16,
    armed: bool,
}

impl Drop for Unbind<'_> {
    fn drop(&mut self) {
        if self.armed {
            lock(self.aliases).forget(&self.topic, self.alias);
        }
    }
}

impl Inner {
    /// Encodes and writes a PUBLISH, using a topic alias when the
    /// connection has them. A QoS 1/2 publish (`permit` given) is registered
    /// in the session, with its packet, under the outbox's lock as its
    /// bytes are handed to the writer (see `writer`): one abandoned before
    /// leaves no entry behind, and the registration order is the order on
    /// the wire. Errors: see `publish_written`.
    pub(super) async fn write_publish(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        publish: &Publish,
        payload: &[u8],
        full_len: usize,
        pass: &mut Pass,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<(), Error> {
        let aliases = self.aliases_for(conn, full_len);
        let Some(aliases) = aliases else {
            // Encoded before the lock is taken: the payload copy stays out
            // of the writer's critical section.
            let encoded = encode_publish(publish, payload)?;
            let (registered, written) = self
                .send_with(conn, || {
                    self.register_publish(
                        conn,
                        encoded,
                        publish.qos,
                        payload.len(),
                        None,
                        pass,
                        permit,
                    )
                })
                .await?;
            return self.publish_written(conn, written, registered).await;
        };
        // Under the outbox's lock: aliases reach the wire in the order
        // they are assigned.
        let (registered, written) = self
            .send_with(conn, || {
                self.encode_aliased(conn, aliases, publish, payload, pass, permit)
            })
            .await?;
        self.publish_written(conn, written, registered).await
    }

    /// `write_publish` of a QoS 0 message on the calling thread (see
    /// `send_now`); `None`: nothing was done, take the async way.
    pub(super) fn write_publish_now(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        publish: &Publish,
        payload: &[u8],
        full_len: usize,
        pass: &mut Pass,
    ) -> Option<Result<Now, Error>> {
        debug_assert_eq!(publish.qos, packet::QoS::AtMostOnce);
        let sent = match self.aliases_for(conn, full_len) {
            None => self.send_now(conn, || {
                // Under the outbox's lock here (unlike `write_publish`):
                // a QoS 0 PUBLISH is small, and an encoding made before
                // would be wasted when the writer is taken.
                let encoded = encode_publish(publish, payload)?;
                self.register_publish(conn, encoded, publish.qos, payload.len(), None, pass, None)
            }),
            Some(aliases) => self.send_now(conn, || {
                self.encode_aliased(conn, aliases, publish, payload, pass, None)
            }),
        }?;
        // A QoS 0 publish registers nothing (`register_publish`), so its
        // outcome is that of the write.
        Some(sent.map(|(_, now)| now))
    }

    /// The connection's outgoing aliases, if it has them and the packet
    /// of `full_len` bytes still fits with one whatever it binds (with
    /// the topic it is longest). A packet within a few bytes of the
    /// server's maximum goes without an alias: it fits so.
    fn aliases_for<'c>(
        &self,
        conn: &'c Connection,
        full_len: usize,
    ) -> Option<&'c Mutex<OutAliases>> {
        conn.aliases
            .as_ref()
            .filter(|_| full_len + ALIAS_GROWTH_MAX <= conn.server_max_packet_size())
    }

    /// Chooses the alias for `publish`'s topic, encodes it and registers it
    /// (`register_publish`); called under the outbox's lock.
    fn encode_aliased(
        &self,
        conn: &Connection,
        aliases: &Mutex<OutAliases>,
        publish: &Publish,
        payload: &[u8],
        pass: &mut Pass,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<(Bytes, Option<Registered>), Error> {
        let mut publish = publish.clone();
        let topic = publish.topic.clone();
        let chosen = lock(aliases).assign(&topic);
        let (alias, new) = match chosen {
            AliasUse::New(a) => (a, true),
            AliasUse::Known(a) => (a, false),
        };
        let mut unbind = Unbind {
            aliases,
            topic: topic.clone(),
            alias,
            armed: new,
        };
        publish.properties.push(Property::TopicAlias(alias));
        if !new {
            publish.topic = MqttStr::default();
        }
        let encoded = encode_publish(&publish, payload)?;
        let qos = publish.qos;
        let r =
            self.register_publish(conn, encoded, qos, payload.len(), Some(topic), pass, permit)?;
        // Handed to the writer, the PUBLISH reaches the wire whole even if
        // this future is dropped (see `writer`), or the connection ends and
        // its aliases with it: the binding stands from here on.
        unbind.armed = false;
        Ok(r)
    }
}

/// The stored PUBLISH `packet` re-encoded with `topic` and without its
/// topic alias, for a resend on a new connection (which sets DUP).
pub(super) fn without_alias(packet: &Bytes, topic: MqttStr) -> Result<Bytes, Error> {
    let mut buf = BytesMut::from(&packet[..]);
    let Ok(Some(Packet::Publish(mut p))) = packet::decode(&mut buf, usize::MAX) else {
        return Err(Error::Internal("a stored PUBLISH does not decode"));
    };
    p.properties.remove(PropertyId::TopicAlias);
    p.topic = topic;
    let mut out = BytesMut::new();
    packet::encode(&Packet::Publish(p), &mut out)?;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> MqttStr {
        MqttStr::new(s).unwrap()
    }

    #[test]
    fn new_then_known_then_lru_replacement() {
        let mut a = OutAliases::new(2);
        assert_eq!(a.assign(&t("a")), AliasUse::New(1));
        assert_eq!(a.assign(&t("b")), AliasUse::New(2));
        assert_eq!(a.assign(&t("a")), AliasUse::Known(1));
        // "b" is least recently used: "c" takes its alias.
        assert_eq!(a.assign(&t("c")), AliasUse::New(2));
        assert_eq!(a.assign(&t("a")), AliasUse::Known(1));
        // Now "c" is least recently used: "b" comes back on alias 2.
        assert_eq!(a.assign(&t("b")), AliasUse::New(2));
        assert_eq!(a.assign(&t("c")), AliasUse::New(1));
    }

    /// A topic used again while it is the most recently used one keeps
    /// its place (nothing moves), and the order stays right.
    #[test]
    fn repeated_topic_keeps_the_lru_order() {
        let mut a = OutAliases::new(2);
        assert_eq!(a.assign(&t("a")), AliasUse::New(1));
        assert_eq!(a.assign(&t("b")), AliasUse::New(2));
        assert_eq!(a.assign(&t("b")), AliasUse::Known(2));
        assert_eq!(a.assign(&t("b")), AliasUse::Known(2));
        // "a" is least recently used: "c" takes its alias.
        assert_eq!(a.assign(&t("c")), AliasUse::New(1));
        assert_eq!(a.assign(&t("c")), AliasUse::Known(1));
        assert_eq!(a.assign(&t("b")), AliasUse::Known(2));
        // Now "c" is least recently used.
        assert_eq!(a.assign(&t("a")), AliasUse::New(1));
        assert_eq!(a.by_use.len(), 2);
        assert_eq!(a.by_topic.len(), 2);
    }

    /// With a Topic Alias Maximum of 65535, the table keeps topics up to
    /// its byte bound, least recently used out first.
    #[test]
    fn the_table_is_bounded_in_bytes() {
        let mut a = OutAliases::new(u16::MAX);
        let topic = |i: usize| t(&format!("{i:0>1000}"));
        let fit = TABLE_BYTES / (1000 + ENTRY_COST);
        for i in 0..3 * fit {
            assert!(matches!(a.assign(&topic(i)), AliasUse::New(_)));
            assert!(a.bytes <= TABLE_BYTES);
        }
        assert_eq!(a.by_topic.len(), fit);
        assert_eq!(a.by_use.len(), fit);
        // The newest are bound, the oldest were let go.
        assert!(matches!(a.assign(&topic(3 * fit - 1)), AliasUse::Known(_)));
        assert!(matches!(a.assign(&topic(0)), AliasUse::New(_)));
        // Aliases stay within what was handed out: freed ones are reused.
        assert!(a.next_unused as usize <= fit + 2);
        let mut one = OutAliases::new(u16::MAX);
        let huge = t(&"x".repeat(65_535));
        assert_eq!(one.assign(&huge), AliasUse::New(1));
        assert_eq!(one.assign(&t("small")), AliasUse::New(1));
        assert_eq!(one.by_topic.len(), 1);
    }

    #[test]
    fn forgotten_alias_is_reused() {
        let mut a = OutAliases::new(3);
        assert_eq!(a.assign(&t("a")), AliasUse::New(1));
        assert_eq!(a.assign(&t("b")), AliasUse::New(2));
        a.forget(&t("b"), 2);
        assert_eq!(a.assign(&t("c")), AliasUse::New(2));
        assert_eq!(a.assign(&t("b")), AliasUse::New(3));
        assert_eq!(a.assign(&t("c")), AliasUse::Known(2));
    }
}
