//! Enhanced authentication (spec 4.12): the AUTH exchange during connect
//! and re-authentication on a live connection.
//!
//! The application answers each challenge through [`Handler::on_auth`].
//! It is never called on the reader task, and not on the thread polling
//! `connect` / `reauthenticate` either: the C API polls those inside
//! `block_on`, where a blocking call made by the callback (a publish on
//! the same client, say) could not start a nested runtime. It runs on the
//! runtime's blocking pool, like message callbacks, while the call awaits
//! its answer. During connect the reader does not run yet: `establish`
//! reads the AUTH packets itself. On a live connection the reader forwards
//! AUTH (and a DISCONNECT) to an unbounded channel the waiting call owns,
//! without waiting, and keeps reading; so a handler that blocks, or makes
//! blocking calls on the same client, delays only its own exchange, and
//! the acknowledgements its calls wait for are still read.
//!
//! [`Handler::on_auth`]: super::Handler::on_auth

use super::gate::Kind;
use super::secrets::{wiped, with_auth_data};
use super::{lock, Ack, Error, Inner, MqttClient};
use crate::packet::{
    self, Auth, Direction, Disconnect, MqttStr, Packet, PacketType, Properties, Property,
    PropertyContext, PropertyId, ReasonCode,
};
use crate::transport::PacketWriter;
use bytes::{Bytes, BytesMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What the reader forwards to a waiting re-authentication.
#[derive(Debug)]
pub(crate) enum AuthEvent {
    Auth(Auth),
    Disconnect(Disconnect),
}

/// A step of the exchange, handed to [`Handler::on_auth`](super::Handler::on_auth).
#[derive(Clone, Debug)]
pub struct AuthChallenge {
    /// 0x18 Continue Authentication: a challenge to answer; 0x00 Success:
    /// the server's successful CONNACK or final AUTH, to verify; always
    /// asked, `data` None when the server sent none.
    pub reason: ReasonCode,
    pub method: MqttStr,
    pub data: Option<Bytes>,
    /// All properties of the AUTH or CONNACK (reason string, user properties).
    pub properties: Properties,
}

/// The application's answer to an [`AuthChallenge`].
#[derive(Clone)]
pub enum AuthAnswer {
    /// Answer a challenge with this data (for a Success step: accept).
    Respond(Option<Bytes>),
    /// End the exchange: we send DISCONNECT with this reason code.
    Abort(ReasonCode),
}

impl std::fmt::Debug for AuthAnswer {
    // The answer's data is a secret (a proof, a token): never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthAnswer::Respond(d) => f
                .debug_tuple("Respond")
                .field(&d.as_ref().map(|d| format!("<{} bytes redacted>", d.len())))
                .finish(),
            AuthAnswer::Abort(r) => f.debug_tuple("Abort").field(r).finish(),
        }
    }
}

/// The Authentication Method we sent in CONNECT, if any.
fn method(inner: &Inner) -> Option<MqttStr> {
    // As a pre-connect hook may have left it (see `secrets`).
    lock(&inner.secrets)
        .connect_properties
        .get_str(PropertyId::AuthenticationMethod)
}

/// A DISCONNECT reason for an abort (a failure code that DISCONNECT allows).
fn abort_reason(r: ReasonCode) -> ReasonCode {
    let mut b = BytesMut::new();
    let d = Packet::Disconnect(Disconnect {
        reason: r,
        properties: Properties::new(),
    });
    if r.is_error() && packet::encode(&d, &mut b).is_ok() {
        r
    } else {
        ReasonCode::UnspecifiedError
    }
}

/// Checks the Authentication Method of the server's AUTH or CONNACK
/// against `ours`: another method is a protocol error, and so is none when
/// `required`. A challenge (AUTH 0x18) requires it (MQTT 3.15.2.2.2): a
/// server that does not name our method is not running our exchange, and
/// its challenge must not reach the callback. A success may lack it (a
/// CONNACK, or an AUTH in its short form without properties, 3.15.2.1);
/// the callback still sees that step, so the application decides.
fn check_method(props: &Properties, ours: &MqttStr, required: bool) -> Result<(), String> {
    match props.get_str(PropertyId::AuthenticationMethod) {
        Some(m) if m != *ours => Err(format!(
            "the server named another authentication method than ours ('{}')",
            ours.as_str()
        )),
        None if required => Err(
            "AUTH 0x18 (continue authentication) without an Authentication Method (MQTT 3.15.2.2.2)"
                .into(),
        ),
        _ => Ok(()),
    }
}

/// Checks an AUTH from the server: a reason among `allowed`, and our
/// method (see `check_method`). The text says what is wrong.
fn check_auth(a: &Auth, ours: &MqttStr, allowed: &[ReasonCode], when: &str) -> Result<(), String> {
    if !allowed.contains(&a.reason) {
        return Err(format!("AUTH with reason 0x{:02X} {when}", a.reason as u8));
    }
    let challenge = a.reason == ReasonCode::ContinueAuthentication;
    check_method(&a.properties, ours, challenge)
}

