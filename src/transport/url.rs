//! Broker URLs: `mqtt://host:port` and `tcp://host:port` (port 1883 by default).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Tcp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

impl BrokerUrl {
    /// Parses a URL; the error says what is wrong with it.
    pub fn parse(url: &str) -> Result<BrokerUrl, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("URL '{url}' has no scheme (expected mqtt://host:port)"))?;
        let (scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => (Scheme::Tcp, 1883),
            other => {
                return Err(format!(
                    "unsupported URL scheme '{other}' (supported: mqtt, tcp)"
                ))
            }
        };
        let authority = rest.split('/').next().unwrap_or("");
        if authority.is_empty() {
            return Err(format!("URL '{url}' has no host"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("URL '{url}' has an unclosed IPv6 bracket"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p, url)?,
                None if after.is_empty() => default_port,
                None => return Err(format!("URL '{url}' has junk after the IPv6 address")),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), parse_port(p, url)?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("URL '{url}' has no host"));
        }
        Ok(BrokerUrl { scheme, host, port })
    }
}

fn parse_port(p: &str, url: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(format!("URL '{url}' has an invalid port '{p}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_defaults() {
        let u = BrokerUrl::parse("mqtt://localhost:1884").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("localhost", 1884));
        assert_eq!(BrokerUrl::parse("tcp://h").unwrap().port, 1883);
        let u = BrokerUrl::parse("mqtt://[::1]:99").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 99));
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "localhost:1883",
            "http://x",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:x",
            "mqtt://[::1",
        ] {
            assert!(BrokerUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
