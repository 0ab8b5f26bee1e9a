//! Scripts for the C tests of issue 9 (reliability).

use super::{accept_connected, props, publish, s, Peer};
use mqtt5c::packet::{Packet, Properties, Property, PropertyId, QoS, ReasonCode, SubAck};
use std::net::TcpListener;

/// The Subscription Identifier `mqtt_subscribe_cb` allocates first.
const ROUTE_ID: u32 = 268_435_455;

/// Answers the next SUBSCRIBE (one filter) with `reason`, checking the
/// filter; returns its Subscription Identifier.
fn suback(p: &mut Peer, filter: &str, reason: ReasonCode, why: Option<&str>) -> Option<u32> {
    let sub = p.expect_subscribe();
    assert_eq!(sub.filters.len(), 1);
    assert_eq!(sub.filters[0].filter.as_str(), filter);
    let properties = match why {
        Some(w) => props(vec![Property::ReasonString(s(w))]),
        None => Properties::new(),
    };
    p.send(Packet::SubAck(SubAck {
        packet_id: sub.packet_id,
        reasons: vec![reason],
        properties,
    }));
    sub.properties.get_int(PropertyId::SubscriptionIdentifier)
}

/// tests/c/test_resubscribe.c: two subscriptions (a route with its
/// identifier, and a plain one); the connection drops; the reconnect finds
/// no session: both are subscribed again, the plain one refused (0x87);
/// then a message for the route.
pub fn resubscribe_script(l: TcpListener) {
    let mut p = accept_connected(&l, vec![]);
    let id = suback(&mut p, "rs/route", ReasonCode::GrantedQoS1, None);
    assert_eq!(id, Some(ROUTE_ID), "the route's identifier");
    suback(&mut p, "rs/denied", ReasonCode::GrantedQoS1, None);
    drop(p);

    let mut p = accept_connected(&l, vec![]);
    let id = suback(&mut p, "rs/route", ReasonCode::GrantedQoS1, None);
    assert_eq!(id, Some(ROUTE_ID), "the same identifier again");
    suback(
        &mut p,
        "rs/denied",
        ReasonCode::NotAuthorized,
        Some("not for you"),
    );
    // Two messages: the test disconnects once the route callback saw the
    // second, so the first callback has returned and its PUBACK is due;
    // the second's PUBACK may or may not precede the DISCONNECT (its
    // callback may still be running when the test disconnects).
    for id in [1, 2] {
        let routed = vec![Property::SubscriptionIdentifier(ROUTE_ID)];
        p.send(publish(
            "rs/route",
            QoS::AtLeastOnce,
            Some(id),
            routed,
            b"r",
        ));
    }
    p.expect_puback(1);
    match p.expect("PUBACK or DISCONNECT") {
        Packet::PubAck(a) => {
            assert_eq!(a.packet_id, 2);
            assert_eq!(p.expect_disconnect(), ReasonCode::Success);
        }
        Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::Success),
        other => panic!("expected PUBACK or DISCONNECT, got {other:?}"),
    }
    p.expect_close();
}