/// Asks the handler about one step, on the blocking pool (see the module
/// docs). The caller has checked the step (`check_auth`, `check_method`).
async fn ask(
    inner: &Inner,
    method: &MqttStr,
    reason: ReasonCode,
    props: &Properties,
) -> AuthAnswer {
    let challenge = AuthChallenge {
        reason,
        method: method.clone(),
        data: props.get_binary(PropertyId::AuthenticationData),
        properties: props.clone(),
    };
    let handler = inner.handler.clone();
    let gate = inner.gate.clone();
    let asking = Asking(Arc::new(AtomicBool::new(true)));
    let still_asked = asking.0.clone();
    // Dropping this future (a timeout, an aborted reconnection, `close`)
    // does not stop the job: the job checks, inside the gate, that the
    // client is open and the answer still wanted before it calls the
    // handler. Entering first and checking after is what lets a caller
    // that stopped waiting then wait for the job with
    // `wait_for_auth_callbacks`: the job either is in the gate by then, or
    // sees that nobody asks any more.
    let answer = inner
        .runtime
        .spawn_blocking(move || {
            let _inside = gate.enter(Kind::Auth)?;
            still_asked
                .load(Ordering::SeqCst)
                .then(|| handler.on_auth(&challenge))
        })
        .await;
    drop(asking);
    match answer {
        Ok(Some(AuthAnswer::Abort(r))) => AuthAnswer::Abort(abort_reason(r)),
        Ok(Some(a)) => a,
        // Closed meanwhile: the caller is being stopped anyway.
        Ok(None) => AuthAnswer::Abort(ReasonCode::UnspecifiedError),
        // The handler panicked: a Rust bug; end the exchange. Its
        // payload may panic when dropped (see `drop_payload`).
        Err(e) => {
            super::delivery::drop_join_error(e);
            AuthAnswer::Abort(ReasonCode::ImplementationSpecificError)
        }
    }
}

/// Marks an auth question as no longer asked when `ask` ends, however it ends.
struct Asking(Arc<AtomicBool>);

impl Drop for Asking {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// An AUTH packet; its Authentication Data, if any, in a list of its own
/// that is wiped when dropped (see `secrets`).
fn auth_packet(
    method: &MqttStr,
    reason: ReasonCode,
    data: Option<Bytes>,
    mut props: Properties,
) -> Result<Packet, Error> {
    props.set(Property::AuthenticationMethod(method.clone()));
    props.remove(PropertyId::AuthenticationData);
    if let Some(d) = data {
        props = with_auth_data(&props, &d, PacketType::Auth)?;
    }
    Ok(Packet::Auth(Auth {
        reason,
        properties: props,
    }))
}

/// Sends DISCONNECT on a connection not installed yet (during connect),
/// best effort, and closes it.
pub(super) async fn write_disconnect(w: &mut PacketWriter, reason: ReasonCode) {
    let mut b = BytesMut::new();
    let d = Packet::Disconnect(Disconnect {
        reason,
        properties: Properties::new(),
    });
    if packet::encode(&d, &mut b).is_ok() {
        let _ = w.write_packet(&b).await;
        let _ = w.shutdown().await;
    }
}

/// Answers an AUTH the server sent before CONNACK.
pub(super) async fn answer_during_connect(
    inner: &Arc<Inner>,
    w: &mut PacketWriter,
    a: Auth,
) -> Result<(), Error> {
    let Some(method) = method(inner) else {
        write_disconnect(w, ReasonCode::ProtocolError).await;
        return Err(Error::Protocol(
            "server started enhanced authentication, which is not configured".into(),
        ));
    };
    let allowed = [ReasonCode::ContinueAuthentication];
    if let Err(why) = check_auth(&a, &method, &allowed, "before CONNACK") {
        write_disconnect(w, ReasonCode::ProtocolError).await;
        return Err(Error::Protocol(why));
    }
    match ask(inner, &method, a.reason, &a.properties).await {
        AuthAnswer::Respond(data) => {
            let p = auth_packet(
                &method,
                ReasonCode::ContinueAuthentication,
                data,
                Properties::new(),
            )?;
            let mut b = BytesMut::new();
            packet::encode(&p, &mut b)?;
            w.write_packet(&wiped(b)).await?;
            Ok(())
        }
        AuthAnswer::Abort(r) => {
            write_disconnect(w, r).await;
            Err(Error::AuthAborted(r))
        }
    }
}

/// Lets the handler verify a successful CONNACK when CONNECT carried an
/// Authentication Method: always, with the server's final data or none.
/// Asking only when data came would let an impostor that cannot produce
/// it (SCRAM's server signature, say) skip its half of a mutual
/// authentication by sending none.
pub(super) async fn verify_success(
    inner: &Arc<Inner>,
    w: &mut PacketWriter,
    props: &Properties,
) -> Result<(), Error> {
    let Some(method) = method(inner) else {
        return Ok(());
    };
    if let Err(why) = check_method(props, &method, false) {
        write_disconnect(w, ReasonCode::ProtocolError).await;
        return Err(Error::Protocol(format!("CONNACK: {why}")));
    }
    match ask(inner, &method, ReasonCode::Success, props).await {
        AuthAnswer::Respond(_) => Ok(()),
        AuthAnswer::Abort(r) => {
            write_disconnect(w, r).await;
            Err(Error::AuthAborted(r))
        }
    }
}

/// Clears the connection's AUTH forwarding when the call ends, however it ends.
struct StopForwarding<'a>(&'a super::Connection);

