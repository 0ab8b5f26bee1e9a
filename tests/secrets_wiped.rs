//! No copy of a secret survives its use (issue 8, findings 7 and 8): a
//! child process uses the C API, frees the client and the options, then
//! reads its own memory (the heap and every anonymous mapping, thread
//! stacks included, through /proc/self/mem) and counts the secrets:
//! - the password, the Authentication Data of mqtt_options_set_auth, the
//!   auth callback's answer, the re-authentication data and a WebSocket
//!   `Authorization` token, over TCP and over ws:// (a scripted broker
//!   running the enhanced authentication, behind the WebSocket bridge),
//!   reached through a SOCKS5 proxy whose password is counted too;
//! - the client's private key (a piece of its PEM text and its raw EC
//!   scalar) after a mutual-TLS connection to mosquitto;
//! - a password set by the pre-connect callback (issue 9).
//!
//! Each must be found 0 times. As a check that the scan sees the
//! library's memory, the password is found while the options live, and
//! the client certificate while the client lives.
//!
//! The child never holds a secret in plain in its own heap: the secrets
//! it passes are static literals (not scanned), and what it searches for
//! is kept masked (each byte XOR 0xA5) and unmasked byte by byte while
//! comparing. Key needles come from the parent, masked, in the environment.

mod common;
mod scripted;

use common::certs::{tls_listener_conf, Ca, KeyKind, Validity};
use common::tunnel::{Behaviour, Flavor, TunnelProxy};
use common::{ws_bridge, Broker, TempDir};
use mqtt5c::ffi::*;
use mqtt5c::packet::{Property, PropertyId, ReasonCode};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::process::Command;
use std::time::Duration;

const MASK: u8 = 0xA5;

// The secrets, as static NUL-terminated literals (in read-only data,
// which the scan leaves out).
const PASSWORD: &[u8] = b"pw-Wiped-7Qx-S3cr3t\0";
const AUTH_DATA: &[u8] = b"authdata-Wiped-bearer-9fK2\0";
const RESPONSE: &[u8] = b"authresp-Wiped-proof-Zr4t\0";
const REAUTH: &[u8] = b"reauth-Wiped-token-Lm8q\0";
const TOKEN: &[u8] = b"Bearer tok-Wiped-ws-Hd5v\0";
const PRE_CONNECT_PW: &[u8] = b"pre-connect-Wiped-jwt-Tq3z\0";
/// The proxy's password (issue 13): in the proxy URL, which the child
/// reads from its environment block with getenv (no copy of ours).
const PROXY_PW: &[u8] = b"proxy-Wiped-pw-Vn6c\0";
const METHOD: &str = "TOY";

fn text(lit: &[u8]) -> &[u8] {
    &lit[..lit.len() - 1]
}

