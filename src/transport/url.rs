//! Broker URLs. The scheme picks the transport:
//!
//! | scheme | transport | default port |
//! | --- | --- | --- |
//! | `mqtt://`, `tcp://` | TCP | 1883 |
//! | `mqtts://`, `ssl://`, `tls://` | TLS over TCP | 8883 |
//! | `ws://` | WebSocket over TCP, path `/mqtt` by default | 80 |
//! | `wss://` | WebSocket over TLS, path `/mqtt` by default | 443 |
//! | `unix:///path/to/socket` | Unix domain socket | - |
//!
//! IPv6 literals go in brackets: `mqtt://[::1]:1883`.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Tcp,
    Tls,
    Ws,
    Wss,
    Unix,
}

impl Scheme {
    /// True when the transport runs TLS (directly or under WebSocket).
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Tls | Scheme::Wss)
    }

    /// When this build leaves out a transport the scheme needs (Cargo
    /// features `tls`, `websocket`), the text that says so.
    pub fn left_out(self) -> Option<&'static str> {
        use super::absent::{TLS_LEFT_OUT, WEBSOCKET_LEFT_OUT};
        if self.is_tls() && !cfg!(feature = "tls") {
            return Some(TLS_LEFT_OUT);
        }
        let ws = matches!(self, Scheme::Ws | Scheme::Wss);
        (ws && !cfg!(feature = "websocket")).then_some(WEBSOCKET_LEFT_OUT)
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub scheme: Scheme,
    /// Host name or IP address without brackets; empty for `unix://`.
    pub host: String,
    /// 0 for `unix://`.
    pub port: u16,
    /// The HTTP path (and query) for WebSocket, the socket path for
    /// `unix://`, empty otherwise.
    pub path: String,
}

impl std::fmt::Debug for BrokerUrl {
    // The path's query string may carry a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerUrl")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &crate::redact::url(&self.path))
            .finish()
    }
}

/// Every scheme `parse` accepts (in any letter case); the docs list
/// exactly these (tests/docs.rs checks the header and the README).
pub const SCHEMES: &[&str] = &["mqtt", "tcp", "mqtts", "ssl", "tls", "ws", "wss", "unix"];

