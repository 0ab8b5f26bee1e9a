//! Request/response (MQTT v5 section 4.10): publish with a Response Topic
//! and a fresh Correlation Data, and wait for the message that carries the
//! same Correlation Data back on that topic.
//!
//! Waiting requests are a map correlation data -> oneshot. The reader
//! completes it when it hands a message to delivery, before the message
//! would enter the delivery queue: so a request made from inside a message
//! callback is answered although that callback holds the delivery thread,
//! and a response is never stuck behind a full queue. There is no command
//! channel; the map is the only shared state. A response at QoS 1/2 (the
//! subscription asks for QoS 0, but another subscription of the client may
//! match too) is acknowledged when it is handed over.

use super::link::{first, Either};
use super::session::{PendingKind, Reply};
use super::{lock, Connection, Error, MqttClient};
use crate::packet::{
    self, MqttStr, Properties, Property, PropertyId, Publish, QoS, RetainHandling, SubscribeFilter,
    SubscriptionOptions,
};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::oneshot;

mod v311;
pub(super) use v311::mark_response_topic;

struct Waiting {
    topic: String,
    tx: oneshot::Sender<Publish>,
}

pub(super) struct Requests {
    waiting: Mutex<HashMap<Bytes, Waiting>>,
    /// The response topic and the connection it was subscribed on; an
    /// async mutex so that concurrent first requests subscribe once.
    topic: tokio::sync::Mutex<Option<(String, Weak<Connection>)>>,
    /// MQTT 3.1.1: the reply topics subscribed, each with its connection.
    replies: tokio::sync::Mutex<HashMap<String, Weak<Connection>>>,
    /// MQTT 3.1.1: one request at a time per reply topic (see `v311`).
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Random per client, so correlation data differ between clients.
    seed: u64,
    counter: AtomicU64,
}

impl Default for Requests {
    fn default() -> Self {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Requests {
            waiting: Mutex::new(HashMap::new()),
            topic: tokio::sync::Mutex::new(None),
            replies: tokio::sync::Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
            seed,
            counter: AtomicU64::new(0),
        }
    }
}

impl Requests {
    /// Hands `publish` to the request waiting for it and returns None, or
    /// returns it for normal delivery.
    pub(super) fn take_response(&self, publish: Publish) -> Option<Publish> {
        let mut w = lock(&self.waiting);
        // Every received message comes here: with no request waiting it
        // costs a lock, no copy and no hash (docs/performance.md).
        if w.is_empty() {
            return Some(publish);
        }
        // A 3.1.1 reply has no Correlation Data: its topic is the key
        // (looked up as a slice, not copied).
        let data = publish.properties.get_binary(PropertyId::CorrelationData);
        let key: &[u8] = match &data {
            Some(key) => key,
            None => publish.topic.as_str().as_bytes(),
        };
        match w.get(key) {
            Some(req) if req.topic == publish.topic.as_str() => {}
            _ => return Some(publish),
        }
        let Some(req) = w.remove(key) else {
            return Some(publish);
        };
        drop(w);
        // A requester that gave up in between: deliver normally.
        req.tx.send(publish).err()
    }

    /// Fails every waiting request (the connection ended).
    pub(super) fn fail_all(&self) {
        lock(&self.waiting).clear();
    }

    fn next_correlation(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(16);
        b.put_u64(self.seed);
        b.put_u64(self.counter.fetch_add(1, Ordering::Relaxed));
        b.freeze()
    }
}

/// Removes a request's entry however the request ends.
struct Registered<'a> {
    requests: &'a Requests,
    key: Bytes,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(&self.requests.waiting).remove(&self.key);
    }
}