fn masked(plain: &[u8]) -> Vec<u8> {
    plain.iter().map(|b| b ^ MASK).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ------------------------------------------------------------------ scan

/// Reads this process's memory. Everything it needs is allocated up front:
/// an allocation made between the free and the scan could reuse (and
/// overwrite) the very block that held a secret, and hide it.
struct Scanner {
    maps: File,
    mem: File,
    maps_buf: Box<[u8]>,
    chunk: Box<[u8]>,
}

impl Scanner {
    fn new() -> Scanner {
        Scanner {
            maps: File::open("/proc/self/maps").unwrap(),
            mem: File::open("/proc/self/mem").unwrap(),
            maps_buf: vec![0u8; 4 << 20].into_boxed_slice(),
            chunk: vec![0u8; 1 << 20].into_boxed_slice(),
        }
    }

    /// How many times each masked needle occurs in the heap and the
    /// anonymous mappings; allocates nothing.
    fn count(&mut self, needles: &[Vec<u8>], found: &mut [usize]) {
        found.iter_mut().for_each(|f| *f = 0);
        let mut len = 0;
        loop {
            let n = self
                .maps
                .read_at(&mut self.maps_buf[len..], len as u64)
                .unwrap();
            if n == 0 {
                break;
            }
            len += n;
            assert!(len < self.maps_buf.len(), "/proc/self/maps too long");
        }
        // The chunk buffer holds copies of what was scanned: left out.
        let own = self.chunk.as_ptr() as usize..self.chunk.as_ptr() as usize + self.chunk.len();
        for line in self.maps_buf[..len].split(|&b| b == b'\n') {
            let Some((start, end)) = wanted_mapping(line) else {
                continue;
            };
            for (a, b) in [(start, end.min(own.start)), (start.max(own.end), end)] {
                if a < b {
                    scan_range(&self.mem, a, b, needles, &mut self.chunk, found);
                }
            }
        }
    }
}

/// The address range of a readable [heap] or anonymous mapping.
fn wanted_mapping(line: &[u8]) -> Option<(usize, usize)> {
    let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let range = fields.next()?;
    let perms = fields.next()?;
    let path = fields.nth(3).unwrap_or(b"");
    if perms.first() != Some(&b'r') || !(path.is_empty() || path == b"[heap]") {
        return None;
    }
    let dash = range.iter().position(|&b| b == b'-')?;
    Some((hex_usize(&range[..dash]), hex_usize(&range[dash + 1..])))
}

fn hex_usize(digits: &[u8]) -> usize {
    digits.iter().fold(0, |acc, &d| {
        acc * 16 + (d as char).to_digit(16).expect("hex address") as usize
    })
}

fn scan_range(
    mem: &File,
    start: usize,
    end: usize,
    needles: &[Vec<u8>],
    chunk: &mut [u8],
    found: &mut [usize],
) {
    let longest = needles.iter().map(Vec::len).max().unwrap_or(1);
    let step = chunk.len() - (longest - 1);
    let mut at = start;
    while at < end {
        let len = chunk.len().min(end - at);
        let Ok(n) = mem.read_at(&mut chunk[..len], at as u64) else {
            at += step;
            continue;
        };
        let hay = &chunk[..n];
        let last = n < len || at + len >= end;
        for (needle, f) in needles.iter().zip(found.iter_mut()) {
            // A match that starts in the overlap is counted in the next chunk.
            let limit = if last { n } else { step };
            *f += (0..limit.min(n.saturating_sub(needle.len() - 1)))
                .filter(|&i| {
                    hay[i] ^ MASK == needle[0]
                        && hay[i..i + needle.len()]
                            .iter()
                            .zip(needle)
                            .all(|(h, m)| h ^ MASK == *m)
                })
                .count();
        }
        if last {
            break;
        }
        // Overlap by the longest needle's length less one, so none is missed.
        at += step;
    }
}

// ---------------------------------------------------------------- parent

/// Runs this executable's `child` test with `role` and `env`; returns its
/// output after checking it succeeded.
fn run_child(role: &str, env: &[(&str, String)]) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SECRETS_ROLE", role)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child '{role}' failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The scripted broker, once per round: CONNECT with password and Authentication Data, a
/// challenge answered by the callback, CONNACK, a re-authentication,
/// DISCONNECT.
fn auth_script(l: std::net::TcpListener) {
    for _ in 0..ROUNDS {
        auth_exchange(&l);
    }
}

fn auth_exchange(l: &std::net::TcpListener) {
    use scripted::*;
    let mut p = accept(l);
    let c = p.expect_connect();
    assert_eq!(c.password.as_deref(), Some(text(PASSWORD)));
    assert_eq!(
        c.properties
            .get_binary(PropertyId::AuthenticationData)
            .as_deref(),
        Some(text(AUTH_DATA))
    );
    p.send(auth(
        ReasonCode::ContinueAuthentication,
        METHOD,
        Some(b"challenge"),
    ));
    let d = auth_data(p.expect("AUTH"), ReasonCode::ContinueAuthentication, METHOD);
    assert_eq!(&d[..], text(RESPONSE));
    p.connack(
        ReasonCode::Success,
        props(vec![Property::AuthenticationMethod(s(METHOD))]),
    );
    let d = auth_data(p.expect("AUTH"), ReasonCode::ReAuthenticate, METHOD);
    assert_eq!(&d[..], text(REAUTH));
    p.send(auth(ReasonCode::Success, METHOD, None));
    assert_eq!(p.expect_disconnect(), ReasonCode::Success);
}

fn secrets_over(ws: bool) {
    let script = scripted::Script::start(auth_script);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bridge = ws.then(|| rt.block_on(ws_bridge::start(script.port, None)));
    let url = match &bridge {
        Some(b) => format!("ws://127.0.0.1:{}/mqtt", b.port),
        None => script.url(),
    };
    let pw = std::str::from_utf8(text(PROXY_PW)).unwrap();
    let proxy = TunnelProxy::start(Flavor::Socks5, Some(("user", pw)), Behaviour::Tunnel);
    let proxy_url = format!("socks5://user:{pw}@127.0.0.1:{}", proxy.port());
    let out = run_child(
        "auth",
        &[("SECRETS_URL", url), ("SECRETS_PROXY", proxy_url)],
    );
    script.finish(Duration::from_secs(30)).unwrap();
    assert_eq!(proxy.targets().len(), ROUNDS, "not through the proxy");
    drop(bridge);
    println!("{out}");
    assert!(out.contains("CLEAN"), "{out}");
}

#[test]
fn password_and_authentication_data_are_wiped_over_tcp() {
    secrets_over(false);
}

#[test]
fn password_and_authentication_data_are_wiped_over_websocket() {
    secrets_over(true);
}

/// Needles for the key in `pem` (PKCS#8, ECDSA P-256): 24 characters of
/// its base64 text and the two halves of its private scalar.
fn key_needles(pem: &str) -> String {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der: Vec<u8> = {
        // The test decodes what the library must not keep; it does so in
        // the parent process, which is not scanned.
        let mut v = Vec::new();
        let mut acc = 0u32;
        let mut bits = 0;
        for c in body.bytes().filter(|&c| c != b'=') {
            let x = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                _ => 63,
            };
            acc = (acc << 6) | u32::from(x);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                v.push((acc >> bits) as u8);
            }
        }
        v
    };
    // ECPrivateKey: INTEGER 1, then OCTET STRING (32) with the scalar.
    let at = der
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .expect("no P-256 scalar in the key")
        + 5;
    let scalar = &der[at..at + 32];
    let line2 = pem.lines().nth(2).expect("a PEM key of several lines");
    [
        ("pem", &line2.as_bytes()[..24]),
        ("scalar[0..16]", &scalar[..16]),
        ("scalar[16..32]", &scalar[16..]),
    ]
    .iter()
    .map(|(name, n)| format!("{name}={}", hex(&masked(n))))
    .collect::<Vec<_>>()
    .join(",")
}

