//! Several filters in one SUBSCRIBE/UNSUBSCRIBE, and per-subscription
//! callbacks.
//!
//! Routing of messages to per-subscription callbacks happens on the
//! delivery thread (in `Callbacks::on_message`), never on the reader, so
//! routed and unrouted messages keep the order the broker sent them in. A
//! route made where the server supports Subscription Identifiers is matched
//! by identifier (one is allocated when the caller gave none); otherwise,
//! and for every route while messages come on a 3.1.1 connection (AUTO
//! falls back to it on a reconnect), by matching the message's topic
//! against the route's filter.

use super::calls::ClientCall;
use super::client::{mqtt_client, mqtt_message_cb, sub_options, MessageFn, UserData};
use super::error::{
    fail, fail_on, reason_result, set_last_error, MQTT5C_ERR_INVALID_ARGUMENT, MQTT5C_OK,
};
use super::properties::mqtt_properties;
use super::runtime::block_on_client;
use crate::client::{reason_string, Error};
use crate::packet::{
    topic, MqttStr, Property, PropertyId, ProtocolVersion, Publish, ReasonCode, SubscribeFilter,
};
use std::ffi::{c_char, c_void};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::RwLock;

/// Subscription identifiers allocated for `mqtt_subscribe_cb` count down
/// from the largest one, away from the small ones applications choose.
const FIRST_AUTO_ID: u32 = 268_435_455;

/// The most identifiers of replaced routes a route keeps (see
/// `Route::former`).
const MAX_FORMER: usize = 8;

struct Route {
    /// Unique per registration: `on_message` looks each route up again
    /// by it before calling it, as an earlier callback may have ended it.
    id: u64,
    /// The same for a route and the routes of its filter that replaced it
    /// (the id of the first): a message routed to a route that was
    /// replaced before its callback was called goes to the replacement.
    lineage: u64,
    filter: String,
    /// Matched by identifier when set, else by topic.
    sub_id: Option<u32>,
    /// The other identifiers of the routes of the same filter this one
    /// replaced, newest last: the messages the broker matched before it
    /// took the new SUBSCRIBE carry those (some may still wait in the
    /// delivery queue), and they are this route's now, not the message
    /// callback's. Matched together with the topic, as the application
    /// may give such an identifier to another filter later.
    former: Vec<u32>,
    cb: MessageFn,
    ud: UserData,
}

/// The per-subscription callbacks of one client.
pub(crate) struct Routes {
    list: RwLock<Vec<Route>>,
    next_id: AtomicU32,
    next_route: AtomicU64,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            list: RwLock::new(Vec::new()),
            next_id: AtomicU32::new(FIRST_AUTO_ID),
            next_route: AtomicU64::new(0),
        }
    }
}

impl Routes {
    /// The routes `p` goes to (each callback once), as (id, lineage) for
    /// `get`; empty when none matches. `v311`: `p` came on a 3.1.1
    /// connection, which carries no Subscription Identifiers (AUTO may
    /// fall back to 3.1.1 on a reconnect): every route is then matched by
    /// topic.
    pub(crate) fn targets(&self, p: &Publish, v311: bool) -> Vec<(u64, u64)> {
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        if list.is_empty() {
            return Vec::new();
        }
        let ids: Vec<u32> = p
            .properties
            .iter()
            .filter_map(|q| match q {
                Property::SubscriptionIdentifier(v) => Some(v),
                _ => None,
            })
            .collect();
        let mut out: Vec<&Route> = Vec::new();
        for r in list.iter() {
            let hit = match r.sub_id {
                Some(id) if !v311 => {
                    ids.contains(&id)
                        || (r.former.iter().any(|f| ids.contains(f))
                            && topic::matches(&r.filter, &p.topic))
                }
                _ => topic::matches(&r.filter, &p.topic),
            };
            // Compared by address: the same function and user data
            // registered for overlapping filters gets a message once.
            if hit
                && !out
                    .iter()
                    .any(|o| o.cb as usize == r.cb as usize && o.ud == r.ud)
            {
                out.push(r);
            }
        }
        out.iter().map(|r| (r.id, r.lineage)).collect()
    }

    /// The callback of route `id`, or of the route of `lineage` that
    /// replaced it; `None` once the filter has no route any more.
    pub(crate) fn get(&self, id: u64, lineage: u64) -> Option<(MessageFn, UserData)> {
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        list.iter()
            .find(|r| r.id == id)
            .or_else(|| list.iter().find(|r| r.lineage == lineage))
            .map(|r| (r.cb, r.ud))
    }

