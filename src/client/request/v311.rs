//! Request/reply on MQTT 3.1.1, which has neither Response Topic nor
//! Correlation Data: a convention the application configures with a reply
//! suffix (`ClientOptions::reply_suffix`). The reply to a request on
//! `topic` is the next message on `topic + suffix`; a responder of this
//! library sees that as the request's Response Topic (see
//! `mark_response_topic`).
//!
//! Without correlation data two requests on one topic could not be told
//! apart: the client makes them one at a time (a turn per reply topic).
//! Neither can two requesters on the same topic be told apart: one that
//! needs that puts its client id in the topic.

use super::super::{lock, v311::refuse, Connection, Error, MqttClient};
use super::{with_timeout, Registered, Waiting};
use crate::packet::{self, Properties, Property, Publish, QoS, SubscriptionOptions};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// On a 3.1.1 connection with a reply suffix, gives a message on a topic
/// not ending in the suffix the Response Topic `topic + suffix`, so that a
/// responder answers it as it would a v5 request.
pub(in crate::client) fn mark_response_topic(suffix: Option<&str>, publish: &mut Publish) {
    let Some(suffix) = suffix.filter(|s| !s.is_empty()) else {
        return;
    };
    let topic = publish.topic.as_str();
    if topic.ends_with(suffix) {
        return;
    }
    if let Ok(t) = packet::MqttStr::new(&format!("{topic}{suffix}")) {
        publish.properties.set(Property::ResponseTopic(t));
    }
}

impl MqttClient {
    /// `request` on a 3.1.1 connection (see the module doc).
    pub(super) async fn request_v311(
        &self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        properties: Properties,
        timeout: Option<Duration>,
    ) -> Result<Publish, Error> {
        let reply = self.reply_topic(topic, &properties)?;
        let turn = self.inner.requests.turn(&reply);
        let run = async {
            let _turn = turn.lock().await;
            let key = Bytes::copy_from_slice(reply.as_bytes());
            let (tx, mut rx) = oneshot::channel();
            lock(&self.inner.requests.waiting).insert(
                key.clone(),
                Waiting {
                    topic: reply.clone(),
                    tx,
                },
            );
            let _registered = Registered {
                requests: &self.inner.requests,
                key,
            };
            let reply = &reply;
            self.until_answered(&mut rx, move |conn| async move {
                self.subscribe_reply(&conn, reply).await?;
                self.publish_request(topic, payload, qos, Properties::new())
                    .await
            })
            .await
        };
        let result = with_timeout(timeout, run).await;
        drop(turn);
        self.inner.requests.end_turn(&reply);
        result
    }

    /// `topic + suffix`, after refusing what the convention cannot carry.
    fn reply_topic(&self, topic: &str, properties: &Properties) -> Result<String, Error> {
        let Some(suffix) = self.inner.options.reply_suffix.as_deref() else {
            return Err(refuse(
                "mqtt_request without a reply suffix (v5 carries Response Topic and \
                 Correlation Data; on 3.1.1 set mqtt_options_set_reply_suffix to reply on \
                 the request topic plus that suffix)",
            ));
        };
        if !properties.is_empty() {
            return Err(refuse("mqtt_request properties"));
        }
        let reply = format!("{topic}{suffix}");
        if !packet::topic::is_valid_topic_name(topic) || !packet::topic::is_valid_topic_name(&reply)
        {
            return Err(Error::InvalidArgument(format!(
                "invalid request topic '{topic}': it and '{reply}' must be non-empty topic \
                 names without '+' or '#'"
            )));
        }
        if topic.ends_with(suffix) {
            return Err(Error::InvalidArgument(format!(
                "request topic '{topic}' ends with the reply suffix '{suffix}': responders \
                 take it for a reply"
            )));
        }
        Ok(reply)
    }

    /// Subscribes `conn` to `reply` unless it already is.
    async fn subscribe_reply(&self, conn: &Arc<Connection>, reply: &str) -> Result<(), Error> {
        let mut replies = self.inner.requests.replies.lock().await;
        if let Some(c) = replies.get(reply).and_then(|c| c.upgrade()) {
            if Arc::ptr_eq(&c, conn) {
                return Ok(());
            }
        }
        // QoS 0, as for v5 responses (see `subscribe_responses`).
        let options = SubscriptionOptions {
            qos: QoS::AtMostOnce,
            ..Default::default()
        };
        self.subscribe_responses(conn, reply, options).await?;
        replies.retain(|_, c| c.strong_count() > 0);
        replies.insert(reply.to_string(), Arc::downgrade(conn));
        Ok(())
    }
}

impl super::Requests {
    /// The turn of requests on `reply`, made on first use.
    fn turn(&self, reply: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.turns)
            .entry(reply.to_string())
            .or_default()
            .clone()
    }

    /// Forgets the turn of `reply` when no request holds or waits for it.
    fn end_turn(&self, reply: &str) {
        let mut turns = lock(&self.turns);
        if turns.get(reply).is_some_and(|t| Arc::strong_count(t) == 1) {
            turns.remove(reply);
        }
    }
}