#[test]
fn client_private_key_is_wiped() {
    let dir = TempDir::new("mqtt5c-keywipe").unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let server = ca.server("server", &["127.0.0.1"], Validity::Current);
    let client = ca.client("client", KeyKind::EcdsaP256);
    let port = common::free_port();
    let broker = Broker::start_with(&tls_listener_conf(port, &ca.file, &server, true));
    let pem = std::fs::read_to_string(&client.key).unwrap();
    let cert_pem = std::fs::read_to_string(&client.cert).unwrap();
    let cert_line = cert_pem.lines().nth(3).unwrap();
    let s = |p: &std::path::Path| p.display().to_string();
    let out = run_child(
        "key",
        &[
            ("SECRETS_URL", format!("mqtts://127.0.0.1:{port}")),
            ("SECRETS_CA", s(&ca.file)),
            ("SECRETS_CERT", s(&client.cert)),
            ("SECRETS_KEY", s(&client.key)),
            ("SECRETS_NEEDLES", key_needles(&pem)),
            // The certificate (public) as it is kept: DER, from line 4 of
            // its PEM (24 characters = 18 bytes).
            ("SECRETS_CERT_PART", hex(&masked(&b64(&cert_line[..24])))),
        ],
    );
    drop(broker);
    println!("{out}");
    assert!(out.contains("CLEAN"), "{out}");
}

fn b64(s: &str) -> Vec<u8> {
    let mut v = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let x = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        acc = (acc << 6) | u32::from(x);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            v.push((acc >> bits) as u8);
        }
    }
    v
}

// ----------------------------------------------------------------- child

