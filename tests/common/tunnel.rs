//! Small proxies of our own for the proxy tests: an HTTP CONNECT proxy
//! (Basic authentication) and a SOCKS5 proxy (no authentication or user
//! name and password, names resolved by the proxy), each optionally
//! requiring credentials, and misbehaving ones (refusing every tunnel,
//! answering garbage, closing at once). They record the targets asked
//! for, so a test sees that the traffic went through them and which name
//! (socks5h) or address (socks5) they were given.
//! Standard library only: a thread per direction per connection.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Http,
    Socks5,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Opens the tunnel asked for (after checking credentials, if any).
    Tunnel,
    /// Refuses every tunnel (HTTP 403, SOCKS5 reply 2).
    Refuse,
    /// Answers something that is not the protocol.
    Garbage,
    /// Closes each connection as soon as it is accepted.
    Close,
    /// HTTP: opens the tunnel after interim 1xx answers (RFC 9110 15.2:
    /// a client must skip them); SOCKS5: as `Tunnel`.
    Interim,
}

pub struct TunnelProxy {
    port: u16,
    targets: Arc<Mutex<Vec<String>>>,
}

struct Config {
    flavor: Flavor,
    behaviour: Behaviour,
    creds: Option<(String, String)>,
    targets: Arc<Mutex<Vec<String>>>,
}

impl TunnelProxy {
    pub fn start(flavor: Flavor, creds: Option<(&str, &str)>, behaviour: Behaviour) -> TunnelProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let cfg = Arc::new(Config {
            flavor,
            behaviour,
            creds: creds.map(|(u, p)| (u.to_string(), p.to_string())),
            targets: targets.clone(),
        });
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let cfg = cfg.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &cfg);
                });
            }
        });
        TunnelProxy { port, targets }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The tunnels asked for so far ("host:port" as the client sent it).
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

fn serve(mut c: TcpStream, cfg: &Config) -> io::Result<()> {
    match cfg.behaviour {
        Behaviour::Close => return c.shutdown(Shutdown::Both),
        Behaviour::Garbage => {
            // Waits for the client's first bytes, then answers nonsense.
            let mut b = [0u8; 1];
            c.read_exact(&mut b)?;
            c.write_all(b"\x17\x03garbage, not a proxy answer\r\n\r\n")?;
            return Ok(());
        }
        _ => {}
    }
    let target = match cfg.flavor {
        Flavor::Http => http_handshake(&mut c, cfg)?,
        Flavor::Socks5 => socks5_handshake(&mut c, cfg)?,
    };
    let Some((target, upstream)) = target else {
        return Ok(());
    };
    cfg.targets.lock().unwrap().push(target);
    pipe(c, upstream);
    Ok(())
}

fn read_byte(c: &mut TcpStream) -> io::Result<u8> {
    let mut b = [0u8; 1];
    c.read_exact(&mut b)?;
    Ok(b[0])
}

fn http_handshake(c: &mut TcpStream, cfg: &Config) -> io::Result<Option<(String, TcpStream)>> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(read_byte(c)?);
    }
    let head = String::from_utf8(head).unwrap();
    let target = head
        .strip_prefix("CONNECT ")
        .and_then(|r| r.split(' ').next())
        .expect("a CONNECT request")
        .to_string();
    if let Some((u, p)) = &cfg.creds {
        let want = format!("proxy-authorization: basic {}", base64(&format!("{u}:{p}")));
        let ok = head.lines().any(|l| {
            l.len() == want.len()
                && l[..27].eq_ignore_ascii_case(&want[..27])
                && l[27..] == want[27..]
        });
        if !ok {
            c.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
            )?;
            return Ok(None);
        }
    }
    if cfg.behaviour == Behaviour::Refuse {
        c.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(None);
    }
    let upstream = match TcpStream::connect(target.as_str()) {
        Ok(u) => u,
        Err(_) => {
            c.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")?;
            return Ok(None);
        }
    };
    if cfg.behaviour == Behaviour::Interim {
        c.write_all(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX-A: b\r\n\r\n")?;
    }
    c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    Ok(Some((target, upstream)))
}

fn socks5_handshake(c: &mut TcpStream, cfg: &Config) -> io::Result<Option<(String, TcpStream)>> {
    assert_eq!(read_byte(c)?, 5, "SOCKS version");
    let n = read_byte(c)?;
    let mut methods = vec![0u8; n as usize];
    c.read_exact(&mut methods)?;
    let method = match &cfg.creds {
        None if methods.contains(&0) => 0,
        Some(_) if methods.contains(&2) => 2,
        _ => 0xFF,
    };
    c.write_all(&[5, method])?;
    if method == 0xFF {
        return Ok(None);
    }
    if let Some((u, p)) = &cfg.creds {
        assert_eq!(read_byte(c)?, 1, "RFC 1929 version");
        let mut user = vec![0u8; read_byte(c)? as usize];
        c.read_exact(&mut user)?;
        let mut pass = vec![0u8; read_byte(c)? as usize];
        c.read_exact(&mut pass)?;
        if user != u.as_bytes() || pass != p.as_bytes() {
            c.write_all(&[1, 1])?;
            return Ok(None);
        }
        c.write_all(&[1, 0])?;
    }
    let mut head = [0u8; 4];
    c.read_exact(&mut head)?;
    assert_eq!(&head[..3], &[5, 1, 0], "a SOCKS5 CONNECT");
    let host = match head[3] {
        1 => {
            let mut a = [0u8; 4];
            c.read_exact(&mut a)?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        4 => {
            let mut a = [0u8; 16];
            c.read_exact(&mut a)?;
            format!("[{}]", std::net::Ipv6Addr::from(a))
        }
        3 => {
            let mut name = vec![0u8; read_byte(c)? as usize];
            c.read_exact(&mut name)?;
            String::from_utf8(name).unwrap()
        }
        t => panic!("address type {t}"),
    };
    let mut port = [0u8; 2];
    c.read_exact(&mut port)?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    let reply = |code: u8| [5, code, 0, 1, 0, 0, 0, 0, 0, 0];
    if cfg.behaviour == Behaviour::Refuse {
        c.write_all(&reply(2))?;
        return Ok(None);
    }
    match TcpStream::connect(target.as_str()) {
        Ok(u) => {
            c.write_all(&reply(0))?;
            Ok(Some((target, u)))
        }
        Err(_) => {
            c.write_all(&reply(5))?;
            Ok(None)
        }
    }
}

fn pipe(client: TcpStream, upstream: TcpStream) {
    let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    std::thread::spawn(move || copy(c2, u2));
    copy(upstream, client);
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

#[allow(dead_code)] // used by the proxy tests and secrets_wiped
pub fn base64(s: &str) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ABC[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}