    /// Ends the route of `filter`, if any; true when there was one.
    pub(crate) fn forget(&self, filter: &str) -> bool {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        let before = list.len();
        list.retain(|r| r.filter != filter);
        list.len() != before
    }

    /// The subscription identifier of the route of `filter`, if it has one.
    fn sub_id_of(&self, filter: &str) -> Option<u32> {
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        list.iter().find(|r| r.filter == filter)?.sub_id
    }

    /// Adds a route (its id, lineage and former identifiers are set here),
    /// replacing the one of the same filter; returns the new id and whether
    /// one was replaced.
    fn add(&self, mut route: Route) -> (u64, bool) {
        route.id = self.next_route.fetch_add(1, Ordering::Relaxed);
        route.lineage = route.id;
        let id = route.id;
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        let mut replaced = false;
        list.retain(|r| {
            if r.filter != route.filter {
                return true;
            }
            replaced = true;
            route.lineage = r.lineage;
            route.former.extend(r.former.iter().chain(&r.sub_id));
            false
        });
        // Newest last, each once, never the route's own.
        let mut seen = Vec::new();
        for f in route.former.drain(..).rev() {
            if Some(f) != route.sub_id && !seen.contains(&f) {
                seen.push(f);
            }
        }
        seen.truncate(MAX_FORMER);
        seen.reverse();
        route.former = seen;
        list.push(route);
        (id, replaced)
    }

    /// Ends route `id`; true when it was still there.
    fn remove(&self, id: u64) -> bool {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        let before = list.len();
        list.retain(|r| r.id != id);
        list.len() != before
    }

    fn allocate_id(&self) -> u32 {
        self.next_id.fetch_sub(1, Ordering::Relaxed)
    }
}

/// The filters of a C array, checked.
///
/// # Safety
/// `filters` is NULL or points to `count` string pointers.
unsafe fn c_filters(filters: *const *const c_char, count: usize) -> Result<Vec<MqttStr>, String> {
    if count == 0 {
        return Err("count is 0: give at least one filter".into());
    }
    if filters.is_null() {
        return Err("filters is NULL".into());
    }
    let ptrs = std::slice::from_raw_parts(filters, count);
    let mut out = Vec::with_capacity(count);
    for (i, p) in ptrs.iter().enumerate() {
        if p.is_null() {
            return Err(format!("filters[{i}] is NULL"));
        }
        let s = std::ffi::CStr::from_ptr(*p)
            .to_str()
            .map_err(|_| format!("filters[{i}] is not valid UTF-8"))?;
        out.push(MqttStr::new(s).map_err(|_| format!("filters[{i}] is longer than 65535 bytes"))?);
    }
    Ok(out)
}

/// Checks that an acknowledgement has one reason code per filter and ends
/// the `mqtt_subscribe_cb` routes of the filters that succeeded (a plain
/// subscribe replaces a routed one; an unsubscribe ends it); true when a
/// route ended (see `leave`). `Err` is the call's result when the broker
/// answered wrongly.
pub(super) fn settle_routes(
    c: &mqtt_client,
    what: &str,
    filters: &[MqttStr],
    reasons: &[ReasonCode],
) -> Result<bool, c_int> {
    if reasons.len() != filters.len() {
        return Err(fail(Error::Protocol(format!(
            "the {what} acknowledgement has {} reason codes for {} filters",
            reasons.len(),
            filters.len()
        ))));
    }
    let mut ended = false;
    for (name, r) in filters.iter().zip(reasons) {
        if !r.is_error() {
            ended |= c.callbacks.routes.forget(name);
        }
    }
    Ok(ended)
}

/// Returns `rc` from a call that ended a route when `route_ended`: only
/// after a call of that route's callback running on another thread has
/// returned, so that the caller may then free its `user_data`.
pub(super) fn leave(call: ClientCall<'_>, rc: c_int, route_ended: bool) -> c_int {
    if route_ended {
        call.leave_then_wait_for_callbacks();
    }
    rc
}

