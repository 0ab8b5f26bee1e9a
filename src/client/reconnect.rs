//! The reconnection task: after a connection is lost other than by
//! `disconnect` or `close` (or after a failed `connect`, with
//! `connect_retry`), it makes rounds over the servers until an attempt
//! succeeds: each round waits, then tries each server once (see
//! `attempt`): first the one of the last successful connection (the
//! session lives there), or where a DISCONNECT's Server Reference sent
//! us, then the URL given to `connect`, then the further servers. The
//! delay doubles after each failed round, up to the maximum. Before each
//! attempt it queues a `Reconnecting` event with the attempt's number.
//! A connection that an automatic reconnection made and that is lost
//! within the maximum delay does not start over at the minimum: the wait
//! goes on doubling from the one before it (`first_delay`), so a server
//! that accepts and drops us at once is not hammered at the minimum
//! delay for ever.
//!
//! One concern and no event loop: the task is stopped by aborting its
//! handle (`disconnect`, `connect`, `close`). Each attempt runs under the
//! `connecting` lock, so it never overlaps a manual connect or disconnect,
//! and it first checks that nobody connected or freed the client meanwhile,
//! and that it is still the client's reconnection task. An abort takes
//! effect only when the task's current poll returns Pending, and one poll
//! may go a long way: a task stopped while it was being polled (waking
//! from its delay, say) went on to take the lock after `disconnect` had
//! returned (its whole body fits in that poll when no connection is up),
//! queued RECONNECTING and, on loopback, made a whole connection (TCP,
//! CONNECT, CONNACK) within that same poll, the sockets ready whenever it
//! looked: seen with a poll counter on the task (see
//! tests/connection.rs
//! `disconnect_racing_the_close_with_reconnection_on_leaves_none_running`).
//! The check is under the `connecting` lock: `connect` and `disconnect`
//! empty the slot (again) under it and hold it until they return, so a
//! stopped task that gets the lock finds itself out of the slot.

use super::attempt;
use super::connection::Start;
use super::logging::Level;
use super::options::Reconnect;
use super::redirect::Target;
use super::{lock, ConnectionEvent, DisconnectCause, Error, Event, Inner};
use crate::packet::ReasonCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reconnects, to `first` first (else the server of the last successful
/// connection); `go` is completed (or dropped) once the DISCONNECTED
/// event of the lost connection is queued, so CONNECTED always follows
/// it.
pub(super) async fn run(
    inner: Arc<Inner>,
    first: Option<Target>,
    policy: Reconnect,
    go: tokio::sync::oneshot::Receiver<()>,
) {
    let mut delay = first_delay(&inner, policy);
    let _ = go.await;
    let mut attempt = 1u32;
    let mut first = first;
    loop {
        let wait = jittered(delay);
        inner.log(
            Level::Info,
            format_args!(
                "reconnecting in {} ms (attempt {attempt} next)",
                wait.as_millis()
            ),
        );
        tokio::time::sleep(wait).await;
        let head = first.take().or_else(|| lock(&inner.last_url).clone());
        for target in inner.round(head) {
            // Not under the `connecting` lock: a callback may disconnect.
            inner.delivery.wait_below_bound().await;
            let _serial = inner.connecting.lock().await;
            if inner.delivery.is_closed() || inner.current().is_some() || !inner.is_reconnector() {
                return;
            }
            inner.delivery.push(
                &inner,
                Event::Connection(ConnectionEvent::Reconnecting { attempt }),
            );
            let shown = target.url.shown();
            // A server we were sent to counts the hop that got us there.
            let hops = u32::from(target.redirected);
            inner.log(
                Level::Info,
                format_args!("reconnect attempt {attempt} to {shown}"),
            );
            // Before the attempt: the connection it makes may be lost (and
            // this task aborted by the next one) before it returns.
            *lock(&inner.reconnected) = Some((delay, Instant::now()));
            match attempt::attempt(&inner, target, Start::Automatic, hops, attempt).await {
                // Counted by `establish`, before it queued CONNECTED.
                Ok(_) => return,
                // Also an attempt failed because the client was freed
                // meanwhile, by its TLS signer say, which runs inside this
                // task's poll: the program may be in `mqtt_global_cleanup`
                // already, which stops the runtime's timers once the last
                // client is freed, and the sleep below would panic there.
                Err(Error::Closed) => return,
                Err(e) => {
                    inner.stats.count_reconnect_attempt(false);
                    inner.log(
                        Level::Warning,
                        format_args!("reconnect attempt {attempt} to {shown} failed: {e}"),
                    );
                }
            }
            attempt = attempt.saturating_add(1);
        }
        delay = delay.saturating_mul(2).min(policy.max_delay);
    }
}

/// The wait before the first attempt: the minimum, unless the lost
/// connection was made by an automatic reconnection attempted less than
/// the maximum delay ago (a server that accepts and drops at once, or one
/// that fails every connection soon after CONNACK): then twice the wait
/// before that reconnection, up to the maximum.
fn first_delay(inner: &Inner, policy: Reconnect) -> Duration {
    match lock(&inner.reconnected).take() {
        Some((delay, at)) if at.elapsed() < policy.max_delay => {
            delay.saturating_mul(2).min(policy.max_delay)
        }
        _ => policy.min_delay,
    }
}

/// Whether a connection that ended this way is worth coming back to as
/// is. Not after our own DISCONNECT, nor after a server DISCONNECT that
/// says the same connection must not come back: another client took the
/// session over (reconnecting would take it back, and the two clients
/// would push each other off for ever), or the server sends it elsewhere
/// (Server Reference in the properties). (0x8A Banned is a CONNACK code,
/// not a DISCONNECT one: a refused attempt is retried like any failure.)
pub(super) fn wanted(cause: &DisconnectCause) -> bool {
    match cause {
        DisconnectCause::Client(_) => false,
        DisconnectCause::Server(d) => !matches!(
            d.reason,
            ReasonCode::SessionTakenOver | ReasonCode::UseAnotherServer | ReasonCode::ServerMoved
        ),
        DisconnectCause::Closed
        | DisconnectCause::Io(_)
        | DisconnectCause::KeepAliveTimeout
        | DisconnectCause::Protocol(..) => true,
    }
}

/// `delay` shortened by up to a fifth at random, so that clients that lost
/// their server together do not come back in lockstep.
fn jittered(delay: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded randomly per thread and per instance: enough
    // to spread a fleet, without a dependency on a random number crate.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let fraction = (h.finish() % 1001) as f64 / 1000.0;
    delay.mul_f64(1.0 - 0.2 * fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_fifth_below_the_delay() {
        let d = Duration::from_millis(1000);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(d)).collect();
        assert!(waits
            .iter()
            .all(|w| *w <= d && *w >= Duration::from_millis(800)));
        // Not all the same: the point of jitter.
        assert!(waits.iter().any(|w| *w != waits[0]));
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn no_reconnect_after_takeover_or_redirect() {
        let server = |reason| {
            DisconnectCause::Server(crate::packet::Disconnect {
                reason,
                properties: Default::default(),
            })
        };
        assert!(wanted(&DisconnectCause::Closed));
        assert!(wanted(&DisconnectCause::KeepAliveTimeout));
        assert!(wanted(&server(ReasonCode::ServerShuttingDown)));
        assert!(!wanted(&DisconnectCause::Client(ReasonCode::Success)));
        for r in [
            ReasonCode::SessionTakenOver,
            ReasonCode::UseAnotherServer,
            ReasonCode::ServerMoved,
        ] {
            assert!(!wanted(&server(r)), "{r:?}");
        }
    }
}
