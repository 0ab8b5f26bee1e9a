//! Connection attempts over the servers. One attempt goes to one server
//! and follows its CONNACK's redirections (see `redirect`); one round
//! tries each server once, in the order [`Inner::round`] gives. `connect`
//! makes one round; the reconnection task makes rounds until one
//! succeeds, with its delay between rounds.

use super::connection::{self, Start};
use super::redirect::{self, Target};
use super::{flow, lock, ConnectInfo, Error, Inner};
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

/// One attempt at `target`: `establish` within the connect timeout, then
/// the redirections its CONNACK asks for, as the options allow. `hops`:
/// the redirections followed already to get to `target`.
pub(super) async fn attempt(
    inner: &Arc<Inner>,
    mut target: Target,
    start: Start,
    mut hops: u32,
) -> Result<ConnectInfo, Error> {
    loop {
        let timeout = inner.options.connect_timeout;
        let made = connection::establish(inner, &target, start);
        let r = match tokio::time::timeout(timeout, made).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout("CONNACK (connect timeout)")),
        };
        let reason = match &r {
            Err(Error::Refused { reason, .. }) => *reason,
            _ => return r,
        };
        // `establish` keeps the refusing CONNACK there.
        let reference = lock(&inner.last_connack)
            .as_ref()
            .and_then(|c| redirect::reference(reason, &c.properties));
        let Some(reference) = reference else {
            return r;
        };
        let from = target.url.to_url_string();
        let shown = crate::redact::peer(&reference);
        match redirect::follow(&inner.options, &target.url, &reference, hops) {
            Ok(url) => {
                flow::log(format_args!(
                    "{from} refused the connection (0x{:02X}) with Server Reference '{shown}': \
                     following it to {}",
                    reason as u8,
                    url.to_url_string()
                ));
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
                flow::log(format_args!("{from}: {e}"));
                return Err(e);
            }
        }
    }
}