/// Finishes a `*_many` call from its ack's reason codes: settles the
/// routes, writes `results`, and returns `MQTT5C_OK` or the first failure,
/// with whether a route ended.
fn finish_many(
    c: &mqtt_client,
    what: &str,
    filters: &[MqttStr],
    reasons: &[ReasonCode],
    properties: &crate::packet::Properties,
    results: *mut c_int,
) -> (c_int, bool) {
    let ended = match settle_routes(c, what, filters, reasons) {
        Ok(ended) => ended,
        Err(rc) => return (rc, false),
    };
    if !results.is_null() {
        // SAFETY: non-NULL; the caller passes one writable int per filter.
        let out = unsafe { std::slice::from_raw_parts_mut(results, filters.len()) };
        for (o, r) in out.iter_mut().zip(reasons) {
            *o = *r as c_int;
        }
    }
    let rc = match reasons.iter().position(|r| r.is_error()) {
        None => MQTT5C_OK,
        Some(i) => reason_result(
            &format!("{what} of '{}'", filters[i].as_str()),
            reasons[i],
            reason_string(properties),
        ),
    };
    (rc, ended)
}

/// Subscribes to `count` filters in one SUBSCRIBE; `options[i]` is the
/// QoS | `MQTT5C_SUB_*` flags of `filters[i]`; `props` (may be NULL) applies
/// to the whole SUBSCRIBE (one Subscription Identifier for all filters,
/// user properties).
///
/// Ownership: everything is borrowed for the call. `results` (may be NULL)
/// points to `count` ints; on success `results[i]` is the SUBACK reason code of
/// `filters[i]` (granted QoS 0-2 or a refusal >= 0x80).
/// Returns: `MQTT5C_OK` when the SUBACK granted every filter; the first
/// refusal's reason code (>= 0x80, `mqtt_last_error()` names the filter and
/// gives the broker's reason string) when it refused some — `results` is
/// written in both cases; or, with `results` untouched and nothing sent,
/// `MQTT5C_ERR_INVALID_ARGUMENT` (NULL arrays, count 0, a bad filter or option,
/// a property not allowed in SUBSCRIBE), `MQTT5C_ERR_NOT_CONNECTED`;
/// `MQTT5C_ERR_CONNECTION_LOST`, `MQTT5C_ERR_TIMEOUT`, `MQTT5C_ERR_PROTOCOL` (a
/// SUBACK with the wrong number of codes). A filter that had a callback from
/// `mqtt_subscribe_cb` goes back to the message callback once granted.
/// Blocks: until SUBACK, and then, when a route ended, as `mqtt_subscribe`.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_subscribe_many(
    client: *mut mqtt_client,
    filters: *const *const c_char,
    options: *const c_int,
    count: usize,
    props: *const mqtt_properties,
    results: *mut c_int,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        // SAFETY: the caller passes `count` string pointers (or NULL).
        let names = match unsafe { c_filters(filters, count) } {
            Ok(f) => f,
            Err(e) => {
                set_last_error(e);
                return MQTT5C_ERR_INVALID_ARGUMENT;
            }
        };
        if options.is_null() {
            set_last_error("options is NULL");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        }
        // SAFETY: non-NULL; the caller passes `count` ints.
        let opts = unsafe { std::slice::from_raw_parts(options, count) };
        let mut list = Vec::with_capacity(count);
        for (i, (name, &raw)) in names.iter().zip(opts).enumerate() {
            match sub_options(raw) {
                Ok(o) => list.push(SubscribeFilter {
                    filter: name.clone(),
                    options: o,
                }),
                Err(e) => {
                    set_last_error(format!("options[{i}]: {e}"));
                    return MQTT5C_ERR_INVALID_ARGUMENT;
                }
            }
        }
        // SAFETY: NULL or a live mqtt_properties (caller's promise).
        let properties = unsafe { mqtt_properties::clone_or_empty(props) };
        let ack = match block_on_client(&c.client, c.client.subscribe(list, properties)) {
            Ok(a) => a,
            Err(e) => return fail_on(&c.client, e),
        };
        let (rc, ended) = finish_many(
            &c,
            "subscribe",
            &names,
            &ack.reasons,
            &ack.properties,
            results,
        );
        leave(c, rc, ended)
    })
}

