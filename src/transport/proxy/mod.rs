//! Proxies: a tunnel to the broker through an HTTP CONNECT proxy (Basic
//! authentication) or a SOCKS5 proxy (no authentication or user name and
//! password; `socks5h` lets the proxy resolve the broker's name).
//!
//! The tunnel is a step between the TCP connection and what runs over it:
//! TCP to the proxy, the proxy's handshake, then MQTT, TLS (end to end
//! with the broker, verified against the broker's name, never the
//! proxy's) or WebSocket exactly as on a direct connection.
//!
//! A proxy is used when set (`mqtt_options_set_proxy`), or, only when the
//! application opted in, from the environment (`ALL_PROXY`, `HTTPS_PROXY`
//! for TLS, `NO_PROXY`): never by default, since a gateway's MQTT traffic
//! suddenly taking a path its operator did not choose is a surprise.
//!
//! A proxy's failures (refusal, authentication asked for or refused, an
//! answer that is not the protocol, a connection closed at once) are I/O
//! errors whose text starts with "proxy HOST:PORT" and says which.
//! The password is kept in a buffer wiped when dropped, as are the
//! handshake's copies of it.

mod http;
mod socks5;

use super::tcp::{self, OpenTcp, TcpTuning};
use super::url::Scheme;
use crate::transport::tcp::TcpSocket as TcpStream;
use std::fmt;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};
use zeroize::Zeroizing;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Http,
    Socks5,
    /// SOCKS5 with the broker's name resolved by the proxy.
    Socks5h,
}

/// A proxy and its credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    kind: Kind,
    host: String,
    port: u16,
    user: Option<Zeroizing<String>>,
    password: Option<Zeroizing<String>>,
}

impl fmt::Debug for Proxy {
    // Neither user name nor password in debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("auth", &self.user.is_some())
            .finish()
    }
}

/// The port of a proxy URL without one (as curl).
const DEFAULT_PORT: u16 = 1080;

impl Proxy {
    /// Parses `http://[user:pass@]host[:port]`, `socks5://...` or
    /// `socks5h://...` (user and password percent-decoded).
    pub fn parse(url: &str) -> Result<Proxy, String> {
        let shown = crate::redact::url(url);
        let bad = |why: &str| format!("proxy URL '{shown}': {why}");
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("no scheme (expected http://, socks5:// or socks5h://)"))?;
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "http" => Kind::Http,
            "socks5" => Kind::Socks5,
            "socks5h" => Kind::Socks5h,
            "https" => {
                return Err(bad(
                    "a TLS connection to the proxy (https://) is not supported",
                ))
            }
            _ => {
                return Err(bad(
                    "unknown scheme (expected http://, socks5:// or socks5h://)",
                ))
            }
        };
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("white space or control characters"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (auth, hostport) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        if hostport.contains(['/', '?', '#']) {
            return Err(bad("a proxy URL has no path"));
        }
        let (host, port) = split_host_port(hostport).map_err(|e| bad(&e))?;
        let (user, password) = match auth {
            None => (None, None),
            Some(a) => {
                let (u, p) = a.split_once(':').unwrap_or((a, ""));
                let u = percent_decode(u).ok_or_else(|| bad("bad %-escape in the user name"))?;
                let p = percent_decode(p).ok_or_else(|| bad("bad %-escape in the password"))?;
                if kind == Kind::Http && u.contains(':') {
                    // Basic authentication splits "user:password" at the first ':'.
                    return Err(bad("an HTTP proxy's user name cannot contain ':'"));
                }
                if kind != Kind::Http && (u.len() > 255 || p.len() > 255) {
                    return Err(bad("SOCKS5 user name and password are at most 255 bytes"));
                }
                (Some(u), Some(p))
            }
        };
        Ok(Proxy {
            kind,
            host,
            port,
            user,
            password,
        })
    }

    /// "host:port" of the proxy, for error texts.
    fn name(&self) -> String {
        host_port(&self.host, self.port)
    }

    /// Connects to the proxy and opens a tunnel to `host:port` through it.
    pub(super) async fn open(
        &self,
        host: &str,
        port: u16,
        tuning: &TcpTuning,
    ) -> io::Result<OpenTcp> {
        let mut t = tcp::open_tcp(&self.host, self.port, tuning)
            .await
            .map_err(|e| self.error(format!("cannot connect: {e}"), e.kind()))?;
        let creds = self.user.as_ref().zip(self.password.as_ref());
        let creds = creds.map(|(u, p)| (u.as_str(), p.as_str()));
        let r = match self.kind {
            Kind::Http => http::tunnel(&mut t.stream, host, port, creds).await,
            Kind::Socks5 => socks5::tunnel(&mut t.stream, host, port, creds, false).await,
            Kind::Socks5h => socks5::tunnel(&mut t.stream, host, port, creds, true).await,
        };
        r.map_err(|e| {
            self.error(
                format!("tunnel to {}: {}", host_port(host, port), e.text),
                e.kind,
            )
        })?;
        Ok(t)
    }

    fn error(&self, text: String, kind: io::ErrorKind) -> io::Error {
        io::Error::new(kind, format!("proxy {}: {text}", self.name()))
    }
}