unsafe extern "C" fn answer(
    _ud: *mut c_void,
    reason: c_int,
    _method: *const c_char,
    _data: *const c_void,
    _len: usize,
    response: *mut mqtt_auth_response,
) -> c_int {
    if reason == 0x18 {
        let d = text(RESPONSE);
        return mqtt_auth_response_set_data(response, d.as_ptr().cast(), d.len());
    }
    0
}

fn last_error() -> String {
    // SAFETY: never NULL, NUL-terminated.
    unsafe { CStr::from_ptr(mqtt_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn check(rc: c_int, what: &str) {
    assert_eq!(rc, MQTT5C_OK, "{what}: {rc} {}", last_error());
}

/// The secrets of the `auth` role, masked; the password first.
fn auth_needles() -> Vec<Vec<u8>> {
    [PASSWORD, AUTH_DATA, RESPONSE, REAUTH, TOKEN, PROXY_PW]
        .iter()
        .map(|s| masked(text(s)))
        .collect()
}

/// Rounds of the whole use: a secret left in freed memory is sometimes
/// overwritten by a later allocation before the scan; each round is
/// another chance to see one that was not wiped.
const ROUNDS: usize = 3;

fn child_auth(url: &str) {
    let mut scanner = Scanner::new();
    let needles = auth_needles();
    let mut found = vec![0; needles.len()];
    let mut total = vec![0; needles.len()];
    let url = CString::new(url).unwrap();
    for round in 0..ROUNDS {
        let o = auth_options();
        let c = mqtt_client_new(o);
        assert!(!c.is_null());
        check(
            mqtt_set_auth_callback(c, Some(answer), std::ptr::null_mut()),
            "callback",
        );
        if round == 0 {
            // The scan sees the library's memory: options and client hold
            // the password now.
            scanner.count(&needles, &mut found);
            println!("password copies while the options live: {}", found[0]);
            assert!(found[0] >= 1, "the scan does not see the password");
            println!("proxy password copies while they live: {}", found[5]);
            assert!(found[5] >= 1, "the scan does not see the proxy password");
        }
        check(mqtt_connect(c, url.as_ptr()), "connect");
        let ra = text(REAUTH);
        check(
            mqtt_reauthenticate(c, ra.as_ptr().cast(), ra.len(), std::ptr::null()),
            "re-authenticate",
        );
        check(mqtt_disconnect(c, 0, std::ptr::null()), "disconnect");
        mqtt_client_free(c);
        mqtt_options_free(o);
        scanner.count(&needles, &mut found);
        total.iter_mut().zip(&found).for_each(|(t, f)| *t += f);
    }
    let names = [
        "password",
        "auth data",
        "auth response",
        "re-auth data",
        "ws token",
        "proxy password",
    ];
    report(&names, &total);
}

/// Options with every secret of the `auth` role.
fn auth_options() -> *mut mqtt_options {
    let o = mqtt_options_new();
    check(
        mqtt_options_set_client_id(o, b"wipe-check\0".as_ptr().cast()),
        "client id",
    );
    let pw = text(PASSWORD);
    check(
        mqtt_options_set_credentials(o, b"user\0".as_ptr().cast(), pw.as_ptr().cast(), pw.len()),
        "credentials",
    );
    let ad = text(AUTH_DATA);
    check(
        mqtt_options_set_auth(o, b"TOY\0".as_ptr().cast(), ad.as_ptr().cast(), ad.len()),
        "auth",
    );
    check(
        mqtt_options_add_ws_header(o, b"Authorization\0".as_ptr().cast(), TOKEN.as_ptr().cast()),
        "ws header",
    );
    // SAFETY: a NUL-terminated name; getenv's pointer is into the
    // environment block (not scanned), valid while nobody sets variables.
    let proxy = unsafe { libc::getenv(b"SECRETS_PROXY\0".as_ptr().cast()) };
    assert!(!proxy.is_null(), "SECRETS_PROXY");
    check(mqtt_options_set_proxy(o, proxy), "proxy");
    o
}

fn child_key(url: &str) {
    let env = |k: &str| CString::new(std::env::var(k).unwrap()).unwrap();
    let o = mqtt_options_new();
    check(
        mqtt_options_set_tls_ca_file(o, env("SECRETS_CA").as_ptr()),
        "CA",
    );
    check(
        mqtt_options_set_tls_client_cert(
            o,
            env("SECRETS_CERT").as_ptr(),
            env("SECRETS_KEY").as_ptr(),
        ),
        "client certificate",
    );
    let c = mqtt_client_new(o);
    assert!(!c.is_null());
    let url = CString::new(url).unwrap();
    check(mqtt_connect(c, url.as_ptr()), "connect");
    let mut scanner = Scanner::new();
    let (names, mut needles): (Vec<String>, Vec<Vec<u8>>) = std::env::var("SECRETS_NEEDLES")
        .unwrap()
        .split(',')
        .map(|n| {
            let (name, h) = n.split_once('=').unwrap();
            (name.to_string(), unhex(h))
        })
        .unzip();
    needles.push(unhex(&std::env::var("SECRETS_CERT_PART").unwrap()));
    let mut found = vec![0; needles.len()];
    scanner.count(&needles, &mut found);
    let live = found[needles.len() - 1];
    println!("certificate copies while the client lives: {live}");
    assert!(
        live >= 1,
        "the scan does not see the certificate rustls holds"
    );
    check(mqtt_disconnect(c, 0, std::ptr::null()), "disconnect");
    mqtt_client_free(c);
    mqtt_options_free(o);
    needles.pop();
    found.pop();
    scanner.count(&needles, &mut found);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    report(&names, &found);
}

/// Prints the count of each needle; "CLEAN" when all are 0.
fn report(names: &[&str], found: &[usize]) {
    for (name, k) in names.iter().zip(found) {
        println!("{name}: {k} copies after free");
    }
    if found.iter().all(|&k| k == 0) {
        println!("CLEAN");
    }
}

/// The scripted broker of the `preconnect` role: each CONNECT carries the
/// password the pre-connect callback set.
fn pre_connect_script(l: std::net::TcpListener) {
    use scripted::*;
    for _ in 0..ROUNDS {
        let mut p = accept(&l);
        let c = p.expect_connect();
        assert_eq!(c.password.as_deref(), Some(text(PRE_CONNECT_PW)));
        p.connack(ReasonCode::Success, props(Vec::new()));
        assert_eq!(p.expect_disconnect(), ReasonCode::Success);
    }
}

#[test]
fn password_set_by_the_pre_connect_callback_is_wiped() {
    let script = scripted::Script::start(pre_connect_script);
    let out = run_child("preconnect", &[("SECRETS_URL", script.url())]);
    script.finish(Duration::from_secs(30)).unwrap();
    println!("{out}");
    assert!(out.contains("CLEAN"), "{out}");
}

unsafe extern "C" fn set_password(
    _ud: *mut c_void,
    _url: *const c_char,
    _attempt: std::os::raw::c_uint,
    opts: *mut mqtt_options,
) -> c_int {
    let pw = text(PRE_CONNECT_PW);
    mqtt_options_set_credentials(
        opts,
        b"user\0".as_ptr().cast(),
        pw.as_ptr().cast(),
        pw.len(),
    )
}

fn child_pre_connect(url: &str) {
    let mut scanner = Scanner::new();
    let needles = vec![masked(text(PRE_CONNECT_PW))];
    let mut found = vec![0];
    let mut total = vec![0];
    let url = CString::new(url).unwrap();
    for round in 0..ROUNDS {
        let o = mqtt_options_new();
        check(
            mqtt_options_set_client_id(o, b"wipe-pre-connect\0".as_ptr().cast()),
            "client id",
        );
        let c = mqtt_client_new(o);
        assert!(!c.is_null());
        check(
            mqtt_set_pre_connect_callback(c, Some(set_password), std::ptr::null_mut()),
            "callback",
        );
        check(mqtt_connect(c, url.as_ptr()), "connect");
        if round == 0 {
            // The scan sees the client's copy of the password now.
            scanner.count(&needles, &mut found);
            println!("password copies while the client lives: {}", found[0]);
            assert!(found[0] >= 1, "the scan does not see the password");
        }
        check(mqtt_disconnect(c, 0, std::ptr::null()), "disconnect");
        mqtt_client_free(c);
        mqtt_options_free(o);
        scanner.count(&needles, &mut found);
        total[0] += found[0];
    }
    report(&["pre-connect password"], &total);
}

/// A long HTTP proxy password (a token, say): its Basic credentials make
/// the CONNECT request longer than a buffer grown bit by bit holds.
const LONG_PROXY_PW: &[u8] = b"http-proxy-Wiped-token-Kx2w.\
    eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJnYXRld2F5LTQyIiwiaWF0IjoxNzAwMDAwMDAwfQ.\
    Qm9ndXNTaWduYXR1cmVGb3JUaGVXaXBlVGVzdA\0";

/// Review of issue 13: the HTTP proxy's password, plain and as the
/// base64 of its Basic credentials (a piece that depends on the password
/// only), leaves no copy once client and options are freed.
#[test]
fn http_proxy_basic_credentials_are_wiped() {
    let broker = Broker::start();
    let pw = std::str::from_utf8(text(LONG_PROXY_PW)).unwrap();
    let proxy = TunnelProxy::start(Flavor::Http, Some(("user", pw)), Behaviour::Tunnel);
    let basic = common::tunnel::base64(&format!("user:{pw}"));
    let out = run_child(
        "httpproxy",
        &[
            ("SECRETS_URL", format!("mqtt://127.0.0.1:{}", broker.port())),
            (
                "SECRETS_PROXY",
                format!("http://user:{pw}@127.0.0.1:{}", proxy.port()),
            ),
            ("SECRETS_NEEDLES", hex(&masked(&basic.as_bytes()[8..56]))),
        ],
    );
    assert_eq!(proxy.targets().len(), ROUNDS, "not through the proxy");
    println!("{out}");
    assert!(out.contains("CLEAN"), "{out}");
}

fn child_http_proxy(url: &str) {
    let mut scanner = Scanner::new();
    let needles = vec![
        masked(text(LONG_PROXY_PW)),
        unhex(&std::env::var("SECRETS_NEEDLES").unwrap()),
    ];
    let mut found = vec![0; 2];
    let mut total = vec![0; 2];
    let url = CString::new(url).unwrap();
    for round in 0..ROUNDS {
        let o = mqtt_options_new();
        check(
            mqtt_options_set_client_id(o, b"wipe-http-proxy\0".as_ptr().cast()),
            "client id",
        );
        // SAFETY: as in auth_options.
        let proxy = unsafe { libc::getenv(b"SECRETS_PROXY\0".as_ptr().cast()) };
        assert!(!proxy.is_null(), "SECRETS_PROXY");
        check(mqtt_options_set_proxy(o, proxy), "proxy");
        let c = mqtt_client_new(o);
        assert!(!c.is_null());
        if round == 0 {
            scanner.count(&needles, &mut found);
            println!("proxy password copies while the options live: {}", found[0]);
            assert!(found[0] >= 1, "the scan does not see the proxy password");
        }
        check(mqtt_connect(c, url.as_ptr()), "connect");
        check(mqtt_disconnect(c, 0, std::ptr::null()), "disconnect");
        mqtt_client_free(c);
        mqtt_options_free(o);
        scanner.count(&needles, &mut found);
        total.iter_mut().zip(&found).for_each(|(t, f)| *t += f);
    }
    report(&["proxy password", "proxy Basic credentials"], &total);
}

#[test]
#[ignore = "run in a child process by the other tests of this file"]
fn child() {
    let url = std::env::var("SECRETS_URL").expect("SECRETS_URL");
    match std::env::var("SECRETS_ROLE").unwrap().as_str() {
        "auth" => child_auth(&url),
        "preconnect" => child_pre_connect(&url),
        "httpproxy" => child_http_proxy(&url),
        // On a thread of its own: its stack is an anonymous mapping, which
        // the scan covers (the main thread's is not), as in a program that
        // sets the options on a worker thread.
        "key" => std::thread::spawn(move || child_key(&url)).join().unwrap(),
        other => panic!("unknown role {other}"),
    }
}