impl BrokerUrl {
    /// Parses a URL; the error says what is wrong with it.
    /// The URL in errors is shown without user information or query
    /// string (see `redact::url`).
    pub fn parse(url: &str) -> Result<BrokerUrl, String> {
        let shown = crate::redact::url(url);
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "URL '{shown}' contains white space or control characters"
            ));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("URL '{shown}' has no scheme (expected mqtt://host:port)"))?;
        let (scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => (Scheme::Tcp, 1883),
            "mqtts" | "ssl" | "tls" => (Scheme::Tls, 8883),
            "ws" => (Scheme::Ws, 80),
            "wss" => (Scheme::Wss, 443),
            "unix" => {
                if !rest.starts_with('/') || rest.len() < 2 {
                    return Err(format!(
                        "URL '{shown}' needs an absolute socket path (unix:///path/to/socket)"
                    ));
                }
                return Ok(BrokerUrl {
                    scheme: Scheme::Unix,
                    host: String::new(),
                    port: 0,
                    path: rest.to_string(),
                });
            }
            other => {
                return Err(format!(
                    "unsupported URL scheme '{other}' (supported: {})",
                    SCHEMES.join(", ")
                ))
            }
        };
        if let Some(text) = scheme.left_out() {
            return Err(format!("URL '{shown}': {text}"));
        }
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(format!("URL '{shown}' has no host"));
        }
        if authority.contains('@') {
            return Err(format!(
                "URL '{shown}' contains user information; set credentials with \
                 mqtt_options_set_credentials instead"
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("URL '{shown}' has an unclosed IPv6 bracket"))?;
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("URL '{shown}' has an invalid IPv6 address '{h}'"));
            }
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p, &shown)?,
                None if after.is_empty() => default_port,
                None => return Err(format!("URL '{shown}' has junk after the IPv6 address")),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => {
                    return Err(format!(
                        "URL '{shown}': an IPv6 address must be in brackets, e.g. mqtt://[::1]:1883"
                    ))
                }
                Some((h, p)) => (h.to_string(), parse_port(p, &shown)?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("URL '{shown}' has no host"));
        }
        if path.contains('#') {
            return Err(format!(
                "URL '{shown}' has a fragment, which means nothing here"
            ));
        }
        let path = match scheme {
            Scheme::Ws | Scheme::Wss => {
                if path.is_empty() {
                    "/mqtt".to_string()
                } else if path.starts_with('?') {
                    format!("/mqtt{path}")
                } else {
                    path.to_string()
                }
            }
            _ if path.is_empty() || path == "/" => String::new(),
            _ => {
                return Err(format!(
                    "URL '{shown}' has a path, but only ws:// and wss:// URLs take one"
                ))
            }
        };
        Ok(BrokerUrl {
            scheme,
            host,
            port,
            path,
        })
    }

    /// The URL as text, with the scheme's canonical name (mqtt, mqtts,
    /// ws, wss, unix) and the port always shown.
    pub fn to_url_string(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Tcp => "mqtt",
            Scheme::Tls => "mqtts",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
            Scheme::Unix => return format!("unix://{}", self.path),
        };
        format!("{scheme}://{}{}", self.authority(), self.path)
    }

    /// The URL for messages and logs: without its query string, which
    /// may carry a token (see `redact::url`).
    pub fn shown(&self) -> String {
        crate::redact::url(&self.to_url_string())
    }

    /// host:port, with brackets around an IPv6 address (for HTTP's Host
    /// header and for messages).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn parse_port(p: &str, shown: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(format!(
            "URL '{shown}' has an invalid port '{}'",
            crate::redact::peer(p)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(url: &str) -> BrokerUrl {
        BrokerUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn parses_host_port_and_defaults() {
        let u = p("mqtt://localhost:1884");
        assert_eq!((u.host.as_str(), u.port), ("localhost", 1884));
        assert_eq!(p("tcp://h").port, 1883);
        assert_eq!(p("mqtt://h/").path, "");
        let u = p("mqtt://[::1]:99");
        assert_eq!((u.host.as_str(), u.port), ("::1", 99));
        assert_eq!(u.authority(), "[::1]:99");
    }

    #[test]
    fn schemes_pick_transport_and_default_port() {
        for (url, scheme, port) in [
            ("mqtt://h", Scheme::Tcp, 1883),
            ("TCP://h", Scheme::Tcp, 1883),
            ("mqtts://h", Scheme::Tls, 8883),
            ("ssl://h", Scheme::Tls, 8883),
            ("tls://h", Scheme::Tls, 8883),
            ("ws://h", Scheme::Ws, 80),
            ("wss://h", Scheme::Wss, 443),
        ] {
            match BrokerUrl::parse(url) {
                Ok(u) => assert_eq!((u.scheme, u.port), (scheme, port), "{url}"),
                // Only in a build that leaves the transport out.
                Err(e) => assert!(e.ends_with(scheme.left_out().expect(url)), "{url}: {e}"),
            }
        }
    }

    #[test]
    fn schemes_of_a_left_out_transport_are_refused_with_the_reason() {
        let tls = ["mqtts://h:8883", "SSL://h", "tls://h", "wss://h/mqtt"];
        for url in tls {
            let r = BrokerUrl::parse(url);
            if cfg!(feature = "tls") {
                assert!(r.is_ok() || !cfg!(feature = "websocket"), "{url}: {r:?}");
            } else {
                let e = r.unwrap_err();
                assert!(e.contains("leaves TLS out"), "{url}: {e}");
                assert!(e.contains("\"tls\""), "{url}: {e}");
            }
        }
        let r = BrokerUrl::parse("ws://h:9001/mqtt");
        if cfg!(feature = "websocket") {
            assert!(r.is_ok(), "{r:?}");
        } else {
            let e = r.unwrap_err();
            assert!(e.contains("leaves WebSocket out"), "{e}");
            assert!(e.contains("'ws://h:9001/mqtt'"), "{e}");
        }
        if !cfg!(feature = "websocket") && cfg!(feature = "tls") {
            let e = BrokerUrl::parse("wss://h").unwrap_err();
            assert!(e.contains("leaves WebSocket out"), "{e}");
        }
    }

    #[test]
    #[cfg(feature = "websocket")]
    fn websocket_paths() {
        assert_eq!(p("ws://h").path, "/mqtt");
        assert_eq!(p("ws://h:9001").path, "/mqtt");
        assert_eq!(p("wss://h/").path, "/");
        assert_eq!(p("wss://[::1]:8443/a/b?token=x").path, "/a/b?token=x");
        assert_eq!(p("ws://h?token=x").path, "/mqtt?token=x");
    }

    #[test]
    fn unix_socket_paths() {
        let u = p("unix:///run/mosquitto/sock");
        assert_eq!(
            (u.scheme, u.path.as_str()),
            (Scheme::Unix, "/run/mosquitto/sock")
        );
        assert!(BrokerUrl::parse("unix://relative/sock").is_err());
        assert!(BrokerUrl::parse("unix://").is_err());
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "localhost:1883",
            "http://x",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:x",
            "mqtt://h:70000",
            "mqtt://[::1",
            "mqtt://[zz]:1",
            "mqtt://::1:1883",
            "mqtt://user:pw@h",
            "mqtt://h/path",
            "mqtts://h/x",
            "ws://h/x#frag",
            "mqtt://h st",
            "ws://:80/mqtt",
        ] {
            assert!(BrokerUrl::parse(bad).is_err(), "{bad}");
        }
        let e = BrokerUrl::parse("http://x").unwrap_err();
        assert!(e.contains("unsupported URL scheme 'http'"), "{e}");
    }

    #[test]
    fn errors_show_neither_user_information_nor_query() {
        for (bad, secret) in [
            ("mqtt://alice:S3cr3t-P4ss@broker.example:1883", "S3cr3t"),
            ("mqtt://bob:pw-X9@h:99999", "pw-X9"),
            ("ws://h:1/mqtt?token=SECRET-JWT#frag", "SECRET"),
            ("mqtt://h:1/p?token=SECRET-JWT", "SECRET"),
            ("ftp://carol:Tr0ub4dor@h", "Tr0ub4dor"),
            ("mqtt://h:1/x?token=SECRET\n", "SECRET"),
        ] {
            let e = BrokerUrl::parse(bad).unwrap_err();
            assert!(!e.contains(secret), "{bad}: {e}");
            assert!(!e.chars().any(char::is_control), "{bad}: {e}");
        }
        let e = BrokerUrl::parse("mqtt://alice:S3cr3t-P4ss@broker.example:1883").unwrap_err();
        assert!(e.contains("'mqtt://<redacted>@broker.example:1883'"), "{e}");
        if let Ok(u) = BrokerUrl::parse("wss://h/mqtt?token=SECRET-JWT") {
            assert!(!format!("{u:?}").contains("SECRET"), "{u:?}");
        }
    }
}
