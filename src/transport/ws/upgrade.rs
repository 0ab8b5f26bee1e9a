//! The HTTP/1.1 upgrade that opens a WebSocket (RFC 6455 4.1), with the
//! `mqtt` subprotocol (MQTT 5.0 and 3.1.1 section 6; a 3.1.1 connection
//! also offers `mqttv3.1`, which older brokers require).
//!
//! The response is read into the frame reader's stage, so bytes the
//! server sent right after it (its first frames) are kept, and a response
//! whose headers do not fit the stage is refused.

use super::key::{derive_accept_key, generate_key};
use super::read::Stage;
use super::{BrokerUrl, ConnectError, WsHeader};
use crate::redact;
use std::future::poll_fn;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

/// Sends the upgrade request and checks the server's answer; on success
/// the stage holds what the server sent after the response.
pub(super) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    stage: &mut Stage,
    url: &BrokerUrl,
    headers: &[WsHeader],
    subprotocols: &[&str],
) -> Result<(), ConnectError> {
    let key = generate_key()?;
    let request = request(url, headers, subprotocols, &key);
    stream.write_all(&request).await?;
    stream.flush().await?;
    drop(request);
    let shown = redact::url(&format!(
        "{}://{}{}",
        scheme(url),
        url.authority(),
        url.path
    ));
    let head_len = read_head(stream, stage, &shown).await?;
    let r = check(&stage.bytes()[..head_len], &key, subprotocols, &shown);
    stage.consume(head_len);
    r
}

fn scheme(url: &BrokerUrl) -> &'static str {
    if url.scheme.is_tls() {
        "wss"
    } else {
        "ws"
    }
}

/// The request; wiped when dropped, as custom headers may carry a token.
fn request(
    url: &BrokerUrl,
    headers: &[WsHeader],
    subprotocols: &[&str],
    key: &str,
) -> Zeroizing<Vec<u8>> {
    let offered = subprotocols.join(", ");
    let mut len = 200 + url.path.len() + url.host.len() + offered.len();
    for h in headers {
        len += h.name.len() + h.value().len() + 4;
    }
    let mut r = Zeroizing::new(Vec::with_capacity(len));
    let mut line = |parts: &[&str]| {
        for p in parts {
            r.extend_from_slice(p.as_bytes());
        }
        r.extend_from_slice(b"\r\n");
    };
    line(&["GET ", &url.path, " HTTP/1.1"]);
    line(&["Host: ", &url.authority()]);
    line(&["Connection: Upgrade"]);
    line(&["Upgrade: websocket"]);
    line(&["Sec-WebSocket-Version: 13"]);
    line(&["Sec-WebSocket-Key: ", key]);
    line(&["Sec-WebSocket-Protocol: ", &offered]);
    // Checked when added (super::check_header): no CR, LF or reserved name.
    for h in headers {
        line(&[&h.name, ": ", h.value()]);
    }
    line(&[]);
    r
}

/// Reads until the end of the response's headers; their length.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    stage: &mut Stage,
    shown: &str,
) -> Result<usize, ConnectError> {
    loop {
        if let Some(i) = stage.bytes().windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(i + 4);
        }
        let n = poll_fn(|cx| stage.poll_fill(stream, cx))
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => ConnectError::WebSocket(format!(
                    "the answer of '{shown}' to the WebSocket upgrade is too long"
                )),
                _ => ConnectError::Io(e),
            })?;
        if n == 0 {
            return Err(ConnectError::WebSocket(format!(
                "'{shown}' closed the connection during the WebSocket upgrade \
                 (is it a WebSocket endpoint?)"
            )));
        }
    }
}

