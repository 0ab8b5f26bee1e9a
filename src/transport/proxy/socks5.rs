//! SOCKS5 (RFC 1928) with no authentication or user name and password
//! (RFC 1929). With `remote_dns` (socks5h) the broker's name goes to the
//! proxy; otherwise we resolve it and send the address.

use super::{read_exact, TunnelError};
use crate::transport::tcp::TcpSocket as TcpStream;
use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0;
const USER_PASSWORD: u8 = 2;
const NO_ACCEPTABLE: u8 = 0xFF;
const CONNECT: u8 = 1;
const IPV4: u8 = 1;
const DOMAIN: u8 = 3;
const IPV6: u8 = 4;

/// The reply codes of RFC 1928, section 6.
fn reply_text(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused by the broker's host",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown reply code",
    }
}

/// Opens a tunnel to `host:port` through the SOCKS5 proxy on `s`.
pub(super) async fn tunnel(
    s: &mut TcpStream,
    host: &str,
    port: u16,
    creds: Option<(&str, &str)>,
    remote_dns: bool,
) -> Result<(), TunnelError> {
    let methods: &[u8] = if creds.is_some() {
        &[VERSION, 2, NO_AUTH, USER_PASSWORD]
    } else {
        &[VERSION, 1, NO_AUTH]
    };
    let request = connect_request(host, port, remote_dns).await?;
    s.write_all(methods).await.map_err(TunnelError::io)?;
    let mut choice = [0u8; 2];
    read_exact(s, &mut choice).await?;
    if choice[0] != VERSION {
        return Err(not_socks5(choice[0]));
    }
    match (choice[1], creds) {
        (NO_AUTH, _) => {}
        (USER_PASSWORD, Some((user, password))) => authenticate(s, user, password).await?,
        (NO_ACCEPTABLE, None) => {
            return Err(TunnelError::new(
                io::ErrorKind::PermissionDenied,
                "the proxy asks for authentication and no user name and password were given \
                 (SOCKS5: no acceptable method)",
            ))
        }
        (NO_ACCEPTABLE, Some(_)) => {
            return Err(TunnelError::new(
                io::ErrorKind::PermissionDenied,
                "the proxy accepts neither no authentication nor user name and password \
                 (SOCKS5: no acceptable method)",
            ))
        }
        (m, _) => {
            return Err(TunnelError::garbage(format!(
                "the proxy chose an authentication method we did not offer (SOCKS5 method {m})"
            )))
        }
    }
    s.write_all(&request).await.map_err(TunnelError::io)?;
    read_reply(s).await
}

fn not_socks5(version: u8) -> TunnelError {
    TunnelError::garbage(format!(
        "the proxy's answer is not SOCKS5 (version byte {version:#04x}); is it a SOCKS5 proxy?"
    ))
}

/// RFC 1929: the proxy's verdict on our user name and password.
async fn authenticate(s: &mut TcpStream, user: &str, password: &str) -> Result<(), TunnelError> {
    let (u, p) = (user.as_bytes(), password.as_bytes());
    let mut msg = Zeroizing::new(Vec::with_capacity(3 + u.len() + p.len()));
    msg.push(1);
    msg.push(u.len() as u8); // At most 255: checked by Proxy::parse.
    msg.extend_from_slice(u);
    msg.push(p.len() as u8);
    msg.extend_from_slice(p);
    s.write_all(&msg).await.map_err(TunnelError::io)?;
    drop(msg);
    let mut status = [0u8; 2];
    read_exact(s, &mut status).await?;
    if status[0] != 1 {
        return Err(TunnelError::garbage(format!(
            "the proxy's answer to our user name and password is not SOCKS5 (version byte \
             {:#04x})",
            status[0]
        )));
    }
    if status[1] != 0 {
        return Err(TunnelError::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the proxy refused our user name and password (SOCKS5 status {})",
                status[1]
            ),
        ));
    }
    Ok(())
}

/// The CONNECT request: the name itself (socks5h, unless it is an IP
/// address), else the first address it resolves to here.
async fn connect_request(host: &str, port: u16, remote_dns: bool) -> Result<Vec<u8>, TunnelError> {
    let mut req = vec![VERSION, CONNECT, 0];
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) if remote_dns => None,
        Err(_) => Some(resolve(host, port).await?),
    };
    match ip {
        Some(IpAddr::V4(a)) => {
            req.push(IPV4);
            req.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            req.push(IPV6);
            req.extend_from_slice(&a.octets());
        }
        None => {
            let name = u8::try_from(host.len()).map_err(|_| {
                TunnelError::new(
                    io::ErrorKind::InvalidInput,
                    "the broker's host name is longer than SOCKS5 allows (255 bytes)",
                )
            })?;
            req.push(DOMAIN);
            req.push(name);
            req.extend_from_slice(host.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    Ok(req)
}

async fn resolve(host: &str, port: u16) -> Result<IpAddr, TunnelError> {
    let mut addrs = tokio::net::lookup_host((host, port)).await.map_err(|e| {
        TunnelError::new(
            e.kind(),
            format!("cannot resolve the broker's host name '{host}' here: {e} (socks5h:// lets the proxy resolve it)"),
        )
    })?;
    addrs.next().map(|a: SocketAddr| a.ip()).ok_or_else(|| {
        TunnelError::new(
            io::ErrorKind::NotFound,
            format!("the broker's host name '{host}' resolves to no address"),
        )
    })
}

/// The reply to CONNECT; its bound address is read and ignored.
async fn read_reply(s: &mut TcpStream) -> Result<(), TunnelError> {
    let mut head = [0u8; 4];
    read_exact(s, &mut head).await?;
    if head[0] != VERSION {
        return Err(not_socks5(head[0]));
    }
    if head[1] != 0 {
        return Err(TunnelError::refused(format!(
            "the proxy refused the tunnel (SOCKS5 reply {}: {})",
            head[1],
            reply_text(head[1])
        )));
    }
    let addr_len = match head[3] {
        IPV4 => 4,
        IPV6 => 16,
        DOMAIN => {
            let mut n = [0u8; 1];
            read_exact(s, &mut n).await?;
            usize::from(n[0])
        }
        t => {
            return Err(TunnelError::garbage(format!(
                "the proxy's reply has an unknown address type ({t})"
            )))
        }
    };
    let mut rest = vec![0u8; addr_len + 2];
    read_exact(s, &mut rest).await
}
