//! Server redirection (MQTT v5 4.11): a CONNACK refusal or a DISCONNECT
//! with reason 0x9C (Use another server) or 0x9D (Server moved) may carry
//! a Server Reference, and the client may go there instead.
//!
//! The spec leaves the reference's format open (its examples are
//! `myserver.xyz.org`, `myserver.xyz.org:8883` and
//! `[fe80::9610:3eff:fe1c]:1883`). We accept, after trimming:
//! - `host`, `host:port`, `[v6]:port`: the same transport as the
//!   connection that was sent away (scheme, and WebSocket path), with the
//!   scheme's default port when none is given;
//! - a URL (`scheme://host:port/path`) whose transport is the same, or the
//!   same with TLS added (mqtt -> mqtts, ws -> wss);
//! - of a space-separated list, the first entry.
//!
//! Never to a weaker transport: a TLS connection is never sent to a plain
//! one, and a redirected TLS connection verifies the certificate against
//! the new host's name (a server name override set in the options is
//! for the configured servers only). `unix://` connections are not
//! redirected. Each redirection followed counts one hop; a chain of them
//! longer than the options' limit is refused, and the count starts again
//! after a successful connection. While TLS certificate verification is
//! off (a test rig's option) no redirect to a TLS host is followed: it
//! says nothing about where the rig's server may send the client, and the
//! new host's name could not be verified.

use super::options::ClientOptions;
use crate::packet::{Properties, PropertyId, ReasonCode};
use crate::transport::{BrokerUrl, Scheme};

/// Where a connection attempt goes: a URL, and whether a redirection
/// sent us there (then the TLS server name override does not apply).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Target {
    pub url: BrokerUrl,
    pub redirected: bool,
}

impl Target {
    pub fn configured(url: BrokerUrl) -> Target {
        Target {
            url,
            redirected: false,
        }
    }
}

/// Whether `reason` is one that may carry a Server Reference.
pub(super) fn is_redirect(reason: ReasonCode) -> bool {
    matches!(
        reason,
        ReasonCode::UseAnotherServer | ReasonCode::ServerMoved
    )
}

/// The Server Reference of a CONNACK or DISCONNECT with a redirect reason.
pub(super) fn reference(reason: ReasonCode, props: &Properties) -> Option<String> {
    if !is_redirect(reason) {
        return None;
    }
    props
        .get_str(PropertyId::ServerReference)
        .map(|s| s.as_str().to_string())
}

/// Where `reference`, sent by the server at `from` after `hops`
/// redirections already followed in this chain, leads; or why it is not
/// followed (the text is for the log and the error).
pub(super) fn follow(
    o: &ClientOptions,
    from: &BrokerUrl,
    reference: &str,
    hops: u32,
) -> Result<BrokerUrl, String> {
    if o.follow_redirects == 0 {
        return Err("redirects are off (mqtt_options_set_follow_redirects)".into());
    }
    if hops >= o.follow_redirects {
        return Err(format!(
            "{hops} redirection(s) followed already, the most allowed \
             (mqtt_options_set_follow_redirects)"
        ));
    }
    let to = target(from, reference)?;
    if to.scheme.is_tls() && o.tls.skips_verification() {
        return Err(format!(
            "{} is not followed while TLS certificate verification is off \
             (mqtt_options_set_tls_insecure_skip_verify): the new host's name \
             could not be verified",
            to.shown()
        ));
    }
    Ok(to)
}

