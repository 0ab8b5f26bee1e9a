//! Scripts for the C tests of persistence across crashes (issue 9): what
//! a restarted client resends, and what it must not deliver again.

use super::*;

/// Accepts a connection of a persistent client (Clean Start 0) and
/// answers CONNACK with `session_present`.
fn connect_resuming(l: &TcpListener, session_present: bool) -> Peer {
    let mut p = accept(l);
    let c = p.expect_connect();
    assert!(!c.clean_start, "a persistent client keeps its session");
    p.connack_session(session_present, vec![]);
    p
}

/// The next packet, answering PINGREQs on the way.
fn next(p: &mut Peer, what: &str) -> Packet {
    loop {
        match p.expect(what) {
            Packet::PingReq => p.send(Packet::PingResp),
            other => return other,
        }
    }
}

/// Expects a PUBLISH to `topic` at `qos` with `dup`; returns its id.
fn expect_publish(p: &mut Peer, topic: &str, qos: QoS, dup: bool) -> u16 {
    match next(p, topic) {
        Packet::Publish(pb) => {
            assert_eq!(pb.topic.as_str(), topic);
            assert_eq!(pb.qos, qos, "QoS of {topic}");
            assert_eq!(pb.dup, dup, "DUP of {topic}");
            pb.packet_id.expect("a packet id")
        }
        other => panic!("expected PUBLISH {topic}, got {other:?}"),
    }
}

/// Expects an acknowledgement `kind` for `id` with reason Success.
fn expect_ack(p: &mut Peer, kind: &str, id: u16) {
    let r = match (kind, next(p, kind)) {
        ("PUBREC", Packet::PubRec(r))
        | ("PUBREL", Packet::PubRel(r))
        | ("PUBCOMP", Packet::PubComp(r)) => r,
        (_, other) => panic!("expected {kind} {id}, got {other:?}"),
    };
    assert_eq!(r.packet_id, id, "{kind} packet id");
    assert_eq!(r.reason, ReasonCode::Success, "{kind} reason");
}

/// Reads until the client's connection ends (its process was killed or
/// its client freed); only PINGREQ may come meanwhile.
fn until_closed(p: &mut Peer) {
    while let Some(pk) = p.read() {
        match pk {
            Packet::PingReq => p.send(Packet::PingResp),
            other => panic!("expected nothing more, got {other:?}"),
        }
    }
}

fn marker(p: &mut Peer, topic: &str) {
    p.send(publish(topic, QoS::AtMostOnce, None, vec![], b""));
}

/// tests/c/test_persist_qos2.c
pub(super) fn persist_qos2_script(l: TcpListener) {
    // 1: our QoS 2 publish gets PUBREC (the client sends PUBREL; no
    // PUBCOMP comes), and a QoS 2 message to the client is PUBRECed; then
    // the client's process is killed before either ends.
    let mut p = connect_resuming(&l, false);
    let out = expect_publish(&mut p, "p2/out", QoS::ExactlyOnce, false);
    p.send(Packet::PubRec(resp(out)));
    expect_ack(&mut p, "PUBREL", out);
    p.send(publish("p2/in", QoS::ExactlyOnce, Some(9), vec![], b"once"));
    expect_ack(&mut p, "PUBREC", 9);
    marker(&mut p, "p2/ack-seen");
    until_closed(&mut p);

    // 2: the client of the next process resumes: it resends PUBREL (not
    // the message); it answers our resend of message 9 (as if its PUBREC
    // had been lost) with PUBREC without delivering it, and our PUBREL
    // with PUBCOMP Success (it knows the id).
    let mut p = connect_resuming(&l, true);
    expect_ack(&mut p, "PUBREL", out);
    p.send(Packet::PubComp(resp(out)));
    let mut again = publish("p2/in", QoS::ExactlyOnce, Some(9), vec![], b"once");
    if let Packet::Publish(pb) = &mut again {
        pb.dup = true;
    }
    p.send(again);
    expect_ack(&mut p, "PUBREC", 9);
    p.send(Packet::PubRel(resp(9)));
    expect_ack(&mut p, "PUBCOMP", 9);
    marker(&mut p, "p2/done");
    assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    p.expect_close();
}

/// tests/c/test_persistence.c
pub(super) fn persist_torn_script(l: TcpListener) {
    // 1: three QoS 1 publishes, never acknowledged; the client is freed.
    let mut p = connect_resuming(&l, false);
    let ids: Vec<u16> = ["torn/1", "torn/2", "torn/3"]
        .iter()
        .map(|t| expect_publish(&mut p, t, QoS::AtLeastOnce, false))
        .collect();
    until_closed(&mut p);

    // 2: the next client had its log's last record torn: it resends the
    // first two (with their ids), not the third.
    let mut p = connect_resuming(&l, true);
    for (t, id) in ["torn/1", "torn/2"].iter().zip(&ids) {
        assert_eq!(expect_publish(&mut p, t, QoS::AtLeastOnce, true), *id);
        p.send(Packet::PubAck(resp(*id)));
    }
    marker(&mut p, "torn/done");
    assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    p.expect_close();
}
