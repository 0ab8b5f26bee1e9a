//! Transports and security against a real mosquitto per test: TLS and
//! mutual TLS (certificates made by the test), WebSocket through a bridge
//! (tests/common/ws_bridge.rs), Unix sockets, and user name/password.

mod common;

use common::certs::{tls_listener_conf, Ca, CertFiles, KeyKind, Validity};
use common::events::client;
use common::{free_port, ws_bridge, Broker, TempDir};
use mqtt5c::client::{ClientOptions, Error, Secret};
use mqtt5c::packet::{MqttStr, Properties, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn opts(id: &str) -> ClientOptions {
    ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        connect_timeout: Duration::from_secs(10),
        // big_payload() is 1 MiB, beyond the default Maximum Packet Size.
        max_packet_size: 2 << 20,
        ..Default::default()
    }
}

fn tls_opts(id: &str, ca: &Path) -> ClientOptions {
    let mut o = opts(id);
    o.tls.set_ca_file(Some(ca.to_str().unwrap())).unwrap();
    o
}

/// Subscribes with one client and publishes with another, both over `url`
/// with `o`, and checks that each payload arrives intact.
async fn round_trip(url: &str, o: &ClientOptions, payloads: &[Vec<u8>]) {
    let mut so = o.clone();
    so.client_id = MqttStr::new(&format!("{}-sub", o.client_id.as_str())).unwrap();
    let (sub, rx) = client(so);
    sub.connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    sub.subscribe(
        vec![SubscribeFilter {
            filter: MqttStr::new("rt/#").unwrap(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        }],
        Properties::new(),
    )
    .await
    .unwrap();
    let (publ, _rx) = client(o.clone());
    publ.connect(url).await.unwrap();
    for (i, p) in payloads.iter().enumerate() {
        let r = publ
            .publish(
                &format!("rt/{i}"),
                p,
                QoS::AtLeastOnce,
                false,
                Properties::new(),
            )
            .await
            .unwrap();
        assert!(!r.reason.is_error(), "{:?}", r.reason);
        let m = rx
            .msg_within(WAIT)
            .unwrap_or_else(|| panic!("message {i} did not arrive over {url}"));
        assert_eq!(m.topic.as_str(), format!("rt/{i}"));
        assert_eq!(m.payload.len(), p.len());
        assert!(m.payload[..] == p[..], "payload {i} differs over {url}");
    }
    publ.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
    sub.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
}

fn big_payload() -> Vec<u8> {
    (0..1024 * 1024)
        .map(|i: u32| (i * 7 + i / 251) as u8)
        .collect()
}

/// Expects a TLS error whose text contains `needle`.
fn expect_tls(r: Result<mqtt5c::client::ConnectInfo, Error>, needle: &str) {
    match r {
        Err(Error::Tls(text)) => {
            eprintln!("TLS error as expected: {text}");
            assert!(
                text.contains(needle),
                "TLS error should mention '{needle}': {text}"
            )
        }
        Err(e) => panic!("expected a TLS error mentioning '{needle}', got {e:?}"),
        Ok(_) => panic!("expected a TLS error mentioning '{needle}', but connected"),
    }
}

struct TlsRig {
    broker: Broker,
    tls_port: u16,
    ca: Ca,
    _dir: TempDir,
}

/// A broker with a TLS listener whose certificate (for localhost and
/// 127.0.0.1 unless `sans` says otherwise) is signed by a fresh CA.
fn tls_rig(sans: &[&str], validity: Validity, require_cert: bool) -> TlsRig {
    let dir = TempDir::new("mqtt5c-tls").unwrap();
    let ca = Ca::new(dir.path(), "main");
    let server = ca.server("server", sans, validity);
    let tls_port = free_port();
    let broker = Broker::start_with(&tls_listener_conf(
        tls_port,
        &ca.file,
        &server,
        require_cert,
    ));
    TlsRig {
        broker,
        tls_port,
        ca,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_round_trip_with_ca_file() {
    let rig = tls_rig(&["localhost", "127.0.0.1"], Validity::Current, false);
    let o = tls_opts("tls-rt", &rig.ca.file);
    round_trip(
        &format!("mqtts://127.0.0.1:{}", rig.tls_port),
        &o,
        &[b"over tls".to_vec(), big_payload()],
    )
    .await;
    // ssl:// is the same transport, and the host name is verified too.
    round_trip(
        &format!("ssl://localhost:{}", rig.tls_port),
        &o,
        &[b"x".to_vec()],
    )
    .await;
    // The plain listener of the same broker still works.
    round_trip(&rig.broker.url(), &opts("plain"), &[b"y".to_vec()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_wrong_ca_is_unknown_issuer() {
    let rig = tls_rig(&["127.0.0.1"], Validity::Current, false);
    let dir = TempDir::new("mqtt5c-tls-other").unwrap();
    let other = Ca::new(dir.path(), "other");
    let (c, _rx) = client(tls_opts("wrong-ca", &other.file));
    let r = c
        .connect(&format!("mqtts://127.0.0.1:{}", rig.tls_port))
        .await;
    expect_tls(r, "unknown issuer");
    assert!(!c.is_connected());

    // The insecure option connects anyway (test rigs only).
    let mut o = tls_opts("insecure", &other.file);
    o.tls.set_insecure_skip_verify(true).unwrap();
    round_trip(
        &format!("mqtts://127.0.0.1:{}", rig.tls_port),
        &o,
        &[b"i".to_vec()],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificate_for_another_host_fails() {
    let rig = tls_rig(&["broker.example"], Validity::Current, false);
    let url = format!("mqtts://127.0.0.1:{}", rig.tls_port);
    let (c, _rx) = client(tls_opts("mismatch", &rig.ca.file));
    expect_tls(c.connect(&url).await, "name mismatch");

    // With the server name set to the certificate's name it connects.
    let mut o = tls_opts("sni", &rig.ca.file);
    o.tls.set_server_name(Some("broker.example")).unwrap();
    round_trip(&url, &o, &[b"sni".to_vec()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_expired_certificate_fails() {
    let rig = tls_rig(&["127.0.0.1"], Validity::Expired, false);
    let (c, _rx) = client(tls_opts("expired", &rig.ca.file));
    let r = c
        .connect(&format!("mqtts://127.0.0.1:{}", rig.tls_port))
        .await;
    expect_tls(r, "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_accepts_our_certificate_and_rejects_none() {
    let rig = tls_rig(&["127.0.0.1"], Validity::Current, true);
    let url = format!("mqtts://127.0.0.1:{}", rig.tls_port);
    for kind in [
        KeyKind::EcdsaP256,
        KeyKind::Ed25519,
        KeyKind::Rsa,
        KeyKind::RsaPkcs1,
    ] {
        let files = rig.ca.client(&format!("client-{kind:?}"), kind);
        let mut o = tls_opts(&format!("mtls-{kind:?}"), &rig.ca.file);
        o.tls
            .set_client_cert(Some((
                files.cert.to_str().unwrap(),
                files.key.to_str().unwrap(),
            )))
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        round_trip(&url, &o, &[format!("{kind:?}").into_bytes()]).await;
    }

    let (c, _rx) = client(tls_opts("no-cert", &rig.ca.file));
    expect_tls(c.connect(&url).await, "client certificate required");
    assert!(!c.is_connected());
}

/// TLS material from memory (issue 13): the CA, the client chain and its
/// key from PEM buffers, against mosquitto with `require_certificate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_from_pem_buffers() {
    let rig = tls_rig(&["127.0.0.1"], Validity::Current, true);
    let url = format!("mqtts://127.0.0.1:{}", rig.tls_port);
    let ca_pem = std::fs::read(&rig.ca.file).unwrap();
    for kind in [KeyKind::EcdsaP256, KeyKind::RsaPkcs1, KeyKind::Ed25519] {
        let files = rig.ca.client(&format!("pem-{kind:?}"), kind);
        let mut o = opts(&format!("pem-{kind:?}"));
        o.tls.set_ca_pem(Some(&ca_pem)).unwrap();
        o.tls
            .set_client_cert_pem(Some((
                &std::fs::read(&files.cert).unwrap(),
                &std::fs::read(&files.key).unwrap(),
            )))
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        round_trip(&url, &o, &[format!("{kind:?}").into_bytes()]).await;
    }
    // Without the client certificate the broker refuses, as with files.
    let mut o = opts("pem-none");
    o.tls.set_ca_pem(Some(&ca_pem)).unwrap();
    let (c, _rx) = client(o);
    expect_tls(c.connect(&url).await, "client certificate required");
}

/// Bad PEM buffers fail when set, with the file variants' texts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pem_buffers_fail_when_set() {
    let dir = TempDir::new("mqtt5c-pem-bad").unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let a = ca.client("a", KeyKind::EcdsaP256);
    let b = ca.client("b", KeyKind::EcdsaP256);
    let read = |p: &Path| std::fs::read(p).unwrap();
    let mut o = ClientOptions::default();
    let e = o.tls.set_ca_pem(Some(b"not a PEM file\n")).unwrap_err();
    assert!(e.contains("no PEM certificate"), "{e}");
    let e = o
        .tls
        .set_client_cert_pem(Some((&read(&a.cert), b"garbage")))
        .unwrap_err();
    assert!(e.contains("no private key"), "{e}");
    let e = o
        .tls
        .set_client_cert_pem(Some((&read(&a.cert), &read(&b.key))))
        .unwrap_err();
    assert!(e.contains("cannot be used together"), "{e}");
    let e = o
        .tls
        .set_client_cert_pem(Some((b"", &read(&a.key))))
        .unwrap_err();
    assert!(e.contains("no PEM certificate"), "{e}");
    o.tls
        .set_client_cert_pem(Some((&read(&a.cert), &read(&a.key))))
        .unwrap();
    o.tls.set_ca_pem(Some(&read(&ca.file))).unwrap();
    o.tls.set_ca_pem(None).unwrap();
}

/// Hostile PEM buffers through the C API (audit of issue 13): a length
/// of 0 with a pointer, binary garbage with NULs, armour around garbage
/// or around base64 that is no certificate, a section without its END
/// line, a buffer cut short: each is refused when set with
/// MQTT5C_ERR_INVALID_ARGUMENT and a text, nothing read past `len`, no
/// panic; a good buffer without its final newline (no NUL anywhere) is
/// taken.
#[test]
fn hostile_pem_buffers_through_the_c_api() {
    use mqtt5c::ffi::*;
    use std::ffi::CStr;
    let last = || {
        // SAFETY: never NULL, NUL-terminated.
        unsafe { CStr::from_ptr(mqtt_last_error()) }
            .to_string_lossy()
            .into_owned()
    };
    let dir = TempDir::new("mqtt5c-pem-hostile").unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let a = ca.client("a", KeyKind::EcdsaP256);
    let ca_pem = std::fs::read(&ca.file).unwrap();
    let cert = std::fs::read(&a.cert).unwrap();
    let key = std::fs::read(&a.key).unwrap();
    let o = mqtt_options_new();
    let bad: [(&str, &[u8]); 7] = [
        ("empty", b"x"),
        ("binary", b"\x00\x01\xff-----BEGIN\x00CERTIFICATE-----\x00"),
        (
            "armoured garbage",
            b"-----BEGIN CERTIFICATE-----\n!!!! not base64 ****\n-----END CERTIFICATE-----\n",
        ),
        (
            "not a certificate",
            b"-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n",
        ),
        (
            "no END line",
            b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n",
        ),
        ("cut short", &ca_pem[..ca_pem.len() / 2]),
        ("key, not a certificate", &key),
    ];
    for (what, pem) in bad {
        let len = if what == "empty" { 0 } else { pem.len() };
        let rc = mqtt_options_set_tls_ca_pem(o, pem.as_ptr().cast(), len);
        assert_eq!(rc, MQTT5C_ERR_INVALID_ARGUMENT, "CA {what}");
        assert!(!last().is_empty(), "CA {what}");
        eprintln!("CA {what}: {}", last());
        let rc = mqtt_options_set_tls_client_cert_pem(
            o,
            pem.as_ptr().cast(),
            len,
            key.as_ptr().cast(),
            key.len(),
        );
        assert_eq!(rc, MQTT5C_ERR_INVALID_ARGUMENT, "client chain {what}");
        let rc = mqtt_options_set_tls_client_cert_pem(
            o,
            cert.as_ptr().cast(),
            cert.len(),
            pem.as_ptr().cast(),
            len,
        );
        if what != "key, not a certificate" {
            assert_eq!(rc, MQTT5C_ERR_INVALID_ARGUMENT, "key {what}");
            eprintln!("key {what}: {}", last());
        }
    }
    let bad_keys: [&[u8]; 3] = [
        b"-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n",
        b"-----BEGIN PRIVATE KEY",
    ];
    for k in bad_keys {
        let rc = mqtt_options_set_tls_client_cert_pem(
            o,
            cert.as_ptr().cast(),
            cert.len(),
            k.as_ptr().cast(),
            k.len(),
        );
        assert_eq!(rc, MQTT5C_ERR_INVALID_ARGUMENT, "{}", last());
    }
    // Exact lengths, the final newline left out: taken.
    let trim = |b: &[u8]| b.len() - usize::from(b.ends_with(b"\n"));
    assert_eq!(
        mqtt_options_set_tls_ca_pem(o, ca_pem.as_ptr().cast(), trim(&ca_pem)),
        MQTT5C_OK,
        "{}",
        last()
    );
    assert_eq!(
        mqtt_options_set_tls_client_cert_pem(
            o,
            cert.as_ptr().cast(),
            trim(&cert),
            key.as_ptr().cast(),
            trim(&key)
        ),
        MQTT5C_OK,
        "{}",
        last()
    );
    mqtt_options_free(o);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificate_and_key_files_fail_when_set() {
    let dir = TempDir::new("mqtt5c-tls-bad").unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let a = ca.client("a", KeyKind::EcdsaP256);
    let b = ca.client("b", KeyKind::EcdsaP256);
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a PEM file\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let mut o = ClientOptions::default();

    let e = o.tls.set_ca_file(Some(&s(&missing))).unwrap_err();
    assert!(
        e.contains(&s(&missing)) && e.contains("No such file"),
        "{e}"
    );
    let e = o.tls.set_ca_file(Some(&s(&garbage))).unwrap_err();
    assert!(e.contains("no PEM certificate"), "{e}");
    let e = o
        .tls
        .set_client_cert(Some((&s(&a.cert), &s(&garbage))))
        .unwrap_err();
    assert!(e.contains("no private key"), "{e}");
    let e = o
        .tls
        .set_client_cert(Some((&s(&a.cert), &s(&b.key))))
        .unwrap_err();
    assert!(e.contains("cannot be used together"), "{e}");
    let e = o
        .tls
        .set_client_cert(Some((&s(&missing), &s(&a.key))))
        .unwrap_err();
    assert!(e.contains(&s(&missing)), "{e}");
    o.tls
        .set_client_cert(Some((&s(&a.cert), &s(&a.key))))
        .unwrap();
    assert!(o.tls.set_server_name(Some("not a host!")).is_err());
    assert!(o.tls.set_alpn(vec![Vec::new()]).is_err());
    o.tls.set_alpn(vec![b"mqtt".to_vec()]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn_is_offered() {
    // mosquitto does not negotiate ALPN unless configured to; offering a
    // protocol must not break the handshake with such a server.
    let rig = tls_rig(&["127.0.0.1"], Validity::Current, false);
    let mut o = tls_opts("alpn", &rig.ca.file);
    o.tls.set_alpn(vec![b"mqtt".to_vec()]).unwrap();
    round_trip(
        &format!("mqtts://127.0.0.1:{}", rig.tls_port),
        &o,
        &[b"a".to_vec()],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_round_trip_with_path_headers_and_1mib() {
    let broker = Broker::start();
    let bridge = ws_bridge::start(broker.port(), None).await;
    let mut o = opts("ws");
    o.add_ws_header("Authorization", "Bearer t0ken").unwrap();
    o.add_ws_header("X-Device", "gw-1").unwrap();
    round_trip(
        &format!("ws://127.0.0.1:{}", bridge.port),
        &o,
        &[b"small".to_vec(), big_payload()],
    )
    .await;
    round_trip(
        &format!("ws://127.0.0.1:{}/custom/path?x=1", bridge.port),
        &opts("ws-path"),
        &[b"p".to_vec()],
    )
    .await;
    let seen = bridge.seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{seen:?}");
    assert_eq!(seen[0].path, "/mqtt");
    assert_eq!(seen[0].header("sec-websocket-protocol"), Some("mqtt"));
    assert_eq!(seen[0].header("authorization"), Some("Bearer t0ken"));
    assert_eq!(seen[0].header("x-device"), Some("gw-1"));
    assert_eq!(seen.last().unwrap().path, "/custom/path?x=1");

    // Headers the handshake sets itself are refused.
    assert!(o.add_ws_header("Sec-WebSocket-Protocol", "x").is_err());
    assert!(o.add_ws_header("X-Bad", "a\r\nb").is_err());
    assert!(o.add_ws_header("Bad Name", "v").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_round_trip_1mib() {
    let dir = TempDir::new("mqtt5c-wss").unwrap();
    let ca = Ca::new(dir.path(), "wss");
    let server: CertFiles = ca.server("wss-server", &["localhost"], Validity::Current);
    let broker = Broker::start();
    let bridge = ws_bridge::start(
        broker.port(),
        Some(ws_bridge::tls_acceptor(&server.cert, &server.key)),
    )
    .await;
    round_trip(
        &format!("wss://localhost:{}/mqtt", bridge.port),
        &tls_opts("wss", &ca.file),
        &[b"secure ws".to_vec(), big_payload()],
    )
    .await;
    // Verification applies to wss:// as well.
    let other = Ca::new(dir.path(), "other");
    let (c, _rx) = client(tls_opts("wss-bad", &other.file));
    expect_tls(
        c.connect(&format!("wss://localhost:{}", bridge.port)).await,
        "unknown issuer",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_upgrade_refused_is_reported() {
    // A plain MQTT port does not speak HTTP: the upgrade must fail cleanly.
    let broker = Broker::start();
    let (c, _rx) = client(opts("ws-refused"));
    let r = c
        .connect(&format!("ws://127.0.0.1:{}", broker.port()))
        .await;
    assert!(r.is_err(), "connected over WebSocket to a plain MQTT port");
    assert!(!c.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_round_trip() {
    let dir = TempDir::new("mqtt5c-unix").unwrap();
    let sock = dir.path().join("mosquitto.sock");
    let broker = Broker::start_with(&format!(
        "listener 0 {}\nallow_anonymous true\n",
        sock.display()
    ));
    // mosquitto creates the socket while starting; the TCP port it serves
    // too is already accepting, so the socket exists.
    assert!(sock.exists(), "no socket; broker log:\n{}", broker.log());
    round_trip(
        &format!("unix://{}", sock.display()),
        &opts("unix"),
        &[b"local".to_vec(), big_payload()],
    )
    .await;
    let (c, _rx) = client(opts("unix-missing"));
    match c
        .connect(&format!("unix://{}/nope", dir.path().display()))
        .await
    {
        Err(Error::Io(e)) => assert!(e.to_string().contains("nope"), "{e}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_against_password_file() {
    let dir = TempDir::new("mqtt5c-passwd").unwrap();
    let pwfile = dir.path().join("passwd");
    let out = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&pwfile)
        .args(["alice", "s3cret pass"])
        .output()
        .expect("run mosquitto_passwd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let broker = Broker::start_with(&format!(
        "password_file {}\nallow_anonymous false\n",
        pwfile.display()
    ));
    let with = |user: &str, pass: &[u8]| {
        let mut o = opts(&format!("cred-{user}"));
        o.username = Some(MqttStr::new(user).unwrap());
        o.password = Some(Secret::new(pass));
        o
    };
    round_trip(
        &broker.url(),
        &with("alice", b"s3cret pass"),
        &[b"ok".to_vec()],
    )
    .await;

    let (c, _rx) = client(with("alice", b"wrong"));
    match c.connect(&broker.url()).await {
        Err(e @ Error::Refused { reason, .. }) => {
            assert!(
                matches!(
                    reason,
                    ReasonCode::BadUserNameOrPassword | ReasonCode::NotAuthorized
                ),
                "{reason:?}"
            );
            let text = e.to_string().to_lowercase();
            assert!(
                text.contains("bad user name or password") || text.contains("not authorized"),
                "{text}"
            );
            assert!(!text.contains("wrong"), "the password leaked into: {text}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The password is not in the options' debug output either.
    let dbg = format!("{:?}", with("alice", b"s3cret pass"));
    assert!(!dbg.contains("s3cret"), "{dbg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_urls_are_invalid_arguments() {
    let (c, _rx) = client(opts("urls"));
    for bad in [
        "http://h",
        "mqtt://",
        "mqtt://h:0",
        "unix://rel",
        "mqtt://::1:1883",
    ] {
        match c.connect(bad).await {
            Err(Error::InvalidArgument(_)) => {}
            other => panic!("{bad}: expected InvalidArgument, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_literal_connects() {
    let port = free_port();
    let broker = Broker::start_with(&format!("listener {port} ::1\n"));
    let url = format!("mqtt://[::1]:{port}");
    let (c, _rx) = client(opts("v6"));
    match c.connect(&url).await {
        Ok(_) => {}
        // A machine without IPv6 on loopback cannot run this check.
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            eprintln!(
                "skipping: no IPv6 loopback ({e}); broker log:\n{}",
                broker.log()
            );
        }
        Err(e) => panic!("{url}: {e}; broker log:\n{}", broker.log()),
    }
}

/// MQTT 3.1.1 over every transport (issue 12): TLS, WebSocket (offering
/// subprotocols `mqtt` and `mqttv3.1`, the broker choosing), WebSocket
/// over TLS and a Unix socket, a 1 MiB message included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_over_every_transport() {
    let v311 = |mut o: ClientOptions| {
        o.protocol_version = Some(mqtt5c::packet::ProtocolVersion::V311);
        o
    };
    let rig = tls_rig(&["localhost", "127.0.0.1"], Validity::Current, false);
    round_trip(
        &format!("mqtts://127.0.0.1:{}", rig.tls_port),
        &v311(tls_opts("v311-tls", &rig.ca.file)),
        &[b"tls".to_vec(), big_payload()],
    )
    .await;

    let bridge = ws_bridge::start(rig.broker.port(), None).await;
    round_trip(
        &format!("ws://127.0.0.1:{}", bridge.port),
        &v311(opts("v311-ws")),
        &[b"ws".to_vec(), big_payload()],
    )
    .await;
    let seen = bridge.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].header("sec-websocket-protocol"),
        Some("mqtt, mqttv3.1")
    );
    // A broker older than 3.1.1's WebSocket section: it wants "mqttv3.1".
    let old = ws_bridge::start_with_subprotocol(rig.broker.port(), None, "mqttv3.1").await;
    round_trip(
        &format!("ws://127.0.0.1:{}", old.port),
        &v311(opts("v311-ws-old")),
        &[b"ws mqttv3.1".to_vec()],
    )
    .await;
    // MQTT_PROTOCOL_AUTO there: its v5 CONNECT goes over "mqttv3.1"
    // too, mosquitto takes it (it speaks both); a client fixed on v5 does
    // not offer "mqttv3.1" and is refused at the upgrade.
    let mut auto = opts("v5-ws-old");
    auto.protocol_version = None;
    round_trip(
        &format!("ws://127.0.0.1:{}", old.port),
        &auto,
        &[b"auto mqttv3.1".to_vec()],
    )
    .await;
    let (v5, _ev) = client(opts("v5-ws-old"));
    match v5.connect(&format!("ws://127.0.0.1:{}", old.port)).await {
        Err(Error::Protocol(text)) => assert!(text.contains("'mqtt' subprotocol"), "{text}"),
        other => panic!("v5 to a mqttv3.1-only WebSocket server: {other:?}"),
    }

    let dir = TempDir::new("mqtt5c-v311").unwrap();
    let ca = Ca::new(dir.path(), "v311-wss");
    let server: CertFiles = ca.server("v311-wss", &["localhost"], Validity::Current);
    let tls_bridge = ws_bridge::start(
        rig.broker.port(),
        Some(ws_bridge::tls_acceptor(&server.cert, &server.key)),
    )
    .await;
    round_trip(
        &format!("wss://localhost:{}/mqtt", tls_bridge.port),
        &v311(tls_opts("v311-wss", &ca.file)),
        &[b"wss".to_vec()],
    )
    .await;

    let sock = dir.path().join("mosquitto.sock");
    let broker = Broker::start_with(&format!(
        "listener 0 {}\nallow_anonymous true\n",
        sock.display()
    ));
    assert!(sock.exists(), "no socket; broker log:\n{}", broker.log());
    round_trip(
        &format!("unix://{}", sock.display()),
        &v311(opts("v311-unix")),
        &[b"unix".to_vec(), big_payload()],
    )
    .await;
}