/// Unsubscribes from `count` filters in one UNSUBSCRIBE.
///
/// Ownership: everything is borrowed. `results` (may be NULL) points to `count`
/// ints; on success `results[i]` is the UNSUBACK reason code of `filters[i]`
/// (0, 0x11 no subscription existed, or >= 0x80).
/// Returns: `MQTT5C_OK` when no filter failed (0x11 is not a failure); the
/// first failing reason code (>= 0x80) otherwise, `results` written in both
/// cases; or a negative `MQTT5C_ERR_*` as for `mqtt_subscribe_many`, with
/// `results` untouched. Callbacks from `mqtt_subscribe_cb` of the filters are
/// dropped once unsubscribed.
/// Blocks: until UNSUBACK, and then, when a route ended, as `mqtt_subscribe`.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_unsubscribe_many(
    client: *mut mqtt_client,
    filters: *const *const c_char,
    count: usize,
    props: *const mqtt_properties,
    results: *mut c_int,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        // SAFETY: the caller passes `count` string pointers (or NULL).
        let names = match unsafe { c_filters(filters, count) } {
            Ok(f) => f,
            Err(e) => {
                set_last_error(e);
                return MQTT5C_ERR_INVALID_ARGUMENT;
            }
        };
        // SAFETY: NULL or a live mqtt_properties (caller's promise).
        let properties = unsafe { mqtt_properties::clone_or_empty(props) };
        let ack = match block_on_client(&c.client, c.client.unsubscribe(names.clone(), properties))
        {
            Ok(a) => a,
            Err(e) => return fail_on(&c.client, e),
        };
        let (rc, ended) = finish_many(
            &c,
            "unsubscribe",
            &names,
            &ack.reasons,
            &ack.properties,
            results,
        );
        leave(c, rc, ended)
    })
}