impl Drop for StopForwarding<'_> {
    fn drop(&mut self) {
        lock(&self.0.auth_waiter).take();
    }
}

impl MqttClient {
    /// Re-authenticates on the live connection: sends AUTH 0x19 with
    /// `data`, answers the server's challenges through the handler, and
    /// returns when the server ends the exchange. Returns the server's
    /// verdict: `Success` (the connection carries on), or the reason of
    /// its DISCONNECT (the connection is then closed).
    pub async fn reauthenticate(
        &self,
        data: Option<Bytes>,
        properties: Properties,
    ) -> Result<Ack, Error> {
        let inner = &self.inner;
        if inner.version() == packet::ProtocolVersion::V311 {
            return Err(super::v311::refuse("re-authentication (AUTH)"));
        }
        let Some(method) = method(inner) else {
            return Err(Error::InvalidArgument(
                "re-authentication needs the authentication method set for connect".into(),
            ));
        };
        let ctx = PropertyContext::Packet(PacketType::Auth);
        if let Some(id) = properties.first_not_allowed(ctx, Direction::ToServer) {
            return Err(super::not_allowed(id, "AUTH"));
        }
        let conn = inner.current().ok_or(Error::NotConnected)?;
        let first = auth_packet(&method, ReasonCode::ReAuthenticate, data, properties)?;
        let mut b = BytesMut::new();
        packet::encode(&first, &mut b)?;
        conn.check_size(b.len())?;

        let _serial = conn.auth_serial.lock().await;
        // Room for the one AUTH the server may send before our answer,
        // and its DISCONNECT (see `reader::forward_auth`).
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        *lock(&conn.auth_waiter) = Some(tx);
        let _stop = StopForwarding(&conn);
        if !conn.is_alive() {
            return Err(Error::ConnectionLost);
        }
        inner.send(&conn, wiped(b)).await?;
        loop {
            let next = match inner.options.operation_timeout {
                Some(t) => tokio::time::timeout(t, rx.recv())
                    .await
                    .map_err(|_| Error::Timeout("AUTH"))?,
                None => rx.recv().await,
            };
            let a = match next {
                None => return Err(Error::ConnectionLost),
                Some(AuthEvent::Disconnect(d)) if d.reason.is_error() => {
                    return Ok(Ack {
                        reason: d.reason,
                        properties: d.properties,
                    })
                }
                Some(AuthEvent::Disconnect(_)) => return Err(Error::ConnectionLost),
                Some(AuthEvent::Auth(a)) => a,
            };
            // A success goes to the handler too, with data or without
            // (see `verify_success`).
            let allowed = [ReasonCode::ContinueAuthentication, ReasonCode::Success];
            if let Err(why) = check_auth(&a, &method, &allowed, "during re-authentication") {
                self.disconnect(ReasonCode::ProtocolError, Properties::new())
                    .await?;
                return Err(Error::Protocol(why));
            }
            match ask(inner, &method, a.reason, &a.properties).await {
                AuthAnswer::Respond(_) if a.reason == ReasonCode::Success => {
                    return Ok(Ack {
                        reason: ReasonCode::Success,
                        properties: a.properties,
                    })
                }
                AuthAnswer::Respond(data) => {
                    let p = auth_packet(
                        &method,
                        ReasonCode::ContinueAuthentication,
                        data,
                        Properties::new(),
                    )?;
                    let mut b = BytesMut::new();
                    packet::encode(&p, &mut b)?;
                    if let Err(e) = conn.check_size(b.len()) {
                        self.disconnect(ReasonCode::ImplementationSpecificError, Properties::new())
                            .await?;
                        return Err(e);
                    }
                    inner.send(&conn, wiped(b)).await?;
                }
                AuthAnswer::Abort(r) => {
                    self.disconnect(r, Properties::new()).await?;
                    return Err(Error::AuthAborted(r));
                }
            }
        }
    }
}
