//! Scripts for the C tests of protocol confusion by a hostile broker
//! (issue 8): an enhanced authentication the server does not finish
//! properly, and acknowledgements of the wrong kind.

use super::*;

const M: &str = "TOY";

/// An AUTH 0x18 with data and no Authentication Method.
fn challenge_without_method(data: &[u8]) -> Packet {
    Packet::Auth(Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: props(vec![Property::AuthenticationData(Bytes::copy_from_slice(
            data,
        ))]),
    })
}

/// A CONNECT of tests/c/test_auth_verify.c, with our method.
fn expect_auth_connect(p: &mut Peer) {
    let c = p.expect_connect();
    assert_eq!(
        c.properties
            .get_str(PropertyId::AuthenticationMethod)
            .as_deref(),
        Some(M)
    );
}

/// Answers CONNECT with a CONNACK that carries the server's proof.
fn proven_connack(p: &mut Peer) {
    expect_auth_connect(p);
    p.connack(
        ReasonCode::Success,
        props(vec![
            Property::AuthenticationMethod(s(M)),
            Property::AuthenticationData(Bytes::from_static(b"server-final")),
        ]),
    );
}

/// tests/c/test_auth_verify.c
pub(super) fn auth_verify_script(l: TcpListener) {
    // 1: an impostor: CONNACK success without any authentication data
    // (nor method). The callback refuses it.
    let mut p = accept(&l);
    expect_auth_connect(&mut p);
    p.connack(ReasonCode::Success, Properties::new());
    assert_eq!(p.expect_disconnect(), ReasonCode::NotAuthorized);
    p.expect_close();

    // 2: a challenge without an Authentication Method.
    let mut p = accept(&l);
    expect_auth_connect(&mut p);
    p.send(challenge_without_method(b"challenge"));
    assert_eq!(p.expect_disconnect(), ReasonCode::ProtocolError);
    p.expect_close();

    // 3: a challenge naming another method.
    let mut p = accept(&l);
    expect_auth_connect(&mut p);
    p.send(auth(
        ReasonCode::ContinueAuthentication,
        "OTHER",
        Some(b"challenge"),
    ));
    assert_eq!(p.expect_disconnect(), ReasonCode::ProtocolError);
    p.expect_close();

    // 4: re-authentication answered by a challenge without a method.
    let mut p = accept(&l);
    proven_connack(&mut p);
    auth_data(p.expect("AUTH 0x19"), ReasonCode::ReAuthenticate, M);
    p.send(challenge_without_method(b"challenge"));
    assert_eq!(p.expect_disconnect(), ReasonCode::ProtocolError);
    p.expect_close();

    // 5: re-authentication ended by a success without data: refused.
    let mut p = accept(&l);
    proven_connack(&mut p);
    auth_data(p.expect("AUTH 0x19"), ReasonCode::ReAuthenticate, M);
    p.send(auth(ReasonCode::Success, M, None));
    assert_eq!(p.expect_disconnect(), ReasonCode::NotAuthorized);
    p.expect_close();
}

/// Accepts a connection of tests/c/test_wrong_acks.c (Clean Start 0) and
/// answers CONNACK with `session_present`.
fn connect_keeping_session(l: &TcpListener, session_present: bool) -> Peer {
    let mut p = accept(l);
    let c = p.expect_connect();
    assert!(!c.clean_start, "the client keeps its session");
    p.connack_session(session_present, vec![]);
    p
}

/// Answers the next PUBLISH (to `topic` at `qos`) with `wrong`, and
/// expects DISCONNECT 0x82 next: nothing else (no PUBREL) before it.
/// Returns the packet id.
fn answer_wrongly(p: &mut Peer, topic: &str, qos: QoS, wrong: fn(PubResp) -> Packet) -> u16 {
    let id = expect_publish_to(p, topic, qos);
    p.send(wrong(resp(id)));
    assert_eq!(p.expect_disconnect(), ReasonCode::ProtocolError);
    p.expect_close();
    id
}

/// On a new session, the message the last connection left unacknowledged
/// is published afresh first (issue 9): this checks it (no DUP) and ends
/// its flow with one packet (QoS 1: PUBACK; QoS 2: a failing PUBREC, so
/// no PUBREL comes), before the step's own publish.
fn settle_republished(p: &mut Peer, topic: &str, qos: QoS) {
    let pb = p.expect_publish();
    assert_eq!(pb.topic.as_str(), topic, "republished first");
    assert_eq!(pb.qos, qos);
    assert!(!pb.dup, "published afresh on a new session: no DUP");
    let id = pb.packet_id.expect("packet id");
    match qos {
        QoS::ExactlyOnce => p.send(Packet::PubRec(PubResp {
            packet_id: id,
            reason: ReasonCode::UnspecifiedError,
            properties: Properties::new(),
        })),
        _ => p.send(Packet::PubAck(resp(id))),
    }
}

