//! Whether the client has a connection, is getting one back, or neither.
//!
//! What a call made without a connection does depends on it: while the
//! client reconnects (automatic reconnection, or `connect` retrying in the
//! background) a publish goes into the offline queue and a subscribe
//! waits for the next connection; otherwise both fail with
//! `NotConnected`, as without automatic reconnection.
//!
//! The state changes in step with the connection slot: `Up` is set after a
//! connection is installed, and a lost connection leaves `Up` (under the
//! session lock) before it leaves the slot. So a call that finds no
//! connection never sees `Up`, and one that sees `Reconnecting` will be
//! woken by the next change.

use super::{lock, Connection, Error, Inner};
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Link {
    /// No connection, none coming: calls fail with `NotConnected`.
    Down,
    Up,
    /// No connection now; the reconnection task is getting one.
    Reconnecting,
    /// `close` was called; final.
    Closed,
}

impl Inner {
    pub(super) fn link(&self) -> Link {
        *self.link.borrow()
    }

    /// Sets the state, unless the client is closed (which is final).
    pub(super) fn set_link(&self, to: Link) {
        self.link.send_if_modified(|l| {
            if *l == Link::Closed || *l == to {
                return false;
            }
            *l = to;
            true
        });
    }

    /// The current connection; while the client reconnects, the next one.
    /// `NotConnected` when there is none and none is coming.
    pub(super) async fn connection_or_wait(&self) -> Result<Arc<Connection>, Error> {
        loop {
            // Subscribed before the slot is looked at: a change after the
            // look wakes the wait below.
            let mut changes = self.link.subscribe();
            if let Some(c) = self.current() {
                return Ok(c);
            }
            let now = *changes.borrow_and_update();
            match now {
                Link::Down => return Err(Error::NotConnected),
                Link::Closed => return Err(Error::Closed),
                Link::Up | Link::Reconnecting => {
                    self.not_waiting_in_pre_connect()?;
                    if changes.changed().await.is_err() {
                        return Err(Error::Closed);
                    }
                }
            }
        }
    }

    /// Refuses a wait for the reconnection from inside the pre-connect
    /// hook or the TLS signer: the reconnection waits for the callback, so
    /// the call would hold both until its operation timeout.
    pub(super) fn not_waiting_in_pre_connect(&self) -> Result<(), Error> {
        let which = match self.gate.inside_attempt_callback() {
            None => return Ok(()),
            Some(super::gate::Kind::PreConnect) => "the pre-connect callback",
            Some(_) => "the TLS client signer callback",
        };
        Err(Error::InvalidArgument(format!(
            "a blocking call from {which} would wait for the reconnection, which waits for \
             the callback (use mqtt_publish_async, or make the call after the callback)"
        )))
    }

    /// After a call failed with `ConnectionLost` before anything of it
    /// was sent or registered: whether it may go again, on the connection
    /// that follows.
    pub(super) fn may_retry(&self) -> bool {
        matches!(self.link(), Link::Up | Link::Reconnecting)
    }

    /// The reconnection ended without a connection (stopped by
    /// `disconnect`, or a `connect` that took it over failed): the calls
    /// waiting for the outcome of a publish (in the session or the offline
    /// queue) or for a connection return `ConnectionLost`; the messages
    /// stay, for the next connection.
    pub(super) fn stop_reconnecting(self: &Arc<Self>) {
        let failed = {
            let mut s = lock(&self.session);
            if self.link() != Link::Reconnecting || self.current().is_some() {
                return;
            }
            self.set_link(Link::Down);
            s.fail_waiters()
        };
        self.delivery.push_finished(self, failed);
        self.requests.fail_all();
        let failed = lock(&self.offline).fail_waiters();
        self.delivery.push_finished(self, failed);
    }
}

/// Either of two outcomes (see [`first`]).
pub(super) enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Runs `a` and `b` together and returns the outcome of the first to
/// finish (`a` when both are ready at once); the other is dropped.
pub(super) async fn first<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        b.as_mut().poll(cx).map(Either::Right)
    })
    .await
}
