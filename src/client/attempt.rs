//! Connection attempts over the servers. One attempt goes to one server
//! and follows its CONNACK's redirections (see `redirect`); one round
//! tries each server once, in the order [`Inner::round`] gives. `connect`
//! makes one round; the reconnection task makes rounds until one
//! succeeds, with its delay between rounds.
//!
//! Before each connection (each redirection too) the application's
//! pre-connect hook runs (`Handler::before_connect`), for credentials
//! that change between attempts (short-lived tokens). Like the auth
//! callback (see `auth::ask`) it runs on the blocking pool, inside the
//! callback gate, never on the reader nor on the thread polling the
//! attempt (the C API polls `connect` inside `block_on`, where a blocking
//! call made by the hook could not start). It works on a copy of the
//! connect settings taken under the secrets lock, and its changes are
//! stored back under that lock, still inside the gate: `close` shuts the
//! gate before it empties the secrets, so nothing is stored after that.

use super::connection::{self, Start};
use super::gate::Kind;
use super::logging::Level;
use super::redirect::{self, Target};
use super::{lock, ConnectInfo, Error, Inner};
use crate::packet::{ProtocolVersion, ReasonCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

impl Inner {
    /// The servers of one round, each once: `first`, then the URL given
    /// to the last `connect`, then the configured further servers.
    pub(super) fn round(&self, first: Option<Target>) -> Vec<Target> {
        let given = lock(&self.given_url).clone().map(Target::configured);
        let listed = self.options.servers.iter().cloned().map(Target::configured);
        let mut round: Vec<Target> = Vec::new();
        for t in first.into_iter().chain(given).chain(listed) {
            if !round.iter().any(|r| r.url == t.url) {
                round.push(t);
            }
        }
        round
    }
}

/// Attempt `number` at `target`: the pre-connect hook, `establish`
/// within the connect timeout, then the redirections its CONNACK asks
/// for, as the options allow (each after the hook again). `hops`: the
/// redirections followed already to get to `target`.
pub(super) async fn attempt(
    inner: &Arc<Inner>,
    mut target: Target,
    start: Start,
    mut hops: u32,
    number: u32,
) -> Result<ConnectInfo, Error> {
    // Set when this attempt fell back to 3.1.1 because the server closed
    // the connection after our v5 CONNECT.
    let mut fell_back_on_close = false;
    loop {
        pre_connect(inner, &target, number).await?;
        let timeout = inner.options.connect_timeout;
        let shown = target.url.shown();
        inner.log(
            Level::Info,
            format_args!(
                "connecting to {shown} (attempt {number}, MQTT {})",
                version_name(*lock(&inner.protocol))
            ),
        );
        let opened = std::sync::atomic::AtomicBool::new(false);
        let made = connection::establish(inner, &target, start, &opened);
        let r = match tokio::time::timeout(timeout, made).await {
            Ok(r) => r,
            // A slow proxy or TLS peer is not a broker slow to answer.
            Err(_) if !opened.load(std::sync::atomic::Ordering::Relaxed) => Err(Error::Timeout(
                "the connection: TCP, a proxy's tunnel, the TLS or WebSocket handshake \
                 (connect timeout)",
            )),
            Err(_) => Err(Error::Timeout("CONNACK (connect timeout)")),
        };
        // Freed meanwhile (by the TLS signer of this very handshake, say,
        // which then fails it): that is the outcome, whatever failed.
        if r.is_err() && inner.delivery.is_closed() {
            return Err(Error::Closed);
        }
        if std::mem::take(&mut fell_back_on_close)
            && !matches!(&r, Ok(_) | Err(Error::Refused { .. }))
        {
            // The 3.1.1 CONNECT got no answer either: the server was going
            // away rather than refusing v5. Nothing learned; v5 first again.
            *lock(&inner.protocol) = ProtocolVersion::V5;
            inner.log(
                Level::Info,
                format_args!(
                    "{shown} did not answer the MQTT 3.1.1 CONNECT either: trying MQTT v5 \
                     first again (MQTT_PROTOCOL_AUTO)"
                ),
            );
        }
        if let Ok(info) = &r {
            if inner.options.protocol_version.is_none()
                && *lock(&inner.protocol) == ProtocolVersion::V5
            {
                let mut agreed = lock(&inner.v5_agreed);
                if !agreed.contains(&target.url) {
                    agreed.push(target.url.clone());
                }
            }
            inner.log(
                Level::Info,
                format_args!(
                    "connected to {shown} (session present: {})",
                    info.session_present
                ),
            );
        }
        let (reason, on_close) = match &r {
            Err(Error::Refused {
                reason,
                reason_string,
            }) => (
                *reason,
                reason_string.as_deref() == Some(connection::CLOSED_AFTER_V5_CONNECT),
            ),
            _ => return r,
        };
        if fall_back_to_v311(inner, reason, &target) {
            fell_back_on_close = on_close;
            continue;
        }
        // `establish` keeps the refusing CONNACK there.
        let reference = lock(&inner.last_connack)
            .as_ref()
            .and_then(|c| redirect::reference(reason, &c.properties));
        let Some(reference) = reference else {
            return r;
        };
        let from = target.url.shown();
        let shown = crate::redact::url(&reference);
        match redirect::follow(&inner.options, &target.url, &reference, hops) {
            Ok(url) => {
                inner.log(
                    Level::Info,
                    format_args!(
                    "{from} refused the connection (0x{:02X}) with Server Reference '{shown}': \
                     following it to {}",
                    reason as u8,
                    url.shown()
                ),
                );
                hops += 1;
                target = Target {
                    url,
                    redirected: true,
                };
            }
            Err(why) => {
                let e = Error::RedirectRefused {
                    reason,
                    reference: shown,
                    why,
                };
                inner.log(Level::Warning, format_args!("{from}: {e}"));
                return Err(e);
            }
        }
    }
}

fn version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V5 => "v5",
        ProtocolVersion::V311 => "3.1.1",
    }
}