/// tests/c/test_wrong_acks.c
pub(super) fn wrong_acks_script(l: TcpListener) {
    // 1-3: the wrong final acknowledgement (a new session each time, on
    // which the message left by the last one is published afresh first).
    let mut p = connect_keeping_session(&l, false);
    answer_wrongly(
        &mut p,
        "wrong/qos2-puback",
        QoS::ExactlyOnce,
        Packet::PubAck,
    );
    let mut p = connect_keeping_session(&l, false);
    settle_republished(&mut p, "wrong/qos2-puback", QoS::ExactlyOnce);
    answer_wrongly(
        &mut p,
        "wrong/qos2-pubcomp",
        QoS::ExactlyOnce,
        Packet::PubComp,
    );
    let mut p = connect_keeping_session(&l, false);
    settle_republished(&mut p, "wrong/qos2-pubcomp", QoS::ExactlyOnce);
    answer_wrongly(
        &mut p,
        "wrong/qos1-pubcomp",
        QoS::AtLeastOnce,
        Packet::PubComp,
    );
    // 4: an asynchronous publish at QoS 2 answered by PUBACK.
    let mut p = connect_keeping_session(&l, false);
    settle_republished(&mut p, "wrong/qos1-pubcomp", QoS::AtLeastOnce);
    answer_wrongly(
        &mut p,
        "wrong/async-puback",
        QoS::ExactlyOnce,
        Packet::PubAck,
    );

    // 5: QoS 1 answered by PUBREC: no PUBREL, and the message is not
    // released: the resend on resume is the PUBLISH itself.
    let mut p = connect_keeping_session(&l, false);
    settle_republished(&mut p, "wrong/async-puback", QoS::ExactlyOnce);
    let id = answer_wrongly(
        &mut p,
        "wrong/qos1-pubrec",
        QoS::AtLeastOnce,
        Packet::PubRec,
    );
    let mut p = connect_keeping_session(&l, true);
    let pb = p.expect_publish();
    assert_eq!(pb.topic.as_str(), "wrong/qos1-pubrec");
    assert_eq!(pb.packet_id, Some(id));
    assert_eq!(pb.qos, QoS::AtLeastOnce);
    assert!(pb.dup, "a resend has DUP set");
    p.send(Packet::PubAck(resp(id)));

    // 6: the right acknowledgements still work on that connection.
    let id = expect_publish_to(&mut p, "wrong/qos2-right", QoS::ExactlyOnce);
    p.send(Packet::PubRec(resp(id)));
    p.expect_pubrel(id);
    p.send(Packet::PubComp(resp(id)));
    let id = expect_publish_to(&mut p, "wrong/qos1-right", QoS::AtLeastOnce);
    p.send(Packet::PubAck(resp(id)));
    assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    p.expect_close();
}

/// Accepts a connection of tests/c/test_session_present.c (Clean Start
/// 1) and answers CONNACK with `session_present`.
fn connect_clean(l: &TcpListener, session_present: bool) -> Peer {
    let mut p = accept(l);
    assert!(p.expect_connect().clean_start, "the client starts clean");
    p.connack_session(session_present, vec![]);
    p
}

/// tests/c/test_session_present.c
pub(super) fn session_present_script(l: TcpListener) {
    // 1: a QoS 2 message with id 7, delivered and PUBRECed; the
    // connection ends before PUBREL.
    let mut p = connect_clean(&l, false);
    p.send(publish("sp/old", QoS::ExactlyOnce, Some(7), vec![], b"old"));
    p.expect_pubrec(7);
    drop(p);

    // 2: Session Present 1 in answer to Clean Start 1: the client closes.
    let mut p = connect_clean(&l, true);
    assert_eq!(p.expect_disconnect(), ReasonCode::ProtocolError);
    p.expect_close();

    // 3: a proper new session; a new message on id 7 is delivered.
    let mut p = connect_clean(&l, false);
    p.send(publish("sp/new", QoS::ExactlyOnce, Some(7), vec![], b"new"));
    p.expect_pubrec(7);
    p.send(Packet::PubRel(resp(7)));
    p.expect_pubcomp(7);
    // Tells the test that the flow is complete (the PUBREC follows the
    // callback, so the test cannot tell from the message alone).
    p.send(publish("sp/done", QoS::AtMostOnce, None, vec![], b"done"));
    assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    p.expect_close();
}
