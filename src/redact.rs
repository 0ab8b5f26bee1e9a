//! What may go into error texts and log lines.
//!
//! Those texts end up in the application's logs, which are read by people
//! and tools that should see neither our secrets nor terminal escapes of a
//! hostile peer. So:
//! - a URL is shown without its user information (`user:pass@`) or query
//!   string (`?token=...`): [`url`];
//! - text from the peer (reason strings, server references, HTTP status
//!   lines, names in certificates) has its control characters escaped, so
//!   a broker cannot start a new log line or send a terminal escape
//!   sequence: [`peer`].
//!
//! Every place where such text enters an error goes through these two.

use std::fmt::Write;

/// `url` with user information and query string replaced by `<redacted>`.
/// Also escapes control characters, as a URL may come from anywhere.
pub fn url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let mut out = String::with_capacity(url.len());
    if let Some(s) = scheme {
        out.push_str(s);
        out.push_str("://");
    }
    // User information ends at the last '@'. Passwords are not always
    // escaped as they should be, so '/', '?' or '#' before that '@' may
    // be part of one: all of it goes. If a '?' or '#' comes before the
    // '@', the '@' may be inside the query, and what follows it a secret
    // too: then only the scheme is left.
    let rest = match rest.rfind('@') {
        Some(at) if rest[..at].contains(['?', '#']) => {
            out.push_str("<redacted>");
            return peer(&out);
        }
        Some(at) => {
            out.push_str("<redacted>@");
            &rest[at + 1..]
        }
        None => rest,
    };
    // The query (and a fragment, which holds nothing we need) goes.
    match rest.find(['?', '#']) {
        Some(i) => {
            out.push_str(&rest[..=i]);
            out.push_str("<redacted>");
        }
        None => out.push_str(rest),
    }
    peer(&out)
}

/// `text` with control characters escaped: `\n`, `\r`, `\t`, other C0
/// controls, DEL and C1 controls as `\xNN`, and the Unicode characters
/// that reorder or break lines (bidirectional overrides, line and
/// paragraph separators) as `\u{NNNN}`. Backslashes are kept as they are,
/// so escaping twice changes nothing.
pub fn peer(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && needs_escape(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // Line and paragraph separators.
            '\u{2028}' | '\u{2029}'
            // Bidirectional embeddings, overrides and isolates.
            | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            // Left-to-right / right-to-left / Arabic letter marks.
            | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_loses_user_information_and_query() {
        assert_eq!(
            url("mqtt://alice:S3cr3t-P4ss@broker.example:1883"),
            "mqtt://<redacted>@broker.example:1883"
        );
        assert_eq!(
            url("wss://h:443/mqtt?token=SECRET-JWT&x=1"),
            "wss://h:443/mqtt?<redacted>"
        );
        assert_eq!(url("ws://u@h/p#frag"), "ws://<redacted>@h/p#<redacted>");
        // Unescaped '/' or '?' in a password: still all hidden.
        assert_eq!(url("mqtt://alice:pa/ss@h:1"), "mqtt://<redacted>@h:1");
        assert_eq!(url("mqtt://alice:pa?ss@h:1"), "mqtt://<redacted>");
        // An '@' inside the query: the query is hidden whole.
        assert_eq!(url("wss://h/mqtt?t=a@b"), "wss://<redacted>");
        // Several '@': everything up to the last one of the authority.
        assert_eq!(url("mqtt://a@b:c@h:1"), "mqtt://<redacted>@h:1");
        assert_eq!(url("wss://h?t=1"), "wss://h?<redacted>");
        // Nothing to hide.
        assert_eq!(url("mqtt://[::1]:1883"), "mqtt://[::1]:1883");
        assert_eq!(url("unix:///run/mqtt.sock"), "unix:///run/mqtt.sock");
        // No scheme: still an authority first.
        assert_eq!(url("bob:pw@h:1"), "<redacted>@h:1");
    }

    #[test]
    fn url_escapes_control_characters() {
        assert_eq!(url("mqtt://h\n:1"), "mqtt://h\\n:1");
    }

    #[test]
    fn peer_text_escapes_controls_and_line_breakers() {
        assert_eq!(peer("plain text, ünïcode"), "plain text, ünïcode");
        assert_eq!(
            peer("line1\nFAKE LOG LINE\r\x1b[31mred\x07\t"),
            "line1\\nFAKE LOG LINE\\r\\x1b[31mred\\x07\\t"
        );
        assert_eq!(peer("\u{7f}\u{85}\u{9b}"), "\\x7f\\x85\\x9b");
        assert_eq!(
            peer("a\u{2028}b\u{202e}c\u{2066}"),
            "a\\u{2028}b\\u{202e}c\\u{2066}"
        );
        // Escaping is idempotent: backslashes stay.
        let once = peer("x\ny\\n");
        assert_eq!(peer(&once), once);
    }
}