/// Where the proxy settings come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Set by the application; wins over the environment.
    pub proxy: Option<Proxy>,
    /// Read ALL_PROXY, HTTPS_PROXY and NO_PROXY at each connection.
    pub from_env: bool,
}

impl ProxySettings {
    /// The proxy for a connection to `host` over `scheme`: the one set,
    /// else the environment's (when opted in), else none.
    pub fn for_target(&self, scheme: Scheme, host: &str) -> Result<Option<Proxy>, String> {
        if scheme == Scheme::Unix {
            return Ok(None);
        }
        if let Some(p) = &self.proxy {
            return Ok(Some(p.clone()));
        }
        if !self.from_env {
            return Ok(None);
        }
        from_env(scheme, host, &|name| std::env::var(name).ok())
    }
}

/// The environment's proxy for `host`: `HTTPS_PROXY` for TLS (wss://
/// and mqtts://), else (and when unset) `ALL_PROXY`; lower-case names too;
/// none when `NO_PROXY` names the host.
fn from_env(
    scheme: Scheme,
    host: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>, String> {
    let get = |name: &str| {
        var(name)
            .or_else(|| var(&name.to_ascii_lowercase()))
            .filter(|v| !v.is_empty())
    };
    if get("NO_PROXY").is_some_and(|list| no_proxy_matches(&list, host)) {
        return Ok(None);
    }
    let (name, url) = match scheme.is_tls().then(|| get("HTTPS_PROXY")).flatten() {
        Some(u) => ("HTTPS_PROXY", Some(u)),
        None => ("ALL_PROXY", get("ALL_PROXY")),
    };
    let Some(url) = url.map(Zeroizing::new) else {
        return Ok(None);
    };
    Proxy::parse(&url)
        .map(Some)
        .map_err(|e| format!("{name} from the environment: {e}"))
}

/// NO_PROXY: "*", or host names (a name matches itself and its
/// subdomains; a leading '.' is ignored) and IP addresses, comma-separated.
fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    list.split(',').map(str::trim).any(|entry| {
        let entry = entry.trim_start_matches('.').trim_end_matches('.');
        let entry = entry
            .strip_prefix('[')
            .and_then(|e| e.strip_suffix(']'))
            .unwrap_or(entry)
            .to_ascii_lowercase();
        !entry.is_empty()
            && (entry == "*"
                || host == entry
                || host
                    .strip_suffix(&entry)
                    .is_some_and(|head| head.ends_with('.')))
    })
}

/// host:port with brackets around an IPv6 address.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn split_host_port(s: &str) -> Result<(String, u16), String> {
    // As the broker's URL: an IPv6 literal only in brackets, nothing
    // after them but a port.
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address without its closing ']'")?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("'{h}' is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("junk after the IPv6 address")?,
            ),
        };
        (h, port)
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err("an IPv6 address must be in brackets, e.g. http://[::1]:3128".into())
            }
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("'{p}' is not a port"))?,
    };
    Ok((host.to_string(), port))
}

fn percent_decode(s: &str) -> Option<Zeroizing<String>> {
    let b = s.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(b.len()));
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            // Two hex digits: from_str_radix alone also takes "+1".
            let hex = b.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let text = std::str::from_utf8(&out).ok()?.to_string();
    Some(Zeroizing::new(text))
}

/// Why a tunnel could not be opened (`kind` for the io::Error).
struct TunnelError {
    kind: io::ErrorKind,
    text: String,
}

impl TunnelError {
    fn new(kind: io::ErrorKind, text: impl Into<String>) -> TunnelError {
        TunnelError {
            kind,
            text: text.into(),
        }
    }

    /// The proxy's answer is not its protocol.
    fn garbage(text: impl Into<String>) -> TunnelError {
        TunnelError::new(io::ErrorKind::InvalidData, text)
    }

    fn refused(text: impl Into<String>) -> TunnelError {
        TunnelError::new(io::ErrorKind::ConnectionRefused, text)
    }

