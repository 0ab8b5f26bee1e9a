//! The examples of issue 13 run, not only compile (audit of issue 13):
//! examples-c/tls_pem.c (TLS material from PEM buffers) and
//! examples-c/tls_signer.c (the key outside the library, signed by
//! OpenSSL in the callback, for each key type) against mosquitto with
//! `require_certificate true`; examples-c/proxy_pub.c through an HTTP
//! proxy with Basic authentication and, with "env", through the SOCKS5
//! proxy ALL_PROXY names. Each publishes one QoS 1 message (exit status
//! 0 once acknowledged); a subscriber sees it arrive.

mod common;

use common::certs::{tls_listener_conf, Ca, KeyKind, Validity};
use common::cprog;
use common::events::client;
use common::tunnel::{Behaviour, Flavor, TunnelProxy};
use common::{free_port, Broker, TempDir};
use mqtt5c::client::ClientOptions;
use mqtt5c::packet::{MqttStr, Properties, QoS, SubscribeFilter, SubscriptionOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Compiles examples-c/`name`.c as `make examples` does (its `link:`
/// line included, which `cprog::compile` has no room for), against the
/// library cargo built.
fn compile(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let src = root.join(format!("examples-c/{name}.c"));
    let text = std::fs::read_to_string(&src).unwrap();
    let link: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(" * link: "))
        .flat_map(str::split_whitespace)
        .collect();
    let lib = cprog::lib_dir();
    let out = cprog::profile_dir().join("c-tests");
    std::fs::create_dir_all(&out).unwrap();
    let exe = out.join(format!("example-{name}"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread", "-O1"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(&lib)
        .arg("-lmqtt5c")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(&link)
        .status()
        .expect("run cc");
    assert!(status.success(), "compiling {name}.c failed");
    exe
}

/// Runs `exe` with `args` (and `env`); asserts exit status 0.
fn run(exe: &Path, args: &[&str], env: &[(&str, String)]) {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env_remove("ALL_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("NO_PROXY")
        .env_remove("all_proxy")
        .env_remove("https_proxy")
        .env_remove("no_proxy");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the example");
    assert!(
        out.status.success(),
        "{} {args:?}: {:?}\nstdout: {}\nstderr: {}",
        exe.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A subscriber to `ex/#` on `url` with `o`.
async fn subscriber(
    url: &str,
    o: ClientOptions,
) -> (
    mqtt5c::client::MqttClient,
    std::sync::Arc<common::events::Events>,
) {
    let (c, rx) = client(o);
    c.connect(url).await.unwrap();
    let filter = SubscribeFilter {
        filter: MqttStr::new("ex/#").unwrap(),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
    };
    c.subscribe(vec![filter], Properties::new()).await.unwrap();
    (c, rx)
}

fn expect(rx: &common::events::Events, topic: &str, payload: &str) {
    let m = rx
        .msg_within(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{topic} did not arrive"));
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        (topic, payload.as_bytes())
    );
}

/// Rewrites the Ed25519 key file rcgen wrote (PKCS#8 v2, with the public
/// key, which OpenSSL 3.0 cannot read) as PKCS#8 v1: the 32-byte seed in
/// the fixed RFC 8410 wrapping. The example's OpenSSL then reads it.
fn pkcs8_v1_for_openssl_3_0(key: &Path) {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::PrivateKeyDer;
    let pem = std::fs::read(key).unwrap();
    let der = PrivateKeyDer::from_pem_slice(&pem).unwrap();
    let der = der.secret_der();
    let at = der
        .windows(4)
        .position(|w| w == [0x04, 0x22, 0x04, 0x20])
        .expect("the Ed25519 seed")
        + 4;
    let mut v1 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    v1.extend_from_slice(&der[at..at + 32]);
    let text = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64(&v1)
    );
    std::fs::write(key, text).unwrap();
}

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_pem_and_tls_signer_examples_against_require_certificate() {
    let dir = TempDir::new("mqtt5c-field-ex").unwrap();
    let ca = Ca::new(dir.path(), "ex");
    let server = ca.server("server", &["127.0.0.1"], Validity::Current);
    let port = free_port();
    let _broker = Broker::start_with(&tls_listener_conf(port, &ca.file, &server, true));
    let url = format!("mqtts://127.0.0.1:{port}");
    let watcher = ca.client("watcher", KeyKind::EcdsaP256);
    let mut o = ClientOptions {
        client_id: MqttStr::new("ex-watcher").unwrap(),
        ..Default::default()
    };
    o.tls.set_ca_file(Some(ca.file.to_str().unwrap())).unwrap();
    o.tls
        .set_client_cert(Some((
            watcher.cert.to_str().unwrap(),
            watcher.key.to_str().unwrap(),
        )))
        .unwrap();
    let (_sub, rx) = subscriber(&url, o).await;
    let s = |p: &Path| p.to_str().unwrap().to_string();

    let pem = compile("tls_pem");
    let files = ca.client("ex-pem", KeyKind::EcdsaP256);
    run(
        &pem,
        &[
            &url,
            &s(&ca.file),
            &s(&files.cert),
            &s(&files.key),
            "ex/pem",
            "from PEM buffers",
        ],
        &[],
    );
    expect(&rx, "ex/pem", "from PEM buffers");

    let signer = compile("tls_signer");
    for kind in [
        KeyKind::EcdsaP256,
        KeyKind::EcdsaP384,
        KeyKind::Rsa,
        KeyKind::Ed25519,
    ] {
        let files = ca.client(&format!("ex-signer-{kind:?}"), kind);
        if matches!(kind, KeyKind::Ed25519) {
            pkcs8_v1_for_openssl_3_0(&files.key);
        }
        let topic = format!("ex/signer/{kind:?}");
        let payload = format!("signed by OpenSSL with {kind:?}");
        run(
            &signer,
            &[
                &url,
                &s(&ca.file),
                &s(&files.cert),
                &s(&files.key),
                &topic,
                &payload,
            ],
            &[],
        );
        expect(&rx, &topic, &payload);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_pub_example_through_http_and_env_socks5_proxies() {
    let broker = Broker::start();
    let url = format!("mqtt://localhost:{}", broker.port());
    let o = ClientOptions {
        client_id: MqttStr::new("ex-px-watcher").unwrap(),
        ..Default::default()
    };
    let (_sub, rx) = subscriber(&broker.url(), o).await;
    let exe = compile("proxy_pub");

    let http = TunnelProxy::start(Flavor::Http, Some(("gw", "p@ss")), Behaviour::Tunnel);
    let purl = format!("http://gw:p%40ss@127.0.0.1:{}", http.port());
    run(&exe, &[&url, &purl, "ex/http", "through HTTP"], &[]);
    expect(&rx, "ex/http", "through HTTP");
    assert_eq!(http.targets(), vec![format!("localhost:{}", broker.port())]);

    let socks = TunnelProxy::start(Flavor::Socks5, None, Behaviour::Tunnel);
    let env = [("ALL_PROXY", format!("socks5h://127.0.0.1:{}", socks.port()))];
    run(&exe, &[&url, "env", "ex/env", "through SOCKS5"], &env);
    expect(&rx, "ex/env", "through SOCKS5");
    assert_eq!(
        socks.targets(),
        vec![format!("localhost:{}", broker.port())]
    );
}
