//! HTTP CONNECT (RFC 9110 9.3.6) with Basic authentication (RFC 7617).

use super::{host_port, read_byte, TunnelError};
use crate::transport::tcp::TcpSocket as TcpStream;
use std::io;
use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

/// The longest answer header we read: a proxy's is a few hundred bytes.
const MAX_ANSWER: usize = 16 * 1024;

/// Asks the proxy on `s` for a tunnel to `host:port`.
pub(super) async fn tunnel(
    s: &mut TcpStream,
    host: &str,
    port: u16,
    creds: Option<(&str, &str)>,
) -> Result<(), TunnelError> {
    let target = host_port(host, port);
    let req = request(&target, creds);
    s.write_all(req.as_bytes()).await.map_err(TunnelError::io)?;
    drop(req);
    let (head, status) = final_answer(s).await?;
    match status {
        200..=299 => Ok(()),
        407 if creds.is_none() => Err(TunnelError::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the proxy asks for authentication and no user name and password were given \
                 ({})",
                status_line(&head)
            ),
        )),
        407 => Err(TunnelError::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the proxy refused our user name and password ({})",
                status_line(&head)
            ),
        )),
        _ => Err(TunnelError::refused(format!(
            "the proxy refused the tunnel ({})",
            status_line(&head)
        ))),
    }
}

/// The CONNECT request, in one buffer sized up front and wiped when
/// dropped: a buffer that grew would leave the credentials in the freed
/// smaller one.
fn request(target: &str, creds: Option<(&str, &str)>) -> Zeroizing<String> {
    const AUTH: &str = "Proxy-Authorization: Basic ";
    let plain = creds.map(|(user, password)| {
        let mut plain = Zeroizing::new(Vec::with_capacity(user.len() + 1 + password.len()));
        plain.extend_from_slice(user.as_bytes());
        plain.push(b':');
        plain.extend_from_slice(password.as_bytes());
        plain
    });
    let auth = plain.as_ref().map(|p| base64(p));
    let auth_len = auth.as_ref().map_or(0, |a| AUTH.len() + a.len() + 2);
    let mut req = Zeroizing::new(String::with_capacity(2 * target.len() + 64 + auth_len));
    for part in ["CONNECT ", target, " HTTP/1.1\r\nHost: ", target, "\r\n"] {
        req.push_str(part);
    }
    if let Some(auth) = &auth {
        req.push_str(AUTH);
        req.push_str(auth);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    debug_assert!(req.len() <= req.capacity());
    req
}

/// The final answer's header and status: interim 1xx answers (RFC 9110
/// 15.2: a client must accept them) are skipped, within the same
/// overall bound as one header.
async fn final_answer(s: &mut TcpStream) -> Result<(Vec<u8>, u16), TunnelError> {
    let mut budget = MAX_ANSWER;
    loop {
        let head = read_head(s, budget).await?;
        let status = status(&head)?;
        if (100..200).contains(&status) && status != 101 {
            budget -= head.len();
            continue;
        }
        return Ok((head, status));
    }
}

/// Reads the answer's header, up to its empty line (at most `max`
/// bytes), byte by byte: what follows it is the broker's and must stay
/// in the socket.
async fn read_head(s: &mut TcpStream, max: usize) -> Result<Vec<u8>, TunnelError> {
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        let Some(b) = read_byte(s).await? else {
            return Err(if head.is_empty() {
                TunnelError::new(
                    io::ErrorKind::UnexpectedEof,
                    "the proxy closed the connection without answering",
                )
            } else {
                TunnelError::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the proxy closed the connection in the middle of its answer ({})",
                        status_line(&head)
                    ),
                )
            });
        };
        head.push(b);
        // Not HTTP: said at once, without waiting for more.
        if head.len() <= 5 && !b"HTTP/".starts_with(&head) {
            return Err(not_http(&head));
        }
        if head.len() > max {
            return Err(TunnelError::garbage(format!(
                "the proxy's answer header is longer than {MAX_ANSWER} bytes"
            )));
        }
    }
    Ok(head)
}

fn not_http(head: &[u8]) -> TunnelError {
    TunnelError::garbage(format!(
        "the proxy's answer is not HTTP (it starts with '{}'); is it an HTTP proxy?",
        crate::redact::peer(&String::from_utf8_lossy(&head[..head.len().min(16)]))
    ))
}

/// The status code of "HTTP/1.x NNN reason".
fn status(head: &[u8]) -> Result<u16, TunnelError> {
    let line = first_line(head);
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(not_http(head));
    }
    code.parse().map_err(|_| not_http(head))
}

fn first_line(head: &[u8]) -> String {
    let end = head
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(head.len());
    String::from_utf8_lossy(&head[..end]).into_owned()
}

/// The status line, escaped (it is the peer's text).
fn status_line(head: &[u8]) -> String {
    let line = first_line(head);
    let shown: String = line.chars().take(200).collect();
    format!("HTTP status line '{}'", crate::redact::peer(&shown))
}

/// Standard base64 with padding, into a buffer wiped when dropped.
fn base64(data: &[u8]) -> Zeroizing<String> {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Zeroizing::new(String::with_capacity(data.len().div_ceil(3) * 4));
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b"").as_str(), "");
        assert_eq!(base64(b"f").as_str(), "Zg==");
        assert_eq!(base64(b"fo").as_str(), "Zm8=");
        assert_eq!(base64(b"foo").as_str(), "Zm9v");
        assert_eq!(
            base64(b"Aladdin:open sesame").as_str(),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn reads_status_codes() {
        assert_eq!(
            status(b"HTTP/1.1 200 Connection established\r\n\r\n").ok(),
            Some(200)
        );
        assert_eq!(status(b"HTTP/1.0 407 Proxy Auth\r\n\r\n").ok(), Some(407));
        assert!(status(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(status(b"HTTP/1.1 2000 x\r\n\r\n").is_err());
    }
}
