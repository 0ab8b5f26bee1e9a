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