    /// A reset before any answer is a close too (the proxy closed at
    /// once and our request drew a reset).
    fn io(e: io::Error) -> TunnelError {
        match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe => TunnelError::new(
                io::ErrorKind::UnexpectedEof,
                "the proxy closed the connection without answering",
            ),
            k => TunnelError::new(k, format!("{e}")),
        }
    }
}

/// Reads exactly `buf.len()` bytes of the proxy's answer.
async fn read_exact(s: &mut TcpStream, buf: &mut [u8]) -> Result<(), TunnelError> {
    s.read_exact(buf).await.map(|_| ()).map_err(TunnelError::io)
}

/// Reads one byte; `None` at the end of the stream.
async fn read_byte<R: AsyncRead + Unpin>(s: &mut R) -> Result<Option<u8>, TunnelError> {
    let mut b = [0u8; 1];
    match s.read(&mut b).await.map_err(TunnelError::io)? {
        0 => Ok(None),
        _ => Ok(Some(b[0])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proxy_urls() {
        let p = Proxy::parse("http://u%40x:p%3Aw@proxy.example:3128").unwrap();
        assert_eq!(p.kind, Kind::Http);
        assert_eq!((p.host.as_str(), p.port), ("proxy.example", 3128));
        assert_eq!(p.user.as_deref().map(String::as_str), Some("u@x"));
        assert_eq!(p.password.as_deref().map(String::as_str), Some("p:w"));
        let p = Proxy::parse("SOCKS5h://[::1]").unwrap();
        assert_eq!(
            (p.kind, p.host.as_str(), p.port),
            (Kind::Socks5h, "::1", 1080)
        );
        assert!(p.user.is_none());
        assert_eq!(Proxy::parse("socks5://h:1/").unwrap().port, 1);
        for bad in [
            "proxy:3128",
            "https://p:1",
            "ftp://p:1",
            "http://:1",
            "http://p:0",
            "http://p:x",
            "http://p:1/path",
            "http://u:%zz@p:1",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
        // Audit of issue 13: IPv6 literals only in brackets and checked,
        // nothing after the bracket but a port, %-escapes of two hex
        // digits only (from_str_radix takes a sign: "%+1" was 0x01).
        for bad in [
            "http://::1",
            "http://::1:3128",
            "http://[::1]junk",
            "http://[::1]3128",
            "http://[not-v6]:1",
            "http://u:%+1@p:1",
            "http://a%3Ab:p@p:1",
            "http://u:%-1@p:1",
            "http://%+a:p@p:1",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
        let p = Proxy::parse("http://[fe80::1]:8080").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("fe80::1", 8080));
        let e = Proxy::parse("ftp://user:SECRET@p:1").unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
        let shown = format!("{:?}", Proxy::parse("http://user:SECRET@p:1").unwrap());
        assert!(
            !shown.contains("SECRET") && !shown.contains("user"),
            "{shown}"
        );
    }

    #[test]
    fn environment_is_read_only_when_asked_and_honours_no_proxy() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let vars = env(&[
            ("ALL_PROXY", "socks5://all:1"),
            ("https_proxy", "http://secure:2"),
            ("NO_PROXY", "localhost, .internal.example,10.0.0.1"),
        ]);
        let host = |p: Option<Proxy>| p.map(|p| p.host);
        let got = |s, h| host(from_env(s, h, &vars).unwrap());
        assert_eq!(got(Scheme::Tcp, "broker.example"), Some("all".into()));
        assert_eq!(got(Scheme::Ws, "broker.example"), Some("all".into()));
        assert_eq!(got(Scheme::Tls, "broker.example"), Some("secure".into()));
        assert_eq!(got(Scheme::Wss, "broker.example"), Some("secure".into()));
        assert_eq!(got(Scheme::Tcp, "localhost"), None);
        assert_eq!(got(Scheme::Tcp, "a.internal.example"), None);
        assert_eq!(got(Scheme::Tcp, "internal.example"), None);
        assert_eq!(got(Scheme::Tcp, "xinternal.example"), Some("all".into()));
        assert_eq!(got(Scheme::Tcp, "10.0.0.1"), None);
        let star = env(&[("ALL_PROXY", "socks5://all:1"), ("no_proxy", "*")]);
        assert!(from_env(Scheme::Tcp, "x", &star).unwrap().is_none());
        let bad = env(&[("ALL_PROXY", "gopher://x")]);
        let e = from_env(Scheme::Tcp, "x", &bad).unwrap_err();
        assert!(e.contains("ALL_PROXY"), "{e}");
        // Not opted in: nothing read.
        let s = ProxySettings::default();
        assert!(s.for_target(Scheme::Tcp, "x").unwrap().is_none());
    }
}