/// With `MQTT_PROTOCOL_AUTO`, a server that refused our v5 CONNECT (see
/// `connection::connack_failed`) is tried again at once with 3.1.1, and
/// this client speaks 3.1.1 from then on (reconnections too). True when
/// the attempt should be made again.
fn fall_back_to_v311(inner: &Inner, reason: ReasonCode, target: &Target) -> bool {
    if inner.options.protocol_version.is_some() || reason != ReasonCode::UnsupportedProtocolVersion
    {
        return false;
    }
    let mut protocol = lock(&inner.protocol);
    if *protocol == ProtocolVersion::V311 {
        return false;
    }
    *protocol = ProtocolVersion::V311;
    inner.log(
        Level::Info,
        format_args!(
            "{} refused MQTT v5: connecting again with MQTT 3.1.1 (MQTT_PROTOCOL_AUTO)",
            target.url.shown()
        ),
    );
    true
}

/// Runs the pre-connect hook for attempt `number` at `target` (see the
/// module docs). Err when it skipped the attempt, or the client closed.
async fn pre_connect(inner: &Arc<Inner>, target: &Target, number: u32) -> Result<(), Error> {
    // Asked inside this task's poll (a reconnection's): a panic (a
    // poisoned mutex of the application's, say) would end the task and
    // leave the client reconnecting for good. It fails this attempt, as a
    // panicking hook does.
    match super::delivery::catch_panic(|| inner.handler.has_pre_connect()) {
        Some(true) => {}
        Some(false) => return Ok(()),
        None => return Err(Error::Internal("the pre-connect callback panicked")),
    }
    let url = target.url.to_url_string();
    let shown = target.url.shown();
    let job = inner.clone();
    let wanted = Wanted(Arc::new(AtomicBool::new(true)));
    let still_wanted = wanted.0.clone();
    // Dropping this future (an aborted reconnection, `close`) does not
    // stop the job: it checks inside the gate that the attempt is still
    // wanted before it calls the hook.
    let outcome = inner
        .runtime
        .spawn_blocking(move || {
            let inner = job;
            let _inside = inner.gate.enter(Kind::PreConnect)?;
            if !still_wanted.load(Ordering::SeqCst) {
                return None;
            }
            let mut settings = lock(&inner.secrets).settings(&inner.options);
            let go = inner.handler.before_connect(&url, number, &mut settings);
            let mut secrets = lock(&inner.secrets);
            if !inner.gate.is_closed() {
                secrets.update(settings, &inner.options);
            }
            Some(go)
        })
        .await;
    drop(wanted);
    match outcome {
        Ok(Some(true)) => Ok(()),
        Ok(Some(false)) => {
            let e = Error::AttemptSkipped(shown);
            inner.log(Level::Info, format_args!("{e}"));
            Err(e)
        }
        Ok(None) => Err(Error::Closed),
        Err(e) => {
            // Its payload may panic when dropped (see `drop_payload`).
            super::delivery::drop_join_error(e);
            Err(Error::Internal("the pre-connect callback panicked"))
        }
    }
}

/// Marks a pre-connect question as no longer asked when dropped.
struct Wanted(Arc<AtomicBool>);

impl Drop for Wanted {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}