/// `s` as one topic level that is also a valid filter level: '/', '+'
/// and '#' are percent-escaped, and so is '%' itself, so that distinct
/// client ids never share a response topic (merely replacing the three
/// made "a/1#" and "a_1_" one topic, and each client would receive the
/// other's responses).
fn topic_level(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '+' => out.push_str("%2B"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// The response topic of `client_id`: under the CONNACK's Response
/// Information when it gives a usable base, else under mqtt5c/responses.
fn response_topic_for(info: Option<&str>, client_id: &str) -> String {
    let id = topic_level(client_id);
    match info {
        Some(base) if !base.is_empty() => {
            let t = format!("{}/{id}/mqtt5c-responses", base.trim_end_matches('/'));
            if packet::topic::is_valid_topic_name(&t) {
                t
            } else {
                format!("mqtt5c/responses/{id}")
            }
        }
        _ => format!("mqtt5c/responses/{id}"),
    }
}

impl MqttClient {
    /// The response topic of this client, subscribed on `conn` (once per
    /// connection; again after a reconnect). Not recorded for a
    /// re-subscription after a lost session: each connection gets it here.
    async fn response_topic(&self, conn: &Arc<Connection>) -> Result<String, Error> {
        let mut slot = self.inner.requests.topic.lock().await;
        if let Some((topic, c)) = &*slot {
            if c.upgrade().is_some_and(|c| Arc::ptr_eq(&c, conn)) {
                return Ok(topic.clone());
            }
        }
        let info = self.last_connack().and_then(|c| {
            c.properties
                .get_str(PropertyId::ResponseInformation)
                .map(|s| s.as_str().to_string())
        });
        let topic = response_topic_for(info.as_deref(), &self.client_id());
        let options = SubscriptionOptions {
            qos: QoS::AtMostOnce,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::DoNotSend,
        };
        self.subscribe_responses(conn, &topic, options).await?;
        *slot = Some((topic.clone(), Arc::downgrade(conn)));
        Ok(topic)
    }

    /// Subscribes `conn` to the response topic `topic` with `options`.
    async fn subscribe_responses(
        &self,
        conn: &Arc<Connection>,
        topic: &str,
        options: SubscriptionOptions,
    ) -> Result<(), Error> {
        // Responses come at QoS 0. A request lives on one connection (it
        // fails when that ends), so QoS 1/2 would add acknowledgements but
        // no reliability; and a QoS 1/2 response would be held back by the
        // broker's flow control while messages queued behind a callback
        // that waits for it fill our Receive Maximum (they are
        // acknowledged only after their callbacks, see `delivery`).
        let filter = SubscribeFilter {
            filter: MqttStr::new(topic)?,
            options,
        };
        let build = |packet_id| {
            packet::Packet::Subscribe(packet::Subscribe {
                packet_id,
                properties: Properties::new(),
                filters: vec![filter.clone()],
            })
        };
        let reply = self
            .inner
            .request_on(conn, PendingKind::Subscribe { filters: 1 }, build, "SUBACK")
            .await?;
        let Reply::SubAck(ack) = reply else {
            return Err(Error::Internal("wrong reply kind"));
        };
        match ack.reasons.first() {
            Some(r) if !r.is_error() => {}
            Some(r) => {
                return Err(Error::Rejected {
                    what: "subscription to the response topic",
                    reason: *r,
                    reason_string: super::reason_string(&ack.properties),
                })
            }
            None => return Err(Error::Protocol("SUBACK without reason codes".into())),
        }
        Ok(())
    }

    /// Publishes a request with a Response Topic and a fresh Correlation
    /// Data and waits (at most `timeout`, `None` for ever) for the response
    /// carrying the same Correlation Data. The first request on a
    /// connection subscribes to the response topic (derived from the
    /// CONNACK's Response Information when the server gave one, else from
    /// the client id). While the client reconnects, the request waits for
    /// the next connection; when the connection is lost before the
    /// response came, it is published again on the next one, with the
    /// same Correlation Data (the response, at QoS 0, would be lost with
    /// the connection): a responder may see a request twice.
    pub async fn request(
        &self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        mut properties: Properties,
        timeout: Option<Duration>,
    ) -> Result<Publish, Error> {
        if self.inner.version() == packet::ProtocolVersion::V311 {
            return self
                .request_v311(topic, payload, qos, properties, timeout)
                .await;
        }
        if !packet::topic::is_valid_topic_name(topic) {
            return Err(Error::InvalidArgument(format!(
                "invalid topic name '{topic}': it must be non-empty and must not contain '+' or '#'"
            )));
        }
        for id in [PropertyId::ResponseTopic, PropertyId::CorrelationData] {
            if properties.get(id).is_some() {
                return Err(Error::InvalidArgument(format!(
                    "property {} is set by the request itself; leave it out of props",
                    id.name()
                )));
            }
        }
        if let Some(id) = properties.first_not_allowed(
            packet::PropertyContext::Packet(packet::PacketType::Publish),
            packet::Direction::ToServer,
        ) {
            return Err(super::not_allowed(id, "PUBLISH"));
        }
        let key = self.inner.requests.next_correlation();
        let (tx, mut rx) = oneshot::channel();
        lock(&self.inner.requests.waiting).insert(
            key.clone(),
            Waiting {
                topic: String::new(),
                tx,
            },
        );
        let _registered = Registered {
            requests: &self.inner.requests,
            key: key.clone(),
        };
        properties.set(Property::CorrelationData(key.clone()));
        let (key, properties) = (&key, &properties);
        let run = self.until_answered(&mut rx, move |conn| async move {
            self.request_once(&conn, key, topic, payload, qos, properties)
                .await
        });
        with_timeout(timeout, run).await
    }

    /// Makes `attempt`s on the current connection until `rx` has the
    /// response: again after a lost connection when the client reconnects.
    async fn until_answered<F, Fut>(
        &self,
        rx: &mut oneshot::Receiver<Publish>,
        mut attempt: F,
    ) -> Result<Publish, Error>
    where
        F: FnMut(Arc<Connection>) -> Fut,
        Fut: std::future::Future<Output = Result<(), Error>>,
    {
        let mut sent = false;
        loop {
            let waits = self.inner.link() == super::link::Link::Reconnecting;
            let conn = match self.inner.connection_or_wait().await {
                // The reconnection a request waited for was stopped.
                Err(Error::NotConnected) if sent || waits => return Err(Error::ConnectionLost),
                r => r?,
            };
            match first(&mut *rx, attempt(conn)).await {
                Either::Left(r) => return r.map_err(|_| Error::ConnectionLost),
                Either::Right(Err(Error::ConnectionLost)) if self.inner.may_retry() => {}
                Either::Right(Err(e)) => return Err(e),
                Either::Right(Ok(())) => {}
            }
            sent = true;
        }
    }

    /// One attempt of `request` on `conn`: subscribes to the response
    /// topic, publishes the request, and returns once the connection that
    /// carried it is lost (the caller sends it again), unless the response
    /// came first (the caller is watching for it).
    async fn request_once(
        &self,
        conn: &Arc<Connection>,
        key: &Bytes,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        properties: &Properties,
    ) -> Result<(), Error> {
        let response_topic = self.response_topic(conn).await?;
        if let Some(w) = lock(&self.inner.requests.waiting).get_mut(key) {
            w.topic = response_topic.clone();
        }
        let mut properties = properties.clone();
        properties.set(Property::ResponseTopic(MqttStr::new(&response_topic)?));
        self.publish_request(topic, payload, qos, properties).await
    }

    /// Publishes a request and returns once the connection that carried it
    /// is lost (the caller sends it again), unless the response came first
    /// (the caller is watching for it).
    async fn publish_request(
        &self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        properties: Properties,
    ) -> Result<(), Error> {
        let publish = super::publish::outgoing(topic, qos, false, properties)?;
        let ack = self.publish_untimed(publish, payload).await?;
        if ack.reason.is_error() {
            return Err(Error::Rejected {
                what: "request publish",
                reason: ack.reason,
                reason_string: super::reason_string(&ack.properties),
            });
        }
        // The publish may have ridden out a reconnect: what carried it is
        // the connection now current.
        if let Some(c) = self.inner.current() {
            c.lost().await;
        }
        Err(Error::ConnectionLost)
    }
}

/// `run`, bounded by `timeout` when there is one.
async fn with_timeout<F>(timeout: Option<Duration>, run: F) -> Result<Publish, Error>
where
    F: std::future::Future<Output = Result<Publish, Error>>,
{
    match timeout {
        Some(t) => tokio::time::timeout(t, run)
            .await
            .map_err(|_| Error::Timeout("the response to a request"))?,
        None => run.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::topic::{is_valid_topic_filter, is_valid_topic_name};
    use std::collections::HashMap;

    /// Every string of up to `len` characters from `alphabet`.
    fn all_strings(alphabet: &[char], len: usize) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..len {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            out.extend(last.iter().cloned());
        }
        out
    }

    #[test]
    fn distinct_client_ids_get_distinct_valid_response_topics() {
        // The characters that are escaped, the escape and what it makes,
        // and the old replacement character.
        let alphabet = ['/', '+', '#', '%', '2', 'F', 'B', '3', '5', '_', 'a'];
        let mut ids = all_strings(&alphabet, 4);
        ids.extend(
            [
                "requester/1#",
                "requester_1_",
                "requester%2F1%23",
                "a/b",
                "a%2Fb",
                "%",
                "%25",
            ]
            .map(String::from),
        );
        ids.sort();
        ids.dedup();
        for info in [None, Some("base"), Some("resp/")] {
            let mut seen: HashMap<String, &str> = HashMap::new();
            for id in &ids {
                let topic = response_topic_for(info, id);
                assert!(is_valid_topic_name(&topic), "{id:?} -> {topic:?}");
                assert!(is_valid_topic_filter(&topic), "{id:?} -> {topic:?}");
                // The id is one level: the topic has the base's levels plus one.
                let levels = topic.split('/').count();
                let base_levels = response_topic_for(info, "x").split('/').count();
                assert_eq!(levels, base_levels, "{id:?} -> {topic:?}");
                if let Some(other) = seen.insert(topic.clone(), id) {
                    panic!("{other:?} and {id:?} share the response topic {topic:?}");
                }
            }
        }
        assert_eq!(
            response_topic_for(None, "requester/1#"),
            "mqtt5c/responses/requester%2F1%23"
        );
        assert_eq!(
            response_topic_for(None, "requester_1_"),
            "mqtt5c/responses/requester_1_"
        );
        assert_eq!(
            response_topic_for(Some("resp/"), "a+b"),
            "resp/a%2Bb/mqtt5c-responses"
        );
    }
}