/// Subscribes to `filter` like `mqtt_subscribe` and sends the messages of
/// this subscription to `cb` instead of the client's message callback.
/// Messages no per-subscription callback matches go to the message
/// callback. A message that matches several subscriptions made with this
/// function goes to each of their callbacks (once per distinct
/// `cb`/`user_data` pair), in registration order; a route that an earlier
/// of these callbacks ended, or all of them once one freed the client, is
/// not called.
///
/// How messages are matched: on an MQTT v5 connection whose server
/// supports Subscription Identifiers (CONNACK's Subscription Identifier
/// Available is absent or 1, as with mosquitto), by identifier: the one
/// in `props`, or else the one of the route this call replaces, or else
/// one the library allocates (counting down from 268435455; keep your own
/// identifiers below that range). Messages the broker sent for the
/// replaced route (under its identifier, before it took the new
/// SUBSCRIBE) go to the new route too. Otherwise (MQTT
/// 3.1.1 included) by matching the message's topic against `filter` (a
/// `$share/group/` prefix ignored); so are all messages that come on a
/// 3.1.1 connection, routes made over v5 included (`MQTT_PROTOCOL_AUTO`
/// falling back to 3.1.1 on a reconnect). Routing runs on the delivery thread,
/// so all callbacks of a client still run one at a time in the order the
/// broker sent the messages.
///
/// The route lasts until `filter` is unsubscribed (`mqtt_unsubscribe`,
/// `mqtt_unsubscribe_many`), subscribed again (with this function: the new
/// callback replaces the old; with `mqtt_subscribe`: back to the message
/// callback), or the client is freed; it survives reconnects (as does the
/// subscription in a resumed session).
///
/// Ownership: `filter` and `props` (may be NULL) are borrowed; `user_data` is
/// passed to `cb` as is and must stay valid while the route lasts: until the
/// call that ends it has returned (it waits for a running call of `cb` on
/// another thread; see `mqtt_subscribe`), or the client is freed.
/// Returns: as `mqtt_subscribe` (the granted QoS, a refusal >= 0x80 — then no
/// route is kept —, or a negative `MQTT5C_ERR_*`; NULL `cb` is
/// `MQTT5C_ERR_INVALID_ARGUMENT`).
/// Blocks: until SUBACK, and then, when it replaced the route of `filter`, as
/// `mqtt_subscribe`.
/// Threads: any, including callbacks.
#[no_mangle]
pub extern "C" fn mqtt_subscribe_cb(
    client: *mut mqtt_client,
    filter: *const c_char,
    options: c_int,
    props: *const mqtt_properties,
    cb: mqtt_message_cb,
    user_data: *mut c_void,
) -> c_int {
    ffi_guard!({
        let c = try_client!(client);
        let filter_str = try_str!(filter, "filter");
        let Some(cb) = cb else {
            set_last_error("cb is NULL");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        let options = match sub_options(options) {
            Ok(o) => o,
            Err(e) => {
                set_last_error(e);
                return MQTT5C_ERR_INVALID_ARGUMENT;
            }
        };
        let Ok(name) = MqttStr::new(filter_str) else {
            set_last_error("filter is longer than 65535 bytes");
            return MQTT5C_ERR_INVALID_ARGUMENT;
        };
        // SAFETY: NULL or a live mqtt_properties (caller's promise).
        let mut properties = unsafe { mqtt_properties::clone_or_empty(props) };
        let sub_id = match properties.get_int(PropertyId::SubscriptionIdentifier) {
            Some(id) => Some(id),
            None => {
                // MQTT 3.1.1 has no Subscription Identifiers (its CONNACK has
                // no properties, which must not read as "available"); the
                // configured version counts while not connected.
                let v5 = c.client.version_in_use() == ProtocolVersion::V5;
                let available = v5
                    && c.client.last_connack().is_some_and(|ca| {
                        ca.properties
                            .get_int(PropertyId::SubscriptionIdentifierAvailable)
                            != Some(0)
                    });
                // A route replacing one of the same filter keeps its
                // identifier: the messages the broker sends before and
                // after it takes this SUBSCRIBE then all reach the new
                // route (see `Route::former` for an identifier changed).
                available.then(|| {
                    let id = c
                        .callbacks
                        .routes
                        .sub_id_of(filter_str)
                        .unwrap_or_else(|| c.callbacks.routes.allocate_id());
                    properties.set(Property::SubscriptionIdentifier(id));
                    id
                })
            }
        };
        // Registered before SUBSCRIBE goes out: retained messages may
        // arrive right behind the SUBACK.
        let (route, replaced) = c.callbacks.routes.add(Route {
            id: 0,
            lineage: 0,
            filter: filter_str.to_string(),
            sub_id,
            former: Vec::new(),
            cb,
            ud: UserData(user_data),
        });
        let filters = vec![SubscribeFilter {
            filter: name,
            options,
        }];
        let result = block_on_client(&c.client, c.client.subscribe(filters, properties));
        let rc = match result {
            Ok(ack) => match ack.reasons.first() {
                Some(r) => reason_result("subscribe", *r, reason_string(&ack.properties)),
                None => fail(Error::Protocol("SUBACK without reason codes".into())),
            },
            Err(e) => fail_on(&c.client, e),
        };
        let removed = !(0..0x80).contains(&rc) && c.callbacks.routes.remove(route);
        leave(c, rc, replaced || removed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::message::mqtt_message;
    use crate::packet::{Properties, Publish};

    unsafe extern "C" fn noop(_: *mut c_void, _: *const mqtt_message) {}

    fn route(filter: &str, sub_id: Option<u32>) -> Route {
        Route {
            id: 0,
            lineage: 0,
            filter: filter.into(),
            sub_id,
            former: Vec::new(),
            cb: noop,
            ud: UserData(std::ptr::null_mut()),
        }
    }

    fn publish(topic: &str, sub_id: u32) -> Publish {
        let mut properties = Properties::new();
        properties.set(Property::SubscriptionIdentifier(sub_id));
        Publish {
            topic: MqttStr::new(topic).unwrap(),
            properties,
            ..Default::default()
        }
    }

    #[test]
    fn a_replacing_route_gets_the_messages_sent_for_the_replaced_one() {
        let routes = Routes::default();
        let (first, _) = routes.add(route("a/#", Some(7)));
        let (id, replaced) = routes.add(route("a/#", Some(8)));
        assert!(replaced);
        assert_eq!(routes.targets(&publish("a/b", 7), false), vec![(id, first)]);
        assert_eq!(routes.targets(&publish("a/b", 8), false), vec![(id, first)]);
        // Identifier 7 given to another filter since: the old route's
        // successor takes only what matches its filter.
        let (other, _) = routes.add(route("c", Some(7)));
        assert_eq!(
            routes.targets(&publish("c", 7), false),
            vec![(other, other)]
        );
        assert_eq!(routes.targets(&publish("a/b", 7), false), vec![(id, first)]);
    }

    unsafe extern "C" fn other(_: *mut c_void, _: *const mqtt_message) {}

    #[test]
    fn a_message_routed_before_a_replacement_goes_to_the_replacement() {
        let routes = Routes::default();
        routes.add(route("a/#", Some(7)));
        let targets = routes.targets(&publish("a/b", 7), false);
        let mut next = route("a/#", Some(7));
        next.cb = other;
        routes.add(next);
        let (id, lineage) = targets[0];
        let (cb, _) = routes.get(id, lineage).expect("the replacement");
        assert_eq!(cb as usize, other as MessageFn as usize);
        // Ended: nobody.
        assert!(routes.forget("a/#"));
        assert!(routes.get(id, lineage).is_none());
    }

    #[test]
    fn a_route_keeps_the_last_few_former_identifiers() {
        let routes = Routes::default();
        for i in 0..100 {
            routes.add(route("a", Some(i % 50)));
        }
        let list = routes.list.read().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].former, (41..49).collect::<Vec<u32>>());
        assert_eq!(list[0].sub_id, Some(49));
    }
}