/// The URL `reference` designates from a connection to `from` (see the
/// module docs).
pub(super) fn target(from: &BrokerUrl, reference: &str) -> Result<BrokerUrl, String> {
    if from.scheme == Scheme::Unix {
        return Err("a unix:// connection is not redirected".into());
    }
    let first = reference.split_whitespace().next().unwrap_or("");
    if first.is_empty() {
        return Err("the Server Reference is empty".into());
    }
    let to = if first.contains("://") {
        BrokerUrl::parse(first)?
    } else {
        if first.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "the Server Reference '{}' is neither host[:port] nor a URL",
                crate::redact::url(first)
            ));
        }
        let scheme = scheme_name(from.scheme);
        let path = match from.scheme {
            Scheme::Ws | Scheme::Wss => from.path.as_str(),
            _ => "",
        };
        BrokerUrl::parse(&format!("{scheme}://{first}{path}"))?
    };
    let allowed = to.scheme == from.scheme
        || matches!(
            (from.scheme, to.scheme),
            (Scheme::Tcp, Scheme::Tls) | (Scheme::Ws, Scheme::Wss)
        );
    if !allowed {
        let weaker = from.scheme.is_tls() && !to.scheme.is_tls();
        return Err(format!(
            "{} would change the transport from {} to {}{}",
            to.shown(),
            scheme_name(from.scheme),
            scheme_name(to.scheme),
            if weaker {
                ", a weaker one (TLS to plain)"
            } else {
                " (a redirect keeps the transport, or adds TLS)"
            }
        ));
    }
    Ok(to)
}

fn scheme_name(s: Scheme) -> &'static str {
    match s {
        Scheme::Tcp => "mqtt",
        Scheme::Tls => "mqtts",
        Scheme::Ws => "ws",
        Scheme::Wss => "wss",
        Scheme::Unix => "unix",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> BrokerUrl {
        BrokerUrl::parse(s).unwrap()
    }

    #[test]
    #[cfg(all(feature = "tls", feature = "websocket"))] // mqtts://, wss://
    fn host_and_port_keep_the_transport() {
        let t = target(&u("mqtts://a:8884"), "b.example:9000").unwrap();
        assert_eq!(t, u("mqtts://b.example:9000"));
        let t = target(&u("mqtts://a:8884"), "b.example").unwrap();
        assert_eq!(t, u("mqtts://b.example:8883"));
        let t = target(&u("wss://a/x/mqtt?k=1"), "[::1]:443").unwrap();
        assert_eq!(t, u("wss://[::1]:443/x/mqtt?k=1"));
        let t = target(&u("mqtt://a"), "  c:1 d:2 ").unwrap();
        assert_eq!(t, u("mqtt://c:1"));
    }

    #[test]
    #[cfg(all(feature = "tls", feature = "websocket"))] // mqtts://, wss://
    fn never_weaker() {
        for (from, to) in [
            ("mqtts://a", "mqtt://b"),
            ("wss://a", "ws://b"),
            ("wss://a", "mqtt://b"),
            ("mqtts://a", "ws://b"),
        ] {
            let e = target(&u(from), to).unwrap_err();
            assert!(e.contains("weaker"), "{from} -> {to}: {e}");
        }
        assert!(target(&u("mqtt://a"), "ws://b").is_err());
        assert!(target(&u("mqtt://a"), "unix:///s").is_err());
        assert!(target(&u("unix:///s"), "b:1").is_err());
        assert_eq!(target(&u("mqtt://a"), "mqtts://b").unwrap(), u("mqtts://b"));
        assert_eq!(target(&u("ws://a"), "wss://b/p").unwrap(), u("wss://b/p"));
    }

    #[test]
    fn malformed_references() {
        for r in ["", "   ", "b/x", "u@b:1", "b:0", "b:99999", "fe80::1"] {
            assert!(target(&u("mqtt://a"), r).is_err(), "{r:?}");
        }
    }

    #[test]
    fn hops_are_bounded_and_off_by_default() {
        let mut o = ClientOptions::default();
        assert!(follow(&o, &u("mqtt://a"), "b:1", 0)
            .unwrap_err()
            .contains("off"));
        o.follow_redirects = 2;
        assert!(follow(&o, &u("mqtt://a"), "b:1", 1).is_ok());
        assert!(follow(&o, &u("mqtt://a"), "b:1", 2).is_err());
    }
}