/// Checks the response to our upgrade request (RFC 6455 4.1, steps 1-6).
fn check(head: &[u8], key: &str, offered: &[&str], shown: &str) -> Result<(), ConnectError> {
    let fail = |what: String| {
        Err(ConnectError::WebSocket(format!(
            "WebSocket upgrade at '{shown}' failed: {what}"
        )))
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return fail("incomplete HTTP response".into()),
        Err(e) => return fail(format!("not an HTTP response ({e})")),
    }
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        return Err(ConnectError::WebSocket(format!(
            "the server refused the WebSocket upgrade at '{shown}': HTTP {code} {}",
            redact::peer(resp.reason.unwrap_or(""))
        )));
    }
    let get = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    let has_token = |name: &str, token: &str| {
        get(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token("Upgrade", "websocket") {
        return fail("the response lacks 'Upgrade: websocket'".into());
    }
    if !has_token("Connection", "upgrade") {
        return fail("the response lacks 'Connection: Upgrade'".into());
    }
    if get("Sec-WebSocket-Accept").as_deref() != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return fail("wrong Sec-WebSocket-Accept (not a WebSocket server, or a bad proxy)".into());
    }
    // We offered no extension, so the server may use none.
    if get("Sec-WebSocket-Extensions").is_some_and(|v| !v.is_empty()) {
        return fail("the server uses a WebSocket extension we did not offer".into());
    }
    let names = || {
        let quoted: Vec<String> = offered.iter().map(|p| format!("'{p}'")).collect();
        quoted.join(" or ")
    };
    match get("Sec-WebSocket-Protocol") {
        Some(p) if offered.iter().any(|o| p.eq_ignore_ascii_case(o)) => Ok(()),
        Some(p) => fail(format!(
            "the server chose subprotocol '{}', not {}",
            redact::peer(&p),
            names()
        )),
        None => fail(format!(
            "the server did not accept the {} subprotocol",
            names()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn response(extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             {extra}\r\n"
        )
        .into_bytes()
    }

    fn err(r: Result<(), ConnectError>) -> String {
        match r {
            Err(ConnectError::WebSocket(s)) => s,
            other => panic!("expected a WebSocket error, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_rfc_example_with_mqtt() {
        check(
            &response("Sec-WebSocket-Protocol: mqtt\r\n"),
            KEY,
            &["mqtt"],
            "ws://h:1/mqtt",
        )
        .unwrap();
    }

    #[test]
    fn refuses_wrong_key_protocol_or_extension() {
        let e = err(check(&response(""), KEY, &["mqtt"], "ws://h:1/mqtt"));
        assert!(e.contains("'mqtt' subprotocol"), "{e}");
        let e = err(check(
            &response("Sec-WebSocket-Protocol: mqtt\r\n"),
            "AAAAAAAAAAAAAAAAAAAAAA==",
            &["mqtt"],
            "ws://h:1/mqtt",
        ));
        assert!(e.contains("Sec-WebSocket-Accept"), "{e}");
        let e = err(check(
            &response("Sec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Extensions: x\r\n"),
            KEY,
            &["mqtt"],
            "ws://h:1/mqtt",
        ));
        assert!(e.contains("extension"), "{e}");
    }

    #[test]
    fn a_refusal_shows_the_status_escaped() {
        let e = err(check(
            b"HTTP/1.1 403 Forbidden\tby proxy\r\n\r\n",
            KEY,
            &["mqtt"],
            "ws://h:1/mqtt?<redacted>",
        ));
        assert_eq!(
            e,
            "the server refused the WebSocket upgrade at 'ws://h:1/mqtt?<redacted>': \
             HTTP 403 Forbidden\\tby proxy"
        );
    }

    #[test]
    fn the_request_has_the_headers_mqtt_needs() {
        let url = BrokerUrl {
            scheme: crate::transport::Scheme::Ws,
            host: "::1".into(),
            port: 8080,
            path: "/mqtt?a=b".into(),
        };
        let r = request(
            &url,
            &[WsHeader::new("X-Token", "t").unwrap()],
            &["mqtt"],
            KEY,
        );
        let text = String::from_utf8(r.to_vec()).unwrap();
        assert_eq!(
            text,
            "GET /mqtt?a=b HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n\
             X-Token: t\r\n\r\n"
        );
    }

    #[test]
    fn on_3_1_1_either_offered_subprotocol_is_accepted() {
        let v311 = crate::transport::WS_MQTT_311;
        for chosen in ["mqtt", "mqttv3.1", "MQTTv3.1"] {
            let head = response(&format!("Sec-WebSocket-Protocol: {chosen}\r\n"));
            check(&head, KEY, v311, "ws://h:1/mqtt").unwrap();
        }
        // Offered only on 3.1.1: a v5 connection refuses it.
        let e = err(check(
            &response("Sec-WebSocket-Protocol: mqttv3.1\r\n"),
            KEY,
            crate::transport::WS_MQTT,
            "ws://h:1/mqtt",
        ));
        assert!(e.contains("'mqttv3.1', not 'mqtt'"), "{e}");
        let e = err(check(&response(""), KEY, v311, "ws://h:1/mqtt"));
        assert!(e.contains("'mqtt' or 'mqttv3.1' subprotocol"), "{e}");
    }

    #[test]
    fn a_3_1_1_request_offers_both_subprotocols() {
        let url = BrokerUrl {
            scheme: crate::transport::Scheme::Ws,
            host: "h".into(),
            port: 80,
            path: "/mqtt".into(),
        };
        let r = request(&url, &[], crate::transport::WS_MQTT_311, KEY);
        let text = String::from_utf8(r.to_vec()).unwrap();
        assert!(
            text.contains("\r\nSec-WebSocket-Protocol: mqtt, mqttv3.1\r\n"),
            "{text}"
        );
    }
}
